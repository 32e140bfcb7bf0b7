//! Stored mail into tickets (mail-parser: MIME, RFC 2047 headers, GB2312/GBK/Big5 and the other
//! legacy charsets). Each stored message is handled in one transaction that also marks it, so a
//! crash between the two never doubles a ticket:
//!
//! 1. **Set aside, never answered**: mail from one of the tenant's own support addresses (a
//!    loop), automatic mail (`Auto-Submitted` other than `no`, `Precedence: bulk/junk/list`,
//!    `X-Autoreply`, an empty `Return-Path` — a bounce), and a sender writing more than
//!    [`SENDER_LIMIT`] times an hour. An admin may re-run one as real.
//! 2. **Threading**: `In-Reply-To` and `References` naming one of our Message-IDs
//!    (`ticket.<ticket>.<message>@guanxi`), or a mail already on a ticket (the customer's own
//!    earlier mail, as Outlook and Gmail quote it); else the ticket number in the subject
//!    (`[T-2026-000123]`, which survives a changed subject and a forward). A merged ticket's
//!    survivor takes it; a closed or trashed one gets a new ticket.
//! 3. The sender is the contact with that email (the first made), or a new contact.
//! 4. A continuation is the customer's message on the ticket (reopening a resolved one); a new
//!    mail opens a ticket in the mailbox's category, routed like any other.
//!
//! What cannot be used (no sender, a sender address that is not one) is a dead letter with its
//! reason.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::Result;
use guanxi_platform::files;
use guanxi_platform::time::now;
use guanxi_platform::{args, validate, Ctx, Error};

use crate::attachments::{self, Origin};
use crate::tickets::{self, MessageInput, TicketInput};

/// More mail than this from one sender in an hour is a loop: set aside.
pub const SENDER_LIMIT: i64 = 20;
/// The text kept of a mail's body (the whole message stays stored).
const BODY_CHARS: usize = 50_000;

/// The Message-ID in a message's header, without `<>`.
pub fn header_message_id(raw: &[u8]) -> Option<String> {
    let m = MessageParser::default().parse_headers(raw)?;
    m.message_id()
        .map(|s| s.trim().trim_matches(['<', '>']).to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 500)
}

/// Sender and subject, for the mailbox's list.
pub fn summary(raw: &[u8]) -> (Option<String>, Option<String>) {
    let Some(m) = MessageParser::default().parse_headers(raw) else {
        return (None, None);
    };
    let sender = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| validate::email(a).unwrap_or_else(|_| clean(a, 254)));
    (sender, m.subject().map(|s| clean(s, 200)))
}

/// Text without control characters (but line breaks and tabs), at most `max` characters.
fn clean(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<&str> = match v {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(l) => l.iter().map(|s| s.as_ref()).collect(),
        _ => vec![],
    };
    list.into_iter()
        .map(|s| s.trim().trim_matches(['<', '>']).to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 500)
        .take(50)
        .collect()
}

/// The ticket our own Message-ID names (`ticket.<ticket>.<message>@guanxi`).
pub fn ticket_of_mail_id(id: &str) -> Option<Uuid> {
    let rest = id.strip_prefix("ticket.")?;
    let (ticket, _) = rest.split_once('.')?;
    ticket.parse().ok()
}

/// The ticket number in a subject: `[T-2026-000123]`.
pub fn number_in_subject(subject: &str) -> Option<String> {
    let mut rest = subject;
    while let Some(i) = rest.find("[T-") {
        let tail = &rest[i + 1..];
        if let Some(end) = tail.find(']') {
            let n = &tail[..end];
            let ok = n.len() <= 30
                && n.strip_prefix("T-").is_some_and(|d| {
                    !d.is_empty() && d.chars().all(|c| c.is_ascii_digit() || c == '-')
                });
            if ok {
                return Some(n.to_owned());
            }
        }
        rest = tail;
    }
    None
}

/// Why a message is automatic (an auto-reply, a bounce, bulk mail), if it is.
pub fn automatic(m: &mail_parser::Message<'_>) -> Option<&'static str> {
    let raw = |h: &str| m.header_raw(h).map(|v| v.trim().to_ascii_lowercase());
    if let Some(a) = raw("Auto-Submitted") {
        if !a.starts_with("no") {
            return Some("auto_submitted");
        }
    }
    if let Some(p) = raw("Precedence") {
        if matches!(p.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Some("precedence");
        }
    }
    if raw("X-Autoreply").is_some() || raw("X-Autorespond").is_some() {
        return Some("auto_reply");
    }
    if let Some(r) = raw("Return-Path") {
        if r == "<>" {
            return Some("bounce");
        }
    }
    None
}

/// Turns every stored message waiting (of `tenant`, or every tenant) into tickets, oldest
/// first; returns how many were handled.
pub async fn process_pending(db: &Db, tenant: Option<Uuid>) -> Result<u32> {
    let mut done = 0;
    loop {
        let batch: Vec<(Uuid, Uuid)> = db
            .fetch_all(
                "SELECT tenant_id, id FROM inbound_mail
                  WHERE status = 'pending' AND ($1 IS NULL OR tenant_id = $1)
                  ORDER BY id LIMIT 100",
                args![tenant],
            )
            .await?;
        if batch.is_empty() {
            return Ok(done);
        }
        let mut progressed = false;
        for (t, id) in batch {
            match process_one(db, t, id, false).await {
                Ok(true) => {
                    done += 1;
                    progressed = true;
                }
                Ok(false) => {}
                // Another fetcher handled it meanwhile.
                Err(Error::Conflict(_)) => progressed = true,
                Err(e) => return Err(e),
            }
        }
        if !progressed {
            return Ok(done);
        }
    }
}

#[derive(sqlx::FromRow)]
struct Stored {
    mailbox_id: Uuid,
    raw: Vec<u8>,
    size: i64,
    truncated: bool,
    status: String,
}

/// The outcome of one message.
enum Outcome {
    Created(Uuid),
    Appended(Uuid),
    Duplicate(Uuid),
    Ignored(&'static str),
    Dead(String),
}

/// Handles one stored message (`forced`: an admin's re-run, loop checks skipped); `false` when
/// it was not waiting.
pub async fn process_one(db: &Db, tenant: Uuid, id: Uuid, forced: bool) -> Result<bool> {
    let mut tx = db.begin().await?;
    let Some(s): Option<Stored> = tx
        .fetch_optional(
            "SELECT mailbox_id, raw, size, truncated, status FROM inbound_mail
              WHERE tenant_id = $1 AND id = $2",
            args![tenant, id],
        )
        .await?
    else {
        return Ok(false);
    };
    if s.status != "pending" {
        return Ok(false);
    }
    let outcome = match decide(&mut tx, tenant, &s, forced).await {
        Ok(o) => o,
        Err(Error::Validation(v)) => {
            // The ticket's own checks refused it: nothing of it is kept but the dead letter.
            drop(tx);
            tx = db.begin().await?;
            Outcome::Dead(format!("invalid: {}", serde_json::json!(v)))
        }
        Err(e) => return Err(e),
    };
    let (status, reason, ticket) = match outcome {
        Outcome::Created(t) => ("created", None, Some(t)),
        Outcome::Appended(t) => ("appended", None, Some(t)),
        Outcome::Duplicate(t) => ("duplicate", None, Some(t)),
        Outcome::Ignored(r) => ("ignored", Some(r.to_owned()), None),
        Outcome::Dead(r) => ("dead", Some(r), None),
    };
    let n = tx
        .execute(
            "UPDATE inbound_mail SET status = $1, reason = $2, ticket_id = $3, processed_at = $4
              WHERE tenant_id = $5 AND id = $6 AND status = 'pending'",
            args![status, reason, ticket, now(), tenant, id],
        )
        .await?;
    if n == 0 {
        return Err(Error::Conflict("handled by another fetcher".into()));
    }
    tx.commit().await?;
    Ok(true)
}

fn too_large_note(locale: &str, size: i64) -> String {
    let mb = size as f64 / 1_048_576.0;
    let limit = crate::mailboxes::MAX_MESSAGE_BYTES / 1_048_576;
    match locale {
        "en" => format!("(This email is {mb:.1} MB, above the {limit} MB limit: only its header was fetched. It is still in the mailbox.)"),
        "zh-TW" => format!("（此郵件 {mb:.1} MB，超過 {limit} MB 上限：只取了郵件頭，郵件仍在信箱中。）"),
        _ => format!("（此邮件 {mb:.1} MB，超过 {limit} MB 上限：只取了邮件头，邮件仍在邮箱中。）"),
    }
}

/// The files of a mail not kept on its ticket, each with the code saying why (they stay in
/// the stored mail).
fn refused_note(locale: &str, refused: &[String]) -> String {
    let list = refused.join(", ");
    match locale {
        "en" => format!("(Attachments not kept: {list}. They are still in the email.)"),
        "zh-TW" => format!("（未保留的附件：{list}。仍在原郵件中。）"),
        _ => format!("（未保留的附件：{list}。仍在原邮件中。）"),
    }
}

async fn decide(tx: &mut Tx, tenant: Uuid, s: &Stored, forced: bool) -> Result<Outcome> {
    let Some(m) = MessageParser::default().parse(&s.raw) else {
        return Ok(Outcome::Dead("unparseable".into()));
    };
    let Some(from) = m.from().and_then(|a| a.first()) else {
        return Ok(Outcome::Dead("no_sender".into()));
    };
    let Some(address) = from.address() else {
        return Ok(Outcome::Dead("no_sender".into()));
    };
    let Ok(email) = validate::email(address) else {
        return Ok(Outcome::Dead(format!(
            "invalid_sender: {}",
            clean(address, 254)
        )));
    };
    let own: Option<(Uuid,)> = tx
        .fetch_optional(
            "SELECT id FROM mailboxes WHERE tenant_id = $1 AND address = $2",
            args![tenant, email.as_str()],
        )
        .await?;
    if own.is_some() && !forced {
        return Ok(Outcome::Ignored("own_address"));
    }
    if !forced {
        if let Some(why) = automatic(&m) {
            return Ok(Outcome::Ignored(why));
        }
        let recent: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM inbound_mail WHERE tenant_id = $1 AND sender = $2
                  AND fetched_at >= $3 AND status <> 'pending'",
                args![tenant, email.as_str(), now() - chrono::Duration::hours(1)],
            )
            .await?;
        if recent >= SENDER_LIMIT {
            return Ok(Outcome::Ignored("sender_rate"));
        }
    }
    let mail_id = m
        .message_id()
        .map(|s| s.trim().trim_matches(['<', '>']).to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 500);
    // A Message-ID already on a ticket: the same mail by another mailbox (or copy).
    if let Some(mid) = &mail_id {
        let on: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM tickets WHERE tenant_id = $1 AND mail_id = $2
                 UNION ALL
                 SELECT ticket_id FROM ticket_messages WHERE tenant_id = $1 AND mail_id = $2",
                args![tenant, mid.as_str()],
            )
            .await?;
        if let Some((t,)) = on {
            return Ok(Outcome::Duplicate(t));
        }
    }
    let ctx = Ctx::system(tenant);
    let subject = m.subject().map(|s| clean(s, 200)).unwrap_or_default();
    let mut body = m
        .body_text(0)
        .map(|b| clean(&b.replace("\r\n", "\n"), BODY_CHARS))
        .unwrap_or_default();
    // The files it carries: kept (up to the ticket's limit per mail) when their type is
    // allowed; the others named in the text with why they were not kept.
    let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for a in m.attachments().take(100) {
        let name = files::clean_name(a.attachment_name().unwrap_or("attachment"));
        match files::content_type(&name, a.contents()) {
            Ok(_) if kept.len() < MAX_FILES => kept.push((name, a.contents().to_vec())),
            Ok(_) => refused.push(format!("{name} (too_many)")),
            Err(code) => refused.push(format!("{name} ({code})")),
        }
    }
    let locale: (String,) = tx
        .fetch_one("SELECT locale FROM tenants WHERE id = $1", args![tenant])
        .await?;
    if !refused.is_empty() {
        body.push_str("\n\n");
        body.push_str(&refused_note(&locale.0, &refused));
    }
    if s.truncated {
        body.push_str("\n\n");
        body.push_str(&too_large_note(&locale.0, s.size));
    }
    let body = body.trim().to_owned();
    let body = if body.is_empty() {
        "—".to_owned()
    } else {
        body
    };
    let contact = contact_for(tx, &ctx, s.mailbox_id, &email, from.name()).await?;
    if let Some(ticket) = thread(tx, tenant, &m, &subject).await? {
        let message = tickets::add_message_in(
            tx,
            &ctx,
            ticket,
            MessageInput {
                kind: Some("customer".into()),
                body: Some(body),
                status: None,
                version: None,
                contact_id: Some(contact),
                channel: Some("email".into()),
                article_id: None,
                attachment_ids: None,
            },
            mail_id,
        )
        .await?;
        keep(tx, &ctx, ticket, Some(message.id), kept).await?;
        return Ok(Outcome::Appended(ticket));
    }
    let category: (Option<String>,) = tx
        .fetch_one(
            "SELECT category FROM mailboxes WHERE tenant_id = $1 AND id = $2",
            args![tenant, s.mailbox_id],
        )
        .await?;
    let subject = if subject.is_empty() {
        body.lines()
            .next()
            .map(|l| clean(l, 80))
            .unwrap_or_default()
    } else {
        subject
    };
    let t = tickets::create_in(
        tx,
        &ctx,
        TicketInput {
            subject: Some(if subject.is_empty() {
                "—".into()
            } else {
                subject
            }),
            description: Some(Some(body)),
            contact_id: Some(Some(contact)),
            category: category.0.map(Some),
            channel: Some("email".into()),
            ..Default::default()
        },
    )
    .await?;
    tx.execute(
        "UPDATE tickets SET mail_id = $1, mailbox_id = $2 WHERE tenant_id = $3 AND id = $4",
        args![mail_id, s.mailbox_id, tenant, t.id],
    )
    .await?;
    keep(tx, &ctx, t.id, None, kept).await?;
    Ok(Outcome::Created(t.id))
}

/// The most files kept from one mail.
const MAX_FILES: usize = 20;

/// Keeps a mail's files on its ticket (with the message it continued).
async fn keep(
    tx: &mut Tx,
    ctx: &Ctx,
    ticket: Uuid,
    message: Option<Uuid>,
    kept: Vec<(String, Vec<u8>)>,
) -> Result<()> {
    for (name, bytes) in kept {
        match attachments::add_in(tx, ctx, ticket, Origin::Mail(message), &name, &bytes).await {
            // The ticket's own limit reached: the rest stay in the stored mail.
            Err(Error::Validation(_)) => break,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The contact who wrote: the first made with that email, else a new one named as the mail
/// names them, owned by the mailbox's owner (else the tenant's first active admin).
async fn contact_for(
    tx: &mut Tx,
    ctx: &Ctx,
    mailbox: Uuid,
    email: &str,
    name: Option<&str>,
) -> Result<Uuid> {
    let owner: Option<(Option<Uuid>,)> = tx
        .fetch_optional(
            "SELECT owner_id FROM mailboxes WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, mailbox],
        )
        .await?;
    contact_by_email(tx, ctx, email, name, None, owner.and_then(|o| o.0)).await
}

/// The first contact with `email`, else a new one (named `name`, else the address's local
/// part; with `phone` when given) owned by `owner` when that is an active colleague, else the
/// tenant's first active admin.
pub async fn contact_by_email(
    tx: &mut Tx,
    ctx: &Ctx,
    email: &str,
    name: Option<&str>,
    phone: Option<&str>,
    owner: Option<Uuid>,
) -> Result<Uuid> {
    let found: Option<(Uuid,)> = tx
        .fetch_optional(
            "SELECT id FROM contacts WHERE tenant_id = $1 AND email = $2 AND deleted_at IS NULL
              ORDER BY created_at, id LIMIT 1",
            args![ctx.tenant_id, email],
        )
        .await?;
    if let Some((id,)) = found {
        return Ok(id);
    }
    let name = name
        .map(|n| clean(n, 200))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
    let owner: Option<(Uuid,)> = tx
        .fetch_optional(
            "SELECT u.id FROM users u
              LEFT JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
              WHERE u.tenant_id = $1 AND u.active = $3 AND u.deleted_at IS NULL
                AND (u.id = $2 OR r.key = 'admin')
              ORDER BY CASE WHEN u.id = $2 THEN 0 ELSE 1 END, u.created_at, u.id LIMIT 1",
            args![ctx.tenant_id, owner.unwrap_or(Uuid::nil()), true],
        )
        .await?;
    let c = guanxi_customers::contacts::create_in(
        tx,
        ctx,
        guanxi_customers::contacts::ContactInput {
            name: Some(name),
            email: Some(Some(email.to_owned())),
            phone: phone.map(|p| Some(p.to_owned())),
            owner_id: owner.map(|o| o.0),
            ..Default::default()
        },
    )
    .await?;
    Ok(c.id)
}

/// A request from a web form (the platform's public forms, mapped to tickets).
#[derive(Debug, Clone, Default)]
pub struct FormTicket {
    pub form_name: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
    pub tags: Vec<String>,
    /// Who owns a contact made for someone new.
    pub owner_id: Option<Uuid>,
}

/// Opens a ticket (channel `form`) from a web form's request, for the contact with its email
/// (made when new), routed as any other. The subject, when the form does not ask it, is the
/// description's first line; a company named is kept with the description.
pub async fn from_form(tx: &mut Tx, ctx: &Ctx, f: FormTicket) -> Result<Uuid> {
    let email = match f.email.as_deref().map(validate::email) {
        Some(Ok(e)) => e,
        Some(Err(code)) => return Err(Error::field("email", code)),
        None => return Err(Error::field("email", "required")),
    };
    let contact = contact_by_email(
        tx,
        ctx,
        &email,
        f.name.as_deref(),
        f.phone.as_deref(),
        f.owner_id,
    )
    .await?;
    let description = f.description.unwrap_or_default();
    let subject = f
        .subject
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| {
            description
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| clean(l, 80))
                .unwrap_or_else(|| f.form_name.clone())
        });
    let description = match f.company.filter(|c| !c.trim().is_empty()) {
        Some(c) => format!("{description}\n\n— {c}"),
        None => description,
    };
    let t = tickets::create_in(
        tx,
        ctx,
        TicketInput {
            subject: Some(subject),
            description: Some(Some(description)),
            contact_id: Some(Some(contact)),
            category: f.category.map(Some),
            channel: Some("form".into()),
            custom: f.custom,
            tags: (!f.tags.is_empty()).then_some(f.tags),
            ..Default::default()
        },
    )
    .await?;
    Ok(t.id)
}

/// The open ticket a mail continues, if any.
async fn thread(
    tx: &mut Tx,
    tenant: Uuid,
    m: &mail_parser::Message<'_>,
    subject: &str,
) -> Result<Option<Uuid>> {
    let mut refs = ids(m.in_reply_to());
    refs.extend(ids(m.references()));
    let mut found: Option<Uuid> = refs.iter().find_map(|r| ticket_of_mail_id(r));
    if found.is_none() && !refs.is_empty() {
        let mut q = guanxi_platform::db::Sql::new("SELECT id FROM tickets WHERE tenant_id = ");
        q.bind(tenant);
        q.push(" AND mail_id IN ");
        q.bind_list(refs.iter().map(String::as_str));
        q.push(" UNION ALL SELECT ticket_id FROM ticket_messages WHERE tenant_id = ");
        q.bind(tenant);
        q.push(" AND mail_id IN ");
        q.bind_list(refs.iter().map(String::as_str));
        let rows: Vec<(Uuid,)> = tx.fetch_sql(q).await?;
        found = rows.first().map(|r| r.0);
    }
    if found.is_none() {
        if let Some(n) = number_in_subject(subject) {
            let r: Option<(Uuid,)> = tx
                .fetch_optional(
                    "SELECT id FROM tickets WHERE tenant_id = $1 AND number = $2",
                    args![tenant, n.as_str()],
                )
                .await?;
            found = r.map(|r| r.0);
        }
    }
    // Follow merges to the survivor (a chain is short: merging points at a live ticket).
    let mut hops = 0;
    while let Some(id) = found {
        #[derive(sqlx::FromRow)]
        struct T {
            status: String,
            merged_into_id: Option<Uuid>,
            deleted_at: Option<chrono::DateTime<chrono::Utc>>,
        }
        let t: Option<T> = tx
            .fetch_optional(
                "SELECT status, merged_into_id, deleted_at FROM tickets WHERE tenant_id = $1 AND id = $2",
                args![tenant, id],
            )
            .await?;
        let Some(t) = t else { return Ok(None) };
        match t.merged_into_id {
            Some(next) if hops < 10 => {
                found = Some(next);
                hops += 1;
            }
            _ => {
                return Ok((t.deleted_at.is_none() && t.status != "closed").then_some(id));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_our_ids_are_read_back() {
        assert_eq!(
            number_in_subject("Re: [T-2026-000123] 打印机坏了").as_deref(),
            Some("T-2026-000123")
        );
        assert_eq!(
            number_in_subject("Fwd: [ext] [T-2026-7] x").as_deref(),
            Some("T-2026-7")
        );
        assert_eq!(number_in_subject("[T-] [T-abc] no"), None);
        let t = Uuid::now_v7();
        assert_eq!(
            ticket_of_mail_id(&format!("ticket.{t}.{}@guanxi", Uuid::now_v7())),
            Some(t)
        );
        assert_eq!(ticket_of_mail_id("CAF=abc@mail.gmail.com"), None);
    }

    #[test]
    fn automatic_mail_is_recognised() {
        let auto = b"From: a@b.cn\r\nAuto-Submitted: auto-replied\r\nSubject: x\r\n\r\nbody";
        let m = MessageParser::default().parse(&auto[..]).expect("parses");
        assert_eq!(automatic(&m), Some("auto_submitted"));
        let human = b"From: a@b.cn\r\nAuto-Submitted: no\r\nSubject: x\r\n\r\nbody";
        let m = MessageParser::default().parse(&human[..]).expect("parses");
        assert_eq!(automatic(&m), None);
        let bulk = b"From: a@b.cn\r\nPrecedence: bulk\r\n\r\nbody";
        let m = MessageParser::default().parse(&bulk[..]).expect("parses");
        assert_eq!(automatic(&m), Some("precedence"));
    }
}
