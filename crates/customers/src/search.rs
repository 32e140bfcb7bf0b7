//! The one search box: accounts and contacts by any part of a Chinese name, full pinyin or
//! initials, a phone in any format, email, WeChat id, credit code; contacts also by their
//! company's name. Results respect the tenant and each module's read scope.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::{Error, Result};
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::Ctx;

use guanxi_records::normalize::search_terms;

use crate::{accounts, contacts};
pub use guanxi_records::search::SearchHit;
use guanxi_records::search::{exact, ranked, window, WINDOW};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What was typed: 三丰, zhangsanfeng, zsf, 138 0013 8000, +8613800138000, an email…
    pub q: Option<String>,
    /// Per kind, 1–50 (default 10).
    pub limit: Option<i64>,
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
    let backend = db.backend();
    let term = terms[0].as_str();
    let q = query.q.as_deref();
    let typed = q.unwrap_or_default().trim();
    let mut items = Vec::new();
    if let Some(scope) = accounts {
        const HIT: &str = "SELECT 'account' AS kind, a.id, a.name, a.city AS detail, a.phone, a.email, a.search FROM accounts a";
        let arms = vec![
            window(backend, ctx, scope, HIT, (accounts::ENTITY, "a"), q)?,
            exact(ctx, scope, HIT, (accounts::ENTITY, "a"), typed),
        ];
        items.extend(
            db.fetch_sql::<SearchHit>(ranked(backend, arms, term, limit))
                .await?,
        );
    }
    if let Some(scope) = contacts {
        const HIT: &str = "SELECT 'contact' AS kind, c.id, c.name, a.name AS detail, c.phone, c.email, c.search FROM contacts c
             LEFT JOIN accounts a ON a.tenant_id = c.tenant_id AND a.id = c.account_id";
        // A contact is also found by its company's name: the contacts of the newest matching
        // accounts (whatever the caller's account scope: the contact's own scope decides).
        let mut by_company = Sql::new(HIT);
        by_company.push(" WHERE c.tenant_id = ").bind(ctx.tenant_id);
        by_company.push(" AND c.deleted_at IS NULL");
        ctx.scope_sql(&mut by_company, scope, "c.owner_id", "c.team_id");
        by_company.push(" AND c.account_id IN (SELECT id FROM (");
        by_company.append(window(
            backend,
            ctx,
            Scope::All,
            "SELECT a.id FROM accounts a",
            (accounts::ENTITY, "a"),
            q,
        )?);
        by_company
            .push(") m) ORDER BY c.id DESC LIMIT ")
            .bind(WINDOW + 1);
        let arms = vec![
            window(backend, ctx, scope, HIT, (contacts::ENTITY, "c"), q)?,
            exact(ctx, scope, HIT, (contacts::ENTITY, "c"), typed),
            by_company,
        ];
        items.extend(
            db.fetch_sql::<SearchHit>(ranked(backend, arms, term, limit))
                .await?,
        );
    }
    // Accounts and contacts in one list, best match first whatever the kind.
    items.sort_by(|a, b| {
        (a.rank, a.name.chars().count(), &a.name).cmp(&(b.rank, b.name.chars().count(), &b.name))
    });
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
                    guanxi_platform::args![guanxi_records::normalize::grams(search), *tenant, *id],
                )
                .await?;
            }
            tx.commit().await?;
            total += rows.len() as u64;
        }
    }
    Ok(total)
}
