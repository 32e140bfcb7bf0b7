//! SLA policies and their evaluation. A policy is chosen by the ticket's priority, its
//! customer's grade (the account's A–E) and its category — the first active one by position
//! whose lists (empty: any) all match — and gives first-response, next-response and resolution
//! targets in business minutes on a calendar (the policy's, else the ticket's team's, else the
//! company's). [`evaluate`] derives every clock from the ticket's event log ([`crate::clock`]),
//! keeps each target's outcome in `ticket_sla` (for reports), appends an `sla` event when a
//! target is first met or missed, escalates a miss (the owner and the team's managers told;
//! the priority raised one step if the policy says so) and plans the `ticket_sla` job for the
//! next due time and its warning — keyed by ticket and due time, so it fires once on any number
//! of nodes, and a job whose due time moved meanwhile just re-evaluates. Changing a policy
//! re-evaluates every open ticket (`sla_reevaluate`, 500 a run, chained).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use guanxi_platform::perms::Action;
use guanxi_platform::settings::Setting;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, calendars, notifications, validate, version, Ctx};

use crate::clock::{self, Clock, Event, Happening, State, Targets};
use crate::conditions::{any_or, codes, unique_name};
use crate::tickets::PRIORITIES;

pub const JOB: &str = "ticket_sla";
pub const REEVALUATE_JOB: &str = "sla_reevaluate";
pub const GRADES: &[&str] = &["A", "B", "C", "D", "E"];
/// `tickets.sla_due_key` of a ticket with no clock running (sorts after every due time).
pub const NO_DUE: i64 = 99_999_999_999;
/// The longest target: a year of business minutes.
const MAX_MINUTES: i64 = 525_600;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Policy {
    pub id: Uuid,
    pub name: String,
    /// Lower first: the first active policy that matches applies.
    pub position: i64,
    pub active: bool,
    /// Matches these priorities (empty: any).
    #[schema(value_type = Vec<String>)]
    pub priorities: sqlx::types::Json<Vec<String>>,
    /// Matches customers of these grades, A–E (empty: any, also customers without a grade).
    #[schema(value_type = Vec<String>)]
    pub grades: sqlx::types::Json<Vec<String>>,
    /// Matches these categories (empty: any).
    #[schema(value_type = Vec<String>)]
    pub categories: sqlx::types::Json<Vec<String>>,
    /// Matches tickets whose asset is covered so (empty: any): `warranty` (under warranty the
    /// day the ticket was opened), `contract` (an active service or subscription asset not
    /// ended), `none` (neither, or no asset).
    #[schema(value_type = Vec<String>)]
    pub coverage: sqlx::types::Json<Vec<String>>,
    /// Business minutes to the first public reply.
    pub first_response_minutes: Option<i64>,
    /// Business minutes to answer each later message of the customer.
    pub next_response_minutes: Option<i64>,
    /// Business minutes to resolve.
    pub resolution_minutes: Option<i64>,
    /// The owner is warned this many minutes (clock time) before a target runs out; 0: never.
    pub warn_minutes: i64,
    /// On a miss, raise the ticket's priority one step.
    pub raise_priority: bool,
    /// Days after a ticket is resolved that its follow-up visit (回访) is due; none: no
    /// follow-up.
    pub follow_up_days: Option<i64>,
    /// The calendar counted on; none: the ticket's team's, else the company's.
    pub calendar_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Policy {
    pub fn targets(&self) -> Targets {
        Targets {
            first_response: self.first_response_minutes,
            next_response: self.next_response_minutes,
            resolution: self.resolution_minutes,
        }
    }

    /// Whether the policy applies to a ticket with these facts (`covered`: its asset's
    /// coverage, [`coverage_of`]).
    pub fn matches(
        &self,
        priority: &str,
        grade: Option<&str>,
        category: Option<&str>,
        covered: &[&str],
    ) -> bool {
        self.active
            && any_or(&self.priorities.0, Some(priority))
            && any_or(&self.grades.0, grade)
            && any_or(&self.categories.0, category)
            && (self.coverage.0.is_empty()
                || self
                    .coverage
                    .0
                    .iter()
                    .any(|c| covered.contains(&c.as_str())))
    }
}

/// How a ticket's asset may be covered.
pub const COVERAGES: &[&str] = &["warranty", "contract", "none"];

/// A ticket's asset as coverage sees it.
#[derive(Debug, Clone, Default)]
pub struct AssetFacts {
    pub kind: String,
    pub status: String,
    /// `YYYY-MM-DD`.
    pub ends_on: Option<String>,
    pub warranty_until: Option<String>,
}

/// How an asset covers a ticket opened on `day` (`YYYY-MM-DD`): under warranty that day, under
/// a contract (an active service or subscription not ended), both, or `none`.
pub fn coverage_of(asset: Option<&AssetFacts>, day: &str) -> Vec<&'static str> {
    let mut out = vec![];
    if let Some(a) = asset {
        if a.warranty_until.as_deref().is_some_and(|w| w >= day) {
            out.push("warranty");
        }
        if matches!(a.kind.as_str(), "service" | "subscription")
            && a.status == "active"
            && a.ends_on.as_deref().is_none_or(|e| e >= day)
        {
            out.push("contract");
        }
    }
    if out.is_empty() {
        out.push("none");
    }
    out
}

/// Create or change a policy; on update absent fields stay and `null` clears a target.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    pub position: Option<i64>,
    pub active: Option<bool>,
    pub priorities: Option<Vec<String>>,
    pub grades: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    /// `warranty`, `contract`, `none` (empty: any).
    pub coverage: Option<Vec<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub first_response_minutes: Option<Option<i64>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub next_response_minutes: Option<Option<i64>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub resolution_minutes: Option<Option<i64>>,
    pub warn_minutes: Option<i64>,
    pub raise_priority: Option<bool>,
    /// 0–365; `null`: no follow-up visit.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub follow_up_days: Option<Option<i64>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub calendar_id: Option<Option<Uuid>>,
}

const COLS: &str = "id, name, position, active, priorities, grades, categories,
    first_response_minutes, next_response_minutes, resolution_minutes, warn_minutes,
    raise_priority, calendar_id, created_at, updated_at, version, follow_up_days, coverage";

/// Every policy, in the order they are tried.
pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Policy>> {
    ctx.require("sla_policies", Action::Read)?;
    db.fetch_all(
        &format!("SELECT {COLS} FROM sla_policies WHERE tenant_id = $1 ORDER BY position, name"),
        args![ctx.tenant_id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Policy> {
    ctx.require("sla_policies", Action::Read)?;
    db.fetch_one(
        &format!("SELECT {COLS} FROM sla_policies WHERE tenant_id = $1 AND id = $2"),
        args![ctx.tenant_id, id],
    )
    .await
}

fn minutes(errs: &mut Errors, field: &str, v: Option<i64>) -> Option<i64> {
    match v {
        Some(m) if !(1..=MAX_MINUTES).contains(&m) => {
            errs.add(field, "out_of_range");
            None
        }
        other => other,
    }
}

/// Applies an input over `p` (a new policy's defaults, or the stored one), naming each refusal.
async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &PolicyInput,
    p: &mut Policy,
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => p.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    if let Some(pos) = input.position {
        if (0..=1_000_000).contains(&pos) {
            p.position = pos;
        } else {
            errs.add("position", "out_of_range");
        }
    }
    if let Some(a) = input.active {
        p.active = a;
    }
    if let Some(v) = &input.priorities {
        p.priorities.0 = codes(&mut errs, "priorities", v, Some(PRIORITIES));
    }
    if let Some(v) = &input.grades {
        p.grades.0 = codes(&mut errs, "grades", v, Some(GRADES));
    }
    if let Some(v) = &input.categories {
        p.categories.0 = codes(&mut errs, "categories", v, None);
    }
    if let Some(v) = &input.coverage {
        p.coverage.0 = codes(&mut errs, "coverage", v, Some(COVERAGES));
    }
    if let Some(v) = input.first_response_minutes {
        p.first_response_minutes = minutes(&mut errs, "first_response_minutes", v);
    }
    if let Some(v) = input.next_response_minutes {
        p.next_response_minutes = minutes(&mut errs, "next_response_minutes", v);
    }
    if let Some(v) = input.resolution_minutes {
        p.resolution_minutes = minutes(&mut errs, "resolution_minutes", v);
    }
    if p.first_response_minutes.is_none()
        && p.next_response_minutes.is_none()
        && p.resolution_minutes.is_none()
    {
        errs.add("resolution_minutes", "required");
    }
    if let Some(w) = input.warn_minutes {
        if (0..=10_080).contains(&w) {
            p.warn_minutes = w;
        } else {
            errs.add("warn_minutes", "out_of_range");
        }
    }
    if let Some(r) = input.raise_priority {
        p.raise_priority = r;
    }
    match input.follow_up_days {
        Some(Some(d)) if !(0..=365).contains(&d) => errs.add("follow_up_days", "out_of_range"),
        Some(d) => p.follow_up_days = d,
        None => {}
    }
    if let Some(c) = input.calendar_id {
        if let Some(id) = c {
            let known: Option<(Uuid,)> = tx
                .fetch_optional(
                    "SELECT id FROM calendars WHERE tenant_id = $1 AND id = $2",
                    args![ctx.tenant_id, id],
                )
                .await?;
            if known.is_none() {
                errs.add("calendar_id", "unknown");
            }
        }
        p.calendar_id = c;
    }
    errs.finish()
}

/// Plans the re-evaluation of every open ticket (a policy changed).
async fn reevaluate_all(tx: &mut Tx, tenant: Uuid) -> Result<()> {
    jobs::enqueue(tx, tenant, REEVALUATE_JOB, &serde_json::json!({})).await
}

pub async fn create(db: &Db, ctx: &Ctx, input: PolicyInput) -> Result<Policy> {
    ctx.require("sla_policies", Action::Create)?;
    let t = now();
    let mut p = Policy {
        id: new_id(),
        name: String::new(),
        position: 100,
        active: true,
        priorities: sqlx::types::Json(vec![]),
        grades: sqlx::types::Json(vec![]),
        categories: sqlx::types::Json(vec![]),
        coverage: sqlx::types::Json(vec![]),
        first_response_minutes: None,
        next_response_minutes: None,
        resolution_minutes: None,
        warn_minutes: 30,
        raise_priority: false,
        follow_up_days: None,
        calendar_id: None,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let mut tx = db.begin().await?;
    apply(&mut tx, ctx, &input, &mut p, true).await?;
    tx.execute(
        &format!(
            "INSERT INTO sla_policies (tenant_id, {COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ),
        args![
            ctx.tenant_id,
            p.id,
            p.name.as_str(),
            p.position,
            p.active,
            serde_json::json!(p.priorities.0),
            serde_json::json!(p.grades.0),
            serde_json::json!(p.categories.0),
            p.first_response_minutes,
            p.next_response_minutes,
            p.resolution_minutes,
            p.warn_minutes,
            p.raise_priority,
            p.calendar_id,
            t,
            t,
            1i64,
            p.follow_up_days,
            serde_json::json!(p.coverage.0)
        ],
    )
    .await
    .map_err(unique_name)?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "sla_policies",
        Some(p.id),
        None,
        Some(&p),
    )
    .await?;
    reevaluate_all(&mut tx, ctx.tenant_id).await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: PolicyInput,
) -> Result<Policy> {
    ctx.require("sla_policies", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before: Policy = tx
        .fetch_one(
            &format!("SELECT {COLS} FROM sla_policies WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    version::check(expected, before.version)?;
    let mut p = before.clone();
    apply(&mut tx, ctx, &input, &mut p, false).await?;
    version::update(
        &mut tx,
        version::Row {
            table: "sla_policies",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, position = $2, active = $3, priorities = $4, grades = $5, categories = $6,
         first_response_minutes = $7, next_response_minutes = $8, resolution_minutes = $9,
         warn_minutes = $10, raise_priority = $11, calendar_id = $12, updated_at = $13,
         follow_up_days = $14, coverage = $15",
        args![
            p.name.as_str(),
            p.position,
            p.active,
            serde_json::json!(p.priorities.0),
            serde_json::json!(p.grades.0),
            serde_json::json!(p.categories.0),
            p.first_response_minutes,
            p.next_response_minutes,
            p.resolution_minutes,
            p.warn_minutes,
            p.raise_priority,
            p.calendar_id,
            now(),
            p.follow_up_days,
            serde_json::json!(p.coverage.0)
        ],
    )
    .await
    .map_err(unique_name)?;
    let after: Policy = tx
        .fetch_one(
            &format!("SELECT {COLS} FROM sla_policies WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "sla_policies",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    reevaluate_all(&mut tx, ctx.tenant_id).await?;
    tx.commit().await?;
    Ok(after)
}

/// What the evaluation reads of a ticket.
#[derive(sqlx::FromRow)]
struct Facts {
    id: Uuid,
    number: String,
    subject: String,
    priority: String,
    category: Option<String>,
    status: String,
    owner_id: Option<Uuid>,
    team_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    merged_into_id: Option<Uuid>,
    grade: Option<String>,
    asset_kind: Option<String>,
    asset_status: Option<String>,
    asset_ends_on: Option<String>,
    asset_warranty_until: Option<String>,
}

/// One stored evaluation of a target.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct TargetRow {
    pub target: String,
    pub cycle: i64,
    pub policy_id: Uuid,
    pub target_minutes: i64,
    pub started_at: DateTime<Utc>,
    /// When its time runs out (running: if nothing changes) or ran out (missed).
    pub due_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    /// `running`, `paused`, `met` or `missed`.
    pub state: String,
    /// Business seconds used.
    pub elapsed_seconds: i64,
}

/// The ticket's event log as its clocks read it.
/// The clock-moving events of each ticket (status changes and replies), oldest first.
async fn logs_of(tx: &mut Tx, tenant: Uuid, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<Event>>> {
    let mut q =
        Sql::new("SELECT ticket_id, kind, to_value, at FROM ticket_events WHERE tenant_id = ");
    q.bind(tenant)
        .push(" AND kind IN ('status', 'reply', 'customer_reply') AND ticket_id IN ")
        .bind_list(ids.iter().copied())
        .push(" ORDER BY ticket_id, at, id");
    let rows: Vec<(Uuid, String, Option<String>, DateTime<Utc>)> = tx.fetch_sql(q).await?;
    let mut out: HashMap<Uuid, Vec<Event>> = HashMap::new();
    for (ticket, kind, to, at) in rows {
        let what = match kind.as_str() {
            "status" => match to {
                Some(to) => Happening::Status(to),
                None => continue,
            },
            "reply" => Happening::AgentReply,
            _ => Happening::CustomerReply,
        };
        out.entry(ticket).or_default().push(Event { at, what });
    }
    Ok(out)
}

/// A stored target with its ticket (what a batch reads back).
#[derive(sqlx::FromRow)]
struct PreviousRow {
    ticket_id: Uuid,
    #[sqlx(flatten)]
    row: TargetRow,
}

/// The targets of a ticket as evaluated last (oldest first).
pub async fn targets_of(db: &Db, tenant: Uuid, id: Uuid) -> Result<Vec<TargetRow>> {
    db.fetch_all(
        "SELECT target, cycle, policy_id, target_minutes, started_at, due_at, completed_at,
                breached_at, state, elapsed_seconds
         FROM ticket_sla WHERE tenant_id = $1 AND ticket_id = $2
         ORDER BY started_at, target, cycle",
        args![tenant, id],
    )
    .await
}

/// Re-evaluates a ticket's clocks at `at`, inside the caller's transaction (the change that
/// moved them, or the scheduler's job): stores them, records outcomes newly known, escalates
/// new misses and plans the next due time. `actor` is whoever caused it (told nothing).
pub async fn evaluate(tx: &mut Tx, ctx: &Ctx, id: Uuid, at: DateTime<Utc>) -> Result<Vec<Clock>> {
    Ok(evaluate_many(tx, ctx, &[id], at)
        .await?
        .pop()
        .map(|(_, c)| c)
        .unwrap_or_default())
}

/// [`evaluate`] for a batch of tickets (a re-evaluation's 500): the tickets' facts, the
/// policies, the targets before, the logs and the calendars read once for the batch, the old
/// targets deleted and the new ones written in one statement each; what is left per ticket is
/// its own row, its newly known outcomes and its next due time. Tickets not found are left
/// out.
/// A tenant's active policies, read by every ticket evaluation: cached in the process.
const ACTIVE: Setting = Setting {
    name: "sla_policies.active",
    tables: &["sla_policies"],
};

pub async fn evaluate_many(
    tx: &mut Tx,
    ctx: &Ctx,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> Result<Vec<(Uuid, Vec<Clock>)>> {
    let tenant = ctx.tenant_id;
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(
        "SELECT t.id, t.number, t.subject, t.priority, t.category, t.status, t.owner_id,
                t.team_id, t.created_at, t.deleted_at, t.merged_into_id, a.grade,
                s.kind AS asset_kind, s.status AS asset_status, s.ends_on AS asset_ends_on,
                s.warranty_until AS asset_warranty_until
         FROM tickets t
         LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
         LEFT JOIN assets s ON s.tenant_id = t.tenant_id AND s.id = t.asset_id
              AND s.deleted_at IS NULL
         WHERE t.tenant_id = ",
    );
    q.bind(tenant)
        .push(" AND t.id IN ")
        .bind_list(ids.iter().copied());
    let all: Vec<Facts> = tx.fetch_sql(q).await?;
    if all.is_empty() {
        return Ok(vec![]);
    }
    let found: Vec<Uuid> = all.iter().map(|f| f.id).collect();
    let policies: Vec<Policy> = tx
        .settings()
        .cached(
            &ACTIVE,
            tenant,
            "",
            tx.fetch_all(
                &format!(
                    "SELECT {COLS} FROM sla_policies WHERE tenant_id = $1 AND active = $2
                     ORDER BY position, name"
                ),
                args![tenant, true],
            ),
        )
        .await?;
    let mut q = Sql::new(
        "SELECT ticket_id, target, cycle, policy_id, target_minutes, started_at, due_at,
                completed_at, breached_at, state, elapsed_seconds
         FROM ticket_sla WHERE tenant_id = ",
    );
    q.bind(tenant)
        .push(" AND ticket_id IN ")
        .bind_list(found.iter().copied());
    let mut previous: HashMap<Uuid, Vec<TargetRow>> = HashMap::new();
    for p in tx.fetch_sql::<PreviousRow>(q).await? {
        previous.entry(p.ticket_id).or_default().push(p.row);
    }
    let mut q = Sql::new("DELETE FROM ticket_sla WHERE tenant_id = ");
    q.bind(tenant)
        .push(" AND ticket_id IN ")
        .bind_list(found.iter().copied());
    tx.execute(&q.sql, q.args).await?;
    let mut logs = logs_of(tx, tenant, &found).await?;
    let mut schedules: HashMap<(Option<Uuid>, Option<Uuid>), guanxi_platform::calendar::Schedule> =
        HashMap::new();
    let t = now();
    let mut rows = Vec::new();
    let mut out = Vec::with_capacity(all.len());
    let mut later = Vec::with_capacity(all.len());
    for f in all {
        let id = f.id;
        let asset = f.asset_kind.as_ref().map(|kind| AssetFacts {
            kind: kind.clone(),
            status: f.asset_status.clone().unwrap_or_default(),
            ends_on: f.asset_ends_on.clone(),
            warranty_until: f.asset_warranty_until.clone(),
        });
        let day = f.created_at.format("%Y-%m-%d").to_string();
        let covered = coverage_of(asset.as_ref(), &day);
        let policy = policies.iter().find(|p| {
            p.matches(
                &f.priority,
                f.grade.as_deref(),
                f.category.as_deref(),
                &covered,
            )
        });
        // A trashed or merged ticket, or one no policy covers, has no clocks.
        let (Some(policy), None, None) = (policy, f.deleted_at, f.merged_into_id) else {
            tx.execute(
                "UPDATE tickets SET sla_policy_id = NULL, sla_due_at = NULL, sla_breached = $1,
                     sla_due_key = $2
                 WHERE tenant_id = $3 AND id = $4",
                args![false, NO_DUE, tenant, id],
            )
            .await?;
            out.push((id, vec![]));
            continue;
        };
        let key = (policy.calendar_id, f.team_id);
        if let std::collections::hash_map::Entry::Vacant(e) = schedules.entry(key) {
            e.insert(calendars::schedule_of(&mut *tx, tenant, key.0, key.1).await?);
        }
        let schedule = &schedules[&key];
        let log = logs.remove(&id).unwrap_or_default();
        let clocks = clock::clocks(f.created_at, &log, policy.targets(), schedule, at);
        rows.extend(clocks.iter().map(|c| {
            args![
                tenant,
                id,
                c.target.as_str(),
                c.cycle,
                policy.id,
                c.minutes,
                c.started_at,
                c.due_at,
                c.completed_at,
                (c.state == State::Missed).then_some(c.due_at).flatten(),
                c.state.as_str(),
                c.elapsed_seconds,
                t
            ]
        }));
        later.push((f, policy, clocks));
    }
    if !rows.is_empty() {
        tx.insert_rows(
            "ticket_sla",
            &[
                "tenant_id",
                "ticket_id",
                "target",
                "cycle",
                "policy_id",
                "target_minutes",
                "started_at",
                "due_at",
                "completed_at",
                "breached_at",
                "state",
                "elapsed_seconds",
                "updated_at",
            ],
            rows,
        )
        .await?;
    }
    for (f, policy, clocks) in later {
        let before = previous.remove(&f.id).unwrap_or_default();
        settle(tx, ctx, &f, policy, &clocks, &before, at).await?;
        out.push((f.id, clocks));
    }
    Ok(out)
}

/// One evaluated ticket's own writes: its row (policy, next due, breached), the outcomes newly
/// known (recorded once each; a re-evaluation that changes one records it), the escalation of
/// a new miss of a ticket still open, and the next due time and its warning planned once.
async fn settle(
    tx: &mut Tx,
    ctx: &Ctx,
    f: &Facts,
    policy: &Policy,
    clocks: &[Clock],
    previous: &[TargetRow],
    at: DateTime<Utc>,
) -> Result<()> {
    let (tenant, id) = (ctx.tenant_id, f.id);
    let due = clock::next_due(clocks);
    let breached = clocks
        .iter()
        .any(|c| c.state == State::Missed && c.completed_at.is_none());
    tx.execute(
        "UPDATE tickets SET sla_policy_id = $1, sla_due_at = $2, sla_breached = $3, sla_due_key = $4
         WHERE tenant_id = $5 AND id = $6",
        args![policy.id, due, breached, due.map_or(NO_DUE, |d| d.timestamp()), tenant, id],
    )
    .await?;
    let mut newly_missed = Vec::new();
    for c in clocks {
        if !matches!(c.state, State::Met | State::Missed) {
            continue;
        }
        let before = previous
            .iter()
            .find(|p| p.target == c.target.as_str() && p.cycle == c.cycle);
        let known =
            before.is_some_and(|p| p.state == c.state.as_str() && p.completed_at == c.completed_at);
        if known {
            continue;
        }
        let was_missed = before.is_some_and(|p| p.state == "missed");
        if c.state == State::Missed && !was_missed {
            newly_missed.push(c.clone());
        }
        tx.execute(
            "INSERT INTO ticket_events (tenant_id, id, ticket_id, kind, from_value, to_value, data, user_id, at)
             VALUES ($1, $2, $3, 'sla', $4, $5, $6, NULL, $7)",
            args![
                tenant,
                new_id(),
                id,
                c.target.as_str(),
                c.state.as_str(),
                serde_json::json!({"cycle": c.cycle, "policy_id": policy.id, "minutes": c.minutes,
                    "elapsed_seconds": c.elapsed_seconds, "margin_seconds": c.margin_seconds(),
                    "due_at": c.due_at, "completed_at": c.completed_at}),
                c.completed_at.or(c.due_at).unwrap_or(at)
            ],
        )
        .await?;
    }
    let open_misses: Vec<&Clock> = newly_missed
        .iter()
        .filter(|c| c.completed_at.is_none())
        .collect();
    if !open_misses.is_empty() && !clock::done(&f.status) {
        escalate(tx, ctx, id, f, policy, &open_misses).await?;
    }
    if let Some(due) = due {
        let key = due.timestamp_micros();
        jobs::schedule(
            tx,
            tenant,
            JOB,
            &format!("breach:{id}:{key}"),
            &serde_json::json!({"ticket_id": id, "stage": "breach", "due": due}),
            due,
        )
        .await?;
        let warn_at = due - Duration::minutes(policy.warn_minutes);
        if policy.warn_minutes > 0 && warn_at > at {
            jobs::schedule(
                tx,
                tenant,
                JOB,
                &format!("warn:{id}:{key}"),
                &serde_json::json!({"ticket_id": id, "stage": "warn", "due": due}),
                warn_at,
            )
            .await?;
        }
    }
    Ok(())
}

/// Tells the owner and the team's managers of a miss, and raises the priority if the policy
/// says so (a version-moving change, in the ticket's log and audit).
async fn escalate(
    tx: &mut Tx,
    ctx: &Ctx,
    id: Uuid,
    f: &Facts,
    policy: &Policy,
    missed: &[&Clock],
) -> Result<()> {
    let link = Some(crate::tickets::ENTITY.link(id));
    let targets: Vec<&str> = missed.iter().map(|c| c.target.as_str()).collect();
    let params = serde_json::json!({"number": f.number, "subject": f.subject, "targets": targets});
    let mut told: Vec<Uuid> = Vec::new();
    let managers = guanxi_platform::teams::managers(tx, ctx.tenant_id, f.team_id).await?;
    for user in f.owner_id.into_iter().chain(managers) {
        if told.contains(&user) {
            continue;
        }
        told.push(user);
        notifications::notify(
            tx,
            ctx,
            user,
            notifications::Notice {
                kind: "ticket_sla_breached",
                params: params.clone(),
                link: link.clone(),
                entity: Some("tickets"),
                entity_id: Some(id),
            },
        )
        .await?;
    }
    if !policy.raise_priority {
        return Ok(());
    }
    let Some(pos) = PRIORITIES.iter().position(|p| *p == f.priority) else {
        return Ok(());
    };
    let Some(up) = PRIORITIES.get(pos + 1) else {
        return Ok(());
    };
    let t = now();
    // Only from the priority the miss was judged at: one changed meanwhile stays as set.
    let raised = tx
        .execute(
            "UPDATE tickets SET priority = $1, updated_at = $2, version = version + 1
             WHERE tenant_id = $3 AND id = $4 AND priority = $5",
            args![*up, t, ctx.tenant_id, id, f.priority.as_str()],
        )
        .await?;
    if raised == 0 {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO ticket_events (tenant_id, id, ticket_id, kind, from_value, to_value, data, user_id, at)
         VALUES ($1, $2, $3, 'priority', $4, $5, $6, NULL, $7)",
        args![ctx.tenant_id, new_id(), id, f.priority.as_str(), *up,
            serde_json::json!({"reason": "sla"}), t],
    )
    .await?;
    audit::record(
        tx,
        ctx,
        "escalate",
        "tickets",
        Some(id),
        Some(&serde_json::json!({"priority": f.priority})),
        Some(&serde_json::json!({"priority": up, "reason": "sla", "targets": targets})),
    )
    .await
}

/// The `ticket_sla` job: at a warning, tell the owner (the team's managers while unassigned)
/// if that clock is still running toward that due time; at a due time, re-evaluate (a miss is
/// recorded and escalated there).
pub fn handler() -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync {
    |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        Box::pin(async move {
            let Some(id) = due.payload["ticket_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
            else {
                return Ok(());
            };
            let ctx = Ctx::system(due.tenant_id);
            if due.payload["stage"] == "warn" {
                let planned: Option<DateTime<Utc>> =
                    due.payload["due"].as_str().and_then(|s| s.parse().ok());
                let row: Option<Warned> = tx
                    .fetch_optional(
                        "SELECT sla_due_at, number, subject, owner_id, team_id FROM tickets
                         WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                        args![due.tenant_id, id],
                    )
                    .await?;
                let Some((now_due, number, subject, owner, team)) = row else {
                    return Ok(());
                };
                if now_due.is_none() || now_due != planned {
                    return Ok(()); // answered, paused or moved since: the new plan warns
                }
                let to = match owner {
                    Some(o) => vec![o],
                    None => guanxi_platform::teams::managers(tx, due.tenant_id, team).await?,
                };
                for user in to {
                    notifications::notify(
                        tx,
                        &ctx,
                        user,
                        notifications::Notice {
                            kind: "ticket_sla_warning",
                            params: serde_json::json!({"number": number, "subject": subject, "due": now_due}),
                            link: Some(crate::tickets::ENTITY.link(id)),
                            entity: Some("tickets"),
                            entity_id: Some(id),
                        },
                    )
                    .await?;
                }
                return Ok(());
            }
            evaluate(tx, &ctx, id, due.at).await.map(|_| ())
        })
    }
}

/// What a warning reads of its ticket: due time, number, subject, owner, team.
type Warned = (
    Option<DateTime<Utc>>,
    String,
    String,
    Option<Uuid>,
    Option<Uuid>,
);

/// How many open tickets one `sla_reevaluate` run re-evaluates.
const BATCH: i64 = 500;

/// The `sla_reevaluate` job (and `calendar_changed`): re-evaluates open tickets after a policy
/// or a calendar changed,
/// `BATCH` a run in id order, chaining the next run from the last id.
pub fn reevaluate_handler(
) -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync {
    |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        Box::pin(async move {
            let after: Option<Uuid> = due.payload["after"].as_str().and_then(|s| s.parse().ok());
            let ids: Vec<(Uuid,)> = tx
                .fetch_all(
                    "SELECT id FROM tickets WHERE tenant_id = $1 AND deleted_at IS NULL
                       AND status NOT IN ('resolved', 'closed') AND id > $2
                     ORDER BY id LIMIT $3",
                    args![due.tenant_id, after.unwrap_or(Uuid::nil()), BATCH],
                )
                .await?;
            let ctx = Ctx::system(due.tenant_id);
            let batch: Vec<Uuid> = ids.iter().map(|(id,)| *id).collect();
            evaluate_many(tx, &ctx, &batch, due.at).await?;
            if ids.len() as i64 == BATCH {
                if let Some((last,)) = ids.last() {
                    jobs::enqueue(
                        tx,
                        due.tenant_id,
                        REEVALUATE_JOB,
                        &serde_json::json!({"after": last}),
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(priorities: &[&str], grades: &[&str], categories: &[&str]) -> Policy {
        let v = |l: &[&str]| sqlx::types::Json(l.iter().map(|s| s.to_string()).collect());
        Policy {
            id: Uuid::nil(),
            name: "p".into(),
            position: 0,
            active: true,
            priorities: v(priorities),
            grades: v(grades),
            categories: v(categories),
            coverage: v(&[]),
            first_response_minutes: Some(60),
            next_response_minutes: None,
            resolution_minutes: None,
            warn_minutes: 0,
            raise_priority: false,
            follow_up_days: None,
            calendar_id: None,
            created_at: now(),
            updated_at: now(),
            version: 1,
        }
    }

    #[test]
    fn conditions_match_by_priority_grade_and_category() {
        let gold = policy(&["high", "urgent"], &["A", "B"], &[]);
        assert!(gold.matches("high", Some("A"), None, &["none"]));
        assert!(gold.matches("urgent", Some("B"), Some("repair"), &["none"]));
        assert!(!gold.matches("normal", Some("A"), None, &["none"]));
        // A customer without a grade is not an A customer.
        assert!(!gold.matches("high", None, None, &["none"]));
        let any = policy(&[], &[], &[]);
        assert!(any.matches("low", None, None, &["none"]));
        let repairs = policy(&[], &[], &["repair"]);
        assert!(!repairs.matches("low", None, None, &["none"]));
        assert!(repairs.matches("low", None, Some("repair"), &["none"]));
        let mut off = policy(&[], &[], &[]);
        off.active = false;
        assert!(!off.matches("low", None, None, &["none"]));
        // Coverage: a warranty policy takes tickets whose asset is under warranty.
        let mut warranty = policy(&[], &[], &[]);
        warranty.coverage.0 = vec!["warranty".into()];
        assert!(warranty.matches("low", None, None, &["warranty", "contract"]));
        assert!(!warranty.matches("low", None, None, &["none"]));
    }

    #[test]
    fn coverage_follows_warranty_and_contract_dates() {
        let machine = AssetFacts {
            kind: "product".into(),
            status: "active".into(),
            ends_on: None,
            warranty_until: Some("2026-12-31".into()),
        };
        assert_eq!(coverage_of(Some(&machine), "2026-12-31"), vec!["warranty"]);
        assert_eq!(coverage_of(Some(&machine), "2027-01-01"), vec!["none"]);
        let contract = AssetFacts {
            kind: "service".into(),
            status: "active".into(),
            ends_on: Some("2027-06-30".into()),
            warranty_until: None,
        };
        assert_eq!(coverage_of(Some(&contract), "2027-06-30"), vec!["contract"]);
        assert_eq!(coverage_of(Some(&contract), "2027-07-01"), vec!["none"]);
        let ended = AssetFacts {
            status: "ended".into(),
            ..contract.clone()
        };
        assert_eq!(coverage_of(Some(&ended), "2027-01-01"), vec!["none"]);
        assert_eq!(coverage_of(None, "2027-01-01"), vec!["none"]);
    }
}
