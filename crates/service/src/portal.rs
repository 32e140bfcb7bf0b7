//! The customer portal: a contact signs in — password or a one-time link emailed to them — in
//! an identity space of its own (`portal_users`, one per contact, apart from staff users and
//! never given a staff role), sees their own tickets and, when the company allows it, those of
//! their company (the contact's account: never another company's), opens tickets (channel
//! `portal`) and writes on them (the customer's words), and reads the public knowledge base.
//! Before a ticket is opened the question is answered with suggested articles; the customer
//! either says one solved it or submits anyway, and both are counted (`help_deflections`) —
//! a question neither solved nor submitted within a day counts as deflected too.
//!
//! Secrets (sessions, links) are kept as SHA-256 digests and looked up by tenant and digest,
//! as staff sessions are; wrong passwords go through the platform's [`auth::Limiter`].

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::auth::Limiter;
use guanxi_platform::ctx::ActorKind;
use guanxi_platform::db::{Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::secret::{self, digest, random_secret};
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, jobs, version, Ctx, Error};
use guanxi_records::record::plain;

use crate::articles::{self, Reader, Suggestion};
use crate::attachments::{self, Attachment, Origin};
use crate::tickets::{self, MessageInput, TicketInput};
use guanxi_platform::files::FileMeta;

pub const SESSION_DAYS: i64 = 30;
/// A link the customer asks for on the sign-in page.
pub const LINK_HOURS: i64 = 2;
/// A link sent when a colleague opens the portal to a contact.
pub const INVITE_DAYS: i64 = 7;

/// A contact's portal sign-in, as colleagues manage it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PortalUser {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub account_id: Option<Uuid>,
    pub email: String,
    /// Whether they have chosen a password (else they sign in by emailed link).
    pub has_password: bool,
    /// Sees every ticket of their company (the contact's account), not only their own.
    pub company_access: bool,
    pub active: bool,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

const USER_SELECT: &str = "SELECT p.id, p.contact_id, c.name AS contact_name, c.account_id,
    p.email, (p.password_hash IS NOT NULL) AS has_password, p.company_access, p.active,
    p.last_sign_in_at, p.created_at, p.version
    FROM portal_users p JOIN contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id";

/// Opening the portal to a contact, or changing their access.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalUserInput {
    /// On create: the contact (it needs an email address).
    pub contact_id: Option<Uuid>,
    /// Default `false`: only their own tickets.
    pub company_access: Option<bool>,
    /// `false` closes the portal to them (their sessions end).
    pub active: Option<bool>,
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
}

/// Portal users of the tenant, newest first (at most 500), or of one contact.
pub async fn list_users(db: &Db, ctx: &Ctx, contact: Option<Uuid>) -> Result<Vec<PortalUser>> {
    ctx.require("portal_users", Action::Read)?;
    match contact {
        Some(c) => {
            db.fetch_all(
                &format!("{USER_SELECT} WHERE p.tenant_id = $1 AND p.contact_id = $2"),
                args![ctx.tenant_id, c],
            )
            .await
        }
        None => {
            db.fetch_all(
                &format!(
                    "{USER_SELECT} WHERE p.tenant_id = $1 ORDER BY p.created_at DESC LIMIT 500"
                ),
                args![ctx.tenant_id],
            )
            .await
        }
    }
}

pub async fn get_user(db: &Db, ctx: &Ctx, id: Uuid) -> Result<PortalUser> {
    ctx.require("portal_users", Action::Read)?;
    db.fetch_optional(
        &format!("{USER_SELECT} WHERE p.tenant_id = $1 AND p.id = $2"),
        args![ctx.tenant_id, id],
    )
    .await?
    .ok_or(Error::NotFound)
}

/// Opens the portal to a contact with an email address and emails them a sign-in link
/// (valid [`INVITE_DAYS`]). A contact already invited: refused (`contact_id: taken`).
pub async fn invite(
    db: &Db,
    ctx: &Ctx,
    input: PortalUserInput,
    base_url: &str,
) -> Result<PortalUser> {
    ctx.require("portal_users", Action::Create)?;
    let Some(contact) = input.contact_id else {
        return Err(Error::field("contact_id", "required"));
    };
    let row: Option<(Option<String>, Option<DateTime<Utc>>)> = db
        .fetch_optional(
            "SELECT email, deleted_at FROM contacts WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, contact],
        )
        .await?;
    let email = match row {
        None => return Err(Error::field("contact_id", "unknown")),
        Some((_, Some(_))) => return Err(Error::field("contact_id", "in_trash")),
        Some((None, None)) => return Err(Error::field("email", "required")),
        Some((Some(e), None)) => e.trim().to_lowercase(),
    };
    let taken: Option<(Uuid,)> = db
        .fetch_optional(
            "SELECT id FROM portal_users WHERE tenant_id = $1 AND (contact_id = $2 OR email = $3)",
            args![ctx.tenant_id, contact, email.as_str()],
        )
        .await?;
    if taken.is_some() {
        return Err(Error::field("contact_id", "taken"));
    }
    let id = new_id();
    let t = now();
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO portal_users (tenant_id, id, contact_id, email, company_access, active,
             created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)",
        args![
            ctx.tenant_id,
            id,
            contact,
            email.as_str(),
            input.company_access.unwrap_or(false),
            true,
            t,
            t
        ],
    )
    .await
    .map_err(|e| match e {
        Error::Conflict(_) => Error::field("contact_id", "taken"),
        e => e,
    })?;
    send_link(
        &mut tx,
        ctx.tenant_id,
        id,
        Duration::days(INVITE_DAYS),
        base_url,
        true,
    )
    .await?;
    let u: PortalUser = tx
        .fetch_one(
            &format!("{USER_SELECT} WHERE p.tenant_id = $1 AND p.id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "portal_users",
        Some(id),
        None,
        Some(&u),
    )
    .await?;
    tx.commit().await?;
    Ok(u)
}

/// Changes a portal user's access; closing it ends their sessions.
pub async fn update_user(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: PortalUserInput,
) -> Result<PortalUser> {
    ctx.require("portal_users", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    if input.contact_id.is_some() {
        return Err(Error::field("contact_id", "immutable"));
    }
    let mut tx = db.begin().await?;
    let before: PortalUser = tx
        .fetch_optional(
            &format!("{USER_SELECT} WHERE p.tenant_id = $1 AND p.id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?
        .ok_or(Error::NotFound)?;
    version::check(expected, before.version)?;
    let active = input.active.unwrap_or(before.active);
    let company = input.company_access.unwrap_or(before.company_access);
    version::update(
        &mut tx,
        version::Row {
            table: "portal_users",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "active = $1, company_access = $2, updated_at = $3",
        args![active, company, now()],
    )
    .await?;
    if !active {
        tx.execute(
            "DELETE FROM portal_sessions WHERE tenant_id = $1 AND portal_user_id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
    }
    let after: PortalUser = tx
        .fetch_one(
            &format!("{USER_SELECT} WHERE p.tenant_id = $1 AND p.id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "portal_users",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Makes a one-time sign-in link and queues the email carrying it, in the tenant's language.
async fn send_link(
    tx: &mut Tx,
    tenant: Uuid,
    user: Uuid,
    valid: Duration,
    base_url: &str,
    invite: bool,
) -> Result<()> {
    let token = random_secret();
    let t = now();
    tx.execute(
        "INSERT INTO portal_links (tenant_id, token_hash, portal_user_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        args![tenant, digest(&token), user, t, t + valid],
    )
    .await?;
    let (company, locale, email, name): (String, String, String, String) = tx
        .fetch_one(
            "SELECT n.name, n.locale, p.email, c.name FROM portal_users p
             JOIN tenants n ON n.id = p.tenant_id
             JOIN contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id
             WHERE p.tenant_id = $1 AND p.id = $2",
            args![tenant, user],
        )
        .await?;
    let link = format!("{base_url}/portal/{tenant}/link/{token}");
    let (subject, text) = match (locale.starts_with("zh"), invite) {
        (true, true) => (
            format!("{company} 客户服务中心邀请"),
            format!("{name}，您好：\n\n{company} 为您开通了客户服务中心，可以在线提交和查看服务请求。请在 {INVITE_DAYS} 天内打开以下链接登录：\n\n{link}\n"),
        ),
        (true, false) => (
            format!("登录 {company} 客户服务中心"),
            format!("{name}，您好：\n\n请在 {LINK_HOURS} 小时内打开以下链接登录：\n\n{link}\n\n如果不是您本人操作，请忽略此邮件。\n"),
        ),
        (false, true) => (
            format!("{company} invites you to its customer portal"),
            format!("Hello {name},\n\n{company} opened its customer portal to you: open and follow your requests online. Open this link within {INVITE_DAYS} days to sign in:\n\n{link}\n"),
        ),
        (false, false) => (
            format!("Sign in to {company}'s customer portal"),
            format!("Hello {name},\n\nOpen this link within {LINK_HOURS} hours to sign in:\n\n{link}\n\nIf you did not ask for this, ignore this email.\n"),
        ),
    };
    jobs::enqueue(
        tx,
        tenant,
        jobs::KIND_EMAIL,
        &jobs::Email {
            to: email,
            subject,
            text,
            message_id: None,
            in_reply_to: None,
            reply_to: None,
            then: None,
            attachments: Vec::new(),
        },
    )
    .await
}

/// "Email me a link": queued when an active portal user has this address; the answer is the
/// same either way, so it does not tell who is a customer.
pub async fn request_link(db: &Db, tenant: Uuid, email: &str, base_url: &str) -> Result<()> {
    let email = email.trim().to_lowercase();
    let user: Option<(Uuid,)> = db
        .fetch_optional(
            "SELECT id FROM portal_users WHERE tenant_id = $1 AND email = $2 AND active = $3",
            args![tenant, email.as_str(), true],
        )
        .await?;
    if let Some((id,)) = user {
        let mut tx = db.begin().await?;
        send_link(
            &mut tx,
            tenant,
            id,
            Duration::hours(LINK_HOURS),
            base_url,
            false,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A new portal session: the value for the cookie or `Authorization: Bearer` (shown once).
pub struct NewSession {
    pub token: String,
    pub user_id: Uuid,
}

async fn start_session(tx: &mut Tx, tenant: Uuid, user: Uuid) -> Result<NewSession> {
    let secret = random_secret();
    let t = now();
    tx.execute(
        "INSERT INTO portal_sessions (tenant_id, token_hash, portal_user_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        args![tenant, digest(&secret), user, t, t + Duration::days(SESSION_DAYS)],
    )
    .await?;
    tx.execute(
        "UPDATE portal_users SET last_sign_in_at = $1 WHERE tenant_id = $2 AND id = $3",
        args![t, tenant, user],
    )
    .await?;
    Ok(NewSession {
        token: format!("{}.{}", tenant.simple(), secret),
        user_id: user,
    })
}

/// Email and password. Failures count in the limiter under the portal's own key (a staff
/// account with the same address is another identity); the error never says whether the
/// address is known.
pub async fn sign_in(
    db: &Db,
    limiter: &Limiter,
    tenant: Uuid,
    email: &str,
    password: &str,
    ip: &str,
) -> Result<NewSession> {
    let email = email.trim().to_lowercase();
    let key = format!("portal:{tenant}:{email}");
    if let Some(wait) = limiter.wait(&key, ip) {
        return Err(Error::rate_limited(wait));
    }
    let row: Option<(Uuid, Option<String>)> = db
        .fetch_optional(
            "SELECT id, password_hash FROM portal_users WHERE tenant_id = $1 AND email = $2 AND active = $3",
            args![tenant, email.as_str(), true],
        )
        .await?;
    let (id, hash) = match row {
        Some((id, hash)) => (Some(id), hash),
        None => (None, None),
    };
    let ok = secret::verify_password(password.to_owned(), hash).await?;
    let (true, Some(id)) = (ok, id) else {
        limiter.record_failure(&key, ip);
        return Err(Error::Unauthorized);
    };
    limiter.clear(&key);
    let mut tx = db.begin().await?;
    let s = start_session(&mut tx, tenant, id).await?;
    tx.commit().await?;
    Ok(s)
}

/// Signs in with a one-time link (used once, before it expires), choosing a password with it
/// when one is given.
pub async fn use_link(
    db: &Db,
    tenant: Uuid,
    token: &str,
    password: Option<&str>,
) -> Result<NewSession> {
    if let Some(p) = password {
        secret::check_password("password", p)?;
    }
    let hash = match password {
        Some(p) => Some(secret::hash_password(p.to_owned()).await?),
        None => None,
    };
    let t = now();
    let mut tx = db.begin().await?;
    let row: Option<(Uuid,)> = tx
        .fetch_optional(
            "UPDATE portal_links SET used_at = $1
             WHERE tenant_id = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > $1
               AND portal_user_id IN (SELECT id FROM portal_users WHERE tenant_id = $2 AND active = $4)
             RETURNING portal_user_id",
            args![t, tenant, digest(token), true],
        )
        .await?;
    let Some((user,)) = row else {
        return Err(Error::field("token", "invalid_link"));
    };
    if let Some(h) = hash {
        tx.execute(
            "UPDATE portal_users SET password_hash = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            args![h, t, tenant, user],
        )
        .await?;
    }
    let s = start_session(&mut tx, tenant, user).await?;
    tx.commit().await?;
    Ok(s)
}

/// Who is signed in to the portal.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Customer {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub contact_id: Uuid,
    pub name: String,
    pub email: String,
    /// The contact's company.
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    pub company_access: bool,
    /// The company whose portal this is.
    pub company: String,
    /// Its language.
    pub locale: String,
}

impl Customer {
    /// What the service functions act as: the system on the customer's behalf, recorded in the
    /// audit log as the customer portal.
    fn ctx(&self) -> Ctx {
        Ctx {
            actor: ActorKind::Portal,
            locale: self.locale.clone(),
            ..Ctx::system(self.tenant_id)
        }
    }
}

/// The customer a session token belongs to (an unknown, expired or closed one: 401).
pub async fn session(db: &Db, token: &str) -> Result<Customer> {
    let (tenant, secret) = token.split_once('.').ok_or(Error::Unauthorized)?;
    let tenant: Uuid = tenant.parse().map_err(|_| Error::Unauthorized)?;
    db.fetch_optional(
        "SELECT p.tenant_id, p.id AS user_id, p.contact_id, c.name, p.email, c.account_id,
                a.name AS account_name, p.company_access, n.name AS company, n.locale
         FROM portal_sessions s
         JOIN portal_users p ON p.tenant_id = s.tenant_id AND p.id = s.portal_user_id
         JOIN contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id
         LEFT JOIN accounts a ON a.tenant_id = c.tenant_id AND a.id = c.account_id
         JOIN tenants n ON n.id = p.tenant_id
         WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.expires_at > $3 AND p.active = $4
           AND c.deleted_at IS NULL",
        args![tenant, digest(secret), now(), true],
    )
    .await?
    .ok_or(Error::Unauthorized)
}

pub async fn sign_out(db: &Db, token: &str) -> Result<()> {
    if let Some((tenant, secret)) = token.split_once('.') {
        if let Ok(tenant) = tenant.parse::<Uuid>() {
            db.execute(
                "DELETE FROM portal_sessions WHERE tenant_id = $1 AND token_hash = $2",
                args![tenant, digest(secret)],
            )
            .await?;
        }
    }
    Ok(())
}

/// A ticket as its customer sees it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PortalTicket {
    pub id: Uuid,
    pub number: String,
    pub subject: String,
    pub description: Option<String>,
    /// `new`, `open`, `waiting_customer`, `waiting_third_party`, `resolved` or `closed`.
    pub status: String,
    pub priority: String,
    /// Who asked (a colleague of theirs, when they see the company's tickets).
    pub contact_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The files that came with the request (a single ticket's read only).
    #[sqlx(skip)]
    pub attachments: Vec<Attachment>,
}

const TICKET_SELECT: &str = "SELECT t.id, t.number, t.subject, t.description, t.status,
    t.priority, c.name AS contact_name, t.created_at, t.updated_at
    FROM tickets t LEFT JOIN contacts c ON c.tenant_id = t.tenant_id AND c.id = t.contact_id";

/// The tickets a customer may see: their own, and their company's when allowed — binds
/// tenant ($1), contact ($2), company access ($3), account ($4).
const VISIBLE: &str = "t.tenant_id = $1 AND t.deleted_at IS NULL
    AND (t.contact_id = $2 OR ($3 AND t.account_id IS NOT NULL AND t.account_id = $4))";

/// Their tickets, most recently changed first, a page at a time (`limit` default 50, at most
/// 200; `cursor` from the page before); `company` asks for every ticket of their company
/// (ignored without company access).
pub async fn tickets(
    db: &Db,
    c: &Customer,
    company: bool,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<Page<PortalTicket>> {
    const SORT: &[SortField] = &[("updated_at", "t.updated_at", SortKind::Time)];
    let wide = company && c.company_access;
    let req = PageReq {
        limit,
        cursor,
        sort: Some("-updated_at".into()),
    };
    let sort = req.sort(SORT)?;
    let mut q = Sql::new(&format!("{TICKET_SELECT} WHERE {VISIBLE}"));
    q.args = args![
        c.tenant_id,
        c.contact_id,
        wide,
        c.account_id.unwrap_or(Uuid::nil())
    ];
    let limit = req.apply(&mut q, &sort, "t.id")?;
    let rows: Vec<PortalTicket> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |t| {
        sort.cursor(t.updated_at.to_rfc3339(), t.id)
    }))
}

pub async fn ticket(db: &Db, c: &Customer, id: Uuid) -> Result<PortalTicket> {
    let mut t = visible(db, c, id).await?;
    t.attachments = attachments::of_ticket(db, c.tenant_id, id, true)
        .await?
        .into_iter()
        .filter(|a| a.message_id.is_none())
        .collect();
    Ok(t)
}

/// The ticket if the customer may see it.
async fn visible(db: &Db, c: &Customer, id: Uuid) -> Result<PortalTicket> {
    db.fetch_optional(
        &format!("{TICKET_SELECT} WHERE {VISIBLE} AND t.id = $5"),
        args![
            c.tenant_id,
            c.contact_id,
            c.company_access,
            c.account_id.unwrap_or(Uuid::nil()),
            id
        ],
    )
    .await?
    .ok_or(Error::NotFound)
}

/// What was said on a ticket that its customer sees: the desk's public replies and the
/// customer's words — never internal notes.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PortalMessage {
    pub id: Uuid,
    /// `reply` (from the desk) or `customer`.
    pub kind: String,
    pub body: String,
    /// The agent's or the customer's name.
    pub author: Option<String>,
    pub at: DateTime<Utc>,
    /// The files it carried.
    #[sqlx(skip)]
    pub attachments: Vec<Attachment>,
}

pub async fn messages(db: &Db, c: &Customer, id: Uuid) -> Result<Vec<PortalMessage>> {
    visible(db, c, id).await?;
    let mut rows: Vec<PortalMessage> = db
        .fetch_all(
            "SELECT m.id, m.kind, m.body, COALESCE(u.name, p.name) AS author, m.at
         FROM ticket_messages m
         LEFT JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
         LEFT JOIN contacts p ON p.tenant_id = m.tenant_id AND p.id = m.contact_id
         WHERE m.tenant_id = $1 AND m.ticket_id = $2 AND m.kind IN ('reply', 'customer')
         ORDER BY m.at, m.id LIMIT 1000",
            args![c.tenant_id, id],
        )
        .await?;
    let mut files = attachments::of_ticket(db, c.tenant_id, id, true).await?;
    for m in &mut rows {
        let (mine, rest) = files.into_iter().partition(|a| a.message_id == Some(m.id));
        m.attachments = mine;
        files = rest;
    }
    Ok(rows)
}

/// A file the customer may see on their ticket (what they sent, what a reply sent them).
pub async fn attachment(
    db: &Db,
    c: &Customer,
    ticket: Uuid,
    file: Uuid,
) -> Result<(FileMeta, Vec<u8>)> {
    visible(db, c, ticket).await?;
    attachments::open_on(db, c.tenant_id, ticket, file, true).await
}

/// The customer uploads a file to their ticket, to send with their next reply
/// (`attachment_ids`).
pub async fn attach(
    db: &Db,
    c: &Customer,
    ticket: Uuid,
    name: Option<&str>,
    bytes: &[u8],
) -> Result<Attachment> {
    visible(db, c, ticket).await?;
    let name = attachments::named(name)?;
    let mut tx = db.begin().await?;
    let a = attachments::add_in(
        &mut tx,
        &c.ctx(),
        ticket,
        Origin::Portal(c.user_id),
        name,
        bytes,
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}

/// Keeps the files sent with a request or a reply (at most ten) on the ticket; their ids.
async fn keep_files(
    tx: &mut guanxi_platform::db::Tx,
    c: &Customer,
    ticket: Uuid,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<Uuid>> {
    if files.len() > attachments::MAX_PER_MESSAGE {
        return Err(Error::field("file", "too_many"));
    }
    let mut ids = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let a = attachments::add_in(tx, &c.ctx(), ticket, Origin::Portal(c.user_id), name, bytes)
            .await?;
        ids.push(a.id);
    }
    Ok(ids)
}

/// A new request from the portal.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// Required.
    pub subject: Option<String>,
    /// What happened (required).
    pub body: Option<String>,
    /// The question asked before (`POST /portal/api/v1/questions`), now submitted anyway.
    pub question_id: Option<Uuid>,
}

/// Opens a ticket for the customer (channel `portal`, routed as any other), with the files
/// chosen in the form (none from the API: upload them to the ticket after).
pub async fn open_ticket(
    db: &Db,
    c: &Customer,
    input: RequestInput,
    files: &[(String, Vec<u8>)],
) -> Result<PortalTicket> {
    let mut errs = Errors::default();
    for (field, v) in [("subject", &input.subject), ("body", &input.body)] {
        if v.as_deref().is_none_or(|v| v.trim().is_empty()) {
            errs.add(field, "required");
        }
    }
    errs.finish()?;
    let ctx = c.ctx();
    let mut tx = db.begin().await?;
    let t = tickets::create_in(
        &mut tx,
        &ctx,
        TicketInput {
            subject: input.subject.clone(),
            description: Some(input.body.clone()),
            contact_id: Some(Some(c.contact_id)),
            channel: Some("portal".into()),
            ..Default::default()
        },
    )
    .await?;
    keep_files(&mut tx, c, t.id, files).await?;
    if let Some(q) = input.question_id {
        // The customer's own question (another's, or none: refused, nothing opened); one
        // answered already stays as it ended.
        let mine: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM help_deflections
                 WHERE tenant_id = $1 AND id = $2 AND portal_user_id = $3",
                args![c.tenant_id, q, c.user_id],
            )
            .await?;
        if mine == 0 {
            return Err(Error::field("question_id", "unknown"));
        }
        tx.execute(
            "UPDATE help_deflections SET outcome = 'submitted', ticket_id = $1
             WHERE tenant_id = $2 AND id = $3 AND portal_user_id = $4 AND outcome = 'open'",
            args![t.id, c.tenant_id, q, c.user_id],
        )
        .await?;
    }
    tx.commit().await?;
    ticket(db, c, t.id).await
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyInput {
    /// Required.
    pub body: Option<String>,
    /// Files uploaded to the ticket (`POST …/attachments`) that this reply sends (at most 10).
    pub attachment_ids: Option<Vec<Uuid>>,
}

/// The customer writes on their ticket (a resolved one reopens; a closed one is refused),
/// with the files chosen in the form.
pub async fn reply(
    db: &Db,
    c: &Customer,
    id: Uuid,
    input: ReplyInput,
    files: &[(String, Vec<u8>)],
) -> Result<PortalMessage> {
    visible(db, c, id).await?;
    let ctx = c.ctx();
    let mut tx = db.begin().await?;
    let mut ids = input.attachment_ids.unwrap_or_default();
    ids.extend(keep_files(&mut tx, c, id, files).await?);
    let m = tickets::add_message_in(
        &mut tx,
        &ctx,
        id,
        MessageInput {
            kind: Some("customer".into()),
            body: input.body,
            status: None,
            version: None,
            contact_id: Some(c.contact_id),
            channel: Some("portal".into()),
            article_id: None,
            attachment_ids: Some(ids),
        },
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(PortalMessage {
        id: m.id,
        kind: m.kind,
        body: m.body,
        author: Some(c.name.clone()),
        at: m.at,
        attachments: m.attachments,
    })
}

/// A question asked before opening a ticket, with the articles suggested for it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Question {
    pub id: Uuid,
    pub suggestions: Vec<Suggestion>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionInput {
    /// What the customer typed (required; the first 500 characters are read).
    pub text: Option<String>,
}

/// Suggests public articles for what the customer is about to ask, and remembers it.
pub async fn ask(db: &Db, c: &Customer, input: QuestionInput) -> Result<Question> {
    let text = match input.text.as_deref().map(plain(2_000)) {
        Some(Ok(t)) if !t.trim().is_empty() => t.trim().to_owned(),
        Some(Err(code)) => return Err(Error::field("text", code)),
        _ => return Err(Error::field("text", "required")),
    };
    let suggestions =
        articles::suggest(db, Reader::Public(c.tenant_id), &text, &c.locale, 5).await?;
    let id = new_id();
    let ids: Vec<Uuid> = suggestions.iter().map(|s| s.id).collect();
    db.execute(
        "INSERT INTO help_deflections (tenant_id, id, portal_user_id, question, suggested, outcome, created_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6)",
        args![c.tenant_id, id, c.user_id, text.as_str(), serde_json::json!(ids), now()],
    )
    .await?;
    Ok(Question { id, suggestions })
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SolvedInput {
    /// The article that answered it (required; one of those suggested).
    pub article_id: Option<Uuid>,
}

/// "This answered my question": the question is deflected by the article.
pub async fn solved(db: &Db, c: &Customer, question: Uuid, input: SolvedInput) -> Result<()> {
    let Some(article) = input.article_id else {
        return Err(Error::field("article_id", "required"));
    };
    let row: Option<(sqlx::types::Json<Vec<Uuid>>, String)> = db
        .fetch_optional(
            "SELECT suggested, outcome FROM help_deflections
             WHERE tenant_id = $1 AND id = $2 AND portal_user_id = $3",
            args![c.tenant_id, question, c.user_id],
        )
        .await?;
    match row {
        None => Err(Error::NotFound),
        Some((s, _)) if !s.0.contains(&article) => Err(Error::field("article_id", "unknown")),
        Some((_, outcome)) if outcome != "open" => Ok(()),
        Some(_) => {
            db.execute(
                "UPDATE help_deflections SET outcome = 'solved', article_id = $1
                 WHERE tenant_id = $2 AND id = $3 AND outcome = 'open'",
                args![article, c.tenant_id, question],
            )
            .await?;
            Ok(())
        }
    }
}

/// How the portal's questions ended, for the knowledge base's worth.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Deflection {
    /// Questions asked before opening a ticket.
    pub asked: i64,
    /// Answered by a suggested article ("this solved it").
    pub solved: i64,
    /// Left without a ticket for a day after seeing suggestions.
    pub abandoned: i64,
    /// Submitted as a ticket anyway.
    pub submitted: i64,
    /// (solved + abandoned) / asked, in percent; none before any question.
    pub rate: Option<f64>,
}

/// Deflection since a time (questions asked from then).
pub async fn deflection(db: &Db, ctx: &Ctx, since: DateTime<Utc>) -> Result<Deflection> {
    ctx.require("articles", Action::Read)?;
    let rows: Vec<(String, i64, i64)> = db
        .fetch_all(
            "SELECT outcome, old, COUNT(*) FROM (
                SELECT outcome, CAST(CASE WHEN created_at < $3 THEN 1 ELSE 0 END AS BIGINT) AS old
                FROM help_deflections WHERE tenant_id = $1 AND created_at >= $2) x
             GROUP BY outcome, old",
            args![ctx.tenant_id, since, now() - Duration::days(1)],
        )
        .await?;
    let mut d = Deflection::default();
    for (outcome, old, n) in rows {
        d.asked += n;
        match (outcome.as_str(), old) {
            ("solved", _) => d.solved += n,
            ("submitted", _) => d.submitted += n,
            ("open", 1) => d.abandoned += n,
            _ => {}
        }
    }
    d.rate = (d.asked > 0).then(|| 100.0 * (d.solved + d.abandoned) as f64 / d.asked as f64);
    Ok(d)
}
