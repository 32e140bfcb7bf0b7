//! The closed set of errors every service function returns. The web crate maps each variant to
//! exactly one HTTP status and problem type; nothing else decides status codes.

use serde::Serialize;
use utoipa::ToSchema;

/// One field that failed validation: which field, and a stable code the UI translates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name as in the request body (`email`, `custom.region`, …).
    pub field: String,
    /// Stable machine code: `required`, `invalid_email`, `too_long`, `taken`, `unknown`, …
    pub code: String,
    /// Human message in the requester's language (filled in at the edge).
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("not signed in")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("validation failed: {}", field_list(.0))]
    Validation(Vec<FieldError>),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller's version is stale; `current` is the version now stored.
    #[error("version mismatch (current {current})")]
    PreconditionFailed { current: i64 },
    /// Too many attempts: the caller may try again after `retry_after` seconds (at least 1),
    /// as the limit that refused it knows.
    #[error("too many attempts (retry after {retry_after} s)")]
    RateLimited { retry_after: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// `email: taken, name: required` — what a shell user sees (the API sends each field apart).
fn field_list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.code))
        .collect::<Vec<_>>()
        .join(", ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn field(field: &str, code: &str) -> Self {
        Error::Validation(vec![FieldError::new(field, code)])
    }

    /// Refused by a limit that lets the caller in again after `wait` (rounded up to whole
    /// seconds, at least one: what `Retry-After` says).
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Error::RateLimited {
            retry_after: secs.max(1),
        }
    }
}

impl FieldError {
    pub fn new(field: &str, code: &str) -> Self {
        FieldError {
            field: field.to_owned(),
            code: code.to_owned(),
            message: String::new(),
        }
    }
}

/// Collects field errors while validating a request; `finish` turns them into one error.
#[derive(Default, Debug)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, field: &str, code: &str) {
        self.0.push(FieldError::new(field, code));
    }
    /// Records `required` when `v` is missing or blank, and returns the trimmed value.
    pub fn required<'a>(&mut self, field: &str, v: &'a Option<String>) -> Option<&'a str> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Some(s),
            _ => {
                self.add(field, "required");
                None
            }
        }
    }
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.0))
        }
    }
}

/// SQLite's SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes; PostgreSQL's
/// serialization failure, deadlock, lock not available and query cancelled (statement timeout).
fn is_busy(code: Option<&str>) -> bool {
    match code {
        Some("40001" | "40P01" | "55P03" | "57014") => true,
        // SQLite's codes are numbers below 5 digits (the primary code in the low byte).
        Some(c) if c.len() < 5 => matches!(c.parse::<u32>().map(|n| n & 0xff), Ok(5 | 6)),
        _ => false,
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable(e.to_string())
            }
            // A busy database — SQLite's lock held past the busy timeout, PostgreSQL's
            // serialization failures, deadlocks, lock and statement timeouts — is a moment's
            // unavailability the client may retry (503 with Retry-After), never a 500.
            sqlx::Error::Database(d) if is_busy(d.code().as_deref()) => {
                Error::Unavailable(e.to_string())
            }
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::Conflict("a record with the same unique value exists".into())
            }
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                Error::BadRequest("a referenced record does not exist".into())
            }
            _ => Error::Internal(anyhow::Error::new(e)),
        }
    }
}
