//! Recently viewed records, per user: a record page notes each visit ([`viewed`]); the home
//! page lists the newest ([`list`]). Any module's records (`entity` is the table name). About
//! the newest [`KEEP`] per user are kept (trimmed now and then, not on every visit). Not audited: a visit changes no company data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::args;
use crate::ctx::Ctx;
use crate::db::Db;
use crate::error::Result;
use crate::time::now;

/// How many recent records a user keeps.
pub const KEEP: i64 = 20;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Recent {
    pub entity: String,
    pub entity_id: Uuid,
    pub label: String,
    pub viewed_at: DateTime<Utc>,
}

/// Notes that the signed-in user opened a record (an upsert on every record page, so it is one
/// statement; about one visit in sixteen also lets the oldest beyond [`KEEP`] go).
pub async fn viewed(db: &Db, ctx: &Ctx, entity: &str, id: Uuid, label: &str) -> Result<()> {
    let Some(user) = ctx.user_id else {
        return Ok(());
    };
    let label: String = label.chars().take(200).collect();
    db.execute(
        "INSERT INTO recent_views (tenant_id, user_id, entity, entity_id, label, viewed_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, user_id, entity, entity_id)
         DO UPDATE SET label = excluded.label, viewed_at = excluded.viewed_at",
        args![ctx.tenant_id, user, entity, id, label.as_str(), now()],
    )
    .await?;
    if rand::random::<u8>() >= 16 {
        return Ok(());
    }
    db.execute(
        "DELETE FROM recent_views WHERE tenant_id = $1 AND user_id = $2 AND viewed_at < (
             SELECT MIN(viewed_at) FROM (SELECT viewed_at FROM recent_views
                 WHERE tenant_id = $1 AND user_id = $2 ORDER BY viewed_at DESC LIMIT $3) newest)",
        args![ctx.tenant_id, user, KEEP],
    )
    .await?;
    Ok(())
}

/// The signed-in user's recently viewed records, newest first.
pub async fn list(db: &Db, ctx: &Ctx, limit: i64) -> Result<Vec<Recent>> {
    let Some(user) = ctx.user_id else {
        return Ok(vec![]);
    };
    db.fetch_all(
        "SELECT entity, entity_id, label, viewed_at FROM recent_views
         WHERE tenant_id = $1 AND user_id = $2 ORDER BY viewed_at DESC LIMIT $3",
        args![ctx.tenant_id, user, limit.clamp(1, KEEP)],
    )
    .await
}
