//! Tenants: a company using Guanxi. Creating one also creates its built-in roles and first
//! admin, in one transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::ctx::Ctx;
use crate::db::{Db, Tx};
use crate::error::{Error, Errors, Result};
use crate::perms::{builtin_permissions, Action, BUILTIN_ROLES};
use crate::time::{new_id, now};
use crate::users::{self, NewUser, User};
use crate::{validate, version};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    /// IANA time zone used for display, business hours and SLA clocks.
    pub time_zone: String,
    /// ISO 4217 default currency.
    pub currency: String,
    /// Default language for new users: `zh-CN`, `zh-TW` or `en`.
    pub locale: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub version: Option<i64>,
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub currency: Option<String>,
    pub locale: Option<String>,
}

const COLS: &str = "id, name, time_zone, currency, locale, created_at, updated_at, version";

pub struct NewTenant {
    pub name: String,
    pub admin_email: String,
    pub admin_name: Option<String>,
    pub admin_password: String,
    pub locale: Option<String>,
}

/// Creates a tenant with its built-in roles and first admin. Returns both.
pub async fn create(db: &Db, input: NewTenant) -> Result<(Tenant, User)> {
    let mut errs = Errors::default();
    let name = validate::name(&input.name)
        .map_err(|c| errs.add("name", c))
        .ok();
    let locale = match &input.locale {
        Some(l) => validate::locale(l).map_err(|c| errs.add("locale", c)).ok(),
        None => Some("zh-CN".to_owned()),
    };
    // The admin's fields are checked by users::create; check the password early so a bad one
    // leaves no half-made tenant behind (the transaction would roll back anyway).
    if let Err(Error::Validation(v)) =
        crate::secret::check_password("admin_password", &input.admin_password)
    {
        errs.0.extend(v);
    }
    if let Err(c) = validate::email(&input.admin_email) {
        errs.add("admin_email", c);
    }
    errs.finish()?;
    let (name, locale) = (name.unwrap_or_default(), locale.unwrap_or_default());
    let t = now();
    let id = new_id();
    let tenant = Tenant {
        id,
        name,
        time_zone: "Asia/Shanghai".into(),
        currency: "CNY".into(),
        locale,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let hash = crate::secret::hash_password(input.admin_password.clone()).await?;
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO tenants (id, name, time_zone, currency, locale, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
        args![id, &tenant.name, &tenant.time_zone, &tenant.currency, &tenant.locale, t, t],
    )
    .await?;
    let ctx = Ctx::system(id);
    let mut admin_role = None;
    for (key, en, zh) in BUILTIN_ROLES {
        let role_id = new_id();
        let name = if tenant.locale.starts_with("zh") {
            zh
        } else {
            en
        };
        let perms = serde_json::to_value(builtin_permissions(key)).map_err(anyhow::Error::from)?;
        tx.execute(
            "INSERT INTO roles (tenant_id, id, key, name, builtin, permissions, created_at, updated_at, version, custom)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)",
            args![id, role_id, *key, *name, true, perms, t, t, serde_json::json!({})],
        )
        .await?;
        if *key == "admin" {
            admin_role = Some(role_id);
        }
    }
    audit::record(
        &mut tx,
        &ctx,
        "create",
        "tenants",
        Some(id),
        None,
        Some(&tenant),
    )
    .await?;
    let admin = users::insert(
        &mut tx,
        &ctx,
        NewUser {
            email: Some(input.admin_email.clone()),
            name: Some(
                input
                    .admin_name
                    .clone()
                    .unwrap_or_else(|| input.admin_email.clone()),
            ),
            password: None,
            role_id: admin_role,
            team_id: None,
            locale: None,
        },
        Some(hash),
    )
    .await?;
    tx.commit().await?;
    Ok((tenant, admin))
}

pub async fn get(db: &Db, ctx: &Ctx) -> Result<Tenant> {
    ctx.require("settings", Action::Read)?;
    db.fetch_one(
        &format!("SELECT {COLS} FROM tenants WHERE id = $1"),
        args![ctx.tenant_id],
    )
    .await
}

async fn get_tx(tx: &mut Tx, id: Uuid) -> Result<Tenant> {
    tx.fetch_one(
        &format!("SELECT {COLS} FROM tenants WHERE id = $1"),
        args![id],
    )
    .await
}

pub async fn update(db: &Db, ctx: &Ctx, if_match: Option<i64>, p: TenantPatch) -> Result<Tenant> {
    ctx.require("settings", Action::Update)?;
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
    let locale = p
        .locale
        .as_deref()
        .map(validate::locale)
        .transpose()
        .map_err(|c| errs.add("locale", c))
        .ok()
        .flatten();
    if let Some(tz) = &p.time_zone {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            errs.add("time_zone", "unknown_time_zone");
        }
    }
    if let Some(c) = &p.currency {
        if c.len() != 3 || !c.chars().all(|c| c.is_ascii_uppercase()) {
            errs.add("currency", "invalid_currency");
        }
    }
    errs.finish()?;
    let mut tx = db.begin().await?;
    let before = get_tx(&mut tx, ctx.tenant_id).await?;
    version::check(expected, before.version)?;
    let mut after = before.clone();
    after.name = name.unwrap_or(after.name);
    after.locale = locale.unwrap_or(after.locale);
    after.time_zone = p.time_zone.unwrap_or(after.time_zone);
    after.currency = p.currency.unwrap_or(after.currency);
    after.updated_at = now();
    after.version = version::update(
        &mut tx,
        version::Row {
            table: "tenants",
            tenant_id: ctx.tenant_id,
            id: ctx.tenant_id,
        },
        expected,
        "name = $1, locale = $2, time_zone = $3, currency = $4, updated_at = $5",
        args![
            &after.name,
            &after.locale,
            &after.time_zone,
            &after.currency,
            after.updated_at
        ],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "tenants",
        Some(ctx.tenant_id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The tenants on this installation (oldest first); used by the CLI and first-start bootstrap.
pub async fn all(db: &Db) -> Result<Vec<Tenant>> {
    db.fetch_all(&format!("SELECT {COLS} FROM tenants ORDER BY id"), args![])
        .await
}

/// The caller's own tenant, which every signed-in user may see (name, locale, time zone).
pub async fn get_unchecked(db: &Db, id: Uuid) -> Result<Tenant> {
    db.fetch_one(
        &format!("SELECT {COLS} FROM tenants WHERE id = $1"),
        args![id],
    )
    .await
}
