//! Outgoing email over SMTP (lettre). Only the job worker calls this; handlers queue emails in
//! the outbox instead of sending them.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use uuid::Uuid;

use crate::jobs::Email;

#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl Mailer {
    /// `smtp_url`: `smtp://[user:pass@]host[:port]`. `None` keeps mail in the outbox.
    pub fn new(smtp_url: Option<&str>, from: &str) -> anyhow::Result<Mailer> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from {from:?}: {e}"))?;
        let transport = match smtp_url {
            Some(u) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(u)
                    .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
                    .timeout(Some(Duration::from_secs(15)))
                    .build(),
            ),
            None => None,
        };
        Ok(Mailer { transport, from })
    }

    pub fn configured(&self) -> bool {
        self.transport.is_some()
    }

    /// Sends one email. The Message-ID is derived from the job id, so if a crash after sending
    /// makes the job run again, receiving servers and clients can recognise the duplicate.
    /// Returns the message as sent.
    pub async fn send(
        &self,
        job: Uuid,
        email: &Email,
        files: &[crate::files::Attachment],
    ) -> Result<Vec<u8>, String> {
        let transport = self.transport.as_ref().ok_or("SMTP is not configured")?;
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| format!("recipient {:?}: {e}", email.to))?;
        let id = match &email.message_id {
            Some(id) => format!("<{id}>"),
            None => format!("<{job}@guanxi>"),
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(id));
        if let Some(r) = &email.reply_to {
            let r: Mailbox = r.parse().map_err(|e| format!("reply-to {r:?}: {e}"))?;
            builder = builder.reply_to(r);
        }
        if let Some(parent) = &email.in_reply_to {
            builder = builder
                .in_reply_to(format!("<{parent}>"))
                .references(format!("<{parent}>"));
        }
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::Base64)
            .body(email.text.clone());
        let msg = if files.is_empty() {
            builder.singlepart(text)
        } else {
            let mut mixed = MultiPart::mixed().singlepart(text);
            for f in files {
                let ty = ContentType::parse(&f.meta.content_type).unwrap_or(
                    ContentType::parse("application/octet-stream").map_err(|e| e.to_string())?,
                );
                mixed =
                    mixed.singlepart(Attachment::new(f.meta.name.clone()).body(f.data.clone(), ty));
            }
            builder.multipart(mixed)
        }
        .map_err(|e| e.to_string())?;
        let raw = msg.formatted();
        transport
            .send(msg)
            .await
            .map(|_| raw)
            .map_err(|e| e.to_string())
    }
}
