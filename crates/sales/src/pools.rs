//! The shared pool (公海): leads nobody holds, one pool per team and one for the company.
//! A rep claims from a pool within its limits — so many a day, at most so many open leads held,
//! not one they gave back within the waiting days (nor the one they just released); leads go
//! back by rules — no follow-up (no change) for N days, per grade if set, or not converted
//! within N days of arriving — in a set-based pass a batch at a time (the daily `pool_returns`
//! job). Managers assign from the pool. Every claim, release, return and assignment is a pool
//! event and an audit event on the lead's timeline, with its reason; a claim is one
//! conditional update, so of two reps claiming one lead at once exactly one gets it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx, Val};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, keylock, notifications, validate, version, Ctx, Error};

use crate::leads::{self, Lead};

pub const RETURNS_JOB: &str = "pool_returns";
/// Leads returned per statement.
const BATCH: usize = 2000;
/// At most this many leads per claim, release or assignment.
pub const MAX_IDS: usize = 200;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Pool {
    pub id: Uuid,
    pub name: String,
    /// The team's pool; absent: the company's.
    pub team_id: Option<Uuid>,
    /// Leads one rep may claim a day (absent: no limit).
    pub claim_per_day: Option<i64>,
    /// A rep holding this many open leads claims no more (absent: no limit).
    pub max_held: Option<i64>,
    /// Days before a rep may claim again a lead they gave back (or that was taken from them).
    pub reclaim_wait_days: i64,
    /// A held lead unchanged this many days goes back (absent: never).
    pub return_days: Option<i64>,
    /// `return_days` per grade (`{"A": 60, "D": 7}`).
    #[schema(value_type = Object)]
    pub grade_days: sqlx::types::Json<BTreeMap<String, i64>>,
    /// A lead not converted this many days after it arrived goes back (absent: never).
    pub unconverted_days: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolInput {
    pub version: Option<i64>,
    pub name: Option<String>,
    /// Set on create: the team, or absent for the company's pool.
    pub team_id: Option<Uuid>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub claim_per_day: Option<Option<i64>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub max_held: Option<Option<i64>>,
    pub reclaim_wait_days: Option<i64>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub return_days: Option<Option<i64>>,
    pub grade_days: Option<BTreeMap<String, i64>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub unconverted_days: Option<Option<i64>>,
    pub active: Option<bool>,
}

const SELECT: &str = "SELECT id, name, team_id, claim_per_day, max_held, reclaim_wait_days,
    return_days, grade_days, unconverted_days, active, created_at, updated_at, version FROM pools";

pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Pool>> {
    ctx.require("leads", Action::Read)?;
    db.fetch_all(
        &format!("{SELECT} WHERE tenant_id = $1 ORDER BY name, id LIMIT 500"),
        args![ctx.tenant_id],
    )
    .await
}

async fn load(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<Pool> {
    tx.fetch_one(
        &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
        args![tenant, id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Pool> {
    ctx.require("leads", Action::Read)?;
    db.fetch_one(
        &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
        args![ctx.tenant_id, id],
    )
    .await
}

fn apply(input: &PoolInput, p: &mut Pool, creating: bool) -> Result<()> {
    let mut errs = Errors::default();
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => p.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    let days = 1..=3650;
    for (field, value, current, range) in [
        (
            "claim_per_day",
            input.claim_per_day,
            &mut p.claim_per_day,
            0..=10_000,
        ),
        ("max_held", input.max_held, &mut p.max_held, 0..=1_000_000),
        (
            "return_days",
            input.return_days,
            &mut p.return_days,
            days.clone(),
        ),
        (
            "unconverted_days",
            input.unconverted_days,
            &mut p.unconverted_days,
            days.clone(),
        ),
    ] {
        match value {
            Some(Some(v)) if !range.contains(&v) => errs.add(field, "out_of_range"),
            Some(v) => *current = v,
            None => {}
        }
    }
    match input.reclaim_wait_days {
        Some(v) if (0..=3650).contains(&v) => p.reclaim_wait_days = v,
        Some(_) => errs.add("reclaim_wait_days", "out_of_range"),
        None => {}
    }
    if let Some(g) = &input.grade_days {
        for (grade, d) in g {
            if !["A", "B", "C", "D"].contains(&grade.as_str()) {
                errs.add(&format!("grade_days.{grade}"), "invalid");
            } else if !days.contains(d) {
                errs.add(&format!("grade_days.{grade}"), "out_of_range");
            }
        }
        p.grade_days = sqlx::types::Json(g.clone());
    }
    if let Some(a) = input.active {
        p.active = a;
    }
    errs.finish()
}

/// Plans the tenant's next daily return pass (02:00 UTC of the day after `after`), once.
async fn plan_returns(tx: &mut Tx, tenant: Uuid, after: DateTime<Utc>) -> Result<()> {
    let next_day = (after + Duration::days(1)).date_naive();
    let at = next_day
        .and_hms_opt(2, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t))
        .unwrap_or(after + Duration::days(1));
    jobs::schedule(
        tx,
        tenant,
        RETURNS_JOB,
        &format!("day:{next_day}"),
        &serde_json::json!({}),
        at,
    )
    .await?;
    Ok(())
}

pub async fn create(db: &Db, ctx: &Ctx, input: PoolInput) -> Result<Pool> {
    ctx.require("pools", Action::Create)?;
    let t = now();
    let mut p = Pool {
        id: new_id(),
        name: String::new(),
        team_id: input.team_id,
        claim_per_day: None,
        max_held: None,
        reclaim_wait_days: 0,
        return_days: None,
        grade_days: sqlx::types::Json(BTreeMap::new()),
        unconverted_days: None,
        active: true,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    apply(&input, &mut p, true)?;
    let mut tx = db.begin().await?;
    if let Some(team) = p.team_id {
        let n: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND id = $2",
                args![ctx.tenant_id, team],
            )
            .await?;
        if n == 0 {
            return Err(Error::field("team_id", "unknown"));
        }
    }
    let taken: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM pools WHERE tenant_id = $1 AND (team_id = $2 OR ($2 IS NULL AND team_id IS NULL))",
            args![ctx.tenant_id, p.team_id],
        )
        .await?;
    if taken > 0 {
        return Err(Error::field("team_id", "taken"));
    }
    tx.execute(
        "INSERT INTO pools (tenant_id, id, name, team_id, claim_per_day, max_held,
             reclaim_wait_days, return_days, grade_days, unconverted_days, active, created_at,
             updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)",
        args![
            ctx.tenant_id,
            p.id,
            p.name.as_str(),
            p.team_id,
            p.claim_per_day,
            p.max_held,
            p.reclaim_wait_days,
            p.return_days,
            serde_json::json!(p.grade_days.0),
            p.unconverted_days,
            p.active,
            t,
            t
        ],
    )
    .await?;
    audit::record(&mut tx, ctx, "create", "pools", Some(p.id), None, Some(&p)).await?;
    plan_returns(&mut tx, ctx.tenant_id, t).await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: PoolInput,
) -> Result<Pool> {
    ctx.require("pools", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    version::check(expected, before.version)?;
    if input.team_id.is_some_and(|t| Some(t) != before.team_id) {
        return Err(Error::field("team_id", "immutable"));
    }
    let mut p = before.clone();
    apply(&input, &mut p, false)?;
    version::update(
        &mut tx,
        version::Row {
            table: "pools",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, claim_per_day = $2, max_held = $3, reclaim_wait_days = $4,
             return_days = $5, grade_days = $6, unconverted_days = $7, active = $8,
             updated_at = $9",
        args![
            p.name.as_str(),
            p.claim_per_day,
            p.max_held,
            p.reclaim_wait_days,
            p.return_days,
            serde_json::json!(p.grade_days.0),
            p.unconverted_days,
            p.active,
            now()
        ],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "pools",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The leads waiting in a pool, oldest in the pool first… by id (a page of up to 200 after
/// `after`). Whoever may claim from the pool sees them.
pub async fn leads_in(db: &Db, ctx: &Ctx, id: Uuid, after: Option<Uuid>) -> Result<Vec<Lead>> {
    let pool = get(db, ctx, id).await?;
    may_claim(ctx, &pool)?;
    leads::in_pool(db, ctx.tenant_id, id, after).await
}

/// Claiming takes creating leads, and a team's pool is its members' (or a manager's).
fn may_claim(ctx: &Ctx, pool: &Pool) -> Result<()> {
    let scope = ctx.require("leads", Action::Create)?;
    if pool.team_id.is_some()
        && pool.team_id != ctx.team_id
        && scope != guanxi_platform::perms::Scope::All
    {
        return Err(Error::Forbidden);
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolAction {
    /// The pool's version as read (optional): a pool whose limits changed since is refused
    /// (412).
    pub version: Option<i64>,
    #[serde(default)]
    pub ids: Vec<Uuid>,
    /// Why (required to release).
    pub reason: Option<String>,
    /// For an assignment from the pool: who gets the leads.
    pub owner_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolFailure {
    pub id: Uuid,
    /// `taken` (someone else has it, or it is not in this pool), `claim_per_day`, `max_held`,
    /// `reclaim_wait`, `just_released`, `not_found`, `forbidden`.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolResult {
    pub done: Vec<Uuid>,
    pub failed: Vec<PoolFailure>,
}

/// The pool (404 first: an unknown pool says nothing about the input), then the ids.
async fn pool_and_ids(db: &Db, ctx: &Ctx, id: Uuid, a: &PoolAction) -> Result<Vec<Uuid>> {
    let pool = get(db, ctx, id).await?;
    if let Some(v) = a.version {
        version::check(v, pool.version)?;
    }
    check_ids(a)
}

fn check_ids(a: &PoolAction) -> Result<Vec<Uuid>> {
    if a.ids.is_empty() {
        return Err(Error::field("ids", "required"));
    }
    if a.ids.len() > MAX_IDS {
        return Err(Error::field("ids", "too_many"));
    }
    let mut seen = std::collections::HashSet::new();
    Ok(a.ids.iter().copied().filter(|i| seen.insert(*i)).collect())
}

/// The start of today in the tenant's time zone.
async fn start_of_day(tx: &mut Tx, tenant: Uuid, at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let (tz,): (String,) = tx
        .fetch_one("SELECT time_zone FROM tenants WHERE id = $1", args![tenant])
        .await?;
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let local = at.with_timezone(&tz).date_naive();
    Ok(local
        .and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(at - Duration::days(1)))
}

/// Moves a lead between owner and pool and records why, on its timeline and in the pool's
/// events.
#[allow(clippy::too_many_arguments)]
async fn record(
    tx: &mut Tx,
    ctx: &Ctx,
    pool: Uuid,
    lead: Uuid,
    user: Option<Uuid>,
    action: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO pool_events (tenant_id, id, pool_id, lead_id, user_id, action, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            ctx.tenant_id,
            new_id(),
            pool,
            lead,
            user,
            action,
            reason,
            at
        ],
    )
    .await?;
    let detail = serde_json::json!({"pool_id": pool, "user_id": user, "reason": reason});
    audit::record(tx, ctx, action, "leads", Some(lead), None, Some(&detail)).await
}

/// A rep claims leads from the pool: each one is theirs unless a limit says no (named in the
/// failure) or someone else was first.
pub async fn claim(db: &Db, ctx: &Ctx, pool_id: Uuid, a: PoolAction) -> Result<PoolResult> {
    let ids = pool_and_ids(db, ctx, pool_id, &a).await?;
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let mut out = PoolResult {
        done: vec![],
        failed: vec![],
    };
    for id in ids {
        let mut tx = db.begin().await?;
        let pool = load(&mut tx, ctx.tenant_id, pool_id).await?;
        may_claim(ctx, &pool)?;
        // One rep's claims one at a time: the limits are counted with nothing in between.
        let at = now();
        keylock::hold(&mut tx, ctx.tenant_id, &[format!("pool_claims:{user}")], at).await?;
        if let Some(reason) = refusal(&mut tx, ctx, &pool, user, id, at).await? {
            out.failed.push(PoolFailure {
                id,
                reason: reason.into(),
            });
            continue;
        }
        let team: Option<Uuid> = ctx.team_id;
        let n = tx
            .execute(
                "UPDATE leads SET owner_id = $1, team_id = $2, pool_id = NULL, updated_at = $3,
                     updated_by = $4, version = version + 1
                 WHERE tenant_id = $5 AND id = $6 AND pool_id = $7 AND owner_id IS NULL
                   AND deleted_at IS NULL",
                args![user, team, at, ctx.user_id, ctx.tenant_id, id, pool_id],
            )
            .await?;
        if n == 0 {
            out.failed.push(PoolFailure {
                id,
                reason: "taken".into(),
            });
            continue;
        }
        record(&mut tx, ctx, pool_id, id, Some(user), "claim", None, at).await?;
        tx.commit().await?;
        out.done.push(id);
    }
    Ok(out)
}

/// Which limit refuses this claim, if any.
async fn refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    pool: &Pool,
    user: Uuid,
    lead: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<&'static str>> {
    if let Some(limit) = pool.claim_per_day {
        let since = start_of_day(tx, ctx.tenant_id, at).await?;
        let today: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM pool_events WHERE tenant_id = $1 AND user_id = $2
                   AND action = 'claim' AND at >= $3",
                args![ctx.tenant_id, user, since],
            )
            .await?;
        if today >= limit {
            return Ok(Some("claim_per_day"));
        }
    }
    if let Some(limit) = pool.max_held {
        let held: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM leads WHERE tenant_id = $1 AND owner_id = $2
                   AND deleted_at IS NULL AND status NOT IN ('converted', 'disqualified')",
                args![ctx.tenant_id, user],
            )
            .await?;
        if held >= limit {
            return Ok(Some("max_held"));
        }
    }
    // The lead's last event: released (or taken back) from this rep?
    let last: Option<(String, Option<Uuid>, DateTime<Utc>)> = tx
        .fetch_optional(
            "SELECT action, user_id, at FROM pool_events WHERE tenant_id = $1 AND lead_id = $2
             ORDER BY at DESC, id DESC LIMIT 1",
            args![ctx.tenant_id, lead],
        )
        .await?;
    if let Some((action, who, when)) = last {
        if who == Some(user) && (action == "release" || action == "return") {
            if at - when < Duration::days(pool.reclaim_wait_days) {
                return Ok(Some("reclaim_wait"));
            }
            if action == "release" && pool.reclaim_wait_days == 0 {
                return Ok(Some("just_released"));
            }
        }
    }
    Ok(None)
}

/// The owner (or whoever may change the lead) puts leads back into the pool, saying why.
pub async fn release(db: &Db, ctx: &Ctx, pool_id: Uuid, a: PoolAction) -> Result<PoolResult> {
    let ids = pool_and_ids(db, ctx, pool_id, &a).await?;
    let reason = a
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::field("reason", "required"))?
        .chars()
        .take(500)
        .collect::<String>();
    let mut out = PoolResult {
        done: vec![],
        failed: vec![],
    };
    for id in ids {
        let mut tx = db.begin().await?;
        let pool = load(&mut tx, ctx.tenant_id, pool_id).await?;
        let lead = match guanxi_records::record::load_for::<Lead>(&mut tx, ctx, id, Action::Update)
            .await
        {
            Ok(l) => l,
            Err(e @ (Error::NotFound | Error::Forbidden)) => {
                out.failed.push(PoolFailure {
                    id,
                    reason: if matches!(e, Error::NotFound) {
                        "not_found"
                    } else {
                        "forbidden"
                    }
                    .into(),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let at = now();
        if lead.deleted_at.is_some() || lead.status == "converted" || lead.owner_id.is_none() {
            out.failed.push(PoolFailure {
                id,
                reason: "taken".into(),
            });
            continue;
        }
        // Checked against the version read: a lead changed meanwhile is not released.
        match version::update(
            &mut tx,
            version::Row {
                table: "leads",
                tenant_id: ctx.tenant_id,
                id,
            },
            lead.version,
            "owner_id = NULL, pool_id = $1, team_id = $2, updated_at = $3, updated_by = $4",
            args![pool_id, pool.team_id, at, ctx.user_id],
        )
        .await
        {
            Ok(_) => {}
            Err(Error::PreconditionFailed { .. } | Error::NotFound) => {
                out.failed.push(PoolFailure {
                    id,
                    reason: "taken".into(),
                });
                continue;
            }
            Err(e) => return Err(e),
        }
        record(
            &mut tx,
            ctx,
            pool_id,
            id,
            lead.owner_id,
            "release",
            Some(&reason),
            at,
        )
        .await?;
        tx.commit().await?;
        out.done.push(id);
    }
    Ok(out)
}

/// A manager gives leads waiting in the pool to a rep (no claim limits: a decision, not a
/// grab); the rep is told.
pub async fn assign(db: &Db, ctx: &Ctx, pool_id: Uuid, a: PoolAction) -> Result<PoolResult> {
    let ids = pool_and_ids(db, ctx, pool_id, &a).await?;
    let owner = a
        .owner_id
        .ok_or_else(|| Error::field("owner_id", "required"))?;
    let scope = ctx.require("leads", Action::Update)?;
    if scope == guanxi_platform::perms::Scope::Own {
        return Err(Error::Forbidden);
    }
    let mut out = PoolResult {
        done: vec![],
        failed: vec![],
    };
    let mut tx = db.begin().await?;
    load(&mut tx, ctx.tenant_id, pool_id).await?;
    let team: Option<(Option<Uuid>,)> = tx
        .fetch_optional(
            "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
            args![ctx.tenant_id, owner, true],
        )
        .await?;
    let Some((team,)) = team else {
        return Err(Error::field("owner_id", "unknown"));
    };
    if !ctx.covers(scope, Some(owner), team) {
        return Err(Error::field("owner_id", "out_of_scope"));
    }
    let at = now();
    for id in ids {
        let n = tx
            .execute(
                "UPDATE leads SET owner_id = $1, team_id = $2, pool_id = NULL, updated_at = $3,
                     updated_by = $4, version = version + 1
                 WHERE tenant_id = $5 AND id = $6 AND pool_id = $7 AND owner_id IS NULL
                   AND deleted_at IS NULL",
                args![owner, team, at, ctx.user_id, ctx.tenant_id, id, pool_id],
            )
            .await?;
        if n == 0 {
            out.failed.push(PoolFailure {
                id,
                reason: "taken".into(),
            });
            continue;
        }
        record(
            &mut tx,
            ctx,
            pool_id,
            id,
            Some(owner),
            "assign",
            a.reason.as_deref(),
            at,
        )
        .await?;
        out.done.push(id);
    }
    if !out.done.is_empty() {
        notifications::notify(
            &mut tx,
            ctx,
            owner,
            notifications::Notice {
                kind: "pool_assigned",
                params: serde_json::json!({"count": out.done.len()}),
                link: Some("/leads".into()),
                entity: None,
                entity_id: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// When a held lead goes back to its pool, by the pool's rules (`None`: it does not).
pub fn returns_at(pool: &Pool, lead: &Lead) -> Option<DateTime<Utc>> {
    if lead.owner_id.is_none()
        || lead.deleted_at.is_some()
        || ["converted", "disqualified"].contains(&lead.status.as_str())
    {
        return None;
    }
    let days = pool
        .grade_days
        .0
        .get(&lead.grade)
        .copied()
        .or(pool.return_days);
    let by_follow_up = days.map(|d| lead.updated_at + Duration::days(d));
    let by_conversion = pool
        .unconverted_days
        .map(|d| lead.created_at + Duration::days(d));
    match (by_follow_up, by_conversion) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The pool a lead of `team` returns to: its team's, else the company's.
pub async fn pool_for(db: &Db, tenant: Uuid, team: Option<Uuid>) -> Result<Option<Pool>> {
    let pools: Vec<Pool> = db
        .fetch_all(
            &format!(
                "{SELECT} WHERE tenant_id = $1 AND active = $2 AND (team_id = $3 OR team_id IS NULL)"
            ),
            args![tenant, true, team],
        )
        .await?;
    Ok(pools
        .iter()
        .find(|p| p.team_id.is_some() && p.team_id == team)
        .or_else(|| pools.iter().find(|p| p.team_id.is_none()))
        .cloned())
}

/// The return pass at `at`: every active pool's rules, one statement per batch of leads.
/// Returns how many leads went back.
pub async fn run_returns(tx: &mut Tx, tenant: Uuid, at: DateTime<Utc>) -> Result<u64> {
    let pools: Vec<Pool> = tx
        .fetch_all(
            &format!("{SELECT} WHERE tenant_id = $1 AND active = $2"),
            args![tenant, true],
        )
        .await?;
    let team_pools: Vec<Uuid> = pools.iter().filter_map(|p| p.team_id).collect();
    let ctx = Ctx::system(tenant);
    let mut returned = 0;
    for pool in &pools {
        if pool.return_days.is_none()
            && pool.grade_days.0.is_empty()
            && pool.unconverted_days.is_none()
        {
            continue;
        }
        // The rule as SQL: unchanged since its grade's (or the pool's) limit, or unconverted
        // since the pool's.
        let limit = |days: Option<i64>| days.map(|d| at - Duration::days(d));
        let grade = |g: &str| limit(pool.grade_days.0.get(g).copied().or(pool.return_days));
        let mut sql = String::from(
            "SELECT id, owner_id FROM leads WHERE tenant_id = $1 AND owner_id IS NOT NULL
               AND deleted_at IS NULL AND status NOT IN ('converted', 'disqualified')",
        );
        let mut params: Vec<Val> = args![tenant];
        match pool.team_id {
            Some(t) => {
                params.push(Val::from(t));
                sql.push_str(&format!(" AND team_id = ${}", params.len()));
            }
            None => {
                sql.push_str(" AND (team_id IS NULL");
                for t in &team_pools {
                    params.push(Val::from(*t));
                    if params.len() == 2 {
                        sql.push_str(" OR team_id NOT IN (");
                    } else {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", params.len()));
                }
                sql.push_str(if team_pools.is_empty() { ")" } else { "))" });
            }
        }
        let mut any = Vec::new();
        let bands = [
            ("A", 80, 101),
            ("B", 60, 80),
            ("C", 40, 60),
            ("D", i64::MIN, 40),
        ];
        for (g, lo, hi) in bands {
            if let Some(before) = grade(g) {
                params.push(Val::from(before));
                let n = params.len();
                any.push(format!(
                    "(score >= {lo} AND score < {hi} AND updated_at < ${n})"
                ));
            }
        }
        if let Some(before) = limit(pool.unconverted_days) {
            params.push(Val::from(before));
            any.push(format!("created_at < ${}", params.len()));
        }
        // Keyset batches: each starts after the last lead the previous one read, so a batch
        // never walks again over the leads already returned (quadratic on PostgreSQL).
        params.push(Val::from(Uuid::nil()));
        let after = params.len();
        sql.push_str(&format!(
            " AND ({}) AND id > ${after} ORDER BY id LIMIT {BATCH}",
            any.join(" OR ")
        ));
        // One notice per rep for the whole pass, not per lead or batch.
        let mut per_owner: BTreeMap<Uuid, usize> = BTreeMap::new();
        loop {
            let due: Vec<(Uuid, Option<Uuid>)> = tx.fetch_all(&sql, params.clone()).await?;
            let Some((last, _)) = due.last() else {
                break;
            };
            params[after - 1] = Val::from(*last);
            let mut q =
                guanxi_platform::db::Sql::new("UPDATE leads SET owner_id = NULL, pool_id = ");
            q.bind(pool.id)
                .push(", updated_at = ")
                .bind(at)
                .push(", version = version + 1 WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND owner_id IS NOT NULL AND id IN (");
            for (i, (id, _)) in due.iter().enumerate() {
                q.push(if i == 0 { "" } else { ", " }).bind(*id);
            }
            // Only what this statement moved is recorded: a lead claimed or released since it
            // was read is not returned, and gets no event.
            q.push(") RETURNING id");
            let moved: Vec<(Uuid,)> = tx.fetch_sql(q).await?;
            let moved: std::collections::HashSet<Uuid> =
                moved.into_iter().map(|(id,)| id).collect();
            let read = due.len();
            let due: Vec<(Uuid, Option<Uuid>)> = due
                .into_iter()
                .filter(|(id, _)| moved.contains(id))
                .collect();
            let rows: Vec<Vec<Val>> = due
                .iter()
                .map(|(id, owner)| {
                    args![tenant, new_id(), pool.id, *id, *owner, "return", "rule", at]
                })
                .collect();
            tx.insert_rows(
                "pool_events",
                &[
                    "tenant_id",
                    "id",
                    "pool_id",
                    "lead_id",
                    "user_id",
                    "action",
                    "reason",
                    "at",
                ],
                rows,
            )
            .await?;
            let details: Vec<serde_json::Value> = due
                .iter()
                .map(|(_, owner)| serde_json::json!({"pool_id": pool.id, "user_id": owner, "reason": "rule"}))
                .collect();
            let events: Vec<(Uuid, Option<&serde_json::Value>, Option<&serde_json::Value>)> = due
                .iter()
                .zip(&details)
                .map(|((id, _), d)| (*id, None, Some(d)))
                .collect();
            audit::record_many(tx, &ctx, "return", "leads", &events).await?;
            for (_, owner) in &due {
                if let Some(o) = owner {
                    *per_owner.entry(*o).or_default() += 1;
                }
            }
            returned += due.len() as u64;
            if read < BATCH {
                break;
            }
        }
        for (owner, count) in per_owner {
            notifications::notify(
                tx,
                &ctx,
                owner,
                notifications::Notice {
                    kind: "pool_returned",
                    params: serde_json::json!({"count": count, "pool": pool.name}),
                    link: Some("/leads".into()),
                    entity: None,
                    entity_id: None,
                },
            )
            .await?;
        }
    }
    Ok(returned)
}

/// The daily `pool_returns` job: the pass at the job's due time, then tomorrow's job.
pub fn returns_handler() -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync
{
    |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        Box::pin(async move {
            run_returns(tx, due.tenant_id, due.at).await?;
            plan_returns(tx, due.tenant_id, due.at).await
        })
    }
}
