//! `Idempotency-Key` on POST: the first request with a key runs and its response is stored;
//! a retry with the same key and body gets the stored response, with a different body a 422.

use chrono::Duration;
use uuid::Uuid;

use crate::args;
use crate::ctx::Ctx;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::time::now;

/// A reservation left by a request that never finished is abandoned after this long.
const IN_FLIGHT_SECONDS: i64 = 60;

pub enum Begin {
    /// Run the request, then call [`finish`] (or [`abandon`] on a server error).
    Run,
    /// The stored response of the earlier request.
    Replay { status: u16, body: String },
}

fn user(ctx: &Ctx) -> Uuid {
    ctx.user_id.unwrap_or(Uuid::nil())
}

pub async fn begin(db: &Db, ctx: &Ctx, key: &str, request_hash: &str) -> Result<Begin> {
    if key.is_empty() || key.len() > 255 {
        return Err(Error::BadRequest(
            "Idempotency-Key must be 1–255 characters".into(),
        ));
    }
    let t = now();
    // Drop an abandoned reservation so the key can be used again.
    db.execute(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3 AND status_code = 0 AND created_at < $4",
        args![ctx.tenant_id, user(ctx), key, t - Duration::seconds(IN_FLIGHT_SECONDS)],
    )
    .await?;
    let inserted = db
        .execute(
            "INSERT INTO idempotency_keys (tenant_id, user_id, key, request_hash, status_code, response_body, created_at)
             VALUES ($1, $2, $3, $4, 0, '', $5) ON CONFLICT DO NOTHING",
            args![ctx.tenant_id, user(ctx), key, request_hash, t],
        )
        .await?;
    if inserted == 1 {
        return Ok(Begin::Run);
    }
    let (hash, status, body): (String, i64, String) = db
        .fetch_one(
            "SELECT request_hash, status_code, response_body FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
            args![ctx.tenant_id, user(ctx), key],
        )
        .await?;
    if hash != request_hash {
        return Err(Error::field(
            "Idempotency-Key",
            "reused_with_different_request",
        ));
    }
    if status == 0 {
        return Err(Error::Conflict(
            "a request with this Idempotency-Key is still in progress".into(),
        ));
    }
    Ok(Begin::Replay {
        status: u16::try_from(status).unwrap_or(500),
        body,
    })
}

pub async fn finish(db: &Db, ctx: &Ctx, key: &str, status: u16, body: &str) -> Result<()> {
    db.execute(
        "UPDATE idempotency_keys SET status_code = $1, response_body = $2 WHERE tenant_id = $3 AND user_id = $4 AND key = $5",
        args![i64::from(status), body, ctx.tenant_id, user(ctx), key],
    )
    .await?;
    Ok(())
}

pub async fn abandon(db: &Db, ctx: &Ctx, key: &str) -> Result<()> {
    db.execute(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
        args![ctx.tenant_id, user(ctx), key],
    )
    .await?;
    Ok(())
}
