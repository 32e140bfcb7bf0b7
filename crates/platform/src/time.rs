//! Ids and instants. Ids are UUIDv7 (time-ordered, so keyset pagination by id is creation
//! order); instants are UTC with microsecond precision, the finest both databases store.

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Now, truncated to microseconds so a value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
