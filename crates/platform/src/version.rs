//! Optimistic concurrency: every update names the version it read; a stale one changes nothing.
//!
//! [`update`] is the one way a versioned row is changed on a caller's say-so: its `WHERE` repeats
//! the version the caller read, and an `UPDATE` that changed no row is a 412 — on PostgreSQL two
//! transactions can both read version 3 and pass [`check`]; the second waits on the first's row
//! lock, re-reads the row, finds version 4 and changes nothing, which must not be reported as
//! success.

use uuid::Uuid;

use crate::db::{Conn, Val};
use crate::error::{Error, Result};

/// The version the caller claims to have read: from `If-Match` or the body's `version`.
pub fn expected(header: Option<i64>, body: Option<i64>) -> Result<i64> {
    match (header, body) {
        (Some(h), Some(b)) if h != b => {
            Err(Error::BadRequest("If-Match and version disagree".into()))
        }
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(Error::field("version", "required")),
    }
}

/// Compares before writing (to refuse early, before any work); [`update`] closes the race.
pub fn check(expected: i64, current: i64) -> Result<()> {
    if expected == current {
        Ok(())
    } else {
        Err(Error::PreconditionFailed { current })
    }
}

/// The row a versioned write changes: `table` keyed by `(tenant_id, id)` (the `tenants` table
/// by `id` alone).
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    pub table: &'a str,
    pub tenant_id: Uuid,
    pub id: Uuid,
}

impl Row<'_> {
    fn key_sql(&self, first: usize) -> (String, Vec<Val>) {
        if self.table == "tenants" {
            (format!("id = ${first}"), vec![Val::from(self.id)])
        } else {
            (
                format!("tenant_id = ${first} AND id = ${}", first + 1),
                vec![Val::from(self.tenant_id), Val::from(self.id)],
            )
        }
    }
}

/// `UPDATE <table> SET <set>, version = version + 1 WHERE <key> AND version = <expected>`:
/// `set` numbers its placeholders `$1…$n` for `args`. No row changed means someone else changed
/// the row since the caller read it: 412 with the version now stored (404 if it is gone).
/// Returns the new version.
pub async fn update(
    conn: impl Into<Conn<'_>>,
    row: Row<'_>,
    expected: i64,
    set: &str,
    mut args: Vec<Val>,
) -> Result<i64> {
    let (key, key_args) = row.key_sql(args.len() + 1);
    let n = args.len() + key_args.len() + 1;
    args.extend(key_args);
    args.push(Val::from(expected));
    let sql = format!(
        "UPDATE {} SET {set}, version = version + 1 WHERE {key} AND version = ${n}",
        row.table
    );
    let mut conn = conn.into();
    if conn.execute(&sql, args).await? == 1 {
        return Ok(expected + 1);
    }
    let (key, key_args) = row.key_sql(1);
    let current: Option<(i64,)> = conn
        .fetch_optional(
            &format!("SELECT version FROM {} WHERE {key}", row.table),
            key_args,
        )
        .await?;
    match current {
        Some((current,)) => Err(Error::PreconditionFailed { current }),
        None => Err(Error::NotFound),
    }
}

#[cfg(test)]
mod tests {
    /// Every version-checked write goes through [`super::update`]: no other SQL in the
    /// workspace compares a version in its `WHERE` (such a write would have to check the rows
    /// it changed itself, and the lost updates on PostgreSQL came from ones that did not).
    #[test]
    fn no_version_checked_sql_outside_the_helper() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut offenders = vec![];
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    if !p.ends_with("target") && !p.ends_with("tests") {
                        stack.push(p);
                    }
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("version.rs") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    if text.contains("AND version = $") {
                        offenders.push(p.display().to_string());
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "version-checked SQL outside version::update: {offenders:?}"
        );
    }
}
