//! Assignment: who gets a new lead. Rules are tried in order; the first whose conditions hold
//! and that finds an available rep decides — one user, the team in turn (round robin), or the
//! team's least-loaded member. A rep is available when active, not on leave, and under their
//! capacity (库容: open leads plus accounts held). No rule deciding leaves the lead with the
//! owner its source gives (the form's owner, the API caller, the importer).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::settings::Setting;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, keylock, validate, version, Ctx, Error};
use guanxi_records::custom_fields;

use crate::rules::{self, Condition};

pub const TARGETS: &[&str] = &["user", "round_robin", "least_loaded"];

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AssignmentRule {
    pub id: Uuid,
    pub name: String,
    /// Rules are tried in this order (lowest first).
    pub position: i64,
    #[schema(value_type = Vec<Condition>)]
    pub conditions: sqlx::types::Json<Vec<Condition>>,
    /// `user`, `round_robin` (the team in turn) or `least_loaded` (the team's member holding
    /// the fewest open leads and accounts).
    pub target: String,
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Whose turn came last (round robin).
    pub last_user_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRuleInput {
    pub version: Option<i64>,
    pub name: Option<String>,
    pub position: Option<i64>,
    pub conditions: Option<Vec<Condition>>,
    pub target: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub user_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub team_id: Option<Option<Uuid>>,
    pub active: Option<bool>,
}

const SELECT: &str = "SELECT id, name, position, conditions, target, user_id, team_id,
    last_user_id, active, created_at, updated_at, version FROM assignment_rules";

pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<AssignmentRule>> {
    ctx.require("leads", Action::Read)?;
    db.fetch_all(
        &format!("{SELECT} WHERE tenant_id = $1 ORDER BY position, id LIMIT 500"),
        args![ctx.tenant_id],
    )
    .await
}

async fn load(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<AssignmentRule> {
    tx.fetch_one(
        &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
        args![tenant, id],
    )
    .await
}

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &AssignmentRuleInput,
    r: &mut AssignmentRule,
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => r.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    if let Some(p) = input.position {
        r.position = p;
    }
    if let Some(conds) = &input.conditions {
        let keys: Vec<String> = custom_fields::active(tx, ctx.tenant_id, crate::leads::ENTITY)
            .await?
            .into_iter()
            .map(|d| d.key)
            .collect();
        rules::check(&mut errs, "conditions", conds, &keys);
        r.conditions = sqlx::types::Json(conds.clone());
    }
    match &input.target {
        Some(t) if TARGETS.contains(&t.as_str()) => r.target = t.clone(),
        Some(_) => errs.add("target", "invalid"),
        None if creating => errs.add("target", "required"),
        None => {}
    }
    if let Some(u) = input.user_id {
        r.user_id = u;
    }
    if let Some(t) = input.team_id {
        r.team_id = t;
    }
    if r.target == "user" {
        r.team_id = None;
        match r.user_id {
            None => errs.add("user_id", "required"),
            Some(u) => {
                let n: i64 = tx
                    .scalar(
                        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                        args![ctx.tenant_id, u],
                    )
                    .await?;
                if n == 0 {
                    errs.add("user_id", "unknown");
                }
            }
        }
    } else {
        r.user_id = None;
        match r.team_id {
            None => errs.add("team_id", "required"),
            Some(t) => {
                let n: i64 = tx
                    .scalar(
                        "SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND id = $2",
                        args![ctx.tenant_id, t],
                    )
                    .await?;
                if n == 0 {
                    errs.add("team_id", "unknown");
                }
            }
        }
    }
    if let Some(a) = input.active {
        r.active = a;
    }
    errs.finish()
}

pub async fn create(db: &Db, ctx: &Ctx, input: AssignmentRuleInput) -> Result<AssignmentRule> {
    ctx.require("assignment_rules", Action::Create)?;
    let t = now();
    let mut r = AssignmentRule {
        id: new_id(),
        name: String::new(),
        position: 0,
        conditions: sqlx::types::Json(vec![]),
        target: String::new(),
        user_id: None,
        team_id: None,
        last_user_id: None,
        active: true,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let mut tx = db.begin().await?;
    if input.position.is_none() {
        r.position = tx
            .scalar::<i64>(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM assignment_rules WHERE tenant_id = $1",
                args![ctx.tenant_id],
            )
            .await?;
    }
    apply(&mut tx, ctx, &input, &mut r, true).await?;
    tx.execute(
        "INSERT INTO assignment_rules (tenant_id, id, name, position, conditions, target, user_id,
             team_id, last_user_id, active, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11, 1)",
        args![
            ctx.tenant_id,
            r.id,
            r.name.as_str(),
            r.position,
            serde_json::json!(r.conditions.0),
            r.target.as_str(),
            r.user_id,
            r.team_id,
            r.active,
            t,
            t
        ],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "assignment_rules",
        Some(r.id),
        None,
        Some(&r),
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: AssignmentRuleInput,
) -> Result<AssignmentRule> {
    ctx.require("assignment_rules", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    version::check(expected, before.version)?;
    let mut r = before.clone();
    apply(&mut tx, ctx, &input, &mut r, false).await?;
    version::update(
        &mut tx,
        version::Row {
            table: "assignment_rules",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, position = $2, conditions = $3, target = $4, user_id = $5, team_id = $6,
             active = $7, updated_at = $8",
        args![
            r.name.as_str(),
            r.position,
            serde_json::json!(r.conditions.0),
            r.target.as_str(),
            r.user_id,
            r.team_id,
            r.active,
            now()
        ],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "assignment_rules",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    ctx.require("assignment_rules", Action::Delete)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    tx.execute(
        "DELETE FROM assignment_rules WHERE tenant_id = $1 AND id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "assignment_rules",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}

// ---- reps: capacity, leave, load -----------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Rep {
    pub user_id: Uuid,
    pub name: String,
    pub team_id: Option<Uuid>,
    /// At most this many open leads and accounts (absent: no limit).
    pub capacity: Option<i64>,
    pub on_leave: bool,
    /// Open leads (not converted or disqualified) plus accounts held now.
    pub load: i64,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepInput {
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub capacity: Option<Option<i64>>,
    pub on_leave: Option<bool>,
}

/// The open leads and accounts a user holds, as a subquery over `u.id`.
const LOAD: &str =
    "(SELECT COUNT(*) FROM leads l WHERE l.tenant_id = u.tenant_id AND l.owner_id = u.id
        AND l.deleted_at IS NULL AND l.status NOT IN ('converted', 'disqualified'))
    + (SELECT COUNT(*) FROM accounts a WHERE a.tenant_id = u.tenant_id AND a.owner_id = u.id
        AND a.deleted_at IS NULL)";

const REPS: &str = "SELECT u.id AS user_id, u.name, u.team_id, c.capacity,
    COALESCE(c.on_leave, $2) AS on_leave, LOAD_SQL AS load
    FROM users u LEFT JOIN rep_capacity c ON c.tenant_id = u.tenant_id AND c.user_id = u.id
    WHERE u.tenant_id = $1 AND u.active = $3 AND u.deleted_at IS NULL";

fn reps_sql() -> String {
    REPS.replace("LOAD_SQL", &format!("({LOAD})"))
}

/// Every active user with their capacity, leave and load.
pub async fn reps(db: &Db, ctx: &Ctx) -> Result<Vec<Rep>> {
    ctx.require("leads", Action::Read)?;
    db.fetch_all(
        &format!("{} ORDER BY u.name, u.id LIMIT 1000", reps_sql()),
        args![ctx.tenant_id, false, true],
    )
    .await
}

pub async fn set_rep(db: &Db, ctx: &Ctx, user: Uuid, input: RepInput) -> Result<Rep> {
    ctx.require("assignment_rules", Action::Update)?;
    if let Some(Some(c)) = input.capacity {
        if !(0..=1_000_000).contains(&c) {
            return Err(Error::field("capacity", "out_of_range"));
        }
    }
    let mut tx = db.begin().await?;
    let before: Option<Rep> = tx
        .fetch_optional(
            &format!("{} AND u.id = $4", reps_sql()),
            args![ctx.tenant_id, false, true, user],
        )
        .await?;
    let before = before.ok_or(Error::NotFound)?;
    let capacity = input.capacity.unwrap_or(before.capacity);
    let on_leave = input.on_leave.unwrap_or(before.on_leave);
    tx.execute(
        "INSERT INTO rep_capacity (tenant_id, user_id, capacity, on_leave, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET capacity = excluded.capacity,
             on_leave = excluded.on_leave, updated_at = excluded.updated_at",
        args![ctx.tenant_id, user, capacity, on_leave, now()],
    )
    .await?;
    let after: Rep = tx
        .fetch_one(
            &format!("{} AND u.id = $4", reps_sql()),
            args![ctx.tenant_id, false, true, user],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "rep_capacity",
        Some(user),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

// ---- deciding ------------------------------------------------------------------------------

/// The reps a rule may give the lead to, available ones only, in id order.
async fn candidates(
    tx: &mut Tx,
    tenant: Uuid,
    rule: &AssignmentRule,
    exclude: Option<Uuid>,
) -> Result<Vec<Rep>> {
    let mut sql = reps_sql();
    let args = match (rule.user_id, rule.team_id) {
        (Some(u), _) => {
            sql.push_str(" AND u.id = $4");
            args![tenant, false, true, u]
        }
        (None, Some(t)) => {
            sql.push_str(" AND u.team_id = $4");
            args![tenant, false, true, t]
        }
        (None, None) => return Ok(vec![]),
    };
    sql.push_str(" ORDER BY u.id");
    let all: Vec<Rep> = tx.fetch_all(&sql, args).await?;
    Ok(all
        .into_iter()
        .filter(|r| !r.on_leave && r.capacity.is_none_or(|c| r.load < c))
        .filter(|r| Some(r.user_id) != exclude)
        .collect())
}

/// Who gets a lead with these facts: the first rule that holds and finds an available rep
/// (with the rep's team), or `None`. `exclude` is never chosen (a lead taken from its owner).
/// Round robin moves its turn in the same transaction, under a key lock, so concurrent leads
/// take turns.
/// A tenant's active rules, read by every new lead: cached in the process (a round-robin
/// rule's turn is re-read under its lock, never taken from here).
const ACTIVE: Setting = Setting {
    name: "assignment_rules.active",
    tables: &["assignment_rules"],
};

pub async fn decide(
    tx: &mut Tx,
    tenant: Uuid,
    facts: &serde_json::Value,
    exclude: Option<Uuid>,
) -> Result<Option<(Uuid, Option<Uuid>)>> {
    let rules: Vec<AssignmentRule> = tx
        .settings()
        .cached(
            &ACTIVE,
            tenant,
            "",
            tx.fetch_all(
                &format!("{SELECT} WHERE tenant_id = $1 AND active = $2 ORDER BY position, id"),
                args![tenant, true],
            ),
        )
        .await?;
    for rule in rules {
        if !rules::all_hold(&rule.conditions.0, facts) {
            continue;
        }
        if rule.target == "round_robin" {
            keylock::hold(tx, tenant, &[format!("assign:{}", rule.id)], now()).await?;
        }
        let reps = candidates(tx, tenant, &rule, exclude).await?;
        let chosen = match rule.target.as_str() {
            "least_loaded" => reps.iter().min_by_key(|r| (r.load, r.user_id)),
            "round_robin" => {
                // Re-read the turn under the lock: another lead may have just moved it.
                let (last,): (Option<Uuid>,) = tx
                    .fetch_one(
                        "SELECT last_user_id FROM assignment_rules WHERE tenant_id = $1 AND id = $2",
                        args![tenant, rule.id],
                    )
                    .await?;
                reps.iter()
                    .find(|r| last.is_some_and(|l| r.user_id > l))
                    .or_else(|| reps.first())
            }
            _ => reps.first(),
        };
        if let Some(rep) = chosen {
            if rule.target == "round_robin" {
                tx.execute(
                    "UPDATE assignment_rules SET last_user_id = $1 WHERE tenant_id = $2 AND id = $3",
                    args![rep.user_id, tenant, rule.id],
                )
                .await?;
            }
            return Ok(Some((rep.user_id, rep.team_id)));
        }
    }
    Ok(None)
}
