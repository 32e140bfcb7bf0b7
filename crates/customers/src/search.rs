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
use crate::record::term_sql;

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
            q.push(" AND ");
            term_sql(db.backend(), &mut q, "accounts", "a", t);
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
        // A contact is also found by its company's name (asked as "its account is one of the
        // matching accounts", so both sides can use their index).
        // The candidates come from the two indexes (a union of ids), not from a scan of the
        // tenant's contacts testing each row.
        for t in &terms {
            q.push(" AND c.id IN (SELECT c3.id FROM contacts c3 WHERE c3.tenant_id = ")
                .bind(ctx.tenant_id)
                .push(" AND ");
            term_sql(db.backend(), &mut q, "contacts", "c3", t);
            q.push(" UNION ALL SELECT c4.id FROM contacts c4 WHERE c4.tenant_id = ")
                .bind(ctx.tenant_id)
                .push(" AND c4.account_id IN (SELECT a2.id FROM accounts a2 WHERE a2.tenant_id = ")
                .bind(ctx.tenant_id)
                .push(" AND ");
            term_sql(db.backend(), &mut q, "accounts", "a2", t);
            q.push("))");
        }
        q.push(" ORDER BY LENGTH(c.name), c.name, c.id LIMIT ")
            .bind(limit);
        items.extend(db.fetch_sql::<SearchHit>(q).await?);
    }
    Ok(SearchResults { items })
}

/// Fills the search index tokens of rows written before the index existed (run after every
/// migration; a no-op once done). Batches of 1,000 rows, one transaction each.
pub async fn backfill_grams(db: &Db) -> Result<u64> {
    let mut total = 0;
    for table in ["accounts", "contacts"] {
        loop {
            let rows: Vec<(uuid::Uuid, uuid::Uuid, String)> = db
                .fetch_all(
                    &format!(
                        "SELECT tenant_id, id, search FROM {table} WHERE grams IS NULL LIMIT 1000"
                    ),
                    guanxi_platform::args![],
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut tx = db.begin().await?;
            for (tenant, id, search) in &rows {
                tx.execute(
                    &format!("UPDATE {table} SET grams = $1 WHERE tenant_id = $2 AND id = $3"),
                    guanxi_platform::args![crate::normalize::grams(search), *tenant, *id],
                )
                .await?;
            }
            tx.commit().await?;
            total += rows.len() as u64;
        }
    }
    Ok(total)
}
