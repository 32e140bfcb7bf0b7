//! Roles: built-in (admin, manager, sales, marketing, service, read-only; fixed) and custom
//! roles an admin defines as module × action → scope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::ctx::Ctx;
use crate::db::{Db, Tx};
use crate::error::{Error, Errors, Result};
use crate::page::Page;
use crate::perms::{self, Action, Permissions};
use crate::time::{new_id, now};
use crate::{validate, version};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Role {
    pub id: Uuid,
    /// Stable key used in code and the CLI (`admin`, `sales`, … or a custom key).
    pub key: String,
    pub name: String,
    /// Built-in roles cannot be changed or deleted.
    pub builtin: bool,
    /// module → action → scope (`own`, `team`, `all`).
    #[schema(value_type = Object)]
    pub permissions: sqlx::types::Json<Permissions>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// Required on update (or `If-Match`).
    pub version: Option<i64>,
    /// Lower-case letters, digits and `_`; set on create only.
    pub key: Option<String>,
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub permissions: Option<Permissions>,
}

const COLS: &str = "id, key, name, builtin, permissions, created_at, updated_at, version";

pub async fn list(
    db: &Db,
    ctx: &Ctx,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<Page<Role>> {
    ctx.require("roles", Action::Read)?;
    Page::by_id(
        db,
        &format!("SELECT {COLS} FROM roles WHERE tenant_id = $1 AND deleted_at IS NULL"),
        args![ctx.tenant_id],
        limit,
        cursor,
        |r: &Role| r.id,
    )
    .await
}

async fn load(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Role> {
    tx.fetch_one(
        &format!(
            "SELECT {COLS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        ),
        args![tenant_id, id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Role> {
    ctx.require("roles", Action::Read)?;
    db.fetch_one(
        &format!(
            "SELECT {COLS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        ),
        args![ctx.tenant_id, id],
    )
    .await
}

pub async fn by_key(db: &Db, tenant_id: Uuid, key: &str) -> Result<Role> {
    db.fetch_one(
        &format!(
            "SELECT {COLS} FROM roles WHERE tenant_id = $1 AND key = $2 AND deleted_at IS NULL"
        ),
        args![tenant_id, key],
    )
    .await
}

fn check(input: &RoleInput, errs: &mut Errors) -> (Option<String>, Option<serde_json::Value>) {
    let name = input
        .name
        .as_deref()
        .map(validate::name)
        .transpose()
        .map_err(|c| errs.add("name", c))
        .ok()
        .flatten();
    let perms = match &input.permissions {
        Some(p) => match perms::validate(p) {
            Ok(()) => serde_json::to_value(p).ok(),
            Err(m) => {
                errs.add(&format!("permissions.{m}"), "unknown_module");
                None
            }
        },
        None => None,
    };
    (name, perms)
}

pub async fn create(db: &Db, ctx: &Ctx, input: RoleInput) -> Result<Role> {
    ctx.require("roles", Action::Create)?;
    let mut errs = Errors::default();
    let key = errs.required("key", &input.key).map(str::to_owned);
    if let Some(k) = &key {
        if k.len() > 40
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            errs.add("key", "invalid_key");
        }
    }
    if input.name.is_none() {
        errs.add("name", "required");
    }
    let (name, perms) = check(&input, &mut errs);
    errs.finish()?;
    let mut tx = db.begin().await?;
    let key = key.unwrap_or_default();
    let taken: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM roles WHERE tenant_id = $1 AND key = $2",
            args![ctx.tenant_id, &key],
        )
        .await?;
    if taken > 0 {
        return Err(Error::field("key", "taken"));
    }
    let id = new_id();
    let t = now();
    tx.execute(
        "INSERT INTO roles (tenant_id, id, key, name, builtin, permissions, created_at, updated_at, created_by, updated_by, version, custom)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11)",
        args![
            ctx.tenant_id,
            id,
            &key,
            name.unwrap_or_default(),
            false,
            perms.unwrap_or_else(|| serde_json::json!({})),
            t,
            t,
            ctx.user_id,
            ctx.user_id,
            serde_json::json!({})
        ],
    )
    .await?;
    let role = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(&mut tx, ctx, "create", "roles", Some(id), None, Some(&role)).await?;
    tx.commit().await?;
    Ok(role)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: RoleInput,
) -> Result<Role> {
    ctx.require("roles", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut errs = Errors::default();
    if input.key.is_some() {
        errs.add("key", "read_only");
    }
    let (name, perms) = check(&input, &mut errs);
    errs.finish()?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    if before.builtin {
        return Err(Error::Conflict("built-in roles cannot be changed".into()));
    }
    version::check(expected, before.version)?;
    version::update(
        &mut tx,
        version::Row {
            table: "roles",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, permissions = $2, updated_at = $3, updated_by = $4",
        args![
            name.unwrap_or(before.name.clone()),
            perms
                .unwrap_or_else(|| serde_json::to_value(&before.permissions.0).unwrap_or_default()),
            now(),
            ctx.user_id
        ],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "roles",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a custom role no user holds.
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    ctx.require("roles", Action::Delete)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    if before.builtin {
        return Err(Error::Conflict("built-in roles cannot be deleted".into()));
    }
    let holders: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role_id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
    if holders > 0 {
        return Err(Error::Conflict("users still hold this role".into()));
    }
    tx.execute(
        "UPDATE roles SET deleted_at = $1, updated_at = $1, version = version + 1 WHERE tenant_id = $2 AND id = $3",
        args![now(), ctx.tenant_id, id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "roles",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}
