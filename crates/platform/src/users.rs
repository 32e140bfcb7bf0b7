//! Users: the people of a tenant who sign in. The first resource guarded by permissions:
//! `users.read` with scope own (self), team (same team) or all.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::ctx::Ctx;
use crate::db::{Db, Sql, Tx};
use crate::error::{Error, Errors, Result};
use crate::page::{Page, PageReq, SortField, SortKind};
use crate::perms::Action;
use crate::time::{new_id, now};
use crate::{secret, validate, version};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role_id: Uuid,
    /// The role's key: `admin`, `manager`, `sales`, `marketing`, `service`, `read_only` or a
    /// custom role's key.
    pub role: String,
    pub team_id: Option<Uuid>,
    /// Preferred language; `null` follows the browser.
    pub locale: Option<String>,
    /// A deactivated user cannot sign in; their sessions and tokens stop working at once.
    pub active: bool,
    /// False until an invited user sets a password.
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: Option<String>,
    pub name: Option<String>,
    /// Omit to invite: the user gets an email with a link to choose a password.
    pub password: Option<String>,
    pub role_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub locale: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// The version you read (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub role_id: Option<Uuid>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub team_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Part of the name or email.
    pub q: Option<String>,
    pub role_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub active: Option<bool>,
    /// `name`, `email` or `created_at`; prefix `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub(crate) const SELECT: &str =
    "SELECT u.id, u.email, u.name, u.role_id, r.key AS role, u.team_id, u.locale, u.active,
    (u.password_hash IS NOT NULL) AS has_password, u.created_at, u.updated_at, u.version
    FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id";

const SORTS: &[SortField] = &[
    ("name", "u.name", SortKind::Text),
    ("email", "u.email", SortKind::Text),
    ("created_at", "u.created_at", SortKind::Time),
];

pub async fn list(db: &Db, ctx: &Ctx, f: &UserFilter) -> Result<Page<User>> {
    let scope = ctx.require("users", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: f.sort.clone(),
    };
    let sort = page.sort(SORTS)?;
    let mut q = Sql::new(SELECT);
    q.push(" WHERE u.tenant_id = ")
        .bind(ctx.tenant_id)
        .push(" AND u.deleted_at IS NULL");
    // A user "owns" their own row.
    ctx.scope_sql(&mut q, scope, "u.id", "u.team_id");
    if let Some(s) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = format!(
            "%{}%",
            s.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q.push(" AND (LOWER(u.name) LIKE ")
            .bind(pat.clone())
            .push(" ESCAPE '\\' OR u.email LIKE ")
            .bind(pat)
            .push(" ESCAPE '\\')");
    }
    if let Some(r) = f.role_id {
        q.push(" AND u.role_id = ").bind(r);
    }
    if let Some(t) = f.team_id {
        q.push(" AND u.team_id = ").bind(t);
    }
    if let Some(a) = f.active {
        q.push(" AND u.active = ").bind(a);
    }
    let limit = page.apply(&mut q, &sort, "u.id")?;
    let rows: Vec<User> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |u| {
        let v = match &*sort.field {
            "email" => u.email.clone(),
            "created_at" => crate::db::sqlite_time(&u.created_at),
            _ => u.name.clone(),
        };
        sort.cursor(v, u.id)
    }))
}

/// Reads one user inside a transaction, with no permission check (callers check).
pub(crate) async fn load(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<User> {
    tx.fetch_one(&by_id_sql(), args![tenant_id, id]).await
}

/// One live user by tenant id and id. Public so the benchmark's floor runs the same SQL.
pub fn by_id_sql() -> String {
    format!("{SELECT} WHERE u.tenant_id = $1 AND u.id = $2 AND u.deleted_at IS NULL")
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<User> {
    let scope = ctx.require("users", Action::Read)?;
    let u: User = db.fetch_one(&by_id_sql(), args![ctx.tenant_id, id]).await?;
    // Outside the caller's scope looks exactly like absent.
    if !ctx.covers(scope, Some(u.id), u.team_id) {
        return Err(Error::NotFound);
    }
    Ok(u)
}

/// Validates a new user; returns (email, name, locale).
fn check_new(input: &NewUser) -> Result<(String, String, Option<String>)> {
    let mut errs = Errors::default();
    let email = match errs.required("email", &input.email) {
        Some(e) => validate::email(e).map_err(|c| errs.add("email", c)).ok(),
        None => None,
    };
    let name = match errs.required("name", &input.name) {
        Some(n) => validate::name(n).map_err(|c| errs.add("name", c)).ok(),
        None => None,
    };
    if input.role_id.is_none() {
        errs.add("role_id", "required");
    }
    let locale = input
        .locale
        .as_deref()
        .map(validate::locale)
        .transpose()
        .map_err(|c| errs.add("locale", c))
        .ok()
        .flatten();
    if let Some(p) = &input.password {
        if let Err(Error::Validation(v)) = secret::check_password("password", p) {
            errs.0.extend(v);
        }
    }
    errs.finish()?;
    Ok((email.unwrap_or_default(), name.unwrap_or_default(), locale))
}

/// Inserts a validated user inside `tx` with an already-computed password hash.
pub(crate) async fn insert(
    tx: &mut Tx,
    ctx: &Ctx,
    input: NewUser,
    hash: Option<String>,
) -> Result<User> {
    let (email, name, locale) = check_new(&input)?;
    let mut errs = Errors::default();
    let role_ok: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            args![ctx.tenant_id, input.role_id],
        )
        .await?;
    if role_ok == 0 {
        errs.add("role_id", "unknown");
    }
    if let Some(team) = input.team_id {
        let ok: i64 = tx
            .scalar("SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL", args![ctx.tenant_id, team])
            .await?;
        if ok == 0 {
            errs.add("team_id", "unknown");
        }
    }
    let taken: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND email = $2",
            args![ctx.tenant_id, &email],
        )
        .await?;
    if taken > 0 {
        errs.add("email", "taken");
    }
    errs.finish()?;
    let id = new_id();
    let t = now();
    tx.execute(
        "INSERT INTO users (tenant_id, id, email, name, password_hash, role_id, team_id, locale, active,
                            created_at, updated_at, created_by, updated_by, version, custom)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14)",
        args![ctx.tenant_id, id, &email, &name, hash, input.role_id, input.team_id, locale, true, t, t, ctx.user_id, ctx.user_id, serde_json::json!({})],
    )
    .await?;
    let user = load(tx, ctx.tenant_id, id).await?;
    audit::record(tx, ctx, "create", "users", Some(id), None, Some(&user)).await?;
    Ok(user)
}

/// Creates a user. Without a password the user is invited: an email with a link to set one is
/// queued in the same transaction.
pub async fn create(db: &Db, ctx: &Ctx, base_url: &str, input: NewUser) -> Result<User> {
    ctx.require("users", Action::Create)?;
    check_new(&input)?;
    let hash = match &input.password {
        Some(p) => Some(secret::hash_password(p.clone()).await?),
        None => None,
    };
    let invite = hash.is_none();
    let mut tx = db.begin().await?;
    let user = insert(&mut tx, ctx, input, hash).await?;
    if invite {
        crate::auth::queue_user_link(
            &mut tx,
            ctx.tenant_id,
            &user,
            crate::auth::LinkPurpose::Invite,
            base_url,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// Sends an invited user a fresh invitation link (the first one expired or got lost). Only for
/// active users who have not chosen a password yet.
pub async fn resend_invitation(db: &Db, ctx: &Ctx, base_url: &str, id: Uuid) -> Result<()> {
    let scope = ctx.require("users", Action::Update)?;
    let mut tx = db.begin().await?;
    let user = load(&mut tx, ctx.tenant_id, id).await?;
    if !ctx.covers(scope, Some(user.id), user.team_id) {
        return Err(Error::NotFound);
    }
    if !user.active || user.has_password {
        return Err(Error::Conflict(
            "only an active user who has not set a password yet can be invited".into(),
        ));
    }
    crate::auth::queue_user_link(
        &mut tx,
        ctx.tenant_id,
        &user,
        crate::auth::LinkPurpose::Invite,
        base_url,
    )
    .await?;
    audit::record::<User>(&mut tx, ctx, "invite", "users", Some(id), None, None).await?;
    tx.commit().await
}

/// Loads a user the caller may change (users `update` scope), for an admin action on them.
async fn load_for_admin(tx: &mut Tx, ctx: &Ctx, id: Uuid) -> Result<User> {
    let scope = ctx.require("users", Action::Update)?;
    let user = load(tx, ctx.tenant_id, id).await?;
    if !ctx.covers(scope, Some(user.id), user.team_id) {
        return Err(Error::NotFound);
    }
    if !user.active {
        return Err(Error::Conflict(
            "the user is deactivated; activate them first".into(),
        ));
    }
    Ok(user)
}

/// An admin sets a user's password (no email needed): their sessions end and their one-time
/// links stop working; their API tokens stay. Audited, the password never recorded.
pub async fn set_password(db: &Db, ctx: &Ctx, id: Uuid, password: &str) -> Result<()> {
    // An absent user is a 404 whatever the body says.
    get(db, ctx, id).await?;
    secret::check_password("password", password)?;
    let hash = secret::hash_password(password.to_owned()).await?;
    let mut tx = db.begin().await?;
    let user = load_for_admin(&mut tx, ctx, id).await?;
    crate::auth::retire_links(&mut tx, ctx.tenant_id, user.id).await?;
    tx.execute(
        "UPDATE users SET password_hash = $1, updated_at = $2, updated_by = $3, version = version + 1
         WHERE tenant_id = $4 AND id = $5",
        args![hash, now(), ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    tx.execute(
        "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    audit::record::<User>(&mut tx, ctx, "set_password", "users", Some(id), None, None).await?;
    tx.commit().await
}

/// An admin creates a one-time sign-in link for a user and gets it back to pass on by hand (a
/// chat message, a phone call) — no SMTP needed. It works like an emailed reset (or invitation,
/// for a user without a password) link, and retires the older ones.
pub async fn sign_in_link(
    db: &Db,
    ctx: &Ctx,
    base_url: &str,
    id: Uuid,
) -> Result<crate::auth::SignInLink> {
    let mut tx = db.begin().await?;
    let user = load_for_admin(&mut tx, ctx, id).await?;
    let purpose = if user.has_password {
        crate::auth::LinkPurpose::Reset
    } else {
        crate::auth::LinkPurpose::Invite
    };
    let link = crate::auth::new_link(&mut tx, ctx.tenant_id, user.id, purpose, base_url).await?;
    audit::record::<User>(&mut tx, ctx, "sign_in_link", "users", Some(id), None, None).await?;
    tx.commit().await?;
    Ok(link)
}

/// Counts active admins other than `except`.
async fn other_admins(tx: &mut Tx, tenant_id: Uuid, except: Uuid) -> Result<i64> {
    tx.scalar(
        "SELECT COUNT(*) FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
         WHERE u.tenant_id = $1 AND u.id <> $2 AND u.active = $3 AND u.deleted_at IS NULL AND r.key = 'admin'",
        args![tenant_id, except, true],
    )
    .await
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    p: UserPatch,
) -> Result<User> {
    let scope = ctx.require("users", Action::Update)?;
    let expected = version::expected(if_match, p.version)?;
    let mut errs = Errors::default();
    let name = p
        .name
        .as_deref()
        .map(validate::name)
        .transpose()
        .map_err(|c| errs.add("name", c))
        .ok()
        .flatten();
    let email = p
        .email
        .as_deref()
        .map(validate::email)
        .transpose()
        .map_err(|c| errs.add("email", c))
        .ok()
        .flatten();
    let locale = match &p.locale {
        Some(Some(l)) => validate::locale(l)
            .map(|l| Some(Some(l)))
            .map_err(|c| errs.add("locale", c))
            .ok()
            .flatten(),
        Some(None) => Some(None),
        None => None,
    };
    errs.finish()?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    if !ctx.covers(scope, Some(before.id), before.team_id) {
        return Err(Error::NotFound);
    }
    version::check(expected, before.version)?;
    let mut errs = Errors::default();
    if let Some(r) = p.role_id {
        let key: Option<(String,)> = tx
            .fetch_optional(
                "SELECT key FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                args![ctx.tenant_id, r],
            )
            .await?;
        match key {
            None => errs.add("role_id", "unknown"),
            Some((k,))
                if before.role == "admin"
                    && k != "admin"
                    && other_admins(&mut tx, ctx.tenant_id, id).await? == 0 =>
            {
                errs.add("role_id", "last_admin")
            }
            Some(_) => {}
        }
    }
    if let Some(Some(team)) = p.team_id {
        let ok: i64 = tx
            .scalar("SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL", args![ctx.tenant_id, team])
            .await?;
        if ok == 0 {
            errs.add("team_id", "unknown");
        }
    }
    if p.active == Some(false) && before.active {
        if Some(id) == ctx.user_id {
            errs.add("active", "cannot_deactivate_self");
        } else if before.role == "admin" && other_admins(&mut tx, ctx.tenant_id, id).await? == 0 {
            errs.add("active", "last_admin");
        }
    }
    if let Some(e) = &email {
        let taken: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND email = $2 AND id <> $3",
                args![ctx.tenant_id, e, id],
            )
            .await?;
        if taken > 0 {
            errs.add("email", "taken");
        }
    }
    errs.finish()?;
    version::update(
        &mut tx,
        version::Row {
            table: "users",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, email = $2, role_id = $3, team_id = $4, locale = $5, active = $6,
                 updated_at = $7, updated_by = $8",
        args![
            name.unwrap_or(before.name.clone()),
            email.unwrap_or(before.email.clone()),
            p.role_id.unwrap_or(before.role_id),
            p.team_id.unwrap_or(before.team_id),
            locale.unwrap_or(before.locale.clone()),
            p.active.unwrap_or(before.active),
            now(),
            ctx.user_id
        ],
    )
    .await?;
    if p.active == Some(false) {
        // Deactivation ends every session and token at once.
        crate::auth::revoke_all(&mut tx, ctx.tenant_id, id).await?;
    }
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "users",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The caller's own record: always readable, whatever the role.
pub async fn get_self(db: &Db, ctx: &Ctx, id: Uuid) -> Result<User> {
    if ctx.user_id != Some(id) {
        return get(db, ctx, id).await;
    }
    db.fetch_one(&by_id_sql(), args![ctx.tenant_id, id]).await
}

/// The caller changes their own name or language (no `users.update` permission needed).
/// `locale: Some(None)` clears the saved language so the browser's is used.
pub async fn update_self(
    db: &Db,
    ctx: &Ctx,
    name: Option<String>,
    locale: Option<Option<String>>,
) -> Result<User> {
    let id = ctx.user_id.ok_or(Error::Unauthorized)?;
    let mut errs = Errors::default();
    let name = name
        .as_deref()
        .map(validate::name)
        .transpose()
        .map_err(|c| errs.add("name", c))
        .ok()
        .flatten();
    let locale = match locale {
        Some(Some(l)) => validate::locale(&l)
            .map(|l| Some(Some(l)))
            .map_err(|c| errs.add("locale", c))
            .ok()
            .flatten(),
        other => other,
    };
    errs.finish()?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    tx.execute(
        "UPDATE users SET name = $1, locale = $2, updated_at = $3, updated_by = $4, version = version + 1 WHERE tenant_id = $5 AND id = $6",
        args![name.unwrap_or(before.name.clone()), locale.unwrap_or(before.locale.clone()), now(), ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "users",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
