//! The NPS survey by the scheduler. A tenant's schedule says how often (`every_days`), whom
//! (contacts with an email who had a ticket or an order within `lookback_days`) and how often
//! one person may be asked (`quiet_days`). Each run is a job planned for its due time under a
//! key naming it (`jobs::replan_run`): planned twice — two nodes, a retry — it runs once; the run
//! makes the invites and plans the next run in the job's own transaction, so a crash repeats
//! nothing and loses nothing. The invitations' text is the web layer's (the job handler).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, jobs, version, Ctx};

/// The scheduled run's job kind.
pub const JOB: &str = "nps_survey";
/// The most invitations one run sends (the rest are asked at the next run).
pub const PER_RUN: i64 = 5_000;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Schedule {
    pub active: bool,
    /// Days between runs (7–366).
    pub every_days: i64,
    /// Who is asked: contacts with a ticket or an order within this many days (1–730).
    pub lookback_days: i64,
    /// Nobody is asked again within this many days (1–730).
    pub quiet_days: i64,
    /// When the next run is due.
    pub next_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// Invitations the last run sent.
    pub last_sent: i64,
    /// 0 for a schedule never saved.
    pub version: i64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            active: false,
            every_days: 90,
            lookback_days: 180,
            quiet_days: 90,
            next_at: now() + Duration::days(1),
            last_run_at: None,
            last_sent: 0,
            version: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// The version read (0 for a schedule never saved); a stale one is refused (412).
    pub version: Option<i64>,
    pub active: Option<bool>,
    pub every_days: Option<i64>,
    pub lookback_days: Option<i64>,
    pub quiet_days: Option<i64>,
    /// When the next run is due (default: as planned, or a day from now).
    pub next_at: Option<DateTime<Utc>>,
}

const COLS: &str =
    "active, every_days, lookback_days, quiet_days, next_at, last_run_at, last_sent, version";

async fn load(conn: impl Into<Conn<'_>>, tenant: Uuid) -> Result<Option<Schedule>> {
    conn.into()
        .fetch_optional(
            &format!("SELECT {COLS} FROM nps_schedules WHERE tenant_id = $1"),
            args![tenant],
        )
        .await
}

/// The tenant's schedule (inactive, with defaults, before one is saved).
pub async fn schedule(db: &Db, ctx: &Ctx) -> Result<Schedule> {
    ctx.require("tickets", Action::Read)?;
    Ok(load(db, ctx.tenant_id).await?.unwrap_or_default())
}

/// Saves the schedule at the version read, and (un)plans its next run.
pub async fn set_schedule(db: &Db, ctx: &Ctx, input: ScheduleInput) -> Result<Schedule> {
    ctx.require("sla_policies", Action::Update)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id).await?;
    let mut s = before.clone().unwrap_or_default();
    let Some(expected) = input.version else {
        return Err(guanxi_platform::Error::field("version", "required"));
    };
    version::check(expected, s.version)?;
    let mut errs = Errors::default();
    for (field, value, range, slot) in [
        ("every_days", input.every_days, 7..=366, &mut s.every_days),
        (
            "lookback_days",
            input.lookback_days,
            1..=730,
            &mut s.lookback_days,
        ),
        ("quiet_days", input.quiet_days, 1..=730, &mut s.quiet_days),
    ] {
        match value {
            Some(v) if range.contains(&v) => *slot = v,
            Some(_) => errs.add(field, "out_of_range"),
            None => {}
        }
    }
    errs.finish()?;
    if let Some(a) = input.active {
        s.active = a;
    }
    let old_next = before.as_ref().map(|b| b.next_at);
    if let Some(n) = input.next_at {
        s.next_at = n;
    }
    let t = now();
    if before.is_none() {
        tx.execute(
            "INSERT INTO nps_schedules (tenant_id, id, active, every_days, lookback_days, quiet_days,
                 next_at, last_sent, updated_at, updated_by, version)
             VALUES ($1, $1, $2, $3, $4, $5, $6, 0, $7, $8, 1)",
            args![
                ctx.tenant_id,
                s.active,
                s.every_days,
                s.lookback_days,
                s.quiet_days,
                s.next_at,
                t,
                ctx.user_id
            ],
        )
        .await?;
    } else {
        version::update(
            &mut tx,
            version::Row {
                table: "nps_schedules",
                tenant_id: ctx.tenant_id,
                id: ctx.tenant_id,
            },
            s.version,
            "active = $1, every_days = $2, lookback_days = $3, quiet_days = $4, next_at = $5,
             updated_at = $6, updated_by = $7",
            args![
                s.active,
                s.every_days,
                s.lookback_days,
                s.quiet_days,
                s.next_at,
                t,
                ctx.user_id
            ],
        )
        .await?;
    }
    let after = load(&mut tx, ctx.tenant_id)
        .await?
        .ok_or(guanxi_platform::Error::NotFound)?;
    // The run planned for the old time goes; the new one is planned once.
    jobs::recurring_saved(
        &mut tx,
        ctx,
        JOB,
        "nps_schedule",
        (old_next, s.active.then_some(s.next_at)),
        before.as_ref(),
        &after,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Someone a run asks.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub contact_id: Uuid,
    pub name: String,
    pub email: String,
}

/// A due run, inside the job's transaction: the schedule if the run is still the one planned
/// (a schedule changed or switched off since makes it nothing), with the people to ask. The
/// caller invites them and then calls [`planned_next`].
pub async fn due_run(
    tx: &mut Tx,
    tenant: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<(Schedule, Vec<Recipient>)>> {
    let Some(s) = load(&mut *tx, tenant).await? else {
        return Ok(None);
    };
    if !s.active || s.next_at.timestamp() != at.timestamp() {
        return Ok(None);
    }
    let since = at - Duration::days(s.lookback_days);
    let quiet = at - Duration::days(s.quiet_days);
    let people: Vec<Recipient> = tx
        .fetch_all(
            &format!(
                "SELECT c.id AS contact_id, c.name, c.email FROM contacts c
                 WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND c.email IS NOT NULL
                   AND (EXISTS (SELECT 1 FROM tickets t WHERE t.tenant_id = c.tenant_id
                                 AND t.contact_id = c.id AND t.created_at >= $2)
                        OR EXISTS (SELECT 1 FROM orders o WHERE o.tenant_id = c.tenant_id
                                 AND o.contact_id = c.id AND o.ordered_at >= $2))
                   AND NOT EXISTS (SELECT 1 FROM survey_invites i WHERE i.tenant_id = c.tenant_id
                                 AND i.contact_id = c.id AND i.kind = 'nps' AND i.created_at >= $3)
                 ORDER BY c.id LIMIT {PER_RUN}"
            ),
            args![tenant, since, quiet],
        )
        .await?;
    Ok(Some((s, people)))
}

/// Records the run (`sent` invitations) and plans the next one.
pub async fn planned_next(tx: &mut Tx, tenant: Uuid, s: &Schedule, sent: i64) -> Result<()> {
    let next = s.next_at + Duration::days(s.every_days);
    // At the version the run read: a schedule saved meanwhile refuses it (412, the job
    // retried finds its run no longer planned), never overwritten.
    version::update(
        &mut *tx,
        version::Row {
            table: "nps_schedules",
            tenant_id: tenant,
            id: tenant,
        },
        s.version,
        "next_at = $1, last_run_at = $2, last_sent = $3",
        args![next, s.next_at, sent],
    )
    .await?;
    jobs::replan_run(tx, tenant, JOB, None, Some(next)).await?;
    Ok(())
}
