//! The one search box: accounts and contacts by any part of a Chinese name, full pinyin or
//! initials, a phone in any format, email, WeChat id, credit code; contacts also by their
//! company's name. Results respect the tenant and each module's read scope.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Backend, Db, Sql};
use guanxi_platform::error::{Error, Result};
use guanxi_platform::page::PageReq;
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::Ctx;

use guanxi_records::normalize::search_terms;
use guanxi_records::record::ListQuery;

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
    /// How well it matched: 0 the name as typed, 1 the name starts so, 2 a value (pinyin,
    /// initials, phone, email) starts so, 3 held anywhere. Results come best first.
    pub rank: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
}

/// Matches read per kind before ranking, less one: the newest ones, in the search index's
/// order (see `record::ListQuery`), so a term matching a hundred thousand records costs what
/// one matching ten does. Among them the shortest names come first (a full name typed finds
/// its exact match first); a term matching more than this ranks only its newest matches.
const WINDOW: i64 = 199;

/// The newest [`WINDOW`] + 1 records of `table` matching `q`, in index order.
fn window(
    backend: Backend,
    ctx: &Ctx,
    scope: Scope,
    select: &str,
    table: (&str, &str),
    q: Option<&str>,
) -> Result<Sql> {
    let page = PageReq {
        limit: Some(WINDOW),
        ..PageReq::default()
    };
    let (sql, _, _) = ListQuery::start(backend, ctx, scope, select, table, q, None, false).finish(
        &page,
        &format!("{}.id", table.1),
        || Err(Error::field("q", "required")),
    )?;
    Ok(sql)
}

/// The live records named exactly as typed (the name index): a full name finds its record
/// even when more than [`WINDOW`] newer records contain it.
fn exact(ctx: &Ctx, scope: Scope, select: &str, alias: &str, name: &str) -> Sql {
    let mut q = Sql::new(select);
    q.push(&format!(" WHERE {alias}.tenant_id = "))
        .bind(ctx.tenant_id);
    q.push(&format!(" AND {alias}.name = ")).bind(name);
    q.push(&format!(" AND {alias}.deleted_at IS NULL"));
    ctx.scope_sql(
        &mut q,
        scope,
        &format!("{alias}.owner_id"),
        &format!("{alias}.team_id"),
    );
    q.push(" LIMIT ").bind(WINDOW + 1);
    q
}

/// The candidates of every arm, each once, best first, at most `limit`: the name exactly as
/// typed, then names starting with it, then records where it starts a value — pinyin,
/// initials, phone, email (`|term` in the search text, whose values are `|`-separated) — then
/// those holding it anywhere; within a tier, shortest names first. ("zt" finds the people
/// named 张涛 before a company whose initials merely contain z-t; "qd" finds 青岛 before 金桥电子.)
fn ranked(backend: Backend, arms: Vec<Sql>, term: &str, limit: i64) -> Sql {
    let position = match backend {
        Backend::Sqlite => "instr",
        Backend::Postgres => "strpos",
    };
    let mut q =
        Sql::new("SELECT kind, id, name, detail, phone, email, CAST(CASE WHEN LOWER(name) = ");
    q.bind(term);
    q.push(" THEN 0 WHEN SUBSTR(LOWER(name), 1, CAST(")
        .bind(term.chars().count() as i64)
        .push(" AS INTEGER)) = ")
        .bind(term);
    q.push(&format!(" THEN 1 WHEN {position}(search, "))
        .bind(format!("|{term}"))
        .push(") > 0 THEN 2 ELSE 3 END AS BIGINT) AS rank FROM (");
    for (i, arm) in arms.into_iter().enumerate() {
        if i > 0 {
            q.push(" UNION ");
        }
        q.push("SELECT kind, id, name, detail, phone, email, search FROM (");
        q.append(arm).push(&format!(") arm{i}"));
    }
    q.push(") u ORDER BY rank, LENGTH(name), name, id LIMIT ")
        .bind(limit);
    q
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
            window(backend, ctx, scope, HIT, ("accounts", "a"), q)?,
            exact(ctx, scope, HIT, "a", typed),
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
            ("accounts", "a"),
            q,
        )?);
        by_company
            .push(") m) ORDER BY c.id DESC LIMIT ")
            .bind(WINDOW + 1);
        let arms = vec![
            window(backend, ctx, scope, HIT, ("contacts", "c"), q)?,
            exact(ctx, scope, HIT, "c", typed),
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
