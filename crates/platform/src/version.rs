//! Optimistic concurrency: every update names the version it read; a stale one changes nothing.

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

/// Compares before writing; the UPDATE also repeats `AND version = $n` to close the race.
pub fn check(expected: i64, current: i64) -> Result<()> {
    if expected == current {
        Ok(())
    } else {
        Err(Error::PreconditionFailed { current })
    }
}
