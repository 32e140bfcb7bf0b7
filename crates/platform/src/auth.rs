//! Sign-in, sessions, API-token authentication, rate limits, and emailed one-time links
//! (invitations and password resets).
//!
//! Session cookies and API tokens carry the tenant id in clear beside a 256-bit secret
//! (`<tenant>.<secret>`, `gx_<tenant>_<secret>`): the lookup is then by (tenant_id, digest),
//! which a tenant-distributed database routes to one shard.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::ctx::{ActorKind, Ctx};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::jobs;
use crate::perms::Permissions;
use crate::secret::{self, digest, random_secret};
use crate::time::now;
use crate::users::{self, User};

pub const SESSION_DAYS: i64 = 14;
pub const LINK_HOURS_INVITE: i64 = 24 * 7;
pub const LINK_HOURS_RESET: i64 = 2;

/// Slows password guessing without locking the owner out. Failed sign-ins are counted in a
/// sliding window, three ways:
/// - per account and client address: past `per_pair` failures that address may not try that
///   account again until the window passes (the guesser is stopped; the owner, signing in
///   from their own address, is not);
/// - per client address: past `per_ip` failures that address may not try any account;
/// - per account from anywhere: past twice `per_pair` failures each further attempt must wait
///   a delay that doubles with every failure, up to `max_delay` — guessing from many addresses
///   slows to a crawl while the owner, with the right password, waits seconds at most.
///
/// A right password clears the account's counts. Kept in memory: a restart forgets, several
/// nodes each count their own (documented trade-off).
pub struct Limiter {
    window: std::time::Duration,
    per_pair: u32,
    per_ip: u32,
    max_delay: std::time::Duration,
    hits: Mutex<HashMap<String, Hits>>,
}

#[derive(Clone, Copy)]
struct Hits {
    n: u32,
    since: Instant,
    last: Instant,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(5, 30, std::time::Duration::from_secs(15 * 60))
    }
}

impl Limiter {
    pub fn new(per_pair: u32, per_ip: u32, window: std::time::Duration) -> Self {
        Limiter {
            window,
            per_pair,
            per_ip,
            max_delay: std::time::Duration::from_secs(30),
            hits: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<Hits> {
        let hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        hits.get(key)
            .copied()
            .filter(|h| h.since.elapsed() < self.window)
    }

    fn fail(&self, key: String) {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > 100_000 {
            let w = self.window;
            hits.retain(|_, h| h.since.elapsed() < w);
        }
        let now = Instant::now();
        let e = hits.entry(key).or_insert(Hits {
            n: 0,
            since: now,
            last: now,
        });
        if e.since.elapsed() >= self.window {
            e.n = 0;
            e.since = now;
        }
        e.n += 1;
        e.last = now;
    }

    /// The delay an account's `n`-th failure imposes on the next attempt.
    fn delay(&self, n: u32) -> std::time::Duration {
        if n < 2 * self.per_pair {
            return std::time::Duration::ZERO;
        }
        let secs = 1u64 << (n - 2 * self.per_pair).min(16);
        std::time::Duration::from_secs(secs).min(self.max_delay)
    }

    pub fn blocked(&self, email: &str, ip: &str) -> bool {
        self.wait(email, ip).is_some()
    }

    /// How long an attempt for `email` from `ip` must wait, if it is blocked: until the window
    /// of a pair or an address over its limit ends, or the account's delay has passed —
    /// whichever is last.
    pub fn wait(&self, email: &str, ip: &str) -> Option<std::time::Duration> {
        let over = |key: String, limit: u32| {
            self.get(&key)
                .filter(|h| h.n >= limit)
                .map(|h| self.window.saturating_sub(h.since.elapsed()))
        };
        let account = self.get(&format!("a:{email}")).and_then(|h| {
            let d = self.delay(h.n);
            (h.last.elapsed() < d).then(|| d - h.last.elapsed())
        });
        [
            over(format!("p:{email}|{ip}"), self.per_pair),
            over(format!("i:{ip}"), self.per_ip),
            account,
        ]
        .into_iter()
        .flatten()
        .max()
    }

    pub fn record_failure(&self, email: &str, ip: &str) {
        self.fail(format!("a:{email}"));
        self.fail(format!("i:{ip}"));
        self.fail(format!("p:{email}|{ip}"));
    }

    pub fn clear(&self, email: &str) {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        hits.remove(&format!("a:{email}"));
        let pair = format!("p:{email}|");
        hits.retain(|k, _| !k.starts_with(&pair));
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::Limiter;
    use std::time::Duration;

    #[test]
    fn a_guesser_is_stopped_and_the_owner_is_not() {
        let l = Limiter::new(5, 30, Duration::from_secs(900));
        for _ in 0..5 {
            assert!(!l.blocked("a@x.cn", "6.6.6.6"));
            l.record_failure("a@x.cn", "6.6.6.6");
        }
        assert!(
            l.blocked("a@x.cn", "6.6.6.6"),
            "the guessing address is stopped"
        );
        assert!(
            !l.blocked("a@x.cn", "1.1.1.1"),
            "the owner's address is not"
        );
        for i in 0..5 {
            l.record_failure("a@x.cn", &format!("7.7.7.{i}"));
        }
        // Ten failures from many addresses: the account now waits a moment between attempts
        // from anywhere, open again once it passes — the owner is never locked out for long.
        assert!(l.blocked("a@x.cn", "1.1.1.1"));
        assert_eq!(l.delay(9), Duration::ZERO);
        assert_eq!(l.delay(10), Duration::from_secs(1));
        assert_eq!(l.delay(11), Duration::from_secs(2));
        assert_eq!(l.delay(40), Duration::from_secs(30), "capped");
        assert!(!l.blocked("b@x.cn", "1.1.1.1"), "other accounts unaffected");
        l.clear("a@x.cn");
        assert!(
            !l.blocked("a@x.cn", "6.6.6.6"),
            "a right password clears the counts"
        );
    }

    #[test]
    fn an_address_guessing_many_accounts_is_stopped() {
        let l = Limiter::new(5, 30, Duration::from_secs(900));
        for i in 0..30 {
            l.record_failure(&format!("u{i}@x.cn"), "6.6.6.6");
        }
        assert!(l.blocked("someone@x.cn", "6.6.6.6"));
        assert!(!l.blocked("someone@x.cn", "1.1.1.1"));
    }
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    tenant_id: Uuid,
    id: Uuid,
    password_hash: Option<String>,
}

/// A new session: the cookie value (shown once) and the user.
pub struct NewSession {
    pub cookie: String,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

/// Checks email and password. Failures are counted by [`Limiter`]: a guessing address is
/// stopped, the account's attempts are spaced out, the owner is never locked out for long. The
/// error never says whether the account exists.
pub async fn sign_in(
    db: &Db,
    limiter: &Limiter,
    email: &str,
    password: &str,
    ip: &str,
) -> Result<NewSession> {
    let email = email.trim().to_lowercase();
    if let Some(wait) = limiter.wait(&email, ip) {
        return Err(Error::rate_limited(wait));
    }
    let rows: Vec<LoginRow> = db
        .fetch_all(
            "SELECT tenant_id, id, password_hash FROM users WHERE email = $1 AND active = $2 AND deleted_at IS NULL ORDER BY tenant_id LIMIT 10",
            args![&email, true],
        )
        .await?;
    let mut found = None;
    if rows.is_empty() {
        secret::verify_password(password.to_owned(), None).await?;
    }
    for r in rows {
        if secret::verify_password(password.to_owned(), r.password_hash.clone()).await? {
            found = Some(r);
            break;
        }
    }
    let Some(user) = found else {
        limiter.record_failure(&email, ip);
        return Err(Error::Unauthorized);
    };
    limiter.clear(&email);
    let mut tx = db.begin().await?;
    let s = create_session(&mut tx, user.tenant_id, user.id).await?;
    let ctx = Ctx {
        user_id: Some(user.id),
        actor: ActorKind::Session,
        ..Ctx::system(user.tenant_id)
    };
    audit::record::<()>(&mut tx, &ctx, "sign_in", "users", Some(user.id), None, None).await?;
    tx.commit().await?;
    Ok(s)
}

pub(crate) async fn create_session(
    tx: &mut Tx,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<NewSession> {
    let secret = random_secret();
    let t = now();
    tx.execute(
        "INSERT INTO sessions (tenant_id, token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        args![tenant_id, digest(&secret), user_id, random_secret(), t, t + Duration::days(SESSION_DAYS)],
    )
    .await?;
    Ok(NewSession {
        cookie: format!("{}.{}", tenant_id.simple(), secret),
        tenant_id,
        user_id,
    })
}

#[derive(sqlx::FromRow)]
struct AuthRow {
    user_id: Uuid,
    team_id: Option<Uuid>,
    locale: Option<String>,
    tenant_locale: String,
    role_key: String,
    permissions: sqlx::types::Json<Permissions>,
    extra: Option<String>,
    last_used_at: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    user_name: String,
    tenant_name: String,
    time_zone: String,
}

/// A signed-in browser session: the context, its CSRF token, and what every page header shows,
/// all from one query.
#[derive(Debug, Clone)]
pub struct Session {
    pub ctx: Ctx,
    pub csrf: String,
    pub user_name: String,
    pub tenant_name: String,
    pub time_zone: String,
}

const AUTH_SELECT: &str = "SELECT u.id AS user_id, u.team_id, u.locale, t.locale AS tenant_locale, r.key AS role_key, r.permissions,
    u.name AS user_name, t.name AS tenant_name, t.time_zone, x.expires_at AS valid_until";
const AUTH_JOIN: &str = "JOIN users u ON u.tenant_id = x.tenant_id AND u.id = x.user_id
    JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
    JOIN tenants t ON t.id = u.tenant_id";

/// The query that authenticates a bearer token: binds tenant id, SHA-256 of the secret, now,
/// `true`. Public so the benchmark's floor runs exactly the same SQL.
pub fn token_sql() -> String {
    format!(
        "{AUTH_SELECT}, NULL AS extra, x.last_used_at FROM api_tokens x {AUTH_JOIN}
         WHERE x.tenant_id = $1 AND x.token_hash = $2 AND x.revoked_at IS NULL
           AND (x.expires_at IS NULL OR x.expires_at > $3) AND u.active = $4 AND u.deleted_at IS NULL"
    )
}

fn ctx_from(tenant_id: Uuid, row: AuthRow, actor: ActorKind) -> Ctx {
    Ctx {
        tenant_id,
        user_id: Some(row.user_id),
        team_id: row.team_id,
        role_key: row.role_key,
        perms: row.permissions.0,
        locale_saved: row.locale.is_some(),
        locale: row.locale.unwrap_or(row.tenant_locale),
        actor,
        request_id: None,
    }
}

/// Splits `<tenant>.<secret>` (cookie) or `gx_<tenant>_<secret>` (token).
fn split(value: &str, sep: char) -> Result<(Uuid, &str)> {
    let (t, s) = value.split_once(sep).ok_or(Error::Unauthorized)?;
    let tenant = Uuid::try_parse(t).map_err(|_| Error::Unauthorized)?;
    if s.is_empty() {
        return Err(Error::Unauthorized);
    }
    Ok((tenant, s))
}

/// How long a resolved caller may be reused without asking the database. Within one process a
/// change to the tables that say who a caller is (users, roles, teams, tenants, tokens,
/// sessions — [`crate::db`] sees every write to them) takes effect at once, whatever the age;
/// the bound matters only when another process changes them (a second app node, a command-line
/// `guanxi admin`): its change reaches this process within this long.
pub const CALLER_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Cached callers beyond this are dropped all at once (a cold start of the cache, not a leak).
const CACHE_MAX: usize = 10_000;

/// Resolved sessions and API tokens of one process, keyed by tenant, kind and the secret's
/// digest. An entry serves while the callers' generation it was read under is current
/// ([`Db`] bumps it after every committed write to those tables), it is younger than
/// [`CALLER_TTL`], and the session or token has not expired.
#[derive(Debug, Default)]
pub struct Cache {
    map: Mutex<HashMap<(Uuid, bool, String), Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    generation: u64,
    fetched: Instant,
    session: Session,
    valid_until: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl Cache {
    fn get(&self, key: &(Uuid, bool, String), generation: u64, t: DateTime<Utc>) -> Option<Cached> {
        let map = self.map.lock().ok()?;
        let c = map.get(key)?;
        (c.generation == generation
            && c.fetched.elapsed() < CALLER_TTL
            && c.valid_until.is_none_or(|v| v > t))
        .then(|| c.clone())
    }

    fn put(&self, key: (Uuid, bool, String), c: Cached) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CACHE_MAX && !map.contains_key(&key) {
                map.clear();
            }
            map.insert(key, c);
        }
    }

    fn used(&self, key: &(Uuid, bool, String), t: DateTime<Utc>) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(c) = map.get_mut(key) {
                c.last_used_at = Some(t);
            }
        }
    }
}

/// Resolves a caller through the cache: the statement `sql` builds reads the row when no live
/// entry serves (built only then: a hit formats nothing).
async fn resolve(
    db: &Db,
    key: (Uuid, bool, String),
    t: DateTime<Utc>,
    actor: ActorKind,
    sql: impl FnOnce() -> String,
) -> Result<Cached> {
    // The generation is read before the row: a write committed in between makes this entry
    // stale at once rather than cache what it replaced.
    let generation = db.callers_generation();
    if let Some(c) = db.auth_cache().get(&key, generation, t) {
        return Ok(c);
    }
    let row: AuthRow = db
        .fetch_optional(&sql(), args![key.0, key.2.clone(), t, true])
        .await?
        .ok_or(Error::Unauthorized)?;
    let c = Cached {
        generation,
        fetched: Instant::now(),
        valid_until: row.valid_until,
        last_used_at: row.last_used_at,
        session: Session {
            csrf: row.extra.clone().unwrap_or_default(),
            user_name: row.user_name.clone(),
            tenant_name: row.tenant_name.clone(),
            time_zone: row.time_zone.clone(),
            ctx: ctx_from(key.0, row, actor),
        },
    };
    db.auth_cache().put(key, c.clone());
    Ok(c)
}

/// Resolves a session cookie.
pub async fn session(db: &Db, cookie: &str) -> Result<Session> {
    let (tenant_id, secret) = split(cookie, '.')?;
    let sql = || {
        format!(
            "{AUTH_SELECT}, x.csrf_token AS extra, NULL AS last_used_at FROM sessions x {AUTH_JOIN}
             WHERE x.tenant_id = $1 AND x.token_hash = $2 AND x.expires_at > $3 AND u.active = $4 AND u.deleted_at IS NULL"
        )
    };
    let key = (tenant_id, false, digest(secret));
    Ok(resolve(db, key, now(), ActorKind::Session, sql)
        .await?
        .session)
}

/// Resolves a bearer API token.
pub async fn token(db: &Db, value: &str) -> Result<Ctx> {
    let rest = value.strip_prefix("gx_").ok_or(Error::Unauthorized)?;
    let (tenant_id, secret) = split(rest, '_')?;
    let t = now();
    let key = (tenant_id, true, digest(secret));
    let c = resolve(db, key.clone(), t, ActorKind::Token, token_sql).await?;
    // Record use at most once a minute: a write on every request would cap throughput.
    if c.last_used_at.is_none_or(|l| t - l > Duration::minutes(1)) {
        db.execute(
            "UPDATE api_tokens SET last_used_at = $1 WHERE tenant_id = $2 AND token_hash = $3",
            args![t, tenant_id, key.2.clone()],
        )
        .await?;
        db.auth_cache().used(&key, t);
    }
    Ok(c.session.ctx)
}

/// Ends one session (sign out).
pub async fn sign_out(db: &Db, cookie: &str) -> Result<()> {
    let (tenant_id, secret) = split(cookie, '.')?;
    db.execute(
        "DELETE FROM sessions WHERE tenant_id = $1 AND token_hash = $2",
        args![tenant_id, digest(secret)],
    )
    .await?;
    Ok(())
}

/// Ends every session of the signed-in user ("sign out everywhere"). API tokens stay.
/// Ends every session of the signed-in user; with `api_tokens`, revokes their API tokens too
/// (a lost laptop may hold both).
pub async fn sign_out_everywhere(db: &Db, ctx: &Ctx, api_tokens: bool) -> Result<()> {
    let user = ctx.user_id.ok_or(Error::Unauthorized)?;
    let mut tx = db.begin().await?;
    if api_tokens {
        revoke_all(&mut tx, ctx.tenant_id, user).await?;
    } else {
        tx.execute(
            "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
            args![ctx.tenant_id, user],
        )
        .await?;
    }
    audit::record(
        &mut tx,
        ctx,
        "sign_out_everywhere",
        "users",
        Some(user),
        None,
        Some(&serde_json::json!({ "api_tokens": api_tokens })),
    )
    .await?;
    tx.commit().await
}

/// Retires every unused one-time link of a user: issuing a new link, using one, or changing
/// the password by any other way leaves no older link working.
pub(crate) async fn retire_links(tx: &mut Tx, tenant_id: Uuid, user: Uuid) -> Result<()> {
    tx.execute(
        "UPDATE user_tokens SET used_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND used_at IS NULL",
        args![now(), tenant_id, user],
    )
    .await?;
    Ok(())
}

/// Ends every session and revokes every API token of a user (deactivation, password reset).
pub(crate) async fn revoke_all(tx: &mut Tx, tenant_id: Uuid, user: Uuid) -> Result<()> {
    tx.execute(
        "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
        args![tenant_id, user],
    )
    .await?;
    tx.execute(
        "UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL",
        args![now(), tenant_id, user],
    )
    .await?;
    Ok(())
}

/// Changes the signed-in user's password after checking the current one; other sessions end.
pub async fn change_password(
    db: &Db,
    ctx: &Ctx,
    current: &str,
    new: &str,
    keep_cookie: Option<&str>,
) -> Result<()> {
    let user = ctx.user_id.ok_or(Error::Unauthorized)?;
    secret::check_password("new_password", new)?;
    let (hash,): (Option<String>,) = db
        .fetch_one(
            "SELECT password_hash FROM users WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, user],
        )
        .await?;
    if !secret::verify_password(current.to_owned(), hash).await? {
        return Err(Error::field("current_password", "wrong_password"));
    }
    let new_hash = secret::hash_password(new.to_owned()).await?;
    let mut tx = db.begin().await?;
    retire_links(&mut tx, ctx.tenant_id, user).await?;
    tx.execute(
        "UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 WHERE tenant_id = $3 AND id = $4",
        args![new_hash, now(), ctx.tenant_id, user],
    )
    .await?;
    let keep = keep_cookie
        .and_then(|c| split(c, '.').ok())
        .map(|(_, s)| digest(s))
        .unwrap_or_default();
    tx.execute(
        "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND token_hash <> $3",
        args![ctx.tenant_id, user, keep],
    )
    .await?;
    audit::record::<()>(
        &mut tx,
        ctx,
        "change_password",
        "users",
        Some(user),
        None,
        None,
    )
    .await?;
    tx.commit().await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Invite,
    Reset,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Invite => "invite",
            LinkPurpose::Reset => "reset",
        }
    }
}

/// A one-time link to set a password: the URL (shown once) and when it stops working.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SignInLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Creates a one-time link for `user`, retiring the older ones, inside `tx`.
pub(crate) async fn new_link(
    tx: &mut Tx,
    tenant_id: Uuid,
    user_id: Uuid,
    purpose: LinkPurpose,
    base_url: &str,
) -> Result<SignInLink> {
    retire_links(tx, tenant_id, user_id).await?;
    let secret = random_secret();
    let t = now();
    let hours = if purpose == LinkPurpose::Invite {
        LINK_HOURS_INVITE
    } else {
        LINK_HOURS_RESET
    };
    let expires_at = t + Duration::hours(hours);
    tx.execute(
        "INSERT INTO user_tokens (tenant_id, token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        args![tenant_id, digest(&secret), user_id, purpose.as_str(), t, expires_at],
    )
    .await?;
    Ok(SignInLink {
        url: format!(
            "{base_url}/password?token={}.{}",
            tenant_id.simple(),
            secret
        ),
        expires_at,
    })
}

/// Creates a one-time link for `user` and queues the email carrying it, inside `tx`.
pub(crate) async fn queue_user_link(
    tx: &mut Tx,
    tenant_id: Uuid,
    user: &User,
    purpose: LinkPurpose,
    base_url: &str,
) -> Result<()> {
    let link = new_link(tx, tenant_id, user.id, purpose, base_url)
        .await?
        .url;
    let (tenant_name, tenant_locale): (String, String) = tx
        .fetch_one(
            "SELECT name, locale FROM tenants WHERE id = $1",
            args![tenant_id],
        )
        .await?;
    let zh = user
        .locale
        .as_deref()
        .unwrap_or(&tenant_locale)
        .starts_with("zh");
    let (subject, body) = match (purpose, zh) {
        (LinkPurpose::Invite, true) => (
            format!("{tenant_name} 邀请您使用关系 CRM"),
            format!("{}，您好：\n\n{tenant_name} 邀请您加入关系 CRM。请在 7 天内打开以下链接设置密码：\n\n{link}\n", user.name),
        ),
        (LinkPurpose::Invite, false) => (
            format!("{tenant_name} invited you to Guanxi CRM"),
            format!("Hello {},\n\n{tenant_name} invited you to Guanxi CRM. Open this link within 7 days to choose your password:\n\n{link}\n", user.name),
        ),
        (LinkPurpose::Reset, true) => (
            "重置您的关系 CRM 密码".to_owned(),
            format!("{}，您好：\n\n请在 2 小时内打开以下链接设置新密码：\n\n{link}\n\n如果不是您本人操作，请忽略此邮件。\n", user.name),
        ),
        (LinkPurpose::Reset, false) => (
            "Reset your Guanxi CRM password".to_owned(),
            format!("Hello {},\n\nOpen this link within 2 hours to choose a new password:\n\n{link}\n\nIf you did not ask for this, ignore this email.\n", user.name),
        ),
    };
    jobs::enqueue(
        tx,
        tenant_id,
        jobs::KIND_EMAIL,
        &jobs::Email {
            to: user.email.clone(),
            subject,
            text: body,
            message_id: None,
            in_reply_to: None,
            reply_to: None,
            then: None,
            attachments: Vec::new(),
        },
    )
    .await
}

/// "Forgot password": queues a reset link for every active account with this email. Always
/// succeeds, so the answer does not reveal whether the address is known.
pub async fn request_reset(db: &Db, email: &str, base_url: &str) -> Result<()> {
    let email = email.trim().to_lowercase();
    let ids: Vec<(Uuid, Uuid)> =
        db.fetch_all("SELECT tenant_id, id FROM users WHERE email = $1 AND active = $2 AND deleted_at IS NULL", args![&email, true]).await?;
    for (tenant_id, id) in ids {
        let mut tx = db.begin().await?;
        let user = users::load(&mut tx, tenant_id, id).await?;
        queue_user_link(&mut tx, tenant_id, &user, LinkPurpose::Reset, base_url).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Uses a one-time link to set a password; ends the user's other sessions and signs them in.
pub async fn use_link(db: &Db, link: &str, password: &str) -> Result<NewSession> {
    let (tenant_id, secret) =
        split(link, '.').map_err(|_| Error::field("token", "invalid_link"))?;
    secret::check_password("password", password)?;
    let hash = secret::hash_password(password.to_owned()).await?;
    let t = now();
    let mut tx = db.begin().await?;
    let row: Option<(Uuid, String)> = tx
        .fetch_optional(
            "SELECT user_id, purpose FROM user_tokens WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3",
            args![tenant_id, digest(secret), t],
        )
        .await?;
    let (user_id, purpose) = row.ok_or_else(|| Error::field("token", "invalid_link"))?;
    let n = tx
        .execute(
            "UPDATE user_tokens SET used_at = $1 WHERE tenant_id = $2 AND token_hash = $3 AND used_at IS NULL",
            args![t, tenant_id, digest(secret)],
        )
        .await?;
    if n != 1 {
        return Err(Error::field("token", "invalid_link"));
    }
    let active: i64 = tx
        .scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL", args![tenant_id, user_id, true])
        .await?;
    if active == 0 {
        return Err(Error::field("token", "invalid_link"));
    }
    retire_links(&mut tx, tenant_id, user_id).await?;
    tx.execute(
        "UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 WHERE tenant_id = $3 AND id = $4",
        args![hash, t, tenant_id, user_id],
    )
    .await?;
    tx.execute(
        "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
        args![tenant_id, user_id],
    )
    .await?;
    let ctx = Ctx {
        user_id: Some(user_id),
        actor: ActorKind::Session,
        ..Ctx::system(tenant_id)
    };
    let action = if purpose == "invite" {
        "accept_invite"
    } else {
        "reset_password"
    };
    audit::record::<()>(&mut tx, &ctx, action, "users", Some(user_id), None, None).await?;
    let s = create_session(&mut tx, tenant_id, user_id).await?;
    tx.commit().await?;
    Ok(s)
}

/// Builds the context of a user for the CLI and tests (no session).
pub async fn ctx_for_user(db: &Db, tenant_id: Uuid, user_id: Uuid) -> Result<Ctx> {
    let row: AuthRow = db
        .fetch_one(
            &format!(
                "{AUTH_SELECT}, NULL AS extra, NULL AS last_used_at FROM (SELECT tenant_id, id AS user_id, NULL AS expires_at FROM users) x {AUTH_JOIN}
                 WHERE x.tenant_id = $1 AND x.user_id = $2"
            ),
            args![tenant_id, user_id],
        )
        .await?;
    Ok(ctx_from(tenant_id, row, ActorKind::System))
}

/// The context of a user acting through a link emailed to them (an approval decision): their
/// role's permissions, `email_link` in the audit. An inactive or deleted user has none.
pub async fn ctx_for_link(db: &Db, tenant_id: Uuid, user_id: Uuid) -> Result<Ctx> {
    let row: Option<AuthRow> = db
        .fetch_optional(
            &format!(
                "{AUTH_SELECT}, NULL AS extra, NULL AS last_used_at FROM
                     (SELECT tenant_id, id AS user_id, NULL AS expires_at FROM users WHERE active = $3 AND deleted_at IS NULL) x
                 {AUTH_JOIN} WHERE x.tenant_id = $1 AND x.user_id = $2"
            ),
            args![tenant_id, user_id, true],
        )
        .await?;
    row.map(|r| ctx_from(tenant_id, r, ActorKind::Link))
        .ok_or(Error::NotFound)
}

/// Opens a session for a user who just proved who they are another way (sign-up).
pub async fn start_session(db: &Db, tenant_id: Uuid, user_id: Uuid) -> Result<NewSession> {
    let mut tx = db.begin().await?;
    let s = create_session(&mut tx, tenant_id, user_id).await?;
    tx.commit().await?;
    Ok(s)
}
