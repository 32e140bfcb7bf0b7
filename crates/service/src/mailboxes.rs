//! Support mailboxes: the email channel's intake, with no silent loss.
//!
//! A mailbox is fetched over IMAP by [`work`] (the server's mail fetcher, every `poll_seconds`,
//! and `guanxi mail fetch`). The fetch holds a short lease on the mailbox, renewed with every
//! stored batch, so two nodes never fetch one mailbox and a fetcher that was overtaken stops
//! before it writes. Each folder has a cursor — the UIDVALIDITY it was read under and the last
//! UID stored — that advances in the same transaction that stores the batch's messages whole
//! (`inbound_mail`): a fetch killed at any point is re-run without doubling or losing one. When
//! the server renumbers the folder (a new UIDVALIDITY) the folder is re-read from the last
//! stored message's date and what is already here (same Message-ID, or the same bytes) is
//! skipped. A message above [`MAX_MESSAGE_BYTES`] is stored by its header and says so.
//!
//! Stored messages are then turned into tickets by [`crate::inbound`]; one that cannot be used
//! stays as a dead letter with its reason and can be re-run. Each mailbox shows its health:
//! last success, last error, backlog left on the server, and its dead letters.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};

use crate::imap::{self, Security, Server};

/// A message larger than this is stored by its header only (it stays on the server).
pub const MAX_MESSAGE_BYTES: u32 = 25 * 1024 * 1024;
/// Bytes fetched in one round trip and stored in one transaction.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Messages stored in one transaction.
const BATCH_MESSAGES: usize = 100;
/// Messages taken from the server in one run; the rest is the backlog, taken next run.
pub const RUN_MESSAGES: usize = 2_000;
/// How long a fetcher's lease lasts without a stored batch renewing it.
const LEASE_SECONDS: i64 = 120;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Mailbox {
    pub id: Uuid,
    pub name: String,
    /// The support address customers write to; replies ask to be answered there.
    pub address: String,
    pub host: String,
    pub port: i64,
    /// `tls` (implicit, usually port 993), `starttls` (usually 143) or `plain`.
    pub security: String,
    /// A private CA (PEM) trusted for this server besides the public roots.
    pub ca_pem: Option<String>,
    pub username: String,
    /// The folder read (default `INBOX`).
    pub folder: String,
    /// When set, a copy of each reply sent is stored there.
    pub sent_folder: Option<String>,
    /// How often it is fetched (15 s – 1 day).
    pub poll_seconds: i64,
    pub enabled: bool,
    /// The category its new tickets get (routing by category follows).
    pub category: Option<String>,
    /// Who owns the contacts its mail makes (a sender not yet known); default the creator.
    pub owner_id: Option<Uuid>,
    pub next_fetch_at: DateTime<Utc>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Messages waiting on the server after the last fetch.
    pub backlog: i64,
    pub fetched_total: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Create or update a mailbox; on update absent fields stay.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub host: Option<String>,
    /// Default 993 for `tls`, else 143.
    pub port: Option<i64>,
    /// Default `tls`.
    pub security: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub ca_pem: Option<Option<String>>,
    pub username: Option<String>,
    /// Write-only: never returned.
    pub password: Option<String>,
    pub folder: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub sent_folder: Option<Option<String>>,
    pub poll_seconds: Option<i64>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
}

const COLS: &str = "id, name, address, host, port, security, ca_pem, username, folder, sent_folder,
    poll_seconds, enabled, category, owner_id, next_fetch_at, last_success_at, last_error, last_error_at,
    backlog, fetched_total, created_at, updated_at, version";

pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Mailbox>> {
    ctx.require("mailboxes", Action::Read)?;
    db.fetch_all(
        &format!("SELECT {COLS} FROM mailboxes WHERE tenant_id = $1 ORDER BY name"),
        args![ctx.tenant_id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Mailbox> {
    ctx.require("mailboxes", Action::Read)?;
    db.fetch_one(
        &format!("SELECT {COLS} FROM mailboxes WHERE tenant_id = $1 AND id = $2"),
        args![ctx.tenant_id, id],
    )
    .await
}

fn folder_name(errs: &mut Errors, field: &str, raw: &str) -> Option<String> {
    let f = raw.trim();
    if f.is_empty() {
        errs.add(field, "required");
        None
    } else if f.chars().count() > 200 || f.chars().any(|c| c.is_control() || c == '"') {
        errs.add(field, "invalid");
        None
    } else {
        Some(f.to_owned())
    }
}

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &MailboxInput,
    m: &mut Mailbox,
    password: &mut String,
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    if let Some(o) = input.owner_id {
        m.owner_id = o;
    }
    if let Some(o) = m.owner_id {
        let known: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
                args![ctx.tenant_id, o, true],
            )
            .await?;
        if known.is_none() {
            errs.add("owner_id", "unknown");
        }
    }
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => m.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    match &input.address {
        Some(a) => match validate::email(a) {
            Ok(a) => m.address = a,
            Err(c) => errs.add("address", c),
        },
        None if creating => errs.add("address", "required"),
        None => {}
    }
    match &input.host {
        Some(h) => {
            let h = h.trim();
            if h.is_empty() {
                errs.add("host", "required");
            } else if h.len() > 253
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            {
                errs.add("host", "invalid");
            } else {
                m.host = h.to_ascii_lowercase();
            }
        }
        None if creating => errs.add("host", "required"),
        None => {}
    }
    if let Some(s) = &input.security {
        match Security::parse(s.trim()) {
            Some(_) => m.security = s.trim().to_owned(),
            None => errs.add("security", "invalid"),
        }
    }
    match input.port {
        Some(p) if (1..=65535).contains(&p) => m.port = p,
        Some(_) => errs.add("port", "out_of_range"),
        None if creating => m.port = if m.security == "tls" { 993 } else { 143 },
        None => {}
    }
    if let Some(c) = &input.ca_pem {
        m.ca_pem = match c.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) if c.len() > 100_000 => {
                errs.add("ca_pem", "too_long");
                None
            }
            Some(c) if !c.contains("-----BEGIN CERTIFICATE-----") => {
                errs.add("ca_pem", "invalid");
                None
            }
            Some(c) => Some(c.to_owned()),
            None => None,
        };
    }
    match &input.username {
        Some(u) => match validate::name(u) {
            Ok(u) => m.username = u,
            Err(c) => errs.add("username", c),
        },
        None if creating => errs.add("username", "required"),
        None => {}
    }
    match &input.password {
        Some(p) if p.is_empty() => errs.add("password", "required"),
        Some(p) if p.len() > 1000 || p.chars().any(char::is_control) => {
            errs.add("password", "invalid")
        }
        Some(p) => *password = p.clone(),
        None if creating => errs.add("password", "required"),
        None => {}
    }
    if let Some(f) = &input.folder {
        if let Some(f) = folder_name(&mut errs, "folder", f) {
            m.folder = f;
        }
    }
    if let Some(f) = &input.sent_folder {
        m.sent_folder = match f.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(f) => folder_name(&mut errs, "sent_folder", f),
            None => None,
        };
    }
    if let Some(p) = input.poll_seconds {
        if (15..=86_400).contains(&p) {
            m.poll_seconds = p;
        } else {
            errs.add("poll_seconds", "out_of_range");
        }
    }
    if let Some(e) = input.enabled {
        m.enabled = e;
    }
    if let Some(c) = &input.category {
        match c.as_deref().map(|c| validate::text(c, 50)) {
            Some(Ok(c)) => m.category = c,
            Some(Err(e)) => errs.add("category", e),
            None => m.category = None,
        }
    }
    errs.finish()
}

fn taken(e: Error) -> Error {
    match e {
        Error::Conflict(_) => Error::field("address", "taken"),
        e => e,
    }
}

pub async fn create(db: &Db, ctx: &Ctx, input: MailboxInput) -> Result<Mailbox> {
    ctx.require("mailboxes", Action::Create)?;
    let t = now();
    let mut m = Mailbox {
        id: new_id(),
        name: String::new(),
        address: String::new(),
        host: String::new(),
        port: 993,
        security: "tls".into(),
        ca_pem: None,
        username: String::new(),
        folder: "INBOX".into(),
        sent_folder: None,
        poll_seconds: 60,
        enabled: true,
        category: None,
        owner_id: ctx.user_id,
        next_fetch_at: t,
        last_success_at: None,
        last_error: None,
        last_error_at: None,
        backlog: 0,
        fetched_total: 0,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let mut password = String::new();
    let mut tx = db.begin().await?;
    apply(&mut tx, ctx, &input, &mut m, &mut password, true).await?;
    tx.execute(
        "INSERT INTO mailboxes (tenant_id, id, name, address, host, port, security, ca_pem,
             username, password, folder, sent_folder, poll_seconds, enabled, category,
             next_fetch_at, created_at, updated_at, owner_id, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 1)",
        args![
            ctx.tenant_id,
            m.id,
            m.name.as_str(),
            m.address.as_str(),
            m.host.as_str(),
            m.port,
            m.security.as_str(),
            m.ca_pem.clone(),
            m.username.as_str(),
            password.as_str(),
            m.folder.as_str(),
            m.sent_folder.clone(),
            m.poll_seconds,
            m.enabled,
            m.category.clone(),
            t,
            t,
            t,
            m.owner_id
        ],
    )
    .await
    .map_err(taken)?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "mailboxes",
        Some(m.id),
        None,
        Some(&m),
    )
    .await?;
    tx.commit().await?;
    Ok(m)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: MailboxInput,
) -> Result<Mailbox> {
    ctx.require("mailboxes", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before: Mailbox = tx
        .fetch_one(
            &format!("SELECT {COLS} FROM mailboxes WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    version::check(expected, before.version)?;
    let mut m = before.clone();
    let mut password = String::new();
    apply(&mut tx, ctx, &input, &mut m, &mut password, false).await?;
    // A changed server or folder is fetched at once; so is a mailbox switched back on.
    let next = if m.enabled && !before.enabled
        || m.host != before.host
        || m.folder != before.folder
        || !password.is_empty()
    {
        now()
    } else {
        before.next_fetch_at
    };
    version::update(
        &mut tx,
        version::Row {
            table: "mailboxes",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, address = $2, host = $3, port = $4, security = $5, ca_pem = $6,
         username = $7, password = CASE WHEN $8 = '' THEN password ELSE $8 END, folder = $9,
         sent_folder = $10, poll_seconds = $11, enabled = $12, category = $13,
         next_fetch_at = $14, updated_at = $15, owner_id = $16",
        args![
            m.name.as_str(),
            m.address.as_str(),
            m.host.as_str(),
            m.port,
            m.security.as_str(),
            m.ca_pem.clone(),
            m.username.as_str(),
            password.as_str(),
            m.folder.as_str(),
            m.sent_folder.clone(),
            m.poll_seconds,
            m.enabled,
            m.category.clone(),
            next,
            now(),
            m.owner_id
        ],
    )
    .await
    .map_err(taken)?;
    let after: Mailbox = tx
        .fetch_one(
            &format!("SELECT {COLS} FROM mailboxes WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "mailboxes",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Asks for a fetch now (the fetcher is woken by the caller). A switched-off mailbox is
/// refused (`enabled: disabled`), not left waiting for a fetch that never comes.
pub async fn fetch_now(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Mailbox> {
    ctx.require("mailboxes", Action::Read)?;
    if !get(db, ctx, id).await?.enabled {
        return Err(Error::field("enabled", "disabled"));
    }
    let n = db
        .execute(
            "UPDATE mailboxes SET next_fetch_at = $1 WHERE tenant_id = $2 AND id = $3",
            args![now(), ctx.tenant_id, id],
        )
        .await?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    get(db, ctx, id).await
}

/// What a connection test found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Probe {
    pub ok: bool,
    /// Messages in the folder.
    pub messages: Option<u32>,
    pub uidvalidity: Option<u32>,
    pub error: Option<String>,
}

/// Logs in and opens the folder, read-only, and says what it found.
pub async fn probe(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Probe> {
    ctx.require("mailboxes", Action::Read)?;
    let (server, folder) = server_of(db, ctx.tenant_id, id).await?;
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut s = imap::connect(&server).await?;
        let mb = imap::step("EXAMINE", s.examine(&folder)).await?;
        imap::logout(s).await;
        Ok::<_, imap::ImapError>(mb)
    })
    .await
    .unwrap_or_else(|_| Err(imap::ImapError("no answer in 20s".into())));
    Ok(match r {
        Ok(mb) => Probe {
            ok: true,
            messages: Some(mb.exists),
            uidvalidity: mb.uid_validity,
            error: None,
        },
        Err(e) => Probe {
            ok: false,
            messages: None,
            uidvalidity: None,
            error: Some(e.0),
        },
    })
}

async fn server_of(db: &Db, tenant: Uuid, id: Uuid) -> Result<(Server, String)> {
    let mut tx = db.begin().await?;
    let found = server_in(&mut tx, tenant, id).await?;
    tx.commit().await?;
    found
        .map(|(server, folder, _)| (server, folder))
        .ok_or(Error::NotFound)
}

/// A mailbox's health at a glance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub enabled: bool,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// `ok`, `failing` (the last fetch failed), `never` (not fetched yet) or `disabled`.
    pub state: String,
    /// Messages left on the server after the last fetch.
    pub backlog: i64,
    /// Stored, not yet turned into tickets.
    pub pending: i64,
    /// Dead letters waiting for a re-run.
    pub dead: i64,
    /// Auto-replies and loops set aside in the last 24 hours.
    pub ignored_last_day: i64,
    pub fetched_total: i64,
    pub next_fetch_at: DateTime<Utc>,
}

pub async fn health(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Health> {
    let m = get(db, ctx, id).await?;
    let count = |status: &'static str, since: Option<DateTime<Utc>>| {
        db.scalar::<i64>(
            "SELECT COUNT(*) FROM inbound_mail WHERE tenant_id = $1 AND mailbox_id = $2
              AND status = $3 AND ($4 IS NULL OR fetched_at >= $4)",
            args![ctx.tenant_id, id, status, since],
        )
    };
    let pending = count("pending", None).await?;
    let dead = count("dead", None).await?;
    let ignored = count("ignored", Some(now() - Duration::days(1))).await?;
    let failing = match (m.last_error_at, m.last_success_at) {
        (Some(e), Some(s)) => e > s,
        (Some(_), None) => true,
        _ => false,
    };
    let state = if !m.enabled {
        "disabled"
    } else if failing {
        "failing"
    } else if m.last_success_at.is_none() {
        "never"
    } else {
        "ok"
    };
    Ok(Health {
        enabled: m.enabled,
        last_success_at: m.last_success_at,
        last_error: m.last_error,
        last_error_at: m.last_error_at,
        state: state.into(),
        backlog: m.backlog,
        pending,
        dead,
        ignored_last_day: ignored,
        fetched_total: m.fetched_total,
        next_fetch_at: m.next_fetch_at,
    })
}

/// A fetched message as the mailbox's list shows it (the bytes are downloaded apart).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct InboundMail {
    pub id: Uuid,
    pub mailbox_id: Uuid,
    pub folder: String,
    pub uid: i64,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub size: i64,
    /// Only its header was fetched (it was above the size limit).
    pub truncated: bool,
    /// `pending`, `created`, `appended`, `duplicate`, `ignored` or `dead`.
    pub status: String,
    pub reason: Option<String>,
    pub ticket_id: Option<Uuid>,
    pub internal_date: Option<DateTime<Utc>>,
    pub fetched_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MailFilter {
    /// Several comma-separated; default `dead,ignored`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub const MAIL_STATUSES: &[&str] = &[
    "pending",
    "created",
    "appended",
    "duplicate",
    "ignored",
    "dead",
];

const MAIL_COLS: &str = "id, mailbox_id, folder, uid, sender, subject, size, truncated, status,
    reason, ticket_id, internal_date, fetched_at, processed_at";

/// The mailbox's fetched messages, newest first (by default its dead letters and the mail set
/// aside as auto-replies or loops).
pub async fn mails(db: &Db, ctx: &Ctx, id: Uuid, f: &MailFilter) -> Result<Page<InboundMail>> {
    get(db, ctx, id).await?;
    let mut errs = Errors::default();
    let statuses: Vec<String> = f
        .status
        .as_deref()
        .unwrap_or("dead,ignored")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(MAIL_STATUSES.len())
        .map(|s| {
            if !MAIL_STATUSES.contains(&s) {
                errs.add("status", "invalid");
            }
            s.to_owned()
        })
        .collect();
    errs.finish()?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: None,
    };
    let limit = page.limit()?;
    let mut q = Sql::new(&format!(
        "SELECT {MAIL_COLS} FROM inbound_mail WHERE tenant_id = "
    ));
    q.bind(ctx.tenant_id);
    q.push(" AND mailbox_id = ");
    q.bind(id);
    q.push(" AND status IN ");
    q.bind_list(statuses.iter().map(String::as_str));
    if let Some(after) = page.cursor_id()? {
        q.push(" AND id < ");
        q.bind(after);
    }
    q.push(" ORDER BY id DESC LIMIT ");
    q.bind(limit + 1);
    let rows: Vec<InboundMail> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |m| m.id.to_string()))
}

/// One fetched message's bytes (what the server gave: the whole message, or its header when
/// truncated), for download as `.eml`.
pub async fn raw(db: &Db, ctx: &Ctx, mailbox: Uuid, mail: Uuid) -> Result<Vec<u8>> {
    get(db, ctx, mailbox).await?;
    let r: (Vec<u8>,) = db
        .fetch_one(
            "SELECT raw FROM inbound_mail WHERE tenant_id = $1 AND mailbox_id = $2 AND id = $3",
            args![ctx.tenant_id, mailbox, mail],
        )
        .await?;
    Ok(r.0)
}

/// Runs a dead letter (or a message set aside as automatic) again, now: an admin's "this one is
/// real". Loop checks are skipped for it.
pub async fn rerun(db: &Db, ctx: &Ctx, mailbox: Uuid, mail: Uuid) -> Result<InboundMail> {
    ctx.require("tickets", Action::Update)?;
    get(db, ctx, mailbox).await?;
    let n = db
        .execute(
            "UPDATE inbound_mail SET status = 'pending', reason = NULL
             WHERE tenant_id = $1 AND mailbox_id = $2 AND id = $3 AND status IN ('dead', 'ignored')",
            args![ctx.tenant_id, mailbox, mail],
        )
        .await?;
    if n == 0 {
        let known: Option<(Uuid,)> = db
            .fetch_optional(
                "SELECT id FROM inbound_mail WHERE tenant_id = $1 AND mailbox_id = $2 AND id = $3",
                args![ctx.tenant_id, mailbox, mail],
            )
            .await?;
        return Err(match known {
            None => Error::NotFound,
            Some(_) => {
                Error::Conflict("only a dead letter or a set-aside message is re-run".into())
            }
        });
    }
    crate::inbound::process_one(db, ctx.tenant_id, mail, true).await?;
    db.fetch_one(
        &format!("SELECT {MAIL_COLS} FROM inbound_mail WHERE tenant_id = $1 AND id = $2"),
        args![ctx.tenant_id, mail],
    )
    .await
}

/// The follow-up of a sent reply: its copy into the mailbox's Sent folder.
pub const SENT_COPY_JOB: &str = "mailbox_sent_copy";

/// Stores a sent reply (the `sent` bytes of the email job's follow-up) in the mailbox's Sent
/// folder, once: a message with its Message-ID already there is not appended again.
pub fn sent_copy_handler() -> impl for<'a> Fn(
    &'a mut Tx,
    guanxi_platform::jobs::Due<'a>,
) -> guanxi_platform::jobs::HandlerFuture<'a>
       + Send
       + Sync {
    |tx: &mut Tx, due: guanxi_platform::jobs::Due<'_>| -> guanxi_platform::jobs::HandlerFuture<'_> {
        Box::pin(async move {
            use base64::Engine;
            let mailbox = due.payload["mailbox_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok());
            let raw = due.payload["sent"]
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
            let (Some(mailbox), Some(raw)) = (mailbox, raw) else {
                return Ok(());
            };
            let Some((server, _, Some(folder))) = server_in(tx, due.tenant_id, mailbox).await?
            else {
                return Ok(());
            };
            let id = crate::inbound::header_message_id(&raw).unwrap_or_default();
            let r = async {
                let mut s = imap::connect(&server).await?;
                imap::append_once(&mut s, &folder, &id, &raw).await?;
                imap::logout(s).await;
                Ok::<_, imap::ImapError>(())
            }
            .await;
            r.map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))
        })
    }
}

/// The mailbox's server, folder and Sent folder, read in the caller's transaction.
async fn server_in(
    tx: &mut Tx,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<(Server, String, Option<String>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        host: String,
        port: i64,
        security: String,
        ca_pem: Option<String>,
        username: String,
        password: String,
        folder: String,
        sent_folder: Option<String>,
    }
    let r: Option<Row> = tx
        .fetch_optional(
            "SELECT host, port, security, ca_pem, username, password, folder, sent_folder FROM mailboxes
             WHERE tenant_id = $1 AND id = $2",
            args![tenant, id],
        )
        .await?;
    Ok(r.map(|r| {
        (
            Server {
                host: r.host,
                port: u16::try_from(r.port).unwrap_or(993),
                security: Security::parse(&r.security).unwrap_or(Security::Tls),
                ca_pem: r.ca_pem,
                username: r.username,
                password: r.password,
            },
            r.folder,
            r.sent_folder,
        )
    }))
}

/// What one fetch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchReport {
    pub stored: u64,
    pub skipped: u64,
    pub backlog: u64,
    pub processed: u64,
}

/// Fetches every mailbox that is due (or, with `only`, that one, due or not), one after
/// another; returns what was fetched. `progress` hears of each stored batch.
pub async fn work(
    db: &Db,
    only: Option<(Uuid, Uuid)>,
    progress: &(dyn Fn(&FetchReport) + Send + Sync),
) -> Result<FetchReport> {
    let mut total = FetchReport::default();
    loop {
        let claim = match only {
            Some((tenant, id)) => claim(db, tenant, id, true).await?,
            None => {
                let due: Option<(Uuid, Uuid)> = db
                    .fetch_optional(
                        "SELECT tenant_id, id FROM mailboxes
                          WHERE enabled = $1 AND next_fetch_at <= $2
                            AND (lease_until IS NULL OR lease_until < $2)
                          ORDER BY next_fetch_at LIMIT 1",
                        args![true, now()],
                    )
                    .await?;
                match due {
                    Some((tenant, id)) => claim(db, tenant, id, false).await?,
                    None => return Ok(total),
                }
            }
        };
        let Some(c) = claim else {
            if only.is_some() {
                return Err(Error::NotFound);
            }
            continue;
        };
        let r = fetch(db, &c, progress).await;
        let done = crate::inbound::process_pending(db, Some(c.tenant)).await;
        let t = now();
        match r {
            Ok(rep) => {
                db.execute(
                    "UPDATE mailboxes SET last_success_at = $1, backlog = $2,
                         fetched_total = fetched_total + $3,
                         next_fetch_at = CASE WHEN $2 > 0 THEN $1 ELSE next_fetch_at END,
                         lease_token = NULL, lease_until = NULL
                     WHERE tenant_id = $4 AND id = $5 AND lease_token = $6",
                    args![
                        t,
                        rep.backlog as i64,
                        rep.stored as i64,
                        c.tenant,
                        c.id,
                        c.token
                    ],
                )
                .await?;
                total.stored += rep.stored;
                total.skipped += rep.skipped;
                total.backlog = rep.backlog;
            }
            Err(e) => {
                tracing::warn!(mailbox = %c.id, error = %e, "mail fetch failed");
                let msg: String = e.to_string().chars().take(1000).collect();
                db.execute(
                    "UPDATE mailboxes SET last_error = $1, last_error_at = $2,
                         lease_token = NULL, lease_until = NULL
                     WHERE tenant_id = $3 AND id = $4 AND lease_token = $5",
                    args![msg, t, c.tenant, c.id, c.token],
                )
                .await?;
            }
        }
        total.processed += done? as u64;
        if only.is_some() {
            return Ok(total);
        }
    }
}

struct Claim {
    tenant: Uuid,
    id: Uuid,
    token: Uuid,
    server: Server,
    folder: String,
}

/// Takes the mailbox's lease (`force`: even from a fetcher that holds it — the operator's
/// `guanxi mail fetch`, whose overtaken rival stops at its next batch) and plans the next run.
async fn claim(db: &Db, tenant: Uuid, id: Uuid, force: bool) -> Result<Option<Claim>> {
    let t = now();
    let token = new_id();
    let Some((poll, enabled)): Option<(i64, bool)> = db
        .fetch_optional(
            "SELECT poll_seconds, enabled FROM mailboxes WHERE tenant_id = $1 AND id = $2",
            args![tenant, id],
        )
        .await?
    else {
        return Ok(None);
    };
    // Named by hand (`guanxi mail fetch`), a switched-off mailbox is refused, not fetched.
    if force && !enabled {
        return Err(Error::field("enabled", "disabled"));
    }
    let n = db
        .execute(
            "UPDATE mailboxes SET lease_token = $1, lease_until = $2, next_fetch_at = $3
             WHERE tenant_id = $4 AND id = $5
               AND ($6 OR (enabled = $7 AND next_fetch_at <= $8
                           AND (lease_until IS NULL OR lease_until < $8)))",
            args![
                token,
                t + Duration::seconds(LEASE_SECONDS),
                t + Duration::seconds(poll),
                tenant,
                id,
                force,
                true,
                t
            ],
        )
        .await?;
    if n == 0 {
        return Ok(None);
    }
    let (server, folder) = server_of(db, tenant, id).await?;
    Ok(Some(Claim {
        tenant,
        id,
        token,
        server,
        folder,
    }))
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Imap(#[from] imap::ImapError),
    #[error("{0}")]
    Db(#[from] Error),
}

#[derive(sqlx::FromRow)]
struct Cursor {
    uidvalidity: i64,
    last_uid: i64,
    last_date: Option<DateTime<Utc>>,
}

/// UIDs as an IMAP set (`1,5,7`).
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

async fn fetch(
    db: &Db,
    c: &Claim,
    progress: &(dyn Fn(&FetchReport) + Send + Sync),
) -> std::result::Result<FetchReport, FetchError> {
    let mut s = imap::connect(&c.server).await?;
    let mb = imap::step("SELECT", s.examine(&c.folder)).await?;
    let validity = i64::from(mb.uid_validity.unwrap_or(0));
    let cursor: Option<Cursor> = db
        .fetch_optional(
            "SELECT uidvalidity, last_uid, last_date FROM mailbox_cursors
              WHERE tenant_id = $1 AND mailbox_id = $2 AND folder = $3",
            args![c.tenant, c.id, c.folder.as_str()],
        )
        .await?;
    // Same numbering: what came after the last stored UID. Renumbered: re-read from the last
    // stored message's day (what is here already is recognised and skipped).
    let (renumbered, query) = match &cursor {
        Some(cur) if cur.uidvalidity == validity => (false, format!("UID {}:*", cur.last_uid + 1)),
        Some(cur) => (
            true,
            match cur.last_date {
                Some(d) => format!("SINCE {}", (d - Duration::days(1)).format("%d-%b-%Y")),
                None => "ALL".to_owned(),
            },
        ),
        None => (false, "ALL".to_owned()),
    };
    let floor = match &cursor {
        Some(cur) if !renumbered => cur.last_uid,
        _ => 0,
    };
    let mut uids: Vec<u32> = imap::step("SEARCH", s.uid_search(&query))
        .await?
        .into_iter()
        .filter(|u| i64::from(*u) > floor)
        .collect();
    uids.sort_unstable();
    let mut rep = FetchReport {
        backlog: uids.len().saturating_sub(RUN_MESSAGES) as u64,
        ..Default::default()
    };
    uids.truncate(RUN_MESSAGES);
    let mut last_date = cursor.as_ref().and_then(|c| c.last_date);
    for sized in uids.chunks(500) {
        let sizes = imap::sizes(&mut s, &uid_set(sized)).await?;
        let size_of = |u: u32| sizes.iter().find(|(x, _)| *x == u).map_or(0, |(_, n)| *n);
        // Batches: whole messages up to the byte and count budgets; a message above the size
        // limit alone, by its header.
        let mut batch: Vec<u32> = vec![];
        let mut bytes = 0u64;
        let mut batches: Vec<(Vec<u32>, bool)> = vec![];
        for &u in sized {
            let n = size_of(u);
            if n > MAX_MESSAGE_BYTES {
                if !batch.is_empty() {
                    batches.push((std::mem::take(&mut batch), false));
                    bytes = 0;
                }
                batches.push((vec![u], true));
                continue;
            }
            if !batch.is_empty()
                && (bytes + u64::from(n) > BATCH_BYTES || batch.len() >= BATCH_MESSAGES)
            {
                batches.push((std::mem::take(&mut batch), false));
                bytes = 0;
            }
            bytes += u64::from(n);
            batch.push(u);
        }
        if !batch.is_empty() {
            batches.push((batch, false));
        }
        for (batch, headers_only) in batches {
            let mut got = imap::bodies(&mut s, &uid_set(&batch), headers_only).await?;
            got.sort_by_key(|f| f.uid);
            let mut tx = db.begin().await?;
            // Still ours? A fetcher that was overtaken stops here, before it writes.
            let held = tx
                .execute(
                    "UPDATE mailboxes SET lease_until = $1
                      WHERE tenant_id = $2 AND id = $3 AND lease_token = $4",
                    args![
                        now() + Duration::seconds(LEASE_SECONDS),
                        c.tenant,
                        c.id,
                        c.token
                    ],
                )
                .await?;
            if held == 0 {
                return Err(Error::Conflict(
                    "the mailbox was taken over by another fetcher".into(),
                )
                .into());
            }
            let mut max_uid = floor;
            for f in &got {
                max_uid = max_uid.max(i64::from(f.uid));
                if f.internal_date.is_some() {
                    last_date = f.internal_date;
                }
                if store(&mut tx, c, validity, f, headers_only, renumbered).await? {
                    rep.stored += 1;
                } else {
                    rep.skipped += 1;
                }
            }
            // A UID the server listed but did not return (expunged meanwhile) is passed too.
            if let Some(&last) = batch.last() {
                max_uid = max_uid.max(i64::from(last));
            }
            tx.execute(
                "INSERT INTO mailbox_cursors (tenant_id, mailbox_id, folder, uidvalidity, last_uid, last_date)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, mailbox_id, folder)
                 DO UPDATE SET uidvalidity = $4, last_uid = $5, last_date = $6",
                args![c.tenant, c.id, c.folder.as_str(), validity, max_uid, last_date],
            )
            .await?;
            tx.commit().await?;
            progress(&rep);
        }
    }
    if renumbered && uids.is_empty() {
        // Nothing new since the renumbering: start the new numbering at its end.
        let top = i64::from(mb.uid_next.unwrap_or(1)).saturating_sub(1);
        db.execute(
            "UPDATE mailbox_cursors SET uidvalidity = $1, last_uid = $2
              WHERE tenant_id = $3 AND mailbox_id = $4 AND folder = $5",
            args![validity, top, c.tenant, c.id, c.folder.as_str()],
        )
        .await?;
    }
    imap::logout(s).await;
    Ok(rep)
}

/// The key a message is recognised by when a folder is re-read: its Message-ID, or a hash of
/// its bytes when it has none.
pub fn dedupe_key(raw: &[u8]) -> String {
    use sha2::Digest;
    match crate::inbound::header_message_id(raw) {
        Some(id) => format!("mid:{id}"),
        None => format!("sha256:{}", hex::encode(sha2::Sha256::digest(raw))),
    }
}

/// Stores one fetched message whole (pending); `false` when it is here already.
async fn store(
    tx: &mut Tx,
    c: &Claim,
    validity: i64,
    f: &imap::Fetched,
    truncated: bool,
    renumbered: bool,
) -> Result<bool> {
    let key = dedupe_key(&f.raw);
    if renumbered {
        let seen: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM inbound_mail WHERE tenant_id = $1 AND mailbox_id = $2 AND dedupe_key = $3",
                args![c.tenant, c.id, key.as_str()],
            )
            .await?;
        if seen.is_some() {
            return Ok(false);
        }
    }
    let (sender, subject) = crate::inbound::summary(&f.raw);
    let n = tx
        .execute(
            "INSERT INTO inbound_mail (tenant_id, id, mailbox_id, folder, uidvalidity, uid,
                 dedupe_key, internal_date, size, truncated, raw, sender, subject, status, fetched_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14)
             ON CONFLICT (tenant_id, mailbox_id, folder, uidvalidity, uid) DO NOTHING",
            args![
                c.tenant,
                new_id(),
                c.id,
                c.folder.as_str(),
                validity,
                i64::from(f.uid),
                key.as_str(),
                f.internal_date,
                i64::from(f.size),
                truncated,
                f.raw.clone(),
                sender,
                subject,
                now()
            ],
        )
        .await?;
    Ok(n > 0)
}
