//! The `ticket_reply_mail` job: a public reply written into the outbox as the customer's email,
//! in the company's language — the ticket's number in the subject (`[T-2026-000123] …`, the
//! fallback a changed subject keeps), the reply, and a Message-ID naming the ticket and the
//! message (answering the customer's latest mail when there is one), so a reply to it finds its
//! ticket. Queued in the reply's transaction and sent by the mail worker with retries.

use guanxi_platform::db::Tx;
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use uuid::Uuid;

fn t(l: &str, key: &str) -> String {
    crate::i18n::t(l, key)
}

pub fn reply_handler(
    base_url: String,
) -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync {
    move |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        let base_url = base_url.clone();
        Box::pin(async move {
            let id = |k: &str| due.payload[k].as_str().and_then(|s| s.parse::<Uuid>().ok());
            let (Some(ticket), Some(message)) = (id("ticket_id"), id("message_id")) else {
                return Ok(());
            };
            let Some(m) =
                guanxi_service::tickets::reply_mail(tx, due.tenant_id, ticket, message).await?
            else {
                return Ok(());
            };
            let (Some(to), Some(mail_id)) = (m.recipient, m.mail_id) else {
                return Ok(());
            };
            let l = crate::i18n::normalize(&m.locale).unwrap_or("zh-CN");
            let subject = format!("[{}] {}", m.number, m.subject);
            let closing = if guanxi_service::clock::done(&m.status) {
                t(l, "ticket.mail.resolved")
            } else {
                t(l, "ticket.mail.reply_above")
            };
            // A reply that resolves the ticket asks how we did: one link per score, each
            // opening the survey page with it chosen.
            let survey = if guanxi_service::clock::done(&m.status) {
                let token = guanxi_service::surveys::invite(
                    tx,
                    due.tenant_id,
                    "csat",
                    Some(ticket),
                    m.contact_id,
                )
                .await?;
                let base = base_url.trim_end_matches('/');
                let links: Vec<String> = (1..=5)
                    .map(|n| format!("{n}: {base}/s/{token}?score={n}"))
                    .collect();
                format!("\n\n{}\n{}", t(l, "survey.mail.question"), links.join("\n"))
            } else {
                String::new()
            };
            let text = format!(
                "{}{}\n\n-- \n{}\n{}",
                m.body,
                survey,
                closing.replace("{number}", &m.number),
                m.company
            );
            let files = guanxi_service::attachments::of_message(tx, due.tenant_id, message).await?;
            jobs::enqueue_at(
                tx,
                due.tenant_id,
                jobs::KIND_EMAIL,
                &jobs::Email {
                    to,
                    subject,
                    text,
                    message_id: Some(mail_id),
                    in_reply_to: m.answers.or(m.first_mail),
                    reply_to: m.reply_to,
                    then: m.sent_copy_to.map(|b| jobs::FollowUp {
                        kind: guanxi_service::mailboxes::SENT_COPY_JOB.into(),
                        payload: serde_json::json!({ "mailbox_id": b }),
                    }),
                    attachments: files,
                },
                due.at,
            )
            .await?;
            Ok(())
        })
    }
}

/// The `nps_survey` job: a scheduled NPS run — each customer served lately and not asked
/// within the quiet period gets an invitation (one link per score, 0–10) in the company's
/// language, queued in the job's transaction with the invite it links to, and the next run is
/// planned there too.
pub fn nps_handler(
    base_url: String,
) -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync {
    move |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        let base_url = base_url.clone();
        Box::pin(async move {
            let Some(at) = jobs::run_time(&due) else {
                return Ok(());
            };
            let Some((schedule, people)) =
                guanxi_service::nps::due_run(tx, due.tenant_id, at).await?
            else {
                return Ok(());
            };
            let (company, locale): (String, String) = tx
                .fetch_one(
                    "SELECT name, locale FROM tenants WHERE id = $1",
                    guanxi_platform::args![due.tenant_id],
                )
                .await?;
            let l = crate::i18n::normalize(&locale).unwrap_or("zh-CN");
            let base = base_url.trim_end_matches('/');
            let sent = people.len() as i64;
            for p in people {
                let token = guanxi_service::surveys::invite(
                    tx,
                    due.tenant_id,
                    "nps",
                    None,
                    Some(p.contact_id),
                )
                .await?;
                let links: Vec<String> = (0..=10)
                    .map(|n| format!("{n}: {base}/s/{token}?score={n}"))
                    .collect();
                let text = format!(
                    "{}\n\n{}\n{}\n{}\n\n-- \n{company}",
                    t(l, "survey.mail.hello").replace("{name}", &p.name),
                    t(l, "survey.question_nps"),
                    t(l, "survey.scale_nps"),
                    links.join("\n"),
                );
                jobs::enqueue_at(
                    tx,
                    due.tenant_id,
                    jobs::KIND_EMAIL,
                    &jobs::Email {
                        to: p.email,
                        subject: format!("{} — {company}", t(l, "survey.title_nps")),
                        text,
                        message_id: None,
                        in_reply_to: None,
                        reply_to: None,
                        then: None,
                        attachments: Vec::new(),
                    },
                    due.at,
                )
                .await?;
            }
            guanxi_service::nps::planned_next(tx, due.tenant_id, &schedule, sent).await
        })
    }
}
