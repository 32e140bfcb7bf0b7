//! Queues and routing. A queue is a team's share of the tickets — the first active queue (by
//! position) whose categories, customer grades, priorities, channels, regions, products and
//! languages (empty: any; see [`Facts`]) match a new ticket takes it — worked round robin, by the least loaded agent, by the best skill match
//! (an agent with the queue's skill at the queue's minimum level or above: the highest level,
//! then the least loaded), or by hand (`manual`: it waits in the queue). Agents are the team's
//! active members who may update tickets, available, and under their capacity (open tickets);
//! nobody fits: the ticket waits unassigned in the team's queue. Choosing is pure ([`pick`],
//! property-tested); a round robin's turn moves under a key lock, so two tickets at once go to
//! two agents.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, keylock, validate, version, Ctx, Error};

use crate::conditions::{any_or, codes, unique_name};
use crate::sla::GRADES;
use crate::tickets::{CHANNELS, PRIORITIES};

pub const STRATEGIES: &[&str] = &["round_robin", "least_loaded", "skills", "manual"];
/// A ticket's language as routing sees it.
pub const LANGUAGES: &[&str] = &["zh", "en"];

/// What a new ticket is routed by. `region` is the contact's province and city (else the
/// account's), `products` the SKU and product category of its asset's product, `language` zh
/// when the subject or description has a Chinese character, else en.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub category: Option<String>,
    pub grade: Option<String>,
    pub priority: String,
    pub channel: String,
    pub region: Option<String>,
    pub products: Vec<String>,
    pub language: &'static str,
}

/// zh when the text has a Chinese character, else en.
pub fn language_of(text: &str) -> &'static str {
    if text.chars().any(guanxi_records::normalize::is_cjk) {
        "zh"
    } else {
        "en"
    }
}

/// Whether the customer's region is one a queue covers: it starts with one of them (广东 covers
/// 广东省深圳市), letters compared without case; no regions: anywhere.
fn in_regions(regions: &[String], region: Option<&str>) -> bool {
    regions.is_empty()
        || region.is_some_and(|r| {
            let r = r.to_lowercase();
            regions.iter().any(|x| r.starts_with(&x.to_lowercase()))
        })
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Queue {
    pub id: Uuid,
    pub name: String,
    /// Lower first: the first active queue that matches a new ticket takes it.
    pub position: i64,
    pub active: bool,
    /// The team working it.
    pub team_id: Uuid,
    /// `round_robin`, `least_loaded`, `skills` or `manual`.
    pub strategy: String,
    #[schema(value_type = Vec<String>)]
    pub categories: sqlx::types::Json<Vec<String>>,
    /// Customer grades A–E.
    #[schema(value_type = Vec<String>)]
    pub grades: sqlx::types::Json<Vec<String>>,
    #[schema(value_type = Vec<String>)]
    pub priorities: sqlx::types::Json<Vec<String>>,
    #[schema(value_type = Vec<String>)]
    pub channels: sqlx::types::Json<Vec<String>>,
    /// The skill a `skills` queue routes by.
    pub skill: Option<String>,
    /// The lowest level of it an agent needs (1–10).
    pub min_level: i64,
    /// Provinces or cities (the customer's address starts with one): a team with regions is a
    /// service station.
    #[schema(value_type = Vec<String>)]
    pub regions: sqlx::types::Json<Vec<String>>,
    /// SKUs or product categories of the ticket's asset.
    #[schema(value_type = Vec<String>)]
    pub products: sqlx::types::Json<Vec<String>>,
    /// `zh`, `en`.
    #[schema(value_type = Vec<String>)]
    pub languages: sqlx::types::Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Queue {
    /// A new queue before its input: round robin, any ticket, no team yet.
    fn blank() -> Queue {
        let t = now();
        Queue {
            id: new_id(),
            name: String::new(),
            position: 100,
            active: true,
            team_id: Uuid::nil(),
            strategy: "round_robin".into(),
            categories: sqlx::types::Json(vec![]),
            grades: sqlx::types::Json(vec![]),
            priorities: sqlx::types::Json(vec![]),
            channels: sqlx::types::Json(vec![]),
            skill: None,
            min_level: 1,
            regions: sqlx::types::Json(vec![]),
            products: sqlx::types::Json(vec![]),
            languages: sqlx::types::Json(vec![]),
            created_at: t,
            updated_at: t,
            version: 1,
        }
    }

    pub fn matches(&self, f: &Facts) -> bool {
        self.active
            && any_or(&self.categories.0, f.category.as_deref())
            && any_or(&self.grades.0, f.grade.as_deref())
            && any_or(&self.priorities.0, Some(&f.priority))
            && any_or(&self.channels.0, Some(&f.channel))
            && in_regions(&self.regions.0, f.region.as_deref())
            && (self.products.0.is_empty()
                || self.products.0.iter().any(|p| {
                    f.products
                        .iter()
                        .any(|x| x.to_lowercase() == p.to_lowercase())
                }))
            && any_or(&self.languages.0, Some(f.language))
    }
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    pub position: Option<i64>,
    pub active: Option<bool>,
    /// Required on create.
    pub team_id: Option<Uuid>,
    pub strategy: Option<String>,
    pub categories: Option<Vec<String>>,
    pub grades: Option<Vec<String>>,
    pub priorities: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub skill: Option<Option<String>>,
    pub min_level: Option<i64>,
    /// Provinces or cities (at most 50, each up to 50 characters): the customer's address
    /// starts with one.
    pub regions: Option<Vec<String>>,
    /// SKUs or product categories of the ticket's asset (at most 50).
    pub products: Option<Vec<String>>,
    /// `zh`, `en`.
    pub languages: Option<Vec<String>>,
}

const COLS: &str = "id, name, position, active, team_id, strategy, categories, grades, priorities,
    channels, skill, min_level, regions, products, languages, created_at, updated_at, version";

pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Queue>> {
    ctx.require("tickets", Action::Read)?;
    db.fetch_all(
        &format!("SELECT {COLS} FROM ticket_queues WHERE tenant_id = $1 ORDER BY position, name"),
        args![ctx.tenant_id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Queue> {
    ctx.require("tickets", Action::Read)?;
    db.fetch_one(
        &format!("SELECT {COLS} FROM ticket_queues WHERE tenant_id = $1 AND id = $2"),
        args![ctx.tenant_id, id],
    )
    .await
}

/// Shaping queues and agents' profiles is the SLA policies' permission (managers, admins).
fn may_shape(ctx: &Ctx, action: Action) -> Result<()> {
    ctx.require("sla_policies", action).map(|_| ())
}

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &QueueInput,
    q: &mut Queue,
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => q.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    if let Some(p) = input.position {
        if (0..=1_000_000).contains(&p) {
            q.position = p;
        } else {
            errs.add("position", "out_of_range");
        }
    }
    if let Some(a) = input.active {
        q.active = a;
    }
    match input.team_id {
        Some(t) => {
            let known: Option<(Uuid,)> = tx
                .fetch_optional(
                    "SELECT id FROM teams WHERE tenant_id = $1 AND id = $2",
                    args![ctx.tenant_id, t],
                )
                .await?;
            match known {
                Some(_) => q.team_id = t,
                None => errs.add("team_id", "unknown"),
            }
        }
        None if creating => errs.add("team_id", "required"),
        None => {}
    }
    if let Some(s) = &input.strategy {
        if STRATEGIES.contains(&s.trim()) {
            q.strategy = s.trim().to_owned();
        } else {
            errs.add("strategy", "invalid");
        }
    }
    if let Some(v) = &input.categories {
        q.categories.0 = codes(&mut errs, "categories", v, None);
    }
    if let Some(v) = &input.grades {
        q.grades.0 = codes(&mut errs, "grades", v, Some(GRADES));
    }
    if let Some(v) = &input.priorities {
        q.priorities.0 = codes(&mut errs, "priorities", v, Some(PRIORITIES));
    }
    if let Some(v) = &input.channels {
        q.channels.0 = codes(&mut errs, "channels", v, Some(CHANNELS));
    }
    if let Some(v) = &input.regions {
        q.regions.0 = codes(&mut errs, "regions", v, None);
    }
    if let Some(v) = &input.products {
        q.products.0 = codes(&mut errs, "products", v, None);
    }
    if let Some(v) = &input.languages {
        q.languages.0 = codes(&mut errs, "languages", v, Some(LANGUAGES));
    }
    if let Some(s) = &input.skill {
        q.skill = match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() <= 50 => Some(s.to_owned()),
            Some(_) => {
                errs.add("skill", "too_long");
                None
            }
            None => None,
        };
    }
    if let Some(l) = input.min_level {
        if (1..=10).contains(&l) {
            q.min_level = l;
        } else {
            errs.add("min_level", "out_of_range");
        }
    }
    if q.strategy == "skills" && q.skill.is_none() {
        errs.add("skill", "required");
    }
    errs.finish()
}

pub async fn create(db: &Db, ctx: &Ctx, input: QueueInput) -> Result<Queue> {
    may_shape(ctx, Action::Create)?;
    let mut q = Queue::blank();
    let t = q.created_at;
    let mut tx = db.begin().await?;
    apply(&mut tx, ctx, &input, &mut q, true).await?;
    tx.execute(
        &format!("INSERT INTO ticket_queues (tenant_id, {COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"),
        args![
            ctx.tenant_id,
            q.id,
            q.name.as_str(),
            q.position,
            q.active,
            q.team_id,
            q.strategy.as_str(),
            serde_json::json!(q.categories.0),
            serde_json::json!(q.grades.0),
            serde_json::json!(q.priorities.0),
            serde_json::json!(q.channels.0),
            q.skill.clone(),
            q.min_level,
            serde_json::json!(q.regions.0),
            serde_json::json!(q.products.0),
            serde_json::json!(q.languages.0),
            t,
            t,
            1i64
        ],
    )
    .await
    .map_err(unique_name)?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "ticket_queues",
        Some(q.id),
        None,
        Some(&q),
    )
    .await?;
    tx.commit().await?;
    Ok(q)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: QueueInput,
) -> Result<Queue> {
    may_shape(ctx, Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before: Queue = tx
        .fetch_one(
            &format!("SELECT {COLS} FROM ticket_queues WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    version::check(expected, before.version)?;
    let mut q = before.clone();
    apply(&mut tx, ctx, &input, &mut q, false).await?;
    version::update(
        &mut tx,
        version::Row {
            table: "ticket_queues",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, position = $2, active = $3, team_id = $4, strategy = $5, categories = $6,
         grades = $7, priorities = $8, channels = $9, skill = $10, min_level = $11, regions = $12,
         products = $13, languages = $14, updated_at = $15",
        args![
            q.name.as_str(),
            q.position,
            q.active,
            q.team_id,
            q.strategy.as_str(),
            serde_json::json!(q.categories.0),
            serde_json::json!(q.grades.0),
            serde_json::json!(q.priorities.0),
            serde_json::json!(q.channels.0),
            q.skill.clone(),
            q.min_level,
            serde_json::json!(q.regions.0),
            serde_json::json!(q.products.0),
            serde_json::json!(q.languages.0),
            now()
        ],
    )
    .await
    .map_err(unique_name)?;
    let after: Queue = tx
        .fetch_one(
            &format!("SELECT {COLS} FROM ticket_queues WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "ticket_queues",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// An agent's service profile with how loaded they are now.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Agent {
    pub user_id: Uuid,
    pub name: String,
    pub team_id: Option<Uuid>,
    /// Open tickets they take at most; none: no limit.
    pub capacity: Option<i64>,
    /// Whether they take new tickets now (leave, end of shift).
    pub available: bool,
    /// Skill → level (1–10).
    #[schema(value_type = Object)]
    pub skills: sqlx::types::Json<BTreeMap<String, i64>>,
    /// Their open tickets now.
    pub open: i64,
    /// Their open tickets past a target now.
    pub breached: i64,
    pub version: i64,
}

/// Every active colleague who may work tickets, with their profile and load (the manager's
/// workload view).
pub async fn agents(db: &Db, ctx: &Ctx) -> Result<Vec<Agent>> {
    ctx.require("tickets", Action::Read)?;
    let all: Vec<Agent> = db
        .fetch_all(
            "SELECT u.id AS user_id, u.name, u.team_id, p.capacity,
                    COALESCE(p.available, TRUE) AS available,
                    COALESCE(p.skills, '{}') AS skills,
                    (SELECT COUNT(*) FROM tickets t WHERE t.tenant_id = u.tenant_id AND t.owner_id = u.id
                       AND t.deleted_at IS NULL AND t.status NOT IN ('resolved', 'closed')) AS open,
                    (SELECT COUNT(*) FROM tickets t WHERE t.tenant_id = u.tenant_id AND t.owner_id = u.id
                       AND t.deleted_at IS NULL AND t.status NOT IN ('resolved', 'closed')
                       AND t.sla_breached = TRUE) AS breached,
                    COALESCE(p.version, 0) AS version
             FROM users u
             JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
             LEFT JOIN agent_profiles p ON p.tenant_id = u.tenant_id AND p.id = u.id
             WHERE u.tenant_id = $1 AND u.active = TRUE AND u.deleted_at IS NULL
             ORDER BY u.name, u.id LIMIT 1000",
            args![ctx.tenant_id],
        )
        .await?;
    let roles = role_updaters(db, ctx.tenant_id).await?;
    Ok(all
        .into_iter()
        .filter(|a| roles.contains(&a.user_id))
        .collect())
}

/// Whether a role may work a ticket given to it (update tickets, in any scope).
fn works_tickets(p: &guanxi_platform::perms::Permissions) -> bool {
    p.get("tickets")
        .and_then(|m| m.get(&Action::Update))
        .is_some()
}

/// The active users whose role may update tickets (so may work one given to them).
async fn role_updaters(db: &Db, tenant: Uuid) -> Result<Vec<Uuid>> {
    let rows: Vec<(Uuid, sqlx::types::Json<guanxi_platform::perms::Permissions>)> = db
        .fetch_all(
            "SELECT u.id, r.permissions FROM users u
             JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
             WHERE u.tenant_id = $1 AND u.active = TRUE AND u.deleted_at IS NULL",
            args![tenant],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, p)| works_tickets(&p.0))
        .map(|(id, _)| id)
        .collect())
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    /// The profile's version as read (0 for one never saved); a stale one is refused (412).
    pub version: Option<i64>,
    /// Open tickets at most; `null`: no limit.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub capacity: Option<Option<i64>>,
    pub available: Option<bool>,
    /// Replaces the skills: name → level 1–10 (at most 25).
    #[schema(value_type = Option<Object>)]
    pub skills: Option<BTreeMap<String, i64>>,
}

/// Sets an agent's capacity, availability and skills.
pub async fn set_agent(db: &Db, ctx: &Ctx, user: Uuid, input: AgentInput) -> Result<Agent> {
    may_shape(ctx, Action::Update)?;
    let mut tx = db.begin().await?;
    let known: Option<(Uuid,)> = tx
        .fetch_optional(
            "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            args![ctx.tenant_id, user],
        )
        .await?;
    if known.is_none() {
        return Err(Error::NotFound);
    }
    type Profile = (
        Option<i64>,
        bool,
        sqlx::types::Json<BTreeMap<String, i64>>,
        i64,
    );
    // A profile row exists from the first look (version 0: never saved), so every save is a
    // version-checked update.
    tx.execute(
        "INSERT INTO agent_profiles (tenant_id, id, capacity, available, skills, updated_at, version)
         VALUES ($1, $2, NULL, $3, $4, $5, 0) ON CONFLICT (tenant_id, id) DO NOTHING",
        args![ctx.tenant_id, user, true, serde_json::json!({}), now()],
    )
    .await?;
    let before: Profile = tx
        .fetch_one(
            "SELECT capacity, available, skills, version FROM agent_profiles
             WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, user],
        )
        .await?;
    let (mut capacity, mut available, mut skills, current) =
        (before.0, before.1, before.2 .0.clone(), before.3);
    let expected = input.version.unwrap_or(current);
    version::check(expected, current)?;
    let mut errs = Errors::default();
    if let Some(c) = input.capacity {
        match c {
            Some(n) if !(0..=10_000).contains(&n) => errs.add("capacity", "out_of_range"),
            other => capacity = other,
        }
    }
    if let Some(a) = input.available {
        available = a;
    }
    if let Some(s) = &input.skills {
        if s.len() > 25 {
            errs.add("skills", "too_many");
        }
        let mut clean = BTreeMap::new();
        for (k, level) in s {
            let name = k.trim();
            if name.is_empty() || name.chars().count() > 50 {
                errs.add(&format!("skills.{k}"), "invalid");
            } else if !(1..=10).contains(level) {
                errs.add(&format!("skills.{k}"), "out_of_range");
            } else {
                clean.insert(name.to_owned(), *level);
            }
        }
        skills = clean;
    }
    errs.finish()?;
    // Saved at the version read: two managers saving at once, one is refused.
    version::update(
        &mut tx,
        version::Row {
            table: "agent_profiles",
            tenant_id: ctx.tenant_id,
            id: user,
        },
        expected,
        "capacity = $1, available = $2, skills = $3, updated_at = $4",
        args![capacity, available, serde_json::json!(skills), now()],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "agent_profiles",
        Some(user),
        Some(&serde_json::json!({"capacity": before.0, "available": before.1, "skills": before.2 .0})),
        Some(&serde_json::json!({"capacity": capacity, "available": available, "skills": skills})),
    )
    .await?;
    tx.commit().await?;
    agents(db, ctx)
        .await?
        .into_iter()
        .find(|a| a.user_id == user)
        .ok_or(Error::NotFound)
}

/// One agent as [`pick`] sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub user_id: Uuid,
    pub open: i64,
    pub capacity: Option<i64>,
    pub available: bool,
    pub level: Option<i64>,
}

impl Candidate {
    fn free(&self) -> bool {
        self.available && self.capacity.is_none_or(|c| self.open < c)
    }
}

/// Who gets the ticket: among the available agents under capacity, round robin (the first
/// after `last` by id, wrapping), the least loaded (then by id), or the best skill (level ≥
/// `min_level`; highest level, then least loaded, then id). `None`: nobody fits (or `manual`).
pub fn pick(
    strategy: &str,
    candidates: &[Candidate],
    last: Option<Uuid>,
    min_level: i64,
) -> Option<Uuid> {
    let mut free: Vec<&Candidate> = candidates.iter().filter(|c| c.free()).collect();
    free.sort_by_key(|c| c.user_id);
    match strategy {
        "round_robin" => free
            .iter()
            .find(|c| last.is_some_and(|l| c.user_id > l))
            .or_else(|| free.first())
            .map(|c| c.user_id),
        "least_loaded" => free
            .iter()
            .min_by_key(|c| (c.open, c.user_id))
            .map(|c| c.user_id),
        "skills" => free
            .iter()
            .filter(|c| c.level.is_some_and(|l| l >= min_level))
            .min_by_key(|c| (std::cmp::Reverse(c.level), c.open, c.user_id))
            .map(|c| c.user_id),
        _ => None,
    }
}

/// A team member as routing reads them: id, role permissions, capacity, available, skills,
/// open tickets.
type Member = (
    Uuid,
    sqlx::types::Json<guanxi_platform::perms::Permissions>,
    Option<i64>,
    bool,
    Option<sqlx::types::Json<BTreeMap<String, i64>>>,
    i64,
);

/// What routing decided for a new ticket: its queue, team, and agent if one fits.
pub struct Routed {
    pub queue_id: Uuid,
    pub team_id: Uuid,
    pub owner_id: Option<Uuid>,
}

/// Reads what a new ticket is routed by besides its own fields: the account's grade, the
/// contact's (else the account's) province and city, the asset's product SKU and category.
pub async fn facts(
    tx: &mut Tx,
    tenant: Uuid,
    account: Option<Uuid>,
    contact: Option<Uuid>,
    asset: Option<Uuid>,
) -> Result<(Option<String>, Option<String>, Vec<String>)> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    // One round trip on the ticket's creation, whichever of the three it names.
    let (grade, c_province, c_city, a_province, a_city, sku, category): Row = tx
        .fetch_one(
            "SELECT a.grade, c.province, c.city, a.province, a.city, p.sku, p.category
             FROM (SELECT 1 AS one) x
             LEFT JOIN contacts c ON c.tenant_id = $1 AND c.id = $2
             LEFT JOIN accounts a ON a.tenant_id = $1 AND a.id = $3
             LEFT JOIN assets s ON s.tenant_id = $1 AND s.id = $4
             LEFT JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id",
            args![tenant, contact, account, asset],
        )
        .await?;
    let place = |p: Option<String>, c: Option<String>| -> Option<String> {
        let s = format!("{}{}", p.unwrap_or_default(), c.unwrap_or_default());
        let s = s.trim().to_owned();
        (!s.is_empty()).then_some(s)
    };
    let region = place(c_province, c_city).or_else(|| place(a_province, a_city));
    Ok((grade, region, sku.into_iter().chain(category).collect()))
}

/// Routes a new ticket (inside its transaction): the first matching queue and, by its
/// strategy, an agent. `None`: no queue matches (the ticket keeps what it was given).
pub async fn route(tx: &mut Tx, tenant: Uuid, facts: &Facts) -> Result<Option<Routed>> {
    let queues: Vec<Queue> = tx
        .fetch_all(
            &format!(
                "SELECT {COLS} FROM ticket_queues WHERE tenant_id = $1 AND active = $2
                 ORDER BY position, name"
            ),
            args![tenant, true],
        )
        .await?;
    let Some(q) = queues.into_iter().find(|q| q.matches(facts)) else {
        return Ok(None);
    };
    if q.strategy == "round_robin" {
        keylock::hold(tx, tenant, &[format!("queue:{}", q.id)], now()).await?;
    }
    let rows: Vec<Member> = tx
        .fetch_all(
            "SELECT u.id, r.permissions, p.capacity, COALESCE(p.available, TRUE), p.skills,
                    (SELECT COUNT(*) FROM tickets t WHERE t.tenant_id = u.tenant_id AND t.owner_id = u.id
                       AND t.deleted_at IS NULL AND t.status NOT IN ('resolved', 'closed'))
             FROM users u
             JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
             LEFT JOIN agent_profiles p ON p.tenant_id = u.tenant_id AND p.id = u.id
             WHERE u.tenant_id = $1 AND u.team_id = $2 AND u.active = TRUE AND u.deleted_at IS NULL",
            args![tenant, q.team_id],
        )
        .await?;
    let candidates: Vec<Candidate> = rows
        .into_iter()
        .filter(|(_, perms, ..)| works_tickets(&perms.0))
        .map(
            |(user_id, _, capacity, available, skills, open)| Candidate {
                user_id,
                open,
                capacity,
                available,
                level: q
                    .skill
                    .as_ref()
                    .and_then(|s| skills.as_ref().and_then(|k| k.0.get(s).copied())),
            },
        )
        .collect();
    let last: Option<(Option<Uuid>,)> = tx
        .fetch_optional(
            "SELECT last_user_id FROM ticket_queues WHERE tenant_id = $1 AND id = $2",
            args![tenant, q.id],
        )
        .await?;
    let owner = pick(
        &q.strategy,
        &candidates,
        last.and_then(|l| l.0),
        q.min_level,
    );
    if let (Some(o), "round_robin") = (owner, q.strategy.as_str()) {
        tx.execute(
            "UPDATE ticket_queues SET last_user_id = $1 WHERE tenant_id = $2 AND id = $3",
            args![o, tenant, q.id],
        )
        .await?;
    }
    Ok(Some(Routed {
        queue_id: q.id,
        team_id: q.team_id,
        owner_id: owner,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(
        n: u128,
        open: i64,
        capacity: Option<i64>,
        available: bool,
        level: Option<i64>,
    ) -> Candidate {
        Candidate {
            user_id: Uuid::from_u128(n),
            open,
            capacity,
            available,
            level,
        }
    }

    #[test]
    fn each_strategy_picks_as_stated() {
        let c = vec![
            cand(1, 3, None, true, Some(4)),
            cand(2, 1, Some(1), true, Some(9)), // full
            cand(3, 0, None, false, Some(10)),  // away
            cand(4, 2, Some(5), true, Some(7)),
        ];
        assert_eq!(pick("least_loaded", &c, None, 1), Some(Uuid::from_u128(4)));
        assert_eq!(
            pick("round_robin", &c, Some(Uuid::from_u128(1)), 1),
            Some(Uuid::from_u128(4))
        );
        assert_eq!(
            pick("round_robin", &c, Some(Uuid::from_u128(4)), 1),
            Some(Uuid::from_u128(1))
        );
        assert_eq!(pick("skills", &c, None, 5), Some(Uuid::from_u128(4)));
        assert_eq!(pick("skills", &c, None, 8), None);
        assert_eq!(pick("manual", &c, None, 1), None);
    }

    #[test]
    fn regions_cover_what_starts_with_them_and_language_is_read_off_the_text() {
        let gd = vec!["广东".to_owned(), "Guangdong".to_owned()];
        assert!(in_regions(&gd, Some("广东省深圳市")));
        assert!(in_regions(&gd, Some("guangdong Shenzhen")));
        assert!(!in_regions(&gd, Some("上海市")));
        assert!(!in_regions(&gd, None));
        assert!(in_regions(&[], None));
        assert_eq!(language_of("The lift is stuck"), "en");
        assert_eq!(language_of("Printer 打印机 jammed"), "zh");
        assert_eq!(language_of("1234"), "en");
        let q = |field: &str, v: &[&str]| {
            let mut q = Queue::blank();
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            match field {
                "products" => q.products.0 = v,
                "languages" => q.languages.0 = v,
                _ => q.regions.0 = v,
            }
            q
        };
        let facts = Facts {
            priority: "normal".into(),
            channel: "email".into(),
            region: Some("广东省".into()),
            products: vec!["EL-9".into(), "电梯".into()],
            language: "zh",
            ..Facts::default()
        };
        assert!(q("regions", &["广东"]).matches(&facts));
        assert!(!q("regions", &["广西"]).matches(&facts));
        assert!(q("products", &["el-9"]).matches(&facts));
        assert!(q("products", &["电梯"]).matches(&facts));
        assert!(!q("products", &["空调"]).matches(&facts));
        assert!(q("languages", &["zh"]).matches(&facts));
        assert!(!q("languages", &["en"]).matches(&facts));
    }

    proptest! {
        /// Whoever is picked is free (available, under capacity) and, for skills, qualified;
        /// nobody is picked only when nobody fits; round robin visits every free agent in turn.
        #[test]
        fn picks_only_who_may_take_it(
            raw in prop::collection::vec((0i64..5, prop::option::of(0i64..5), any::<bool>(), prop::option::of(1i64..11)), 0..8),
            strategy in prop::sample::select(vec!["round_robin", "least_loaded", "skills"]),
            min_level in 1i64..11,
        ) {
            let c: Vec<Candidate> = raw.iter().enumerate()
                .map(|(i, (open, cap, av, lvl))| cand(i as u128 + 1, *open, *cap, *av, *lvl))
                .collect();
            let fits = |x: &Candidate| x.free() && (strategy != "skills" || x.level.is_some_and(|l| l >= min_level));
            match pick(strategy, &c, None, min_level) {
                Some(id) => {
                    let chosen = c.iter().find(|x| x.user_id == id).unwrap();
                    prop_assert!(fits(chosen));
                    if strategy == "least_loaded" {
                        prop_assert!(c.iter().filter(|x| fits(x)).all(|x| x.open >= chosen.open));
                    }
                    if strategy == "skills" {
                        prop_assert!(c.iter().filter(|x| fits(x)).all(|x| x.level <= chosen.level));
                    }
                }
                None => prop_assert!(!c.iter().any(fits)),
            }
            if strategy == "round_robin" {
                let free: Vec<Uuid> = c.iter().filter(|x| x.free()).map(|x| x.user_id).collect();
                let mut last = None;
                let mut seen = Vec::new();
                for _ in 0..free.len() {
                    last = pick(strategy, &c, last, min_level);
                    seen.push(last.unwrap());
                }
                seen.sort();
                let mut want = free.clone();
                want.sort();
                prop_assert_eq!(seen, want);
            }
        }
    }
}
