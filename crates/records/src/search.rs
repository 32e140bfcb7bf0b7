//! The search box's shared parts: every declared entity's matches are read in its search
//! index's order (a window of the newest), plus the records named exactly as typed, and
//! ranked together — the name as typed first, then names starting so, then values (pinyin,
//! initials, phone, email) starting so, then the rest.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Backend, Sql};
use guanxi_platform::error::{Error, Result};
use guanxi_platform::page::PageReq;
use guanxi_platform::perms::Scope;
use guanxi_platform::Ctx;

use crate::record::ListQuery;
use crate::Entity;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct SearchHit {
    /// `account`, `contact`, `lead`, `opportunity` or `quote`.
    pub kind: String,
    pub id: Uuid,
    pub name: String,
    /// For a contact (or a deal), the account's name; for an account, its city; for a lead, its
    /// company.
    pub detail: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// How well it matched: 0 the name as typed, 1 the name starts so, 2 a value (pinyin,
    /// initials, phone, email) starts so, 3 held anywhere. Results come best first.
    pub rank: i64,
}

/// Matches read per kind before ranking, less one: the newest ones, in the search index's
/// order (see `record::ListQuery`), so a term matching a hundred thousand records costs what
/// one matching ten does. Among them the shortest names come first (a full name typed finds
/// its exact match first); a term matching more than this ranks only its newest matches.
pub const WINDOW: i64 = 199;

/// The newest [`WINDOW`] + 1 records of `table` matching `q`, in index order.
pub fn window(
    backend: Backend,
    ctx: &Ctx,
    scope: Scope,
    select: &str,
    table: (Entity, &str),
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
pub fn exact(
    ctx: &Ctx,
    scope: Scope,
    select: &str,
    (entity, alias): (Entity, &str),
    name: &str,
) -> Sql {
    let mut q = Sql::new(select);
    q.push(&format!(" WHERE {alias}.tenant_id = "))
        .bind(ctx.tenant_id);
    q.push(&format!(" AND {alias}.name = ")).bind(name);
    q.push(&format!(" AND {alias}.deleted_at IS NULL"));
    crate::shares::scope_sql(ctx, &mut q, scope, entity, alias);
    q.push(" LIMIT ").bind(WINDOW + 1);
    q
}

/// The candidates of every arm, each once, best first, at most `limit`: the name exactly as
/// typed, then names starting with it, then records where it starts a value — pinyin,
/// initials, phone, email (`|term` in the search text, whose values are `|`-separated) — then
/// those holding it anywhere; within a tier, shortest names first. ("zt" finds the people
/// named 张涛 before a company whose initials merely contain z-t; "qd" finds 青岛 before 金桥电子.)
pub fn ranked(backend: Backend, arms: Vec<Sql>, term: &str, limit: i64) -> Sql {
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
