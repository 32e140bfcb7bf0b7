//! Saved list views: a list's filters, sort and columns kept under a name, for oneself or shared
//! with the whole company. A view stores the list's query string as the list reads it, so
//! anything a list can filter on (custom fields included) can be saved, and opening a view is
//! opening the list with that query.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::Db;
use crate::error::{Error, Errors, Result};
use crate::perms::{Action, Scope, MODULES};
use crate::time::{new_id, now};
use crate::{args, validate, version, Ctx};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct SavedView {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The list it belongs to (`accounts`, `contacts`, …).
    pub entity: String,
    pub name: String,
    /// The list's query string, e.g. `province=浙江省&sort=-updated_at&cols=phone,custom.region`.
    pub query: String,
    /// Shared views are seen by everyone in the company.
    pub shared: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedViewInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    /// Set on create only.
    pub entity: Option<String>,
    pub name: Option<String>,
    pub query: Option<String>,
    /// Sharing with everyone takes the `saved_views` permission with scope `all`.
    pub shared: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SavedViewFilter {
    pub entity: Option<String>,
}

const SELECT: &str =
    "SELECT id, owner_id, entity, name, query, shared, created_at, updated_at, version
    FROM saved_views";

/// The caller's own views and the shared ones, shared first, then by name.
pub async fn list(db: &Db, ctx: &Ctx, f: &SavedViewFilter) -> Result<Vec<SavedView>> {
    ctx.require("saved_views", Action::Read)?;
    let mut q = crate::db::Sql::new(SELECT);
    q.push(" WHERE tenant_id = ")
        .bind(ctx.tenant_id)
        .push(" AND (shared = ")
        .bind(true)
        .push(" OR owner_id = ")
        .bind(ctx.user_id)
        .push(")");
    if let Some(e) = &f.entity {
        q.push(" AND entity = ").bind(e.as_str());
    }
    q.push(" ORDER BY shared DESC, name, id LIMIT 500");
    db.fetch_sql(q).await
}

/// A view the caller may see: their own or a shared one.
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<SavedView> {
    ctx.require("saved_views", Action::Read)?;
    let v: SavedView = db
        .fetch_one(
            &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    if v.shared || Some(v.owner_id) == ctx.user_id {
        Ok(v)
    } else {
        Err(Error::NotFound)
    }
}

/// A query string a list can read back: `key=value` pairs, no cursor (a view is a starting
/// point, not a page).
fn clean_query(raw: &str) -> std::result::Result<String, &'static str> {
    let raw = raw.trim().trim_start_matches('?');
    if raw.len() > 4000 {
        return Err("too_long");
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|_| "invalid")?;
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, v)| k != "cursor" && k != "view" && !v.trim().is_empty())
        .collect();
    serde_urlencoded::to_string(&kept).map_err(|_| "invalid")
}

fn check_share(ctx: &Ctx, errs: &mut Errors, shared: bool) {
    if shared && ctx.can("saved_views", Action::Create) != Some(Scope::All) {
        errs.add("shared", "out_of_scope");
    }
}

pub async fn create(db: &Db, ctx: &Ctx, input: SavedViewInput) -> Result<SavedView> {
    ctx.require("saved_views", Action::Create)?;
    let Some(owner) = ctx.user_id else {
        return Err(Error::Forbidden);
    };
    let mut errs = Errors::default();
    let entity = input.entity.clone().unwrap_or_default();
    if entity.is_empty() {
        errs.add("entity", "required");
    } else if !MODULES.contains(&entity.as_str()) {
        errs.add("entity", "unknown_module");
    }
    let name = match validate::name(input.name.as_deref().unwrap_or("")) {
        Ok(n) => n,
        Err(c) => {
            errs.add("name", c);
            String::new()
        }
    };
    let query = match clean_query(input.query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(c) => {
            errs.add("query", c);
            String::new()
        }
    };
    let shared = input.shared.unwrap_or(false);
    check_share(ctx, &mut errs, shared);
    errs.finish()?;
    let (id, t) = (new_id(), now());
    db.execute(
        "INSERT INTO saved_views (tenant_id, id, owner_id, entity, name, query, shared, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)",
        args![ctx.tenant_id, id, owner, entity.as_str(), name.as_str(), query.as_str(), shared, t, t],
    )
    .await?;
    get(db, ctx, id).await
}

/// Views are changed and deleted by their owner; a shared view also by those who may share.
async fn load_for_change(db: &Db, ctx: &Ctx, id: Uuid, action: Action) -> Result<SavedView> {
    let scope = ctx.require("saved_views", action)?;
    let v = get(db, ctx, id).await?;
    if Some(v.owner_id) == ctx.user_id || scope == Scope::All {
        Ok(v)
    } else {
        Err(Error::Forbidden)
    }
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: SavedViewInput,
) -> Result<SavedView> {
    let before = load_for_change(db, ctx, id, Action::Update).await?;
    let expected = version::expected(if_match, input.version)?;
    version::check(expected, before.version)?;
    let mut errs = Errors::default();
    if input.entity.as_ref().is_some_and(|e| *e != before.entity) {
        errs.add("entity", "immutable");
    }
    let name = match input.name.as_deref().map(validate::name) {
        None => before.name.clone(),
        Some(Ok(n)) => n,
        Some(Err(c)) => {
            errs.add("name", c);
            String::new()
        }
    };
    let query = match input.query.as_deref().map(clean_query) {
        None => before.query.clone(),
        Some(Ok(q)) => q,
        Some(Err(c)) => {
            errs.add("query", c);
            String::new()
        }
    };
    let shared = input.shared.unwrap_or(before.shared);
    if shared != before.shared {
        check_share(ctx, &mut errs, true);
    }
    errs.finish()?;
    version::update(
        db,
        version::Row {
            table: "saved_views",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, query = $2, shared = $3, updated_at = $4",
        args![name.as_str(), query.as_str(), shared, now()],
    )
    .await?;
    get(db, ctx, id).await
}

pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    load_for_change(db, ctx, id, Action::Delete).await?;
    db.execute(
        "DELETE FROM saved_views WHERE tenant_id = $1 AND id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clean_query;

    #[test]
    fn queries_drop_cursors_and_blanks() {
        assert_eq!(
            clean_query("?q=%E5%BC%A0&province=&cursor=abc&sort=-updated_at").unwrap(),
            "q=%E5%BC%A0&sort=-updated_at"
        );
        assert!(clean_query(&"a=b&".repeat(2000)).is_err());
    }
}
