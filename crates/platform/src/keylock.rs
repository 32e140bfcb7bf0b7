//! Key locks: serialising work about the same thing (a person arriving from a form, an import
//! and the API at once) across requests and app nodes, on both databases, with a row per key
//! (migration 7).
//!
//! [`hold`] upserts each key's row inside the caller's transaction: on PostgreSQL the row lock
//! is held until the transaction ends, so a second transaction holding any of the same keys
//! waits, then sees what the first committed; on SQLite every writer already holds the
//! database's write lock. Keys are taken in sorted order, so two transactions taking
//! overlapping sets cannot deadlock. [`hold_noting`] also answers whether a key (a submission's
//! fingerprint) was not seen within a window, and notes it — a double submit or a client's
//! retry is recognised even when both arrive together.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::args;
use crate::db::Tx;
use crate::error::Result;

/// Holds `keys` (any order, duplicates allowed) until the transaction ends: one statement,
/// its rows in sorted order (PostgreSQL takes a multi-row upsert's row locks in the order of
/// its rows).
pub async fn hold(tx: &mut Tx, tenant: Uuid, keys: &[String], at: DateTime<Utc>) -> Result<()> {
    upsert(tx, tenant, keys, None, at).await?;
    Ok(())
}

/// [`hold`]s `keys` and `note` (a submission's fingerprint) in the same statement, and tells
/// whether `note` was not seen in the `window` before `at` — noted at `at` when it was not.
pub async fn hold_noting(
    tx: &mut Tx,
    tenant: Uuid,
    keys: &[String],
    note: &str,
    at: DateTime<Utc>,
    window: Duration,
) -> Result<bool> {
    upsert(tx, tenant, keys, Some((note, at - window)), at).await
}

/// One upsert of every key's row, in sorted order: each held and stamped `at`, but the noted
/// key only when its stamp is older than the cut; whether the noted key was stamped.
async fn upsert(
    tx: &mut Tx,
    tenant: Uuid,
    keys: &[String],
    note: Option<(&str, DateTime<Utc>)>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let mut all: Vec<&str> = keys.iter().map(String::as_str).collect();
    all.extend(note.map(|(n, _)| n));
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return Ok(false);
    }
    let mut params = args![tenant, at];
    let condition = match note {
        Some((n, cut)) => {
            params.push(n.into());
            params.push(cut.into());
            " WHERE key_locks.key <> $3 OR key_locks.at <= $4"
        }
        None => "",
    };
    let mut rows = Vec::with_capacity(all.len());
    for key in all {
        params.push(key.into());
        rows.push(format!("($1, ${}, $2)", params.len()));
    }
    let stamped: Vec<(String,)> = tx
        .fetch_all(
            &format!(
                "INSERT INTO key_locks (tenant_id, key, at) VALUES {}
                 ON CONFLICT (tenant_id, key) DO UPDATE SET at = excluded.at{condition}
                 RETURNING key",
                rows.join(", ")
            ),
            params,
        )
        .await?;
    Ok(note.is_some_and(|(n, _)| stamped.iter().any(|(k,)| k == n)))
}
