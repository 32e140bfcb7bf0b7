//! Approvals (migration 9): the platform's one approval engine. Quotes are its first user;
//! credit overrides, campaign sends and workflow steps come later.
//!
//! An admin configures *processes* per kind of record: entry conditions on the record's facts
//! (`discount_bp > 1500`, `total >= 50000000`), and ordered *steps*, each with its approvers (a
//! user, the submitter's manager, a team's managers, everyone with a role), a rule for several
//! (all must approve — 会签 — or any one — 或签), who approves when nobody resolves (pass
//! automatically, or a named user), and whether the submitter approves their own request or the
//! step skips them. A record's module calls [`submit`] with its facts; the first active process
//! (by position) whose conditions all hold runs, on a snapshot of its steps. Approvers approve,
//! reject or send back with a comment, or add an approver (加签) to their step; the submitter
//! may recall while it is pending. Every event is kept in the request's log; approvers and the
//! submitter are notified (in-app and by email). While a request is pending the module keeps
//! its record locked ([`pending`]); an approval holds for the record's version it was given for
//! ([`cleared`]).
//!
//! The rules are pure functions ([`matches`], [`start_step`], [`outcome`]) with table tests;
//! the rest reads and writes them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{Conn, Db, Sql, Tx};
use crate::error::{Error, Errors, Result};
use crate::notifications::{self, Notice};
use crate::perms::Action;
use crate::time::{new_id, now};
use crate::{args, audit, version, Ctx};

/// The records approvals know, with the facts their conditions may test.
pub const APPROVABLE: &[(&str, &[&str])] = &[("quotes", &["discount_bp", "total", "net"])];
/// Comparisons a condition may use.
pub const OPS: &[&str] = &["gt", "gte", "lt", "lte", "eq"];
/// Most steps a process has, approvers a step lists, conditions a process tests.
pub const MAX_STEPS: usize = 10;
pub const MAX_APPROVERS: usize = 20;
pub const MAX_CONDITIONS: usize = 10;

/// `field op value`, on one of the record's facts (integers: minor units, basis points).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApprovalCondition)]
pub struct Condition {
    pub field: String,
    /// `gt`, `gte`, `lt`, `lte` or `eq`.
    pub op: String,
    pub value: i64,
}

/// Who a step asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Approver {
    /// One user.
    User { user_id: Uuid },
    /// The submitter's team's managers (every manager when the submitter has no team or it
    /// has none).
    Manager,
    /// A team's managers.
    TeamManager { team_id: Uuid },
    /// Every active user with this role (`manager`, `admin`, a custom role's key).
    Role { role: String },
}

/// How several approvers of a step decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Every approver must approve (会签).
    All,
    /// One approval is enough (或签).
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub approvers: Vec<Approver>,
    pub rule: Rule,
    /// Who approves when the approvers resolve to nobody; `null`: the step passes by itself.
    #[serde(default)]
    pub when_empty: Option<Uuid>,
    /// Whether the submitter, when among the approvers, is left out (the default) or asked
    /// like anyone else.
    #[serde(default = "yes")]
    pub skip_submitter: bool,
}

fn yes() -> bool {
    true
}

/// How a step starts: whom it asks, or that it passes without asking (and why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Ask(Vec<Uuid>),
    /// `auto_pass` (nobody to ask) or `skip_submitter` (only the submitter was).
    Pass(&'static str),
}

/// Whether every condition holds for `facts` (a fact the record lacks fails its condition).
pub fn matches(conditions: &[Condition], facts: &BTreeMap<String, i64>) -> bool {
    conditions.iter().all(|c| {
        facts.get(&c.field).is_some_and(|&v| match c.op.as_str() {
            "gt" => v > c.value,
            "gte" => v >= c.value,
            "lt" => v < c.value,
            "lte" => v <= c.value,
            "eq" => v == c.value,
            _ => false,
        })
    })
}

/// Whom a step asks, given the users its approvers resolved to (in order, duplicates allowed).
pub fn start_step(step: &Step, resolved: &[Uuid], submitter: Uuid) -> Start {
    let mut asked: Vec<Uuid> = Vec::new();
    for u in resolved {
        if !asked.contains(u) {
            asked.push(*u);
        }
    }
    let had_submitter = asked.contains(&submitter);
    if step.skip_submitter {
        asked.retain(|u| *u != submitter);
    }
    if !asked.is_empty() {
        return Start::Ask(asked);
    }
    match step.when_empty {
        Some(u) if !(step.skip_submitter && u == submitter) => Start::Ask(vec![u]),
        _ if had_submitter => Start::Pass("skip_submitter"),
        _ => Start::Pass("auto_pass"),
    }
}

/// Where a step stands after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Waiting,
    Passed,
    Rejected,
    SentBack,
}

/// A step's outcome from its tasks' states (`pending`, `approved`, `rejected`, `sent_back`,
/// `skipped`): a refusal ends it at once; otherwise any one approval (或签) or every one (会签).
pub fn outcome(rule: Rule, states: &[&str]) -> Outcome {
    if states.contains(&"rejected") {
        return Outcome::Rejected;
    }
    if states.contains(&"sent_back") {
        return Outcome::SentBack;
    }
    let approved = states.iter().filter(|s| **s == "approved").count();
    match rule {
        Rule::Any if approved > 0 => Outcome::Passed,
        Rule::All if approved > 0 && approved == states.len() => Outcome::Passed,
        _ => Outcome::Waiting,
    }
}

// ---- processes ------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Process {
    pub id: Uuid,
    pub name: String,
    /// The kind of record (`quotes`).
    pub entity: String,
    /// Processes of an entity are tried in this order; the first whose conditions hold runs.
    pub position: i64,
    #[schema(value_type = Vec<Condition>)]
    pub conditions: sqlx::types::Json<Vec<Condition>>,
    #[schema(value_type = Vec<Step>)]
    pub steps: sqlx::types::Json<Vec<Step>>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Create or change a process; absent fields stay on update.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    /// `quotes` (required on create).
    pub entity: Option<String>,
    /// Default: after the entity's others.
    pub position: Option<i64>,
    pub conditions: Option<Vec<Condition>>,
    pub steps: Option<Vec<Step>>,
    pub active: Option<bool>,
}

const PROCESS_SELECT: &str = "SELECT id, name, entity, position, conditions, steps, active,
    created_at, updated_at, version FROM approval_processes";

pub async fn processes(db: &Db, ctx: &Ctx) -> Result<Vec<Process>> {
    ctx.require("approval_processes", Action::Read)?;
    db.fetch_all(
        &format!("{PROCESS_SELECT} WHERE tenant_id = $1 ORDER BY entity, position, name"),
        args![ctx.tenant_id],
    )
    .await
}

async fn load_process(conn: impl Into<Conn<'_>>, tenant: Uuid, id: Uuid) -> Result<Process> {
    conn.into()
        .fetch_one(
            &format!("{PROCESS_SELECT} WHERE tenant_id = $1 AND id = $2"),
            args![tenant, id],
        )
        .await
}

pub async fn process(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Process> {
    ctx.require("approval_processes", Action::Read)?;
    load_process(db, ctx.tenant_id, id).await
}

/// Checks a process's fields, naming each refused one (`steps[1].approvers[0].user_id`).
async fn check_process(
    tx: &mut Tx,
    ctx: &Ctx,
    name: &str,
    entity: &str,
    conditions: &[Condition],
    steps: &[Step],
) -> Result<()> {
    let mut errs = Errors::default();
    if let Err(c) = crate::validate::name(name) {
        errs.add("name", c);
    } else if name.chars().count() > 100 {
        errs.add("name", "too_long");
    }
    let facts = APPROVABLE
        .iter()
        .find(|(e, _)| *e == entity)
        .map(|(_, f)| *f);
    if facts.is_none() {
        errs.add("entity", "invalid");
    }
    if conditions.len() > MAX_CONDITIONS {
        errs.add("conditions", "too_long");
    }
    for (i, c) in conditions.iter().enumerate() {
        if facts.is_some_and(|f| !f.contains(&c.field.as_str())) {
            errs.add(&format!("conditions[{i}].field"), "invalid");
        }
        if !OPS.contains(&c.op.as_str()) {
            errs.add(&format!("conditions[{i}].op"), "invalid");
        }
    }
    if steps.is_empty() {
        errs.add("steps", "required");
    }
    if steps.len() > MAX_STEPS {
        errs.add("steps", "too_long");
    }
    let users: Vec<(Uuid,)> = tx
        .fetch_all(
            "SELECT id FROM users WHERE tenant_id = $1 AND active = $2 AND deleted_at IS NULL",
            args![ctx.tenant_id, true],
        )
        .await?;
    let user_known = |u: &Uuid| users.iter().any(|(id,)| id == u);
    for (i, s) in steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        if crate::validate::name(&s.name).is_err() || s.name.chars().count() > 100 {
            errs.add(&at("name"), "required");
        }
        if s.approvers.len() > MAX_APPROVERS {
            errs.add(&at("approvers"), "too_long");
        }
        if s.approvers.is_empty() && s.when_empty.is_none() {
            errs.add(&at("approvers"), "required");
        }
        for (j, a) in s.approvers.iter().enumerate() {
            let at = |f: &str| format!("steps[{i}].approvers[{j}].{f}");
            match a {
                Approver::User { user_id } if !user_known(user_id) => {
                    errs.add(&at("user_id"), "unknown")
                }
                Approver::TeamManager { team_id } => {
                    let n: i64 = tx
                        .scalar(
                            "SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                            args![ctx.tenant_id, *team_id],
                        )
                        .await?;
                    if n == 0 {
                        errs.add(&at("team_id"), "unknown");
                    }
                }
                Approver::Role { role } => {
                    let n: i64 = tx
                        .scalar(
                            "SELECT COUNT(*) FROM roles WHERE tenant_id = $1 AND key = $2",
                            args![ctx.tenant_id, role.as_str()],
                        )
                        .await?;
                    if n == 0 {
                        errs.add(&at("role"), "unknown");
                    }
                }
                _ => {}
            }
        }
        if s.when_empty.is_some_and(|u| !user_known(&u)) {
            errs.add(&at("when_empty"), "unknown");
        }
    }
    errs.finish()
}

fn name_taken(e: Error) -> Error {
    match e {
        Error::Conflict(_) => Error::field("name", "taken"),
        e => e,
    }
}

pub async fn create_process(db: &Db, ctx: &Ctx, input: ProcessInput) -> Result<Process> {
    ctx.require("approval_processes", Action::Create)?;
    let name = input.name.clone().unwrap_or_default();
    let entity = input.entity.clone().unwrap_or_default();
    let conditions = input.conditions.clone().unwrap_or_default();
    let steps = input.steps.clone().unwrap_or_default();
    let mut tx = db.begin().await?;
    check_process(&mut tx, ctx, &name, &entity, &conditions, &steps).await?;
    let position = match input.position {
        Some(p) => p,
        None => {
            let max: Option<i64> = tx
                .scalar(
                    "SELECT MAX(position) FROM approval_processes WHERE tenant_id = $1 AND entity = $2",
                    args![ctx.tenant_id, entity.as_str()],
                )
                .await?;
            max.map_or(0, |m| m + 1)
        }
    };
    let id = new_id();
    let t = now();
    tx.execute(
        "INSERT INTO approval_processes (tenant_id, id, name, entity, position, conditions, steps,
             active, created_at, updated_at, created_by, updated_by, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)",
        args![
            ctx.tenant_id,
            id,
            name.trim(),
            entity.as_str(),
            position,
            serde_json::json!(conditions),
            serde_json::json!(steps),
            input.active.unwrap_or(true),
            t,
            t,
            ctx.user_id,
            ctx.user_id
        ],
    )
    .await
    .map_err(name_taken)?;
    let p = load_process(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "approval_processes",
        Some(id),
        None,
        Some(&p),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

/// Changes a process. Requests already running keep the steps they started with.
pub async fn update_process(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: ProcessInput,
) -> Result<Process> {
    ctx.require("approval_processes", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load_process(&mut tx, ctx.tenant_id, id).await?;
    version::check(expected, before.version)?;
    if input.entity.as_deref().is_some_and(|e| e != before.entity) {
        return Err(Error::field("entity", "read_only"));
    }
    let name = input.name.clone().unwrap_or_else(|| before.name.clone());
    let conditions = input
        .conditions
        .clone()
        .unwrap_or_else(|| before.conditions.0.clone());
    let steps = input
        .steps
        .clone()
        .unwrap_or_else(|| before.steps.0.clone());
    check_process(&mut tx, ctx, &name, &before.entity, &conditions, &steps).await?;
    version::update(
        &mut tx,
        version::Row {
            table: "approval_processes",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, position = $2, conditions = $3, steps = $4, active = $5, updated_at = $6,
             updated_by = $7",
        args![
            name.trim(),
            input.position.unwrap_or(before.position),
            serde_json::json!(conditions),
            serde_json::json!(steps),
            input.active.unwrap_or(before.active),
            now(),
            ctx.user_id
        ],
    )
    .await
    .map_err(name_taken)?;
    let after = load_process(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "approval_processes",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The process a record with `facts` must pass, if any: the entity's first active one (by
/// position) whose conditions all hold.
pub async fn applies(
    conn: impl Into<Conn<'_>>,
    tenant: Uuid,
    entity: &str,
    facts: &BTreeMap<String, i64>,
) -> Result<Option<Process>> {
    let all: Vec<Process> = conn
        .into()
        .fetch_all(
            &format!(
                "{PROCESS_SELECT} WHERE tenant_id = $1 AND entity = $2 AND active = $3
                 ORDER BY position, name"
            ),
            args![tenant, entity, true],
        )
        .await?;
    Ok(all.into_iter().find(|p| matches(&p.conditions.0, facts)))
}

// ---- requests -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Task {
    pub step: i64,
    pub approver_id: Uuid,
    pub approver_name: Option<String>,
    /// `pending`, `approved`, `rejected`, `sent_back` or `skipped` (the step ended without them).
    pub status: String,
    /// Who added this approver (加签), if not the process.
    pub added_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct LogEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub step: Option<i64>,
    /// `submit`, `approve`, `reject`, `send_back`, `recall`, `add_approver`, `auto_pass`,
    /// `skip_submitter`, `approved` (the request passed its last step).
    pub action: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Request {
    pub id: Uuid,
    pub process_id: Uuid,
    pub process_name: String,
    pub entity: String,
    pub record_id: Uuid,
    /// The record's version the approval is for: a later change needs a new one.
    pub record_version: i64,
    /// What is asked about (a quote's number).
    pub title: String,
    /// The record's page.
    pub link: String,
    /// The facts the conditions were tested on.
    #[schema(value_type = Object)]
    pub facts: sqlx::types::Json<BTreeMap<String, i64>>,
    /// The process's steps as they were at submission.
    #[schema(value_type = Vec<Step>)]
    pub steps: sqlx::types::Json<Vec<Step>>,
    /// `pending`, `approved`, `rejected`, `sent_back` or `recalled`.
    pub status: String,
    /// The step being decided (0-based).
    pub step: i64,
    pub submitted_by: Uuid,
    pub submitted_by_name: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub version: i64,
    #[sqlx(skip)]
    pub tasks: Vec<Task>,
    #[sqlx(skip)]
    pub log: Vec<LogEntry>,
}

const REQUEST_SELECT: &str = "SELECT r.id, r.process_id, r.process_name, r.entity, r.record_id,
    r.record_version, r.title, r.link, r.facts, r.steps, r.status, r.step, r.submitted_by,
    u.name AS submitted_by_name, r.submitted_at, r.decided_at, r.version
    FROM approval_requests r
    LEFT JOIN users u ON u.tenant_id = r.tenant_id AND u.id = r.submitted_by";

/// What a module submits about one of its records.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub entity: &'a str,
    pub record_id: Uuid,
    pub record_version: i64,
    pub title: String,
    pub link: String,
    pub facts: BTreeMap<String, i64>,
    pub comment: Option<String>,
}

async fn log(
    tx: &mut Tx,
    ctx: &Ctx,
    request: Uuid,
    step: Option<i64>,
    action: &str,
    comment: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO approval_log (tenant_id, request_id, seq, at, actor_id, step, action, comment)
         VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM approval_log WHERE tenant_id = $1 AND request_id = $2),
             $3, $4, $5, $6, $7)",
        // What the engine did by itself (a step passed, the request approved) has no actor.
        args![
            ctx.tenant_id,
            request,
            now(),
            ctx.user_id
                .filter(|_| !["auto_pass", "skip_submitter", "approved"].contains(&action)),
            step,
            action,
            comment
        ],
    )
    .await?;
    Ok(())
}

/// The users `approvers` stand for now, in order (duplicates kept; [`start_step`] drops them).
async fn resolve(
    tx: &mut Tx,
    tenant: Uuid,
    approvers: &[Approver],
    submitter: Uuid,
) -> Result<Vec<Uuid>> {
    let mut out = Vec::new();
    for a in approvers {
        match a {
            Approver::User { user_id } => {
                let active: Option<(Uuid,)> = tx
                    .fetch_optional(
                        "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
                        args![tenant, *user_id, true],
                    )
                    .await?;
                out.extend(active.map(|(u,)| u));
            }
            Approver::Manager => {
                let team: Option<(Option<Uuid>,)> = tx
                    .fetch_optional(
                        "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2",
                        args![tenant, submitter],
                    )
                    .await?;
                let team = team.and_then(|(t,)| t);
                out.extend(crate::teams::managers(tx, tenant, team).await?);
            }
            Approver::TeamManager { team_id } => {
                out.extend(crate::teams::managers(tx, tenant, Some(*team_id)).await?);
            }
            Approver::Role { role } => {
                let users: Vec<(Uuid,)> = tx
                    .fetch_all(
                        "SELECT u.id FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
                         WHERE u.tenant_id = $1 AND r.key = $2 AND u.active = $3 AND u.deleted_at IS NULL
                         ORDER BY u.id",
                        args![tenant, role.as_str(), true],
                    )
                    .await?;
                out.extend(users.into_iter().map(|(u,)| u));
            }
        }
    }
    Ok(out)
}

fn notice<'a>(kind: &'static str, r: &'a Request, extra: serde_json::Value) -> Notice<'a> {
    let mut params = serde_json::json!({ "title": r.title, "process": r.process_name });
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    Notice {
        kind,
        params,
        link: Some(format!("/approvals/{}", r.id)),
        entity: Some("approval_requests"),
        entity_id: Some(r.id),
    }
}

/// Runs the request from step `from`: a step that asks nobody passes (logged); the first that
/// asks someone gets its tasks (and they are told); past the last step the request is approved.
async fn enter(tx: &mut Tx, ctx: &Ctx, r: &Request, from: usize) -> Result<()> {
    for (i, step) in r.steps.0.iter().enumerate().skip(from) {
        let resolved = resolve(tx, ctx.tenant_id, &step.approvers, r.submitted_by).await?;
        match start_step(step, &resolved, r.submitted_by) {
            Start::Pass(why) => {
                log(tx, ctx, r.id, Some(i as i64), why, None).await?;
            }
            Start::Ask(users) => {
                let t = now();
                for u in &users {
                    tx.execute(
                        "INSERT INTO approval_tasks (tenant_id, request_id, step, approver_id, status, created_at)
                         VALUES ($1, $2, $3, $4, 'pending', $5)",
                        args![ctx.tenant_id, r.id, i as i64, *u, t],
                    )
                    .await?;
                    notifications::notify(
                        tx,
                        ctx,
                        *u,
                        notice(
                            "approval_requested",
                            r,
                            serde_json::json!({ "step": step.name }),
                        ),
                    )
                    .await?;
                }
                tx.execute(
                    "UPDATE approval_requests SET step = $1 WHERE tenant_id = $2 AND id = $3",
                    args![i as i64, ctx.tenant_id, r.id],
                )
                .await?;
                return Ok(());
            }
        }
    }
    finish(tx, ctx, r, "approved").await
}

/// Ends a request (`approved`, `rejected`, `sent_back`, `recalled`): open tasks are skipped and
/// the submitter is told.
async fn finish(tx: &mut Tx, ctx: &Ctx, r: &Request, status: &str) -> Result<()> {
    let t = now();
    tx.execute(
        "UPDATE approval_requests SET status = $1, decided_at = $2 WHERE tenant_id = $3 AND id = $4",
        args![status, t, ctx.tenant_id, r.id],
    )
    .await?;
    tx.execute(
        "UPDATE approval_tasks SET status = 'skipped' WHERE tenant_id = $1 AND request_id = $2 AND status = 'pending'",
        args![ctx.tenant_id, r.id],
    )
    .await?;
    if status == "approved" {
        log(tx, ctx, r.id, None, "approved", None).await?;
    }
    if status != "recalled" {
        notifications::notify(
            tx,
            ctx,
            r.submitted_by,
            notice(
                "approval_decided",
                r,
                serde_json::json!({ "status": status }),
            ),
        )
        .await?;
    }
    Ok(())
}

async fn load_request(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<Request> {
    let mut r: Request = tx
        .fetch_one(
            &format!("{REQUEST_SELECT} WHERE r.tenant_id = $1 AND r.id = $2"),
            args![tenant, id],
        )
        .await?;
    r.tasks = tx
        .fetch_all(
            "SELECT t.step, t.approver_id, u.name AS approver_name, t.status, t.added_by, t.decided_at
             FROM approval_tasks t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.approver_id
             WHERE t.tenant_id = $1 AND t.request_id = $2 ORDER BY t.step, t.created_at, t.approver_id",
            args![tenant, id],
        )
        .await?;
    r.log = tx
        .fetch_all(
            "SELECT l.seq, l.at, l.actor_id, u.name AS actor_name, l.step, l.action, l.comment
             FROM approval_log l LEFT JOIN users u ON u.tenant_id = l.tenant_id AND u.id = l.actor_id
             WHERE l.tenant_id = $1 AND l.request_id = $2 ORDER BY l.seq",
            args![tenant, id],
        )
        .await?;
    Ok(r)
}

/// Submits a record to the process its facts call for, inside the module's transaction (the
/// module has checked the caller may change the record). A record with a pending request is
/// refused (409); one no process applies to is `approval: not_required`.
pub async fn submit(tx: &mut Tx, ctx: &Ctx, s: Submission<'_>) -> Result<Request> {
    let Some(submitter) = ctx.user_id else {
        return Err(Error::Forbidden);
    };
    let Some(p) = applies(&mut *tx, ctx.tenant_id, s.entity, &s.facts).await? else {
        return Err(Error::field("approval", "not_required"));
    };
    let comment = match s.comment.as_deref() {
        Some(c) => crate::validate::text(c, 2_000).map_err(|code| Error::field("comment", code))?,
        None => None,
    };
    let id = new_id();
    tx.execute(
        "INSERT INTO approval_requests (tenant_id, id, process_id, process_name, entity, record_id,
             record_version, title, link, facts, steps, status, step, submitted_by, submitted_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', 0, $12, $13, 1)",
        args![
            ctx.tenant_id,
            id,
            p.id,
            p.name.as_str(),
            s.entity,
            s.record_id,
            s.record_version,
            s.title.as_str(),
            s.link.as_str(),
            serde_json::json!(s.facts),
            serde_json::json!(p.steps.0),
            submitter,
            now()
        ],
    )
    .await
    .map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict("this record is already waiting for approval".into()),
        e => e,
    })?;
    log(tx, ctx, id, None, "submit", comment.as_deref()).await?;
    let r = load_request(tx, ctx.tenant_id, id).await?;
    enter(tx, ctx, &r, 0).await?;
    let r = load_request(tx, ctx.tenant_id, id).await?;
    audit::record(
        tx,
        ctx,
        "submit",
        "approval_requests",
        Some(id),
        None,
        Some(&r),
    )
    .await?;
    Ok(r)
}

/// Whether the record waits for a decision (its module keeps it locked meanwhile).
pub async fn pending(tx: &mut Tx, tenant: Uuid, entity: &str, record: Uuid) -> Result<bool> {
    let n: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM approval_requests WHERE tenant_id = $1 AND entity = $2 AND record_id = $3 AND status = 'pending'",
            args![tenant, entity, record],
        )
        .await?;
    Ok(n > 0)
}

/// Whether the record, at `version`, was approved.
pub async fn cleared(
    tx: &mut Tx,
    tenant: Uuid,
    entity: &str,
    record: Uuid,
    version: i64,
) -> Result<bool> {
    let n: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM approval_requests WHERE tenant_id = $1 AND entity = $2 AND record_id = $3
                 AND status = 'approved' AND record_version = $4",
            args![tenant, entity, record, version],
        )
        .await?;
    Ok(n > 0)
}

/// The record's latest request, if any (whoever may see the record may see where it stands).
pub async fn latest(db: &Db, tenant: Uuid, entity: &str, record: Uuid) -> Result<Option<Request>> {
    let id: Option<(Uuid,)> = db
        .fetch_optional(
            "SELECT id FROM approval_requests WHERE tenant_id = $1 AND entity = $2 AND record_id = $3
             ORDER BY submitted_at DESC, id DESC LIMIT 1",
            args![tenant, entity, record],
        )
        .await?;
    match id {
        Some((id,)) => {
            let mut tx = db.begin().await?;
            let r = load_request(&mut tx, tenant, id).await?;
            tx.commit().await?;
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

/// Whether the caller may see the request: its submitter, one of its approvers, or whoever
/// reads the processes (administrators, managers).
fn may_see(ctx: &Ctx, r: &Request) -> bool {
    ctx.user_id == Some(r.submitted_by)
        || r.tasks.iter().any(|t| Some(t.approver_id) == ctx.user_id)
        || ctx.can("approval_processes", Action::Read).is_some()
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Request> {
    let mut tx = db.begin().await?;
    let r = load_request(&mut tx, ctx.tenant_id, id).await?;
    tx.commit().await?;
    if !may_see(ctx, &r) {
        return Err(Error::NotFound);
    }
    Ok(r)
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestFilter {
    /// `inbox` (waiting for my decision, the default), `sent` (mine) or `all` (administrators
    /// and managers).
    #[serde(rename = "box")]
    pub r#box: Option<String>,
    /// `pending`, `approved`, `rejected`, `sent_back`, `recalled`.
    pub status: Option<String>,
    pub limit: Option<i64>,
}

/// Requests, newest first (at most `limit`, default 50, up to 200).
pub async fn list(db: &Db, ctx: &Ctx, f: &RequestFilter) -> Result<Vec<Request>> {
    let me = ctx.user_id.ok_or(Error::Forbidden)?;
    let mut q = Sql::new(REQUEST_SELECT);
    q.push(" WHERE r.tenant_id = ").bind(ctx.tenant_id);
    match f.r#box.as_deref().unwrap_or("inbox") {
        "inbox" => {
            q.push(
                " AND r.status = 'pending' AND EXISTS (SELECT 1 FROM approval_tasks t WHERE t.tenant_id = r.tenant_id
                 AND t.request_id = r.id AND t.step = r.step AND t.status = 'pending' AND t.approver_id = ",
            )
            .bind(me)
            .push(")");
        }
        "sent" => {
            q.push(" AND r.submitted_by = ").bind(me);
        }
        "all" => {
            ctx.require("approval_processes", Action::Read)?;
        }
        _ => return Err(Error::field("box", "invalid")),
    }
    if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
        if !["pending", "approved", "rejected", "sent_back", "recalled"].contains(&s) {
            return Err(Error::field("status", "invalid"));
        }
        q.push(" AND r.status = ").bind(s);
    }
    let limit = f.limit.unwrap_or(50).clamp(1, 200);
    q.push(" ORDER BY r.submitted_at DESC, r.id DESC LIMIT ")
        .bind(limit);
    db.fetch_sql(q).await
}

/// An approver's answer.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// The request's version as read (optional): a request changed since is refused (412).
    pub version: Option<i64>,
    pub comment: Option<String>,
}

/// Adds an approver to the current step (加签).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddApprover {
    /// The request's version as read (optional).
    pub version: Option<i64>,
    /// Who to add (required).
    pub user_id: Option<Uuid>,
    pub comment: Option<String>,
}

/// The request, locked for this change: its row is touched first, so concurrent decisions on
/// it run one after the other (the second sees the first's).
async fn lock(tx: &mut Tx, ctx: &Ctx, id: Uuid, expected: Option<i64>) -> Result<Request> {
    let r = load_request(tx, ctx.tenant_id, id).await?;
    if !may_see(ctx, &r) {
        return Err(Error::NotFound);
    }
    if let Some(v) = expected {
        version::check(v, r.version)?;
    }
    if r.status != "pending" {
        return Err(Error::Conflict(format!(
            "the request is {} already",
            r.status
        )));
    }
    let n = tx
        .execute(
            "UPDATE approval_requests SET version = version + 1 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
            args![ctx.tenant_id, id],
        )
        .await?;
    if n != 1 {
        return Err(Error::Conflict("the request was decided meanwhile".into()));
    }
    load_request(tx, ctx.tenant_id, id).await
}

/// Whether `user` is asked in the request's current step and has not answered.
pub fn asks(r: &Request, user: Option<Uuid>) -> bool {
    r.status == "pending"
        && r.tasks
            .iter()
            .any(|t| t.step == r.step && Some(t.approver_id) == user && t.status == "pending")
}

/// Ends a change to a request: reads it back, audits `action` and commits.
async fn done(mut tx: Tx, ctx: &Ctx, action: &str, before: &Request) -> Result<Request> {
    let after = load_request(&mut tx, ctx.tenant_id, before.id).await?;
    audit::record(
        &mut tx,
        ctx,
        action,
        "approval_requests",
        Some(before.id),
        Some(before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

fn comment_of(raw: Option<&str>) -> Result<Option<String>> {
    match raw {
        Some(c) => crate::validate::text(c, 2_000).map_err(|code| Error::field("comment", code)),
        None => Ok(None),
    }
}

/// An approver approves (`approve`), rejects (`reject`) or sends the request back to the
/// submitter for changes (`send_back`). Only a pending approver of the current step may.
pub async fn decide(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    vote: &str,
    input: DecisionInput,
) -> Result<Request> {
    let state = match vote {
        "approve" => "approved",
        "reject" => "rejected",
        "send_back" => "sent_back",
        _ => return Err(Error::field("decision", "invalid")),
    };
    let comment = comment_of(input.comment.as_deref())?;
    let mut tx = db.begin().await?;
    let r = lock(&mut tx, ctx, id, input.version).await?;
    let me = ctx.user_id.ok_or(Error::Forbidden)?;
    if !asks(&r, Some(me)) {
        return Err(Error::Forbidden);
    }
    tx.execute(
        "UPDATE approval_tasks SET status = $1, decided_at = $2
         WHERE tenant_id = $3 AND request_id = $4 AND step = $5 AND approver_id = $6",
        args![state, now(), ctx.tenant_id, id, r.step, me],
    )
    .await?;
    log(&mut tx, ctx, id, Some(r.step), vote, comment.as_deref()).await?;
    let states: Vec<(String,)> = tx
        .fetch_all(
            "SELECT status FROM approval_tasks WHERE tenant_id = $1 AND request_id = $2 AND step = $3",
            args![ctx.tenant_id, id, r.step],
        )
        .await?;
    let states: Vec<&str> = states.iter().map(|(s,)| s.as_str()).collect();
    let rule = r
        .steps
        .0
        .get(r.step as usize)
        .map(|s| s.rule)
        .unwrap_or(Rule::All);
    match outcome(rule, &states) {
        Outcome::Waiting => {}
        Outcome::Passed => {
            tx.execute(
                "UPDATE approval_tasks SET status = 'skipped'
                 WHERE tenant_id = $1 AND request_id = $2 AND step = $3 AND status = 'pending'",
                args![ctx.tenant_id, id, r.step],
            )
            .await?;
            enter(&mut tx, ctx, &r, r.step as usize + 1).await?;
        }
        Outcome::Rejected => finish(&mut tx, ctx, &r, "rejected").await?,
        Outcome::SentBack => finish(&mut tx, ctx, &r, "sent_back").await?,
    }
    done(tx, ctx, vote, &r).await
}

/// The submitter takes the request back while it is pending.
pub async fn recall(db: &Db, ctx: &Ctx, id: Uuid, input: DecisionInput) -> Result<Request> {
    let comment = comment_of(input.comment.as_deref())?;
    let mut tx = db.begin().await?;
    let r = lock(&mut tx, ctx, id, input.version).await?;
    if ctx.user_id != Some(r.submitted_by) {
        return Err(Error::Forbidden);
    }
    log(&mut tx, ctx, id, Some(r.step), "recall", comment.as_deref()).await?;
    finish(&mut tx, ctx, &r, "recalled").await?;
    done(tx, ctx, "recall", &r).await
}

/// A pending approver of the current step asks one more person in it (加签): under 会签 they
/// must approve too; under 或签 their approval is enough.
pub async fn add_approver(db: &Db, ctx: &Ctx, id: Uuid, input: AddApprover) -> Result<Request> {
    let comment = comment_of(input.comment.as_deref())?;
    let mut tx = db.begin().await?;
    let r = lock(&mut tx, ctx, id, input.version).await?;
    let me = ctx.user_id.ok_or(Error::Forbidden)?;
    if !asks(&r, Some(me)) {
        return Err(Error::Forbidden);
    }
    let Some(user_id) = input.user_id else {
        return Err(Error::field("user_id", "required"));
    };
    let known: Option<(Uuid,)> = tx
        .fetch_optional(
            "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
            args![ctx.tenant_id, user_id, true],
        )
        .await?;
    if known.is_none() {
        return Err(Error::field("user_id", "unknown"));
    }
    if user_id == r.submitted_by
        || r.tasks
            .iter()
            .any(|t| t.step == r.step && t.approver_id == user_id)
    {
        return Err(Error::field("user_id", "taken"));
    }
    tx.execute(
        "INSERT INTO approval_tasks (tenant_id, request_id, step, approver_id, status, added_by, created_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
        args![ctx.tenant_id, id, r.step, user_id, me, now()],
    )
    .await?;
    log(
        &mut tx,
        ctx,
        id,
        Some(r.step),
        "add_approver",
        comment.as_deref(),
    )
    .await?;
    let step = r
        .steps
        .0
        .get(r.step as usize)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    notifications::notify(
        &mut tx,
        ctx,
        user_id,
        notice(
            "approval_requested",
            &r,
            serde_json::json!({ "step": step }),
        ),
    )
    .await?;
    done(tx, ctx, "add_approver", &r).await
}

// ---- decision links ----------------------------------------------------------------------------

/// How long a decision link in an approval email works.
pub const LINK_DAYS: i64 = 7;

/// A link for `approver` to decide `request` at its current step without signing in (for the
/// approval email), inside the caller's transaction: `<tenant>.<secret>`, of which only the
/// secret's digest is stored. `None` when the approver is not asked at the current step.
pub async fn decision_link(
    tx: &mut Tx,
    tenant: Uuid,
    request: Uuid,
    approver: Uuid,
) -> Result<Option<String>> {
    let r = load_request(tx, tenant, request).await?;
    if !asks(&r, Some(approver)) {
        return Ok(None);
    }
    let secret = crate::secret::random_secret();
    let t = now();
    tx.execute(
        "INSERT INTO approval_links (tenant_id, token_hash, request_id, step, approver_id,
             created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            tenant,
            crate::secret::digest(&secret),
            request,
            r.step,
            approver,
            t,
            t + chrono::Duration::days(LINK_DAYS)
        ],
    )
    .await?;
    Ok(Some(format!("{}.{secret}", tenant.simple())))
}

/// What a decision link opens: the approver's context and the request as it stands.
pub struct LinkTarget {
    pub ctx: Ctx,
    pub request: Request,
    /// Whether the link still decides: unused, unexpired, and its approver still asked at
    /// the step it was sent for.
    pub live: bool,
    /// The link's digest (to mark it used).
    token_hash: String,
}

/// Opens a decision link: [`Error::NotFound`] for a link that never existed or has expired
/// (or whose approver is no longer active); otherwise the request, and whether the link may
/// still decide it.
pub async fn open_link(db: &Db, token: &str) -> Result<LinkTarget> {
    let (tenant, secret) = token.split_once('.').ok_or(Error::NotFound)?;
    let tenant = Uuid::try_parse(tenant).map_err(|_| Error::NotFound)?;
    let token_hash = crate::secret::digest(secret);
    let row: Option<(Uuid, i64, Uuid, Option<DateTime<Utc>>)> = db
        .fetch_optional(
            "SELECT request_id, step, approver_id, used_at FROM approval_links
             WHERE tenant_id = $1 AND token_hash = $2 AND expires_at > $3",
            args![tenant, token_hash.as_str(), now()],
        )
        .await?;
    let (request, step, approver, used) = row.ok_or(Error::NotFound)?;
    let ctx = crate::auth::ctx_for_link(db, tenant, approver).await?;
    let request = get(db, &ctx, request).await?;
    let live = used.is_none() && request.step == step && asks(&request, Some(approver));
    Ok(LinkTarget {
        ctx,
        request,
        live,
        token_hash,
    })
}

/// Approves or rejects through a decision link (once; as the approver, `email_link` in the
/// audit). A used, stale or expired link decides nothing: 404, or 409 when the request has
/// moved on.
pub async fn decide_by_link(
    db: &Db,
    token: &str,
    vote: &str,
    comment: Option<String>,
) -> Result<Request> {
    if !matches!(vote, "approve" | "reject") {
        return Err(Error::field("decision", "invalid"));
    }
    let target = open_link(db, token).await?;
    if !target.live {
        return Err(Error::Conflict(format!(
            "the request is {} and this link no longer decides it",
            target.request.status
        )));
    }
    let r = decide(
        db,
        &target.ctx,
        target.request.id,
        vote,
        DecisionInput {
            comment,
            version: None,
        },
    )
    .await?;
    db.execute(
        "UPDATE approval_links SET used_at = $1
         WHERE tenant_id = $2 AND token_hash = $3 AND used_at IS NULL",
        args![now(), target.ctx.tenant_id, target.token_hash.as_str()],
    )
    .await?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn step(rule: Rule, when_empty: Option<Uuid>, skip_submitter: bool) -> Step {
        Step {
            name: "s".into(),
            approvers: vec![],
            rule,
            when_empty,
            skip_submitter,
        }
    }

    #[test]
    fn conditions_all_hold_or_the_process_does_not_apply() {
        let facts: BTreeMap<String, i64> =
            [("discount_bp".to_owned(), 1600), ("total".to_owned(), 100)].into();
        let c = |f: &str, op: &str, v: i64| Condition {
            field: f.into(),
            op: op.into(),
            value: v,
        };
        let table = [
            (vec![], true),
            (vec![c("discount_bp", "gt", 1500)], true),
            (vec![c("discount_bp", "gt", 1600)], false),
            (vec![c("discount_bp", "gte", 1600)], true),
            (
                vec![c("discount_bp", "gt", 1500), c("total", "gte", 50_000_000)],
                false,
            ),
            (
                vec![
                    c("total", "lt", 101),
                    c("total", "lte", 100),
                    c("total", "eq", 100),
                ],
                true,
            ),
            (vec![c("missing", "gt", 0)], false),
            (vec![c("total", "nope", 0)], false),
        ];
        for (conds, want) in table {
            assert_eq!(matches(&conds, &facts), want, "{conds:?}");
        }
    }

    #[test]
    fn a_step_asks_its_approvers_less_the_submitter_or_passes() {
        let me = u(1);
        let table: Vec<(Step, Vec<Uuid>, Start)> = vec![
            // The resolved approvers, once each, in order.
            (
                step(Rule::All, None, true),
                vec![u(2), u(3), u(2)],
                Start::Ask(vec![u(2), u(3)]),
            ),
            // The submitter is left out of their own approval …
            (
                step(Rule::All, None, true),
                vec![me, u(2)],
                Start::Ask(vec![u(2)]),
            ),
            // … and a step of only them passes (noted as such) …
            (
                step(Rule::All, None, true),
                vec![me],
                Start::Pass("skip_submitter"),
            ),
            // … unless the step asks them like anyone else.
            (step(Rule::All, None, false), vec![me], Start::Ask(vec![me])),
            // Nobody resolved: the named fallback approver, or an automatic pass.
            (
                step(Rule::Any, Some(u(9)), true),
                vec![],
                Start::Ask(vec![u(9)]),
            ),
            (
                step(Rule::Any, None, true),
                vec![],
                Start::Pass("auto_pass"),
            ),
            // A fallback who is the submitter is skipped too.
            (
                step(Rule::Any, Some(me), true),
                vec![],
                Start::Pass("auto_pass"),
            ),
        ];
        for (s, resolved, want) in table {
            assert_eq!(start_step(&s, &resolved, me), want, "{resolved:?} {s:?}");
        }
    }

    #[test]
    fn all_must_approve_any_one_is_enough_a_refusal_ends_it() {
        use Outcome::*;
        let table: Vec<(Rule, Vec<&str>, Outcome)> = vec![
            // 会签: every approver.
            (Rule::All, vec!["approved", "pending"], Waiting),
            (Rule::All, vec!["approved", "approved"], Passed),
            // 或签: the first approval.
            (Rule::Any, vec!["approved", "pending"], Passed),
            (Rule::Any, vec!["pending", "pending"], Waiting),
            // One rejection or send-back ends the step whatever the rule.
            (Rule::Any, vec!["approved", "rejected"], Rejected),
            (Rule::All, vec!["approved", "sent_back"], SentBack),
            // 加签 under 会签: the added approver must approve too.
            (Rule::All, vec!["approved", "approved", "pending"], Waiting),
        ];
        for (rule, states, want) in table {
            assert_eq!(outcome(rule, &states), want, "{rule:?} {states:?}");
        }
    }
}
