//! Follow-up visits (回访) at the end of a warranty. A tenant's sweep, when on, runs daily by
//! the scheduler (a job keyed by its due time, `jobs::replan_run`, as the NPS survey's: planned
//! twice it runs once, a run for a time since changed does nothing) and books, for every
//! active asset whose warranty ends within `days_before` days from the run's day, one
//! follow-up visit `days_before` days ahead of the end (or tomorrow, when that day has
//! passed), at 10:00 in the company's zone or the engineer's next free half hour. Once per
//! asset and warranty end (a unique index): a warranty extended is visited again, a sweep
//! re-run (a crash, a second node) books nothing twice. The engineer is the one with the
//! sweep's skill at the highest level and the fewest visits that day; no skill set: the visit
//! waits unassigned on the agenda.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, version, Ctx, Error};

use crate::visits::{follow_up_slot, zone_of};

/// The daily run's job kind.
pub const JOB: &str = "warranty_follow_ups";
/// The most visits one run books (the rest the next day).
pub const PER_RUN: i64 = 1_000;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Sweep {
    pub active: bool,
    /// The visit is due this many days before the warranty ends (0–365).
    pub days_before: i64,
    /// The skill its engineer needs; none: booked unassigned.
    pub skill: Option<String>,
    /// When the next daily run is due.
    pub next_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// Visits the last run booked.
    pub last_booked: i64,
    /// 0 for a sweep never saved.
    pub version: i64,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            active: false,
            days_before: 30,
            skill: None,
            next_at: now(),
            last_run_at: None,
            last_booked: 0,
            version: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepInput {
    /// The version read (0 for a sweep never saved); a stale one is refused (412).
    pub version: Option<i64>,
    pub active: Option<bool>,
    pub days_before: Option<i64>,
    #[serde(default, deserialize_with = "guanxi_platform::validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub skill: Option<Option<String>>,
    /// When the next run is due (default: as planned, or now for a sweep never saved).
    pub next_at: Option<DateTime<Utc>>,
}

const COLS: &str = "active, days_before, skill, next_at, last_run_at, last_booked, version";

async fn load(conn: impl Into<Conn<'_>>, tenant: Uuid) -> Result<Option<Sweep>> {
    conn.into()
        .fetch_optional(
            &format!("SELECT {COLS} FROM warranty_sweeps WHERE tenant_id = $1"),
            args![tenant],
        )
        .await
}

/// The tenant's sweep (off, with defaults, before one is saved).
pub async fn sweep(db: &Db, ctx: &Ctx) -> Result<Sweep> {
    ctx.require("tickets", Action::Read)?;
    Ok(load(db, ctx.tenant_id).await?.unwrap_or_default())
}

/// Saves the sweep at the version read, and (un)plans its next run.
pub async fn set_sweep(db: &Db, ctx: &Ctx, input: SweepInput) -> Result<Sweep> {
    ctx.require("sla_policies", Action::Update)?;
    let Some(expected) = input.version else {
        return Err(Error::field("version", "required"));
    };
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id).await?;
    let mut s = before.clone().unwrap_or_default();
    version::check(expected, s.version)?;
    let mut errs = Errors::default();
    match input.days_before {
        Some(d) if (0..=365).contains(&d) => s.days_before = d,
        Some(_) => errs.add("days_before", "out_of_range"),
        None => {}
    }
    if let Some(k) = &input.skill {
        s.skill = match k.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            Some(k) if k.chars().count() <= 50 => Some(k.to_owned()),
            Some(_) => {
                errs.add("skill", "too_long");
                None
            }
            None => None,
        };
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
            "INSERT INTO warranty_sweeps (tenant_id, id, active, days_before, skill, next_at,
                 last_booked, updated_at, updated_by, version)
             VALUES ($1, $1, $2, $3, $4, $5, 0, $6, $7, 1)",
            args![
                ctx.tenant_id,
                s.active,
                s.days_before,
                s.skill.clone(),
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
                table: "warranty_sweeps",
                tenant_id: ctx.tenant_id,
                id: ctx.tenant_id,
            },
            s.version,
            "active = $1, days_before = $2, skill = $3, next_at = $4, updated_at = $5,
             updated_by = $6",
            args![
                s.active,
                s.days_before,
                s.skill.clone(),
                s.next_at,
                t,
                ctx.user_id
            ],
        )
        .await?;
    }
    let after = load(&mut tx, ctx.tenant_id).await?.ok_or(Error::NotFound)?;
    jobs::recurring_saved(
        &mut tx,
        ctx,
        JOB,
        "warranty_sweep",
        (old_next, s.active.then_some(s.next_at)),
        before.as_ref(),
        &after,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// An asset the run books a visit for.
type Due_ = (Uuid, Option<Uuid>, Option<Uuid>, String);

/// The day a warranty's follow-up is due: `days_before` ahead of its end, not before
/// `earliest` (a run that found it late books it for the next day).
pub fn due_day(warranty_until: NaiveDate, days_before: i64, earliest: NaiveDate) -> NaiveDate {
    (warranty_until - Duration::days(days_before)).max(earliest)
}

/// The engineer with `skill` (the highest level, then the fewest visits that day, then id),
/// read through the run's transaction.
async fn engineer_for(
    tx: &mut Tx,
    tenant: Uuid,
    skill: &str,
    day: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Option<Uuid>> {
    type Row = (
        Uuid,
        sqlx::types::Json<std::collections::BTreeMap<String, i64>>,
        i64,
    );
    let rows: Vec<Row> = tx
        .fetch_all(
            "SELECT u.id, p.skills,
                    (SELECT COUNT(*) FROM service_visits v WHERE v.tenant_id = u.tenant_id
                       AND v.engineer_id = u.id AND v.status = 'scheduled'
                       AND v.starts_at >= $2 AND v.starts_at < $3)
             FROM users u
             JOIN agent_profiles p ON p.tenant_id = u.tenant_id AND p.id = u.id
             WHERE u.tenant_id = $1 AND u.active = $4 AND u.deleted_at IS NULL AND p.available = $4",
            args![tenant, day.0, day.1, true],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, skills, load)| {
            let level = *skills.0.get(skill).filter(|l| **l > 0)?;
            Some((std::cmp::Reverse(level), load, id))
        })
        .min()
        .map(|(_, _, id)| id))
}

/// A due run inside the job's transaction: books the visits and plans the next run. `None`:
/// the run is not the one planned (the sweep changed or was switched off since).
pub async fn run(tx: &mut Tx, tenant: Uuid, at: DateTime<Utc>) -> Result<Option<i64>> {
    let Some(s) = load(&mut *tx, tenant).await? else {
        return Ok(None);
    };
    if !s.active || s.next_at.timestamp() != at.timestamp() {
        return Ok(None);
    }
    let tz = zone_of(tx, tenant).await?;
    let today = at.with_timezone(&tz).date_naive();
    let last = today + Duration::days(s.days_before);
    let assets: Vec<Due_> = tx
        .fetch_all(
            &format!(
                "SELECT a.id, a.account_id, a.contact_id, a.warranty_until FROM assets a
                 WHERE a.tenant_id = $1 AND a.deleted_at IS NULL AND a.status = 'active'
                   AND a.warranty_until >= $2 AND a.warranty_until <= $3
                   AND NOT EXISTS (SELECT 1 FROM service_visits v WHERE v.tenant_id = a.tenant_id
                         AND v.asset_id = a.id AND v.reason = 'warranty'
                         AND v.warranty_until = a.warranty_until)
                 ORDER BY a.warranty_until, a.id LIMIT {PER_RUN}"
            ),
            args![tenant, today.to_string(), last.to_string()],
        )
        .await?;
    let mut booked = 0i64;
    for (asset, account, contact, until) in assets {
        let Ok(end) = until.parse::<NaiveDate>() else {
            continue;
        };
        let day = due_day(end, s.days_before, today + Duration::days(1));
        let engineer = match &s.skill {
            Some(k) => {
                let from = follow_up_slot(tx, tenant, tz, day, None).await?;
                engineer_for(
                    tx,
                    tenant,
                    k,
                    (from - Duration::hours(10), from + Duration::hours(14)),
                )
                .await?
            }
            None => None,
        };
        let starts_at = follow_up_slot(tx, tenant, tz, day, engineer).await?;
        let team: Option<(Option<Uuid>,)> = match engineer {
            Some(e) => {
                tx.fetch_optional(
                    "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2",
                    args![tenant, e],
                )
                .await?
            }
            None => None,
        };
        tx.execute(
            "INSERT INTO service_visits (tenant_id, id, kind, reason, asset_id, warranty_until,
                 account_id, contact_id, engineer_id, team_id, skill, starts_at, minutes, status,
                 created_at, updated_at, version)
             VALUES ($1, $2, 'follow_up', 'warranty', $3, $4, $5, $6, $7, $8, $9, $10, 30,
                 'scheduled', $11, $11, 1)",
            args![
                tenant,
                new_id(),
                asset,
                until.as_str(),
                account,
                contact,
                engineer,
                team.and_then(|t| t.0),
                s.skill.clone(),
                starts_at,
                at
            ],
        )
        .await?;
        booked += 1;
    }
    let next = s.next_at + Duration::days(1);
    // At the version the run read: a schedule saved meanwhile refuses it (412, the job
    // retried finds its run no longer planned), never overwritten.
    version::update(
        &mut *tx,
        version::Row {
            table: "warranty_sweeps",
            tenant_id: tenant,
            id: tenant,
        },
        s.version,
        "next_at = $1, last_run_at = $2, last_booked = $3",
        args![next, at, booked],
    )
    .await?;
    jobs::replan_run(tx, tenant, JOB, None, Some(next)).await?;
    Ok(Some(booked))
}

/// The `warranty_follow_ups` job.
pub fn handler() -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync {
    |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        Box::pin(async move {
            if let Some(at) = jobs::run_time(&due) {
                run(tx, due.tenant_id, at).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The visit falls `days_before` ahead of the end, never before the earliest day, and
        /// never after the end when the end is still to come.
        #[test]
        fn due_day_is_ahead_of_the_end_and_never_in_the_past(
            end in 0i64..2000, before in 0i64..366, earliest in 0i64..2000,
        ) {
            let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            let (end, earliest) = (base + Duration::days(end), base + Duration::days(earliest));
            let d = due_day(end, before, earliest);
            prop_assert!(d >= earliest);
            prop_assert!(d == earliest || d == end - Duration::days(before));
            if earliest <= end {
                prop_assert!(d <= end);
            }
        }
    }
}
