//! A ticket's attachments: files (the platform's [`guanxi_platform::files`]: type decided by the
//! server, at most 8 MiB each) uploaded by an agent or by the customer on the portal, or carried
//! by a mail that opened or continued the ticket.
//!
//! An agent's upload waits, unsent, until a reply or a note carries it (`attachment_ids` of the
//! message); a public reply mails it to the customer. The customer sees what they sent and what
//! a public reply sent them (`public`) — never what went with an internal note. What was sent
//! stays: only an unsent upload can be removed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::Result;
use guanxi_platform::files::{self, FileMeta};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, Ctx, Error};
use guanxi_records::record;

use crate::tickets::{self, Ticket};

/// The most files one ticket keeps.
pub const MAX_PER_TICKET: i64 = 200;
/// The most files one message carries.
pub const MAX_PER_MESSAGE: usize = 10;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Attachment {
    /// The file's id (download it at `…/attachments/{id}`).
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// The message that sent it; none for an agent's upload not sent yet, and for what came
    /// with the request that opened the ticket.
    pub message_id: Option<Uuid>,
    /// Whether the customer sees it.
    pub public: bool,
    /// `staff`, `portal` (the customer uploaded it) or `mail` (it came with their mail).
    pub origin: String,
    /// The agent's or the customer's name.
    pub added_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT f.id, f.name, f.content_type, f.size, a.message_id, a.public,
    CASE WHEN a.user_id IS NOT NULL THEN 'staff' WHEN a.portal_user_id IS NOT NULL THEN 'portal'
         ELSE 'mail' END AS origin,
    COALESCE(u.name, c.name) AS added_by, a.created_at
    FROM ticket_attachments a
    JOIN files f ON f.tenant_id = a.tenant_id AND f.id = a.file_id
    LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id
    LEFT JOIN portal_users p ON p.tenant_id = a.tenant_id AND p.id = a.portal_user_id
    LEFT JOIN contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id";

/// Who adds a file.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// An agent (the context's user); not public until a public reply sends it.
    Staff,
    /// The customer on the portal (public).
    Portal(Uuid),
    /// A mail from the customer (public), with the message it continued, if any.
    Mail(Option<Uuid>),
}

/// The ticket's files, oldest first; `public_only` for what its customer sees.
pub async fn of_ticket<'a>(
    conn: impl Into<guanxi_platform::db::Conn<'a>>,
    tenant: Uuid,
    ticket: Uuid,
    public_only: bool,
) -> Result<Vec<Attachment>> {
    let mut conn = conn.into();
    conn.fetch_all(
        &format!(
            "{SELECT} WHERE a.tenant_id = $1 AND a.ticket_id = $2 AND (a.public = $3 OR $4)
             ORDER BY a.created_at, f.id LIMIT {MAX_PER_TICKET}"
        ),
        args![tenant, ticket, true, !public_only],
    )
    .await
}

/// A ticket's files, for someone who may read it.
pub async fn list(db: &Db, ctx: &Ctx, ticket: Uuid) -> Result<Vec<Attachment>> {
    tickets::get(db, ctx, ticket).await?;
    of_ticket(db, ctx.tenant_id, ticket, false).await
}

/// Keeps a file on a ticket inside the caller's transaction (the ticket already checked).
pub async fn add_in(
    tx: &mut Tx,
    ctx: &Ctx,
    ticket: Uuid,
    origin: Origin,
    name: &str,
    bytes: &[u8],
) -> Result<Attachment> {
    let n: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM ticket_attachments WHERE tenant_id = $1 AND ticket_id = $2",
            args![ctx.tenant_id, ticket],
        )
        .await?;
    if n >= MAX_PER_TICKET {
        return Err(Error::field("file", "too_many"));
    }
    let meta = files::store(tx, ctx.tenant_id, ctx.user_id, "file", name, bytes).await?;
    let (message, public, user, portal_user) = match origin {
        Origin::Staff => (None, false, ctx.user_id, None),
        Origin::Portal(p) => (None, true, None, Some(p)),
        Origin::Mail(m) => (m, true, None, None),
    };
    tx.execute(
        "INSERT INTO ticket_attachments (tenant_id, ticket_id, file_id, message_id, public, user_id,
            portal_user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![ctx.tenant_id, ticket, meta.id, message, public, user, portal_user, now()],
    )
    .await?;
    tx.fetch_one(
        &format!("{SELECT} WHERE a.tenant_id = $1 AND a.file_id = $2"),
        args![ctx.tenant_id, meta.id],
    )
    .await
}

/// An agent uploads a file to a ticket they may edit (sent with the next reply or note that
/// names it).
pub async fn add(
    db: &Db,
    ctx: &Ctx,
    ticket: Uuid,
    name: Option<&str>,
    bytes: &[u8],
) -> Result<Attachment> {
    ctx.require("tickets", Action::Update)?;
    let mut tx = db.begin().await?;
    let t: Ticket = record::load_for(&mut tx, ctx, ticket, Action::Update).await?;
    writable(&t)?;
    let name = named(name)?;
    let a = add_in(&mut tx, ctx, ticket, Origin::Staff, name, bytes).await?;
    audit::record(
        &mut tx,
        ctx,
        "attach",
        "tickets",
        Some(ticket),
        None,
        Some(&serde_json::json!({"file_id": a.id, "name": a.name, "size": a.size})),
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}

/// An upload's name, required (its extension decides its type).
pub fn named(name: Option<&str>) -> Result<&str> {
    name.filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Error::field("name", "required"))
}

fn writable(t: &Ticket) -> Result<()> {
    if t.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the ticket is in the trash; restore it first".into(),
        ));
    }
    if t.merged_into_id.is_some() {
        return Err(Error::Conflict(
            "the ticket was merged into another; write there".into(),
        ));
    }
    Ok(())
}

/// A file of a ticket the caller may read, with its bytes.
pub async fn open(db: &Db, ctx: &Ctx, ticket: Uuid, file: Uuid) -> Result<(FileMeta, Vec<u8>)> {
    tickets::get(db, ctx, ticket).await?;
    open_on(db, ctx.tenant_id, ticket, file, false).await
}

/// A file of a ticket (the ticket's visibility checked by the caller); `public_only` for the
/// customer.
pub async fn open_on(
    db: &Db,
    tenant: Uuid,
    ticket: Uuid,
    file: Uuid,
    public_only: bool,
) -> Result<(FileMeta, Vec<u8>)> {
    let on: Option<(Uuid,)> = db
        .fetch_optional(
            "SELECT file_id FROM ticket_attachments
             WHERE tenant_id = $1 AND ticket_id = $2 AND file_id = $3 AND (public = $4 OR $5)",
            args![tenant, ticket, file, true, !public_only],
        )
        .await?;
    if on.is_none() {
        return Err(Error::NotFound);
    }
    files::load(db, tenant, file).await?.ok_or(Error::NotFound)
}

/// Removes an agent's upload that no message has sent (what was sent, or came from the
/// customer, is kept: 409).
pub async fn remove(db: &Db, ctx: &Ctx, ticket: Uuid, file: Uuid) -> Result<()> {
    ctx.require("tickets", Action::Update)?;
    let mut tx = db.begin().await?;
    let _: Ticket = record::load_for(&mut tx, ctx, ticket, Action::Update).await?;
    let row: Option<(Option<Uuid>, Option<Uuid>, String)> = tx
        .fetch_optional(
            "SELECT a.message_id, a.user_id, f.name FROM ticket_attachments a
             JOIN files f ON f.tenant_id = a.tenant_id AND f.id = a.file_id
             WHERE a.tenant_id = $1 AND a.ticket_id = $2 AND a.file_id = $3",
            args![ctx.tenant_id, ticket, file],
        )
        .await?;
    match row {
        None => return Err(Error::NotFound),
        Some((Some(_), _, _)) | Some((None, None, _)) => {
            return Err(Error::Conflict(
                "a file that was sent, or came from the customer, is kept".into(),
            ))
        }
        Some((None, Some(_), name)) => {
            tx.execute(
                "DELETE FROM ticket_attachments WHERE tenant_id = $1 AND ticket_id = $2 AND file_id = $3",
                args![ctx.tenant_id, ticket, file],
            )
            .await?;
            tx.execute(
                "DELETE FROM files WHERE tenant_id = $1 AND id = $2",
                args![ctx.tenant_id, file],
            )
            .await?;
            audit::record(
                &mut tx,
                ctx,
                "detach",
                "tickets",
                Some(ticket),
                Some(&serde_json::json!({"file_id": file, "name": name})),
                None,
            )
            .await?;
        }
    }
    tx.commit().await
}

/// Hands the waiting uploads `ids` to a new message: an agent's (a reply makes them public)
/// or, for the customer's words, what they uploaded on the portal. Each must be waiting on
/// this ticket (else `attachment_ids: unknown`).
pub async fn send_with(
    tx: &mut Tx,
    tenant: Uuid,
    ticket: Uuid,
    message: Uuid,
    kind: &str,
    ids: &[Uuid],
) -> Result<()> {
    let from = if kind == "customer" {
        "portal_user_id"
    } else {
        "user_id"
    };
    for id in ids {
        let n = tx
            .execute(
                &format!(
                    "UPDATE ticket_attachments SET message_id = $1, public = $2
                     WHERE tenant_id = $3 AND ticket_id = $4 AND file_id = $5
                       AND message_id IS NULL AND {from} IS NOT NULL"
                ),
                args![message, kind != "note", tenant, ticket, *id],
            )
            .await?;
        if n != 1 {
            return Err(Error::field("attachment_ids", "unknown"));
        }
    }
    Ok(())
}

/// The files a message carries (what its mail attaches).
pub async fn of_message(tx: &mut Tx, tenant: Uuid, message: Uuid) -> Result<Vec<Uuid>> {
    let rows: Vec<(Uuid,)> = tx
        .fetch_all(
            "SELECT a.file_id FROM ticket_attachments a
             JOIN files f ON f.tenant_id = a.tenant_id AND f.id = a.file_id
             WHERE a.tenant_id = $1 AND a.message_id = $2 ORDER BY f.created_at, f.id",
            args![tenant, message],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
