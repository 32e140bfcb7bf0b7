//! The shared pool (公海): leads or customers (accounts) nobody holds, one pool of each kind per
//! team and one for the company. A rep claims from a pool within its limits — so many a day, at
//! most so many held, not one they gave back within the waiting days (nor the one they just
//! released); records go back by rules — a lead with no follow-up (no change) for N days, per
//! grade if set, or not converted within N days of arriving; an account with no follow-up (no
//! logged touch) for N days, or no order within N days of being taken — in a set-based pass a
//! batch at a time (the daily `pool_returns` job). Managers assign from the pool. Every claim,
//! release, return and assignment is a pool event and an audit event on the record's timeline,
//! with its reason; a claim is one conditional update, so of two reps claiming one record at
//! once exactly one gets it. A record waiting in a pool has no owner and changes hands only
//! here (an edit cannot give it one: `owner_id: in_pool`).

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

use guanxi_customers::accounts::{self, Account};
use guanxi_records::record::load_for;

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
    /// What the pool holds: `leads`, or `accounts` (customers).
    pub entity: String,
    /// The team's pool; absent: the company's.
    pub team_id: Option<Uuid>,
    /// Records one rep may claim from pools of this kind a day (absent: no limit).
    pub claim_per_day: Option<i64>,
    /// A rep holding this many (open leads, or accounts) claims no more (absent: no limit).
    pub max_held: Option<i64>,
    /// Days before a rep may claim again a record they gave back (or that was taken from them).
    pub reclaim_wait_days: i64,
    /// A held record with no follow-up this many days goes back (absent: never): a lead
    /// unchanged, an account with no touch logged.
    pub return_days: Option<i64>,
    /// `return_days` per lead grade (`{"A": 60, "D": 7}`); lead pools only.
    #[schema(value_type = Object)]
    pub grade_days: sqlx::types::Json<BTreeMap<String, i64>>,
    /// A lead not converted this many days after it arrived, or an account with no order this
    /// many days after it was taken, goes back (absent: never).
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
    /// Set on create: `leads` (the default) or `accounts`.
    pub entity: Option<String>,
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

/// What a pool may hold.
pub const ENTITIES: [&str; 2] = ["leads", "accounts"];

impl Pool {
    /// The table (and permission module) of what the pool holds.
    pub fn table(&self) -> &'static str {
        if self.holds_accounts() {
            "accounts"
        } else {
            "leads"
        }
    }
    pub fn holds_accounts(&self) -> bool {
        self.entity == "accounts"
    }
    /// The notification kind of `what` (`returned`, `assigned`) happening to its records.
    fn notice(&self, what: &str) -> &'static str {
        match (self.holds_accounts(), what) {
            (true, "returned") => "accounts_returned",
            (true, _) => "accounts_assigned",
            (false, "returned") => "pool_returned",
            (false, _) => "pool_assigned",
        }
    }
    /// Where its records' owners are sent to see them.
    fn link(&self) -> &'static str {
        if self.holds_accounts() {
            "/customers/accounts"
        } else {
            "/leads"
        }
    }
}

const SELECT: &str = "SELECT id, name, entity, team_id, claim_per_day, max_held, reclaim_wait_days,
    return_days, grade_days, unconverted_days, active, created_at, updated_at, version FROM pools";

/// The pools of the kinds the caller may read (leads, accounts).
pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Pool>> {
    if ENTITIES.iter().all(|e| ctx.can(e, Action::Read).is_none()) {
        return Err(Error::Forbidden);
    }
    let mut pools: Vec<Pool> = db
        .fetch_all(
            &format!("{SELECT} WHERE tenant_id = $1 ORDER BY name, id LIMIT 500"),
            args![ctx.tenant_id],
        )
        .await?;
    pools.retain(|p| ctx.can(p.table(), Action::Read).is_some());
    Ok(pools)
}

async fn load(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<Pool> {
    tx.fetch_one(
        &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
        args![tenant, id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Pool> {
    let pool: Pool = db
        .fetch_one(
            &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    // A pool of what the caller may not read does not exist for them.
    ctx.can(pool.table(), Action::Read).ok_or(Error::NotFound)?;
    Ok(pool)
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
    match input.entity.as_deref() {
        Some(e) if creating && ENTITIES.contains(&e) => p.entity = e.into(),
        Some(e) if !creating && e != p.entity => errs.add("entity", "immutable"),
        Some(e) if !ENTITIES.contains(&e) => errs.add("entity", "invalid"),
        _ => {}
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
    if p.holds_accounts() && !p.grade_days.0.is_empty() {
        errs.add("grade_days", "leads_only");
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
        entity: "leads".into(),
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
            "SELECT COUNT(*) FROM pools WHERE tenant_id = $1 AND entity = $2
               AND (team_id = $3 OR ($3 IS NULL AND team_id IS NULL))",
            args![ctx.tenant_id, p.entity.as_str(), p.team_id],
        )
        .await?;
    if taken > 0 {
        return Err(Error::field("team_id", "taken"));
    }
    tx.execute(
        "INSERT INTO pools (tenant_id, id, name, team_id, claim_per_day, max_held,
             reclaim_wait_days, return_days, grade_days, unconverted_days, active, created_at,
             updated_at, version, entity)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14)",
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
            t,
            p.entity.as_str()
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

/// The leads waiting in a lead pool, by id (a page of up to 200 after `after`). Whoever may
/// claim from the pool sees them; a pool of accounts holds no leads (404).
pub async fn leads_in(db: &Db, ctx: &Ctx, id: Uuid, after: Option<Uuid>) -> Result<Vec<Lead>> {
    let pool = get(db, ctx, id).await?;
    if pool.holds_accounts() {
        return Err(Error::NotFound);
    }
    may_claim(ctx, &pool)?;
    leads::in_pool(db, ctx.tenant_id, id, after).await
}

/// The accounts waiting in an account pool, as [`leads_in`].
pub async fn accounts_in(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    after: Option<Uuid>,
) -> Result<Vec<Account>> {
    let pool = get(db, ctx, id).await?;
    if !pool.holds_accounts() {
        return Err(Error::NotFound);
    }
    may_claim(ctx, &pool)?;
    accounts::in_pool(db, ctx.tenant_id, id, after).await
}

/// Claiming takes creating what the pool holds, and a team's pool is its members' (or a
/// manager's).
fn may_claim(ctx: &Ctx, pool: &Pool) -> Result<()> {
    let scope = ctx.require(pool.table(), Action::Create)?;
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
    /// For an assignment from the pool: who gets the records.
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

/// Records why a record moved between owner and pool, on its timeline and in the pool's
/// events.
#[allow(clippy::too_many_arguments)]
async fn record(
    tx: &mut Tx,
    ctx: &Ctx,
    pool: &Pool,
    record: Uuid,
    user: Option<Uuid>,
    action: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO pool_events (tenant_id, id, pool_id, record_id, user_id, action, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            ctx.tenant_id,
            new_id(),
            pool.id,
            record,
            user,
            action,
            reason,
            at
        ],
    )
    .await?;
    let detail = serde_json::json!({"pool_id": pool.id, "user_id": user, "reason": reason});
    audit::record(
        tx,
        ctx,
        action,
        pool.table(),
        Some(record),
        None,
        Some(&detail),
    )
    .await
}

/// Gives a waiting record to `owner` (of `team`): one conditional update, so of two at once
/// exactly one moves it. A new holder's account clocks (follow-up, first order) start now.
/// Whether it moved.
#[allow(clippy::too_many_arguments)]
async fn take(
    tx: &mut Tx,
    ctx: &Ctx,
    pool: &Pool,
    id: Uuid,
    owner: Uuid,
    team: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let clocks = if pool.holds_accounts() {
        ", held_since = $3, followed_at = $3"
    } else {
        ""
    };
    let n = tx
        .execute(
            &format!(
                "UPDATE {} SET owner_id = $1, team_id = $2, pool_id = NULL, updated_at = $3,
                     updated_by = $4, version = version + 1{clocks}
                 WHERE tenant_id = $5 AND id = $6 AND pool_id = $7 AND owner_id IS NULL
                   AND deleted_at IS NULL",
                pool.table()
            ),
            args![owner, team, at, ctx.user_id, ctx.tenant_id, id, pool.id],
        )
        .await?;
    Ok(n > 0)
}

/// A rep claims records from the pool: each one is theirs unless a limit says no (named in the
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
        if !take(&mut tx, ctx, &pool, id, user, ctx.team_id, at).await? {
            out.failed.push(PoolFailure {
                id,
                reason: "taken".into(),
            });
            continue;
        }
        record(&mut tx, ctx, &pool, id, Some(user), "claim", None, at).await?;
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
    record: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<&'static str>> {
    if let Some(limit) = pool.claim_per_day {
        let since = start_of_day(tx, ctx.tenant_id, at).await?;
        let today: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM pool_events e
                   JOIN pools p ON p.tenant_id = e.tenant_id AND p.id = e.pool_id
                 WHERE e.tenant_id = $1 AND e.user_id = $2 AND e.action = 'claim' AND e.at >= $3
                   AND p.entity = $4",
                args![ctx.tenant_id, user, since, pool.entity.as_str()],
            )
            .await?;
        if today >= limit {
            return Ok(Some("claim_per_day"));
        }
    }
    if let Some(limit) = pool.max_held {
        let held: i64 = tx
            .scalar(
                if pool.holds_accounts() {
                    "SELECT COUNT(*) FROM accounts WHERE tenant_id = $1 AND owner_id = $2
                       AND deleted_at IS NULL"
                } else {
                    "SELECT COUNT(*) FROM leads WHERE tenant_id = $1 AND owner_id = $2
                       AND deleted_at IS NULL AND status NOT IN ('converted', 'disqualified')"
                },
                args![ctx.tenant_id, user],
            )
            .await?;
        if held >= limit {
            return Ok(Some("max_held"));
        }
    }
    // The record's last event: released (or taken back) from this rep?
    let last: Option<(String, Option<Uuid>, DateTime<Utc>)> = tx
        .fetch_optional(
            "SELECT action, user_id, at FROM pool_events WHERE tenant_id = $1 AND record_id = $2
             ORDER BY at DESC, id DESC LIMIT 1",
            args![ctx.tenant_id, record],
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

/// What a release needs of the record: its owner and version, and whether it may go (not in
/// the trash, not a converted lead).
struct Held {
    owner: Option<Uuid>,
    version: i64,
    closed: bool,
}

async fn held(tx: &mut Tx, ctx: &Ctx, pool: &Pool, id: Uuid) -> Result<Held> {
    Ok(if pool.holds_accounts() {
        let a: Account = load_for(tx, ctx, id, Action::Update).await?;
        Held {
            owner: a.owner_id,
            version: a.version,
            closed: a.deleted_at.is_some(),
        }
    } else {
        let l: Lead = load_for(tx, ctx, id, Action::Update).await?;
        Held {
            owner: l.owner_id,
            version: l.version,
            closed: l.deleted_at.is_some() || l.status == "converted",
        }
    })
}

/// The owner (or whoever may change the record) puts records back into the pool, saying why.
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
        let lead = match held(&mut tx, ctx, &pool, id).await {
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
        if lead.closed || lead.owner.is_none() {
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
                table: pool.table(),
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
            &pool,
            id,
            lead.owner,
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

/// A manager gives records waiting in the pool to a rep (no claim limits: a decision, not a
/// grab); the rep is told.
pub async fn assign(db: &Db, ctx: &Ctx, pool_id: Uuid, a: PoolAction) -> Result<PoolResult> {
    let ids = pool_and_ids(db, ctx, pool_id, &a).await?;
    let owner = a
        .owner_id
        .ok_or_else(|| Error::field("owner_id", "required"))?;
    let mut out = PoolResult {
        done: vec![],
        failed: vec![],
    };
    let mut tx = db.begin().await?;
    let pool = load(&mut tx, ctx.tenant_id, pool_id).await?;
    let scope = ctx.require(pool.table(), Action::Update)?;
    if scope == guanxi_platform::perms::Scope::Own {
        return Err(Error::Forbidden);
    }
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
        if !take(&mut tx, ctx, &pool, id, owner, team, at).await? {
            out.failed.push(PoolFailure {
                id,
                reason: "taken".into(),
            });
            continue;
        }
        record(
            &mut tx,
            ctx,
            &pool,
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
                kind: pool.notice("assigned"),
                params: serde_json::json!({"count": out.done.len()}),
                link: Some(pool.link().into()),
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

/// When a held account goes back to its pool (`None`: it does not): no touch logged for the
/// pool's days, or (`ordered`: false) no order within its days of being taken.
pub fn account_returns_at(pool: &Pool, a: &Account, ordered: bool) -> Option<DateTime<Utc>> {
    if a.owner_id.is_none() || a.deleted_at.is_some() {
        return None;
    }
    let by_follow_up = pool
        .return_days
        .map(|d| a.followed_at.unwrap_or(a.updated_at) + Duration::days(d));
    let by_order = pool
        .unconverted_days
        .filter(|_| !ordered)
        .map(|d| a.held_since.unwrap_or(a.created_at) + Duration::days(d));
    match (by_follow_up, by_order) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Whether the account has an order (not cancelled or returned) since its holder took it.
pub async fn ordered_since_held(db: &Db, tenant: Uuid, a: &Account) -> Result<bool> {
    let n: i64 = db
        .scalar(
            "SELECT COUNT(*) FROM orders WHERE tenant_id = $1 AND account_id = $2
               AND ordered_at >= $3 AND status NOT IN ('cancelled', 'returned')",
            args![tenant, a.id, a.held_since.unwrap_or(a.created_at)],
        )
        .await?;
    Ok(n > 0)
}

/// The pool a record of `table` (`leads`, `accounts`) of `team` returns to: its team's, else
/// the company's.
pub async fn pool_for(
    db: &Db,
    tenant: Uuid,
    table: &str,
    team: Option<Uuid>,
) -> Result<Option<Pool>> {
    let pools: Vec<Pool> = db
        .fetch_all(
            &format!(
                "{SELECT} WHERE tenant_id = $1 AND active = $2 AND entity = $3
                   AND (team_id = $4 OR team_id IS NULL)"
            ),
            args![tenant, true, table, team],
        )
        .await?;
    Ok(pools
        .iter()
        .find(|p| p.team_id.is_some() && p.team_id == team)
        .or_else(|| pools.iter().find(|p| p.team_id.is_none()))
        .cloned())
}

/// The return pass at `at`: every active pool's rules, one statement per batch of records.
/// Returns how many went back.
pub async fn run_returns(tx: &mut Tx, tenant: Uuid, at: DateTime<Utc>) -> Result<u64> {
    let pools: Vec<Pool> = tx
        .fetch_all(
            &format!("{SELECT} WHERE tenant_id = $1 AND active = $2"),
            args![tenant, true],
        )
        .await?;

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
        let team_pools: Vec<Uuid> = pools
            .iter()
            .filter(|p| p.entity == pool.entity)
            .filter_map(|p| p.team_id)
            .collect();
        let table = pool.table();
        let mut sql = format!(
            "SELECT id, owner_id FROM {table} r WHERE tenant_id = $1 AND owner_id IS NOT NULL
               AND deleted_at IS NULL"
        );
        if !pool.holds_accounts() {
            sql.push_str(" AND status NOT IN ('converted', 'disqualified')");
        }
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
        if pool.holds_accounts() {
            // No touch logged since the limit; no order since taken, taken before the limit.
            if let Some(before) = limit(pool.return_days) {
                params.push(Val::from(before));
                any.push(format!(
                    "COALESCE(followed_at, updated_at) < ${}",
                    params.len()
                ));
            }
            if let Some(before) = limit(pool.unconverted_days) {
                params.push(Val::from(before));
                any.push(format!(
                    "(COALESCE(held_since, created_at) < ${} AND NOT EXISTS (SELECT 1 FROM orders o
                       WHERE o.tenant_id = r.tenant_id AND o.account_id = r.id
                         AND o.ordered_at >= COALESCE(r.held_since, r.created_at)
                         AND o.status NOT IN ('cancelled', 'returned')))",
                    params.len()
                ));
            }
        } else {
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
        }
        if any.is_empty() {
            continue;
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
            let mut q = guanxi_platform::db::Sql::new(&format!(
                "UPDATE {table} SET owner_id = NULL, pool_id = "
            ));
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
                    "record_id",
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
            audit::record_many(tx, &ctx, "return", table, &events).await?;
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
                    kind: pool.notice("returned"),
                    params: serde_json::json!({"count": count, "pool": pool.name}),
                    link: Some(pool.link().into()),
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
