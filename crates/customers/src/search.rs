//! The one search box: accounts and contacts by any part of a Chinese name, full pinyin or
//! initials, a phone in any format, email, WeChat id, credit code; contacts also by their
//! company's name. Results respect the tenant and each module's read scope.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::{Error, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::Ctx;

use crate::normalize::search_terms;
use crate::record::like_pattern;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What was typed: 三丰, zhangsanfeng, zsf, 138 0013 8000, +8613800138000, an email…
    pub q: Option<String>,
    /// Per kind, 1–50 (default 10).
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct SearchHit {
    /// `account` or `contact`.
    pub kind: String,
    pub id: Uuid,
    pub name: String,
    /// For a contact, the account's name; for an account, its city.
    pub detail: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
}

pub async fn search(db: &Db, ctx: &Ctx, query: &SearchQuery) -> Result<SearchResults> {
    let accounts = ctx.can("accounts", Action::Read);
    let contacts = ctx.can("contacts", Action::Read);
    if accounts.is_none() && contacts.is_none() {
        return Err(Error::Forbidden);
    }
    let terms = search_terms(query.q.as_deref().unwrap_or(""));
    if terms.is_empty() {
        return Err(Error::field("q", "required"));
    }
    let limit = match query.limit {
        None => 10,
        Some(n) if (1..=50).contains(&n) => n,
        Some(_) => return Err(Error::field("limit", "out_of_range")),
    };
    let mut items = Vec::new();
    if let Some(scope) = accounts {
        let mut q = Sql::new(
            "SELECT 'account' AS kind, a.id, a.name, a.city AS detail, a.phone, a.email FROM accounts a
             WHERE a.tenant_id = ",
        );
        q.bind(ctx.tenant_id).push(" AND a.deleted_at IS NULL");
        ctx.scope_sql(&mut q, scope, "a.owner_id", "a.team_id");
        for t in &terms {
            q.push(" AND a.search LIKE ").bind(like_pattern(t));
            q.push(" ESCAPE '\\'");
        }
        q.push(" ORDER BY LENGTH(a.name), a.name, a.id LIMIT ")
            .bind(limit);
        items.extend(db.fetch_sql::<SearchHit>(q).await?);
    }
    if let Some(scope) = contacts {
        let mut q = Sql::new(
            "SELECT 'contact' AS kind, c.id, c.name, a.name AS detail, c.phone, c.email FROM contacts c
             LEFT JOIN accounts a ON a.tenant_id = c.tenant_id AND a.id = c.account_id
             WHERE c.tenant_id = ",
        );
        q.bind(ctx.tenant_id).push(" AND c.deleted_at IS NULL");
        ctx.scope_sql(&mut q, scope, "c.owner_id", "c.team_id");
        for t in &terms {
            let p = like_pattern(t);
            q.push(" AND (c.search LIKE ").bind(p.clone());
            q.push(" ESCAPE '\\' OR a.search LIKE ").bind(p);
            q.push(" ESCAPE '\\')");
        }
        q.push(" ORDER BY LENGTH(c.name), c.name, c.id LIMIT ")
            .bind(limit);
        items.extend(db.fetch_sql::<SearchHit>(q).await?);
    }
    Ok(SearchResults { items })
}
