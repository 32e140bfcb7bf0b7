//! The durable job queue and transactional outbox. A job is inserted in the same transaction
//! as the change that causes it, so a committed change always has its job and a rolled-back one
//! never does. Workers claim due jobs (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several nodes
//! share the queue), run them, and mark them done; a failure is retried with exponential backoff
//! until `max_attempts`, then the job becomes a dead letter an admin can see and retry.
//! A worker that dies mid-job leaves a lock that expires, and the job is claimed again.
//!
//! **The scheduler.** Time-based work (SLA warnings, pool returns, reminders, later point
//! expiry and quarterly grading) is a job planned for its due time with [`schedule`]: a key
//! names what it is for (`lead_sla:<lead>:<deadline>`) and one job per (tenant, kind, key) is
//! kept, so planning the same due time twice queues it once. Its [`Handler`] runs inside the
//! transaction that marks the job done, and that mark only lands while this worker still holds
//! the claim (status `running` at the attempt it claimed): a worker that stalled past its lock
//! and was overtaken rolls its work back. So a scheduled job's effects happen exactly once,
//! however many app nodes run workers and whenever one crashes. Recurring work plans its next
//! due time from its handler, in that same transaction ([`schedule`] with the next time as the
//! key) — never "fires every minute".

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::ctx::Ctx;
use crate::db::{Backend, Db, Sql, Tx};
use crate::error::{Error, Result};
use crate::mail::Mailer;
use crate::page::{Page, PageReq};
use crate::perms::Action;
use crate::time::{new_id, now};

pub const KIND_EMAIL: &str = "email";
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed job stays locked before another worker may take it over.
pub const LOCK_SECONDS: i64 = 300;

/// The payload of an `email` job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// The Message-ID to send under (without `<>`), when the message is part of a thread a
    /// reply must find again (a ticket's); default: derived from the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The Message-ID (without `<>`) this one answers: `In-Reply-To` and `References`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// Where answers should go (a ticket's support mailbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// A job queued once the mail is sent (in the transaction that marks it sent), its payload
    /// given the message as sent, base64, under `sent` (a copy into a Sent folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<FollowUp>,
    /// Files of the tenant ([`crate::files`]) sent with it, read when it is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Uuid>,
}

/// What an email job queues once its mail is sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FollowUp {
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    /// `pending`, `running`, `done`, `dead` or `cancelled`.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What a scheduled job is for (one job per kind and key).
    pub dedupe_key: Option<String>,
    /// An email job's message in full — recipient, subject and text, links included — so an
    /// admin can read (and pass on) what waits in the outbox when no SMTP server is set.
    #[sqlx(skip)]
    pub email: Option<Email>,
    #[serde(skip)]
    #[schema(ignore)]
    payload: sqlx::types::Json<serde_json::Value>,
}

impl Job {
    fn with_email(mut self) -> Job {
        if self.kind == KIND_EMAIL {
            self.email = serde_json::from_value(self.payload.0.clone()).ok();
        }
        self
    }
}

const COLS: &str = "id, kind, status, attempts, max_attempts, run_at, last_error, created_at, updated_at, dedupe_key, payload";

/// Queues a job inside the caller's transaction, to run now.
pub async fn enqueue<T: Serialize>(
    tx: &mut Tx,
    tenant_id: Uuid,
    kind: &str,
    payload: &T,
) -> Result<()> {
    enqueue_at(tx, tenant_id, kind, payload, now())
        .await
        .map(|_| ())
}

/// Queues a job inside the caller's transaction, to run at `run_at`; returns its id.
pub async fn enqueue_at<T: Serialize>(
    tx: &mut Tx,
    tenant_id: Uuid,
    kind: &str,
    payload: &T,
    run_at: DateTime<Utc>,
) -> Result<Uuid> {
    let t = now();
    let id = new_id();
    let payload = serde_json::to_value(payload).map_err(anyhow::Error::from)?;
    tx.execute(
        "INSERT INTO jobs (tenant_id, id, kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7, $8)",
        args![tenant_id, id, kind, payload, MAX_ATTEMPTS, run_at, t, t],
    )
    .await?;
    Ok(id)
}

/// Plans a job for its due time inside the caller's transaction: `key` names what it is for
/// (include the due time: `lead_sla:<lead>:<deadline>`). The same (kind, key) planned again —
/// by another node, a retry, a re-run after a crash — changes nothing; returns the job's id
/// when this call queued it.
pub async fn schedule<T: Serialize>(
    tx: &mut Tx,
    tenant_id: Uuid,
    kind: &str,
    key: &str,
    payload: &T,
    run_at: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let t = now();
    let id = new_id();
    let payload = serde_json::to_value(payload).map_err(anyhow::Error::from)?;
    let n = tx
        .execute(
            "INSERT INTO jobs (tenant_id, id, kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at, dedupe_key)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
            args![tenant_id, id, kind, payload, MAX_ATTEMPTS, run_at, t, t, key],
        )
        .await?;
    Ok((n == 1).then_some(id))
}

/// Cancels the pending job planned under (kind, key), if any (a deadline moved or was met).
pub async fn unschedule(tx: &mut Tx, tenant_id: Uuid, kind: &str, key: &str) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE jobs SET status = 'cancelled', updated_at = $1
             WHERE tenant_id = $2 AND kind = $3 AND dedupe_key = $4 AND status = 'pending'",
            args![now(), tenant_id, kind, key],
        )
        .await?;
    Ok(n > 0)
}

/// A tenant's recurring run (a survey, a sweep) moved from its planned time `from` (none: never
/// planned) to `to` (none: switched off): the old run is cancelled, the new one planned once,
/// keyed `<kind>:<epoch seconds>` with its time as the payload's `at` (see [`run_time`]).
pub async fn replan_run(
    tx: &mut Tx,
    tenant_id: Uuid,
    kind: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<()> {
    let key = |at: DateTime<Utc>| format!("{kind}:{}", at.timestamp());
    if let Some(old) = from {
        unschedule(tx, tenant_id, kind, &key(old)).await?;
    }
    if let Some(at) = to {
        schedule(
            tx,
            tenant_id,
            kind,
            &key(at),
            &serde_json::json!({ "at": at }),
            at,
        )
        .await?;
    }
    Ok(())
}

/// The tail of saving a tenant's recurring-run settings (`entity`, one row per tenant): the run
/// replanned from the time it had `before` to the time it has `after` (`(from, to)`, as
/// [`replan_run`] takes them; none when never planned or switched off) and the change audited.
pub async fn recurring_saved<T: Serialize>(
    tx: &mut Tx,
    ctx: &Ctx,
    kind: &str,
    entity: &str,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    before: Option<&T>,
    after: &T,
) -> Result<()> {
    replan_run(tx, ctx.tenant_id, kind, from, to).await?;
    audit::record(tx, ctx, "update", entity, None, before, Some(after)).await
}

/// The planned time of a run [`replan_run`] planned; its handler compares it with the time
/// the run is planned for now, so a run for a time since changed does nothing.
pub fn run_time(due: &Due<'_>) -> Option<DateTime<Utc>> {
    due.payload["at"].as_str().and_then(|v| v.parse().ok())
}

/// A scheduled job as its handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Due<'a> {
    pub tenant_id: Uuid,
    pub job_id: Uuid,
    pub payload: &'a serde_json::Value,
    /// The worker's clock (tests run the queue at chosen times).
    pub at: DateTime<Utc>,
}

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// What a kind of job does. It runs inside the transaction that marks the job done: its writes
/// land together with the mark, or not at all.
pub type Handler =
    std::sync::Arc<dyn for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync>;

/// The job kinds the modules handle (email is the platform's own). The app composes them.
#[derive(Clone, Default)]
pub struct Handlers(HashMap<&'static str, Handler>);

impl Handlers {
    pub fn with(
        mut self,
        kind: &'static str,
        handler: impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync + 'static,
    ) -> Handlers {
        self.0.insert(kind, std::sync::Arc::new(handler));
        self
    }

    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}

/// Cancels a job that has not started (a reminder for a task done early); a job already
/// running or done is left alone.
pub async fn cancel(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET status = 'cancelled', updated_at = $1 WHERE tenant_id = $2 AND id = $3 AND status = 'pending'",
        args![now(), tenant_id, id],
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Claimed {
    tenant_id: Uuid,
    id: Uuid,
    kind: String,
    payload: sqlx::types::Json<serde_json::Value>,
    attempts: i64,
    max_attempts: i64,
}

/// Delay before attempt `n + 1` after `n` failures: 30 s, 1 min, 2 min, … capped at 1 h.
pub fn backoff(failures: i64) -> Duration {
    let secs = 30i64.saturating_mul(1i64 << (failures - 1).clamp(0, 20));
    Duration::seconds(secs.min(3600))
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    pub done: usize,
    pub retried: usize,
    pub dead: usize,
    /// Jobs another worker took over while this one ran them (their work rolled back).
    pub overtaken: usize,
}

/// How one claimed job ended.
enum Outcome {
    /// Done; `marked` when the handler's transaction already marked it.
    Done {
        marked: bool,
    },
    /// Another worker took the job over while this one ran it: this run's work was rolled back.
    Overtaken,
    Failed(String),
}

/// Runs a scheduled job's handler and marks it done in one transaction, while the claim is
/// still this worker's.
async fn run_handler(db: &Db, handler: &Handler, job: &Claimed, at: DateTime<Utc>) -> Outcome {
    let mut tx = match db.begin().await {
        Ok(tx) => tx,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let due = Due {
        tenant_id: job.tenant_id,
        job_id: job.id,
        payload: &job.payload.0,
        at,
    };
    if let Err(e) = handler(&mut tx, due).await {
        return Outcome::Failed(e.to_string());
    }
    let marked = tx
        .execute(
            "UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = $1
             WHERE tenant_id = $2 AND id = $3 AND status = 'running' AND attempts = $4",
            args![now(), job.tenant_id, job.id, job.attempts],
        )
        .await;
    match marked {
        Ok(1) => match tx.commit().await {
            Ok(()) => Outcome::Done { marked: true },
            Err(e) => Outcome::Failed(e.to_string()),
        },
        Ok(_) => Outcome::Overtaken,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Marks a sent email done and queues its follow-up in one transaction (the follow-up only
/// when this worker still held the claim).
async fn follow_up(
    db: &Db,
    job: &Claimed,
    then: &FollowUp,
    sent: &[u8],
    at: DateTime<Utc>,
) -> Outcome {
    use base64::Engine;
    let run = async {
        let mut tx = db.begin().await?;
        let n = tx
            .execute(
                "UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = $1
                 WHERE tenant_id = $2 AND id = $3 AND status = 'running' AND attempts = $4",
                args![now(), job.tenant_id, job.id, job.attempts],
            )
            .await?;
        if n == 0 {
            return Ok(Outcome::Overtaken);
        }
        let mut payload = then.payload.clone();
        if let Some(o) = payload.as_object_mut() {
            o.insert(
                "sent".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(sent)
                    .into(),
            );
        }
        enqueue_at(&mut tx, job.tenant_id, &then.kind, &payload, at).await?;
        tx.commit().await?;
        Ok::<_, Error>(Outcome::Done { marked: true })
    };
    match run.await {
        Ok(o) => o,
        // Sent but not marked: the retry sends it again under the same Message-ID (one
        // message to the reader).
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// The files an email carries (one at a time: each at most [`crate::files::MAX_BYTES`]); a
/// file deleted since is left out.
async fn attached(db: &Db, tenant: Uuid, e: &Email) -> Result<Vec<crate::files::Attachment>> {
    let mut out = Vec::with_capacity(e.attachments.len());
    for id in &e.attachments {
        if let Some((meta, data)) = crate::files::load(db, tenant, *id).await? {
            out.push(crate::files::Attachment { meta, data });
        }
    }
    Ok(out)
}

/// Claims up to `batch` jobs due at `at` and runs them. Email jobs are only claimed when SMTP is
/// configured; otherwise they wait in the outbox.
pub async fn run_due(
    db: &Db,
    mailer: &Mailer,
    handlers: &Handlers,
    at: DateTime<Utc>,
    batch: i64,
) -> Result<RunStats> {
    let lock = if db.backend() == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let kinds = if mailer.configured() {
        ""
    } else {
        " AND kind <> 'email'"
    };
    let sql = format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $1, updated_at = $2
         WHERE (tenant_id, id) IN (
             SELECT tenant_id, id FROM jobs
             WHERE ((status = 'pending' AND run_at <= $2) OR (status = 'running' AND locked_until < $2)){kinds}
             ORDER BY run_at LIMIT $3{lock})
         RETURNING tenant_id, id, kind, payload, attempts, max_attempts"
    );
    let claimed: Vec<Claimed> = db
        .fetch_all(&sql, args![at + Duration::seconds(LOCK_SECONDS), at, batch])
        .await?;
    let mut stats = RunStats::default();
    for job in claimed {
        let outcome = match job.kind.as_str() {
            KIND_EMAIL => match serde_json::from_value::<Email>(job.payload.0.clone()) {
                Ok(e) => match attached(db, job.tenant_id, &e).await {
                    Err(err) => Outcome::Failed(err.to_string()),
                    Ok(files) => match mailer.send(job.id, &e, &files).await {
                        Ok(sent) => match &e.then {
                            None => Outcome::Done { marked: false },
                            Some(then) => follow_up(db, &job, then, &sent, at).await,
                        },
                        Err(e) => Outcome::Failed(e),
                    },
                },
                Err(e) => Outcome::Failed(format!("bad payload: {e}")),
            },
            other => match handlers.0.get(other) {
                Some(h) => run_handler(db, h, &job, at).await,
                None => Outcome::Failed(format!("unknown job kind {other}")),
            },
        };
        let t = now();
        // Every mark names the attempt this worker claimed: a worker overtaken after its lock
        // expired changes nothing.
        match outcome {
            Outcome::Done { marked: true } => stats.done += 1,
            Outcome::Done { marked: false } => {
                let n = db.execute(
                    "UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = $1
                     WHERE tenant_id = $2 AND id = $3 AND status = 'running' AND attempts = $4",
                    args![t, job.tenant_id, job.id, job.attempts],
                )
                .await?;
                // An email sent twice by two workers is one message to the reader (the job id
                // is its Message-ID); the count says this worker was overtaken.
                if n == 1 {
                    stats.done += 1;
                } else {
                    stats.overtaken += 1;
                }
            }
            Outcome::Overtaken => {
                tracing::warn!(job = %job.id, kind = %job.kind, "job overtaken by another worker; this run rolled back");
                stats.overtaken += 1;
            }
            Outcome::Failed(err) => {
                let dead = job.attempts >= job.max_attempts;
                tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempts, dead, error = %err, "job failed");
                let n = db.execute(
                    "UPDATE jobs SET status = $1, run_at = $2, locked_until = NULL, last_error = $3, updated_at = $4
                     WHERE tenant_id = $5 AND id = $6 AND status = 'running' AND attempts = $7",
                    args![if dead { "dead" } else { "pending" }, at + backoff(job.attempts), err, t, job.tenant_id, job.id, job.attempts],
                )
                .await?;
                if n == 0 {
                    // Another worker owns the job now: its outcome, not this failure, stands.
                    stats.overtaken += 1;
                } else if dead {
                    stats.dead += 1;
                } else {
                    stats.retried += 1;
                }
            }
        }
    }
    Ok(stats)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// `pending`, `running`, `done`, `dead` or `cancelled`.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The tenant's jobs, newest first (admins: dead letters are `status=dead`).
pub async fn list(db: &Db, ctx: &Ctx, f: &JobFilter) -> Result<Page<Job>> {
    ctx.require("jobs", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: None,
    };
    let mut q = Sql::new(&format!("SELECT {COLS} FROM jobs WHERE tenant_id = "));
    q.bind(ctx.tenant_id);
    if let Some(s) = &f.status {
        q.push(" AND status = ").bind(s);
    }
    if let Some(k) = &f.kind {
        q.push(" AND kind = ").bind(k);
    }
    let limit = page.limit()?;
    if let Some(c) = page.cursor_id()? {
        q.push(" AND id < ").bind(c);
    }
    q.push(" ORDER BY id DESC LIMIT ").bind(limit + 1);
    let rows: Vec<Job> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(
        rows.into_iter().map(Job::with_email).collect(),
        limit,
        |j: &Job| j.id.to_string(),
    ))
}

async fn load(db: &Db, tenant_id: Uuid, id: Uuid) -> Result<Job> {
    db.fetch_one::<Job>(
        &format!("SELECT {COLS} FROM jobs WHERE tenant_id = $1 AND id = $2"),
        args![tenant_id, id],
    )
    .await
    .map(Job::with_email)
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Job> {
    ctx.require("jobs", Action::Read)?;
    load(db, ctx.tenant_id, id).await
}

/// Puts a dead letter back in the queue with a fresh set of attempts.
pub async fn retry(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Job> {
    ctx.require("jobs", Action::Update)?;
    let before = load(db, ctx.tenant_id, id).await?;
    if before.status != "dead" {
        return Err(Error::Conflict("only dead jobs can be retried".into()));
    }
    let mut tx = db.begin().await?;
    let t = now();
    tx.execute(
        "UPDATE jobs SET status = 'pending', attempts = 0, run_at = $1, updated_at = $1 WHERE tenant_id = $2 AND id = $3 AND status = 'dead'",
        args![t, ctx.tenant_id, id],
    )
    .await?;
    let after = Job {
        status: "pending".into(),
        attempts: 0,
        run_at: t,
        updated_at: t,
        ..before.clone()
    };
    audit::record(
        &mut tx,
        ctx,
        "retry",
        "jobs",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Counts by status over all tenants, for `/metrics`.
pub async fn counts(db: &Db) -> Result<Vec<(String, i64)>> {
    db.fetch_all(
        "SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status",
        args![],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1).num_seconds(), 30);
        assert_eq!(backoff(2).num_seconds(), 60);
        assert_eq!(backoff(3).num_seconds(), 120);
        assert_eq!(backoff(30).num_seconds(), 3600);
        assert_eq!(backoff(0).num_seconds(), 30);
    }
}
