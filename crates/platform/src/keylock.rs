//! Key locks: serialising work about the same thing (a person arriving from a form, an import
//! and the API at once) across requests and app nodes, on both databases, with a row per key
//! (migration 7).
//!
//! [`hold`] upserts each key's row inside the caller's transaction: on PostgreSQL the row lock
//! is held until the transaction ends, so a second transaction holding any of the same keys
//! waits, then sees what the first committed; on SQLite every writer already holds the
//! database's write lock. Keys are taken in sorted order, so two transactions taking
//! overlapping sets cannot deadlock. [`first_within`] answers whether a key (a submission's
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
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    let mut params = args![tenant, at];
    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        params.push(key.as_str().into());
        rows.push(format!("($1, ${}, $2)", params.len()));
    }
    tx.execute(
        &format!(
            "INSERT INTO key_locks (tenant_id, key, at) VALUES {}
             ON CONFLICT (tenant_id, key) DO UPDATE SET at = excluded.at",
            rows.join(", ")
        ),
        params,
    )
    .await?;
    Ok(())
}

/// Whether `key` was not seen in the `window` before `at`; either way it is held (as
/// [`hold`]) and, when it was not seen, noted at `at`.
pub async fn first_within(
    tx: &mut Tx,
    tenant: Uuid,
    key: &str,
    at: DateTime<Utc>,
    window: Duration,
) -> Result<bool> {
    let noted: Option<(String,)> = tx
        .fetch_optional(
            "INSERT INTO key_locks (tenant_id, key, at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, key) DO UPDATE SET at = excluded.at
             WHERE key_locks.at <= $4
             RETURNING key",
            args![tenant, key, at, at - window],
        )
        .await?;
    Ok(noted.is_some())
}
