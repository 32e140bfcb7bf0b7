//! Search eras: accounts and contacts are numbered, per tenant, in eras of about
//! [`era_rows`] rows each, in the order they were written — era 0 first. A row joins its
//! table's newest era when it is created and stays in it.
//!
//! Why: a search page is shown newest first, and PostgreSQL's GIN index (the search index,
//! see `record::term_sql`) returns its matches in no order, so a page had to read and sort
//! every match of the term: 1,739 rows for the initials `cjh` in a million contacts (5 ms,
//! seven times the index lookup). The index keys each token with the row's era (`15:cjh`),
//! so the newest era's matches are one small index entry, and a page reads the newest eras'
//! matches one era at a time (`record::ListQuery::finish`), stopping when it is full. The
//! page order is therefore era, then id (UUIDv7: creation time), both newest first. SQLite's
//! FTS index has an order of its own (rowid) and does not use the eras.
//!
//! Eras are counted, not timed: an import of a million rows into a new tenant makes sixteen
//! eras as a year of daily work does. The count is kept in `search_eras.size`; batches add
//! what they wrote, and a single create adds `k` with probability `1/k` (decided by its id's
//! random bits), so concurrent creates rarely wait on the same counter row. An era is
//! therefore about, not exactly, [`era_rows`] rows — the order never depends on its size.

use std::sync::atomic::{AtomicI64, Ordering};

use guanxi_platform::args;
use guanxi_platform::db::{Sql, Tx};
use guanxi_platform::error::Result;
use uuid::Uuid;

static ERA_ROWS: AtomicI64 = AtomicI64::new(65_536);

/// Rows an era holds before the next one opens (default 65,536: a search page reads at most
/// the matches among that many rows per era).
pub fn era_rows() -> i64 {
    ERA_ROWS.load(Ordering::Relaxed)
}

/// Sets [`era_rows`] for this process (tests use small eras so every search crosses some).
pub fn set_era_rows(n: i64) {
    ERA_ROWS.store(n.max(1), Ordering::Relaxed);
}

const NEWEST: &str =
    "SELECT COALESCE(MAX(era), 0) FROM search_eras WHERE tenant_id = $1 AND tbl = $2";

/// The newest era of `table` in the tenant: the one rows created now join.
pub async fn newest(tx: &mut Tx, tenant: Uuid, table: &str) -> Result<i64> {
    tx.scalar(NEWEST, args![tenant, table]).await
}

/// [`newest`] as a subquery of a statement being built: a search page reads its first era in
/// the same statement (an InitPlan), not in a round trip before it.
pub fn newest_sql(tenant: Uuid, table: &str) -> Sql {
    Sql {
        sql: format!("({NEWEST})"),
        args: args![tenant, table],
        plan_with_values: false,
    }
}

/// [`newest`] as the `era` value of an `INSERT` into `table`, the tenant being the statement's
/// parameter `tenant` (`"$1"`): the row joins the newest era in the statement that writes it
/// (`RETURNING era` gives it back for [`count_one`]), not a round trip before.
pub fn newest_for(table: &'static str, tenant: &str) -> String {
    debug_assert!(table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    format!("(SELECT COALESCE(MAX(era), 0) FROM search_eras WHERE tenant_id = {tenant} AND tbl = '{table}')")
}

/// Counts `n` rows just written into `era`; once it holds [`era_rows`], the next era opens.
pub async fn count(tx: &mut Tx, tenant: Uuid, table: &str, era: i64, n: i64) -> Result<()> {
    if n <= 0 {
        return Ok(());
    }
    let size: i64 = tx
        .scalar(
            "INSERT INTO search_eras (tenant_id, tbl, era, size) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, tbl, era) DO UPDATE SET size = search_eras.size + excluded.size
             RETURNING size",
            args![tenant, table, era, n],
        )
        .await?;
    if size >= era_rows() {
        tx.execute(
            "INSERT INTO search_eras (tenant_id, tbl, era, size) VALUES ($1, $2, $3, 0)
             ON CONFLICT (tenant_id, tbl, era) DO NOTHING",
            args![tenant, table, era + 1],
        )
        .await?;
    }
    Ok(())
}

/// Counts one created row (`id`, in `era`): with probability `1/k` it counts `k` rows, `k` an
/// era's 1/64th (at most 1,024) — the same total on average, and a single create touches the
/// counter row only now and then.
pub async fn count_one(tx: &mut Tx, tenant: Uuid, table: &str, era: i64, id: Uuid) -> Result<()> {
    let k = (era_rows() / 64).clamp(1, 1024);
    if id.as_u128().is_multiple_of(k as u128) {
        count(tx, tenant, table, era, k).await?;
    }
    Ok(())
}

/// A row's index tokens keyed by its era, as an array (`{15:cjh,15:jh}`): the SQL over `era`
/// and `grams` (space-separated tokens). The search index is this over each row (migration
/// 1011, [`index_expr`]); a search page asks for it over the era it reads and the term's
/// tokens, so both are made by one definition.
pub fn keyed_sql(era: &str, grams: &str) -> String {
    format!("string_to_array({era}::text || ':' || replace({grams}, ' ', ' ' || {era}::text || ':'), ' ')")
}

/// The PostgreSQL search index expression over `alias`'s row (exactly as the index is
/// defined, migration 1011): its tokens keyed by its era.
pub fn index_expr(alias: &str) -> String {
    keyed_sql(&format!("{alias}.era"), &format!("{alias}.grams"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_expression_is_the_migrations() {
        // Migration 1011 defines the index with this expression; a query must say the same.
        assert_eq!(
            index_expr("c"),
            "string_to_array(c.era::text || ':' || replace(c.grams, ' ', ' ' || c.era::text || ':'), ' ')"
        );
    }
}
