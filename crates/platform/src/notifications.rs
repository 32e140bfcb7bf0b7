//! Notifications: what a user is told — a record handed to them, a colleague's book passed on,
//! later SLA warnings and escalations, pool returns, approvals and ticket events. Each is a row
//! under the user's bell until read; the message is the kind's, in the reader's language, filled
//! from `params` when shown (so one notification reads right in whatever language its reader
//! switches to). Per user and kind, an email goes out too (on unless turned off): a
//! `notification_email` job queued with the notification, whose handler (in the web crate,
//! where the messages are) writes the email in the recipient's language into the outbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::args;
use crate::ctx::Ctx;
use crate::db::{Db, Sql, Tx};
use crate::error::{Error, Result};
use crate::jobs;
use crate::page::{Page, PageReq};
use crate::time::{new_id, now};

/// The job that turns a notification into an email.
pub const KIND_EMAIL_JOB: &str = "notification_email";

/// The kinds of notification, each with whether it is emailed when the user has not said.
pub const KINDS: &[(&str, bool)] = &[
    // A record (account, contact) was handed to you by someone else.
    ("assigned", true),
    // A colleague's book was transferred to you (accounts, contacts and open tasks counted).
    ("book_transferred", true),
    // A new lead was given to you by the assignment rules.
    ("lead_assigned", true),
    // Leads you held went back to the pool by its rules.
    ("pool_returned", true),
    // A manager gave you leads from the pool.
    ("pool_assigned", true),
    // Customers (accounts) you held went back to their pool by its rules.
    ("accounts_returned", true),
    // A manager gave you customers from the pool.
    ("accounts_assigned", true),
    // A new lead of yours is near its first-response deadline.
    ("sla_warning", true),
    // A lead of your team passed its first-response deadline unanswered.
    ("sla_breached", true),
    // A public form's owner has left: what it opens comes to you until it has a new owner.
    ("form_owner_left", true),
    // An import gave you new leads to follow up (one notice an import).
    ("leads_imported", true),
    // Someone asks for your approval (a quote over the discount limit…).
    ("approval_requested", true),
    // Your request for approval was approved, rejected or sent back.
    ("approval_decided", true),
    // A colleague made you a collaborator on a record of theirs (a deal).
    ("shared_with_you", true),
    // A ticket was given to you.
    ("ticket_assigned", true),
    // The customer wrote on a ticket of yours.
    ("ticket_customer_replied", true),
    // A ticket you follow: the customer wrote, a reply went out, its status moved.
    ("ticket_followed", true),
    // A ticket of yours is near an SLA target.
    ("ticket_sla_warning", true),
    // A ticket of yours or your team's missed an SLA target.
    ("ticket_sla_breached", true),
    // A 4V evaluation changed the grade of customers you own (how many up, how many down).
    ("grades_changed", false),
];

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Notification {
    pub id: Uuid,
    /// What happened (`assigned`, `book_transferred`, …).
    pub kind: String,
    /// The facts the message is filled from (`name`, `by`, counts…).
    #[schema(value_type = Object)]
    pub params: sqlx::types::Json<serde_json::Value>,
    /// Where in the app it leads (a same-site path).
    pub link: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<Uuid>,
    /// Who caused it.
    pub actor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// What a module tells a user.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub kind: &'static str,
    pub params: serde_json::Value,
    pub link: Option<String>,
    pub entity: Option<&'a str>,
    pub entity_id: Option<Uuid>,
}

const COLS: &str = "id, kind, params, link, entity, entity_id, actor_id, created_at, read_at";

/// Tells `user_id` about `notice`, inside the caller's transaction (so a rolled-back change
/// notifies no one). Nobody is told about what they did themselves. Returns the notification's
/// id when one was made.
pub async fn notify(
    tx: &mut Tx,
    ctx: &Ctx,
    user_id: Uuid,
    notice: Notice<'_>,
) -> Result<Option<Uuid>> {
    if ctx.user_id == Some(user_id) {
        return Ok(None);
    }
    let id = new_id();
    tx.execute(
        "INSERT INTO notifications (tenant_id, id, user_id, kind, params, link, entity, entity_id, actor_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        args![ctx.tenant_id, id, user_id, notice.kind, notice.params, notice.link, notice.entity, notice.entity_id, ctx.user_id, now()],
    )
    .await?;
    let email: Option<(bool,)> = tx
        .fetch_optional(
            "SELECT email FROM notification_prefs WHERE tenant_id = $1 AND user_id = $2 AND kind = $3",
            args![ctx.tenant_id, user_id, notice.kind],
        )
        .await?;
    let default = KINDS
        .iter()
        .find(|k| k.0 == notice.kind)
        .is_some_and(|k| k.1);
    if email.map_or(default, |e| e.0) {
        jobs::enqueue(
            tx,
            ctx.tenant_id,
            KIND_EMAIL_JOB,
            &serde_json::json!({ "notification_id": id }),
        )
        .await?;
    }
    Ok(Some(id))
}

/// The caller's notifications, newest first; `unread` keeps the unread ones.
pub async fn list(
    db: &Db,
    ctx: &Ctx,
    unread: bool,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<Page<Notification>> {
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let page = PageReq {
        limit,
        cursor,
        sort: None,
    };
    let limit = page.limit()?;
    let mut q = Sql::new(&format!(
        "SELECT {COLS} FROM notifications WHERE tenant_id = "
    ));
    q.bind(ctx.tenant_id).push(" AND user_id = ").bind(user);
    if unread {
        q.push(" AND read_at IS NULL");
    }
    if let Some(c) = page.cursor_id()? {
        q.push(" AND id < ").bind(c);
    }
    q.push(" ORDER BY id DESC LIMIT ").bind(limit + 1);
    let rows: Vec<Notification> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |n| n.id.to_string()))
}

/// How many of the caller's notifications are unread (the bell's number).
pub async fn unread_count(db: &Db, ctx: &Ctx) -> Result<i64> {
    let Some(user) = ctx.user_id else {
        return Ok(0);
    };
    db.scalar(
        "SELECT COUNT(*) FROM notifications WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL",
        args![ctx.tenant_id, user],
    )
    .await
}

/// Marks the caller's notifications read: those in `ids` (others' ids change nothing), or all.
/// Returns how many changed.
pub async fn mark_read(db: &Db, ctx: &Ctx, ids: Option<&[Uuid]>) -> Result<u64> {
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let mut q = Sql::new("UPDATE notifications SET read_at = ");
    q.bind(now())
        .push(" WHERE tenant_id = ")
        .bind(ctx.tenant_id)
        .push(" AND user_id = ")
        .bind(user)
        .push(" AND read_at IS NULL");
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(0);
        }
        if ids.len() > 500 {
            return Err(Error::field("ids", "too_many"));
        }
        q.push(" AND id IN ").bind_list(ids.iter().copied());
    }
    db.execute(&q.sql, q.args).await
}

/// Opens one of the caller's notifications: marks it read and answers where it leads (none
/// for another user's, or one without a link).
pub async fn open(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Option<String>> {
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    mark_read(db, ctx, Some(&[id])).await?;
    let link: Option<(Option<String>,)> = db
        .fetch_optional(
            "SELECT link FROM notifications WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
            args![ctx.tenant_id, user, id],
        )
        .await?;
    Ok(link.and_then(|l| l.0))
}

/// One kind's delivery for the caller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preference {
    pub kind: String,
    /// Also send an email (the bell always shows it).
    pub email: bool,
}

/// Every kind with the caller's choice (or its default).
pub async fn preferences(db: &Db, ctx: &Ctx) -> Result<Vec<Preference>> {
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let set: Vec<(String, bool)> = db
        .fetch_all(
            "SELECT kind, email FROM notification_prefs WHERE tenant_id = $1 AND user_id = $2",
            args![ctx.tenant_id, user],
        )
        .await?;
    Ok(KINDS
        .iter()
        .map(|(kind, default)| Preference {
            kind: (*kind).to_owned(),
            email: set.iter().find(|s| s.0 == *kind).map_or(*default, |s| s.1),
        })
        .collect())
}

/// Sets the caller's choices for the kinds named (unknown kinds are refused by name).
pub async fn set_preferences(db: &Db, ctx: &Ctx, prefs: &[Preference]) -> Result<Vec<Preference>> {
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let mut errs = crate::error::Errors::default();
    for (i, p) in prefs.iter().enumerate() {
        if !KINDS.iter().any(|k| k.0 == p.kind) {
            errs.add(&format!("{i}.kind"), "unknown");
        }
    }
    errs.finish()?;
    let mut tx = db.begin().await?;
    for p in prefs {
        tx.execute(
            "INSERT INTO notification_prefs (tenant_id, user_id, kind, email) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, user_id, kind) DO UPDATE SET email = excluded.email",
            args![ctx.tenant_id, user, p.kind.as_str(), p.email],
        )
        .await?;
    }
    tx.commit().await?;
    preferences(db, ctx).await
}

/// What the email job needs: the notification and its reader's address, name and language.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ToEmail {
    pub kind: String,
    pub params: sqlx::types::Json<serde_json::Value>,
    pub link: Option<String>,
    pub email: String,
    pub locale: String,
    pub active: bool,
    pub user_id: Uuid,
    pub entity: Option<String>,
    pub entity_id: Option<Uuid>,
}

/// The notification `id` with its reader's address and language (for the email job).
pub async fn for_email(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Option<ToEmail>> {
    tx.fetch_optional(
        "SELECT n.kind, n.params, n.link, u.email, COALESCE(u.locale, t.locale) AS locale, u.active,
             n.user_id, n.entity, n.entity_id
         FROM notifications n JOIN users u ON u.tenant_id = n.tenant_id AND u.id = n.user_id
         JOIN tenants t ON t.id = n.tenant_id
         WHERE n.tenant_id = $1 AND n.id = $2",
        args![tenant_id, id],
    )
    .await
}
