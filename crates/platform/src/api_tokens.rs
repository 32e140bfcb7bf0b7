//! API tokens for integrations: shown once at creation, stored as a SHA-256 digest, revocable.
//! A token acts as its user, with the user's role.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::ctx::Ctx;
use crate::db::{Db, Sql};
use crate::error::{Error, Errors, Result};
use crate::page::{Page, PageReq};
use crate::perms::{Action, Scope};
use crate::secret::{digest, random_secret};
use crate::time::{new_id, now};
use crate::validate;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ApiToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The token as created: `token` is shown this once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    /// Send as `Authorization: Bearer <token>`.
    pub secret: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: Option<String>,
    /// Days until it stops working (1–3650); omit for no expiry.
    pub expires_in_days: Option<i64>,
}

const COLS: &str = "id, user_id, name, prefix, created_at, last_used_at, expires_at, revoked_at";

/// Creates a token for the signed-in user (or, from the CLI, for `ctx.user_id`).
pub async fn create(db: &Db, ctx: &Ctx, input: NewToken) -> Result<CreatedToken> {
    ctx.require("api_tokens", Action::Create)?;
    let user_id = ctx.user_id.ok_or(Error::Forbidden)?;
    let mut errs = Errors::default();
    let name = errs
        .required("name", &input.name)
        .and_then(|n| validate::name(n).map_err(|c| errs.add("name", c)).ok());
    if let Some(d) = input.expires_in_days {
        if !(1..=3650).contains(&d) {
            errs.add("expires_in_days", "out_of_range");
        }
    }
    errs.finish()?;
    let part = random_secret();
    let hashed = digest(&part);
    let secret = format!("gx_{}_{}", ctx.tenant_id.simple(), part);
    let t = now();
    let token = ApiToken {
        id: new_id(),
        user_id,
        name: name.unwrap_or_default(),
        prefix: secret.chars().take(12).collect(),
        created_at: t,
        last_used_at: None,
        expires_at: input.expires_in_days.map(|d| t + Duration::days(d)),
        revoked_at: None,
    };
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO api_tokens (tenant_id, id, user_id, name, token_hash, prefix, created_at, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![ctx.tenant_id, token.id, user_id, &token.name, hashed, &token.prefix, t, ctx.user_id, token.expires_at],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "api_tokens",
        Some(token.id),
        None,
        Some(&token),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedToken { token, secret })
}

fn scoped(ctx: &Ctx, scope: Scope, q: &mut Sql) {
    if scope != Scope::All {
        // Tokens are personal: own and team scope both mean the caller's own.
        q.push(" AND user_id = ").bind(ctx.user_id);
    }
}

pub async fn list(
    db: &Db,
    ctx: &Ctx,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<Page<ApiToken>> {
    let scope = ctx.require("api_tokens", Action::Read)?;
    let page = PageReq {
        limit,
        cursor,
        sort: None,
    };
    let mut q = Sql::new(&format!("SELECT {COLS} FROM api_tokens WHERE tenant_id = "));
    q.bind(ctx.tenant_id);
    scoped(ctx, scope, &mut q);
    let limit = page.limit()?;
    if let Some(c) = page.cursor_id()? {
        q.push(" AND id < ").bind(c);
    }
    q.push(" ORDER BY id DESC LIMIT ").bind(limit + 1);
    Ok(Page::from_rows(
        db.fetch_sql(q).await?,
        limit,
        |t: &ApiToken| t.id.to_string(),
    ))
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<ApiToken> {
    let scope = ctx.require("api_tokens", Action::Read)?;
    let mut q = Sql::new(&format!("SELECT {COLS} FROM api_tokens WHERE tenant_id = "));
    q.bind(ctx.tenant_id).push(" AND id = ").bind(id);
    scoped(ctx, scope, &mut q);
    db.fetch_sql::<ApiToken>(q)
        .await?
        .pop()
        .ok_or(Error::NotFound)
}

/// Revokes a token; it stops working at once. Revoking twice is harmless.
pub async fn revoke(db: &Db, ctx: &Ctx, id: Uuid) -> Result<ApiToken> {
    let scope = ctx.require("api_tokens", Action::Delete)?;
    let before = get(db, ctx, id).await?;
    if scope != Scope::All && Some(before.user_id) != ctx.user_id {
        return Err(Error::NotFound);
    }
    let mut tx = db.begin().await?;
    let t = now();
    tx.execute(
        "UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
        args![t, ctx.tenant_id, id],
    )
    .await?;
    let after = ApiToken {
        revoked_at: before.revoked_at.or(Some(t)),
        ..before.clone()
    };
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "api_tokens",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
