//! Pipelines: a tenant's sales processes (product sales; a project's bid → contract → delivery
//! → acceptance → warranty → 回访), each an ordered list of stages with a default probability and
//! a forecast category, how deals may move (any stage, or forward only) and whether a closed
//! deal may reopen. A stage may require fields before a deal enters it. Editing a pipeline
//! never corrupts its deals: a stage that still holds deals is removed only with a mapping to
//! a kept stage of the same kind (open, won, lost), which moves them (each move in the deal's
//! history).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};

/// Forecast categories, in the order a deal matures; `won` and `lost` close it.
pub const CATEGORIES: &[&str] = &["pipeline", "best_case", "commit", "won", "lost"];
/// How deals may move: to any stage, or only forward (closing is always allowed).
pub const MOVES: &[&str] = &["any", "forward"];
/// What a stage may require of a deal entering it.
pub const REQUIRABLE: &[&str] = &[
    "amount",
    "expected_close",
    "contact_id",
    "close_reason",
    "description",
];
/// At most this many stages a pipeline.
pub const MAX_STAGES: usize = 30;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Stage {
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub name: String,
    /// 0, 1, 2… in the pipeline's order.
    pub position: i64,
    /// The probability a deal gets on entering the stage (0–100).
    pub probability: i64,
    /// `pipeline`, `best_case`, `commit`, `won` or `lost`.
    pub category: String,
    /// Fields a deal must have to enter the stage (`amount`, `expected_close`, `contact_id`,
    /// `close_reason`, `description`).
    #[schema(value_type = Vec<String>)]
    pub required_fields: sqlx::types::Json<Vec<String>>,
}

impl Stage {
    /// `open`, `won` or `lost`: what a deal in this stage is.
    pub fn status(&self) -> &'static str {
        match self.category.as_str() {
            "won" => "won",
            "lost" => "lost",
            _ => "open",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Pipeline {
    pub id: Uuid,
    pub name: String,
    /// `any` or `forward`.
    pub moves: String,
    /// Whether a won or lost deal may move back to an open stage.
    pub may_reopen: bool,
    /// New deals go here unless told otherwise.
    pub is_default: bool,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// In order.
    #[sqlx(skip)]
    pub stages: Vec<Stage>,
}

impl Pipeline {
    pub fn stage(&self, id: Uuid) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    /// A kept stage's id; absent for a new stage.
    pub id: Option<Uuid>,
    pub name: String,
    /// Default: 100 for won, 0 for lost, else 10 per position (at most 90).
    pub probability: Option<i64>,
    /// Default `pipeline`.
    pub category: Option<String>,
    /// At most one of each.
    #[serde(default)]
    pub required_fields: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    pub moves: Option<String>,
    pub may_reopen: Option<bool>,
    pub is_default: Option<bool>,
    pub active: Option<bool>,
    /// The whole list, in order (required on create): kept stages by `id`, new ones without.
    /// At least one open stage, one `won` and one `lost`.
    pub stages: Option<Vec<StageInput>>,
    /// For each removed stage that still holds deals: the kept stage (of the same kind: open,
    /// won or lost) they move to (at most one entry a stage).
    #[serde(default)]
    pub remap: BTreeMap<Uuid, Uuid>,
}

const SELECT: &str = "SELECT id, name, moves, may_reopen, is_default, active, created_at,
    updated_at, version FROM pipelines";
const STAGES: &str = "SELECT id, pipeline_id, name, position, probability, category,
    required_fields FROM pipeline_stages";

async fn with_stages(
    conn: &mut Conn<'_>,
    tenant: Uuid,
    mut ps: Vec<Pipeline>,
) -> Result<Vec<Pipeline>> {
    let stages: Vec<Stage> = conn
        .fetch_all(
            &format!("{STAGES} WHERE tenant_id = $1 ORDER BY pipeline_id, position"),
            args![tenant],
        )
        .await?;
    for p in &mut ps {
        p.stages = stages
            .iter()
            .filter(|s| s.pipeline_id == p.id)
            .cloned()
            .collect();
    }
    Ok(ps)
}

/// Every pipeline of the tenant with its stages, the default first.
pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Pipeline>> {
    ctx.require("pipelines", Action::Read)?;
    list_in(db, ctx.tenant_id).await
}

pub async fn list_in<'c>(conn: impl Into<Conn<'c>>, tenant: Uuid) -> Result<Vec<Pipeline>> {
    let mut conn = conn.into();
    let ps: Vec<Pipeline> = conn
        .fetch_all(
            &format!("{SELECT} WHERE tenant_id = $1 ORDER BY is_default DESC, name, id LIMIT 100"),
            args![tenant],
        )
        .await?;
    with_stages(&mut conn, tenant, ps).await
}

/// One pipeline with its stages (no permission check: the caller's).
pub async fn load<'c>(conn: impl Into<Conn<'c>>, tenant: Uuid, id: Uuid) -> Result<Pipeline> {
    let mut conn = conn.into();
    let p: Pipeline = conn
        .fetch_one(
            &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
            args![tenant, id],
        )
        .await?;
    let mut ps = with_stages(&mut conn, tenant, vec![p]).await?;
    ps.pop().ok_or(Error::NotFound)
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Pipeline> {
    ctx.require("pipelines", Action::Read)?;
    load(db, ctx.tenant_id, id).await
}

/// The pipeline new deals go to.
pub async fn default_in<'c>(conn: impl Into<Conn<'c>>, tenant: Uuid) -> Result<Option<Uuid>> {
    let row: Option<(Uuid,)> = conn
        .into()
        .fetch_optional(
            "SELECT id FROM pipelines WHERE tenant_id = $1 AND is_default = $2",
            args![tenant, true],
        )
        .await?;
    Ok(row.map(|(id,)| id))
}

/// The stages asked for, validated: names, kinds, probabilities, required fields.
fn check_stages(errs: &mut Errors, input: &[StageInput]) -> Vec<(Option<Uuid>, Stage)> {
    if input.len() > MAX_STAGES {
        errs.add("stages", "too_many");
        return vec![];
    }
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    let mut out = vec![];
    for (i, s) in input.iter().enumerate() {
        let at = |f: &str| format!("stages.{i}.{f}");
        let name = match validate::name(&s.name) {
            Ok(n) => n,
            Err(c) => {
                errs.add(&at("name"), c);
                String::new()
            }
        };
        if !name.is_empty() && !names.insert(name.clone()) {
            errs.add(&at("name"), "taken");
        }
        if let Some(id) = s.id {
            if !ids.insert(id) {
                errs.add(&at("id"), "taken");
            }
        }
        let category = s.category.clone().unwrap_or_else(|| "pipeline".into());
        if !CATEGORIES.contains(&category.as_str()) {
            errs.add(&at("category"), "invalid");
        }
        let probability = s.probability.unwrap_or(match category.as_str() {
            "won" => 100,
            "lost" => 0,
            _ => (10 * (i as i64 + 1)).min(90),
        });
        if !(0..=100).contains(&probability) {
            errs.add(&at("probability"), "out_of_range");
        }
        let mut required = vec![];
        if s.required_fields.len() > REQUIRABLE.len() {
            errs.add(&at("required_fields"), "too_many");
        }
        for f in s.required_fields.iter().take(REQUIRABLE.len()) {
            if !REQUIRABLE.contains(&f.as_str()) {
                errs.add(&at("required_fields"), "invalid");
            } else if !required.contains(f) {
                required.push(f.clone());
            }
        }
        out.push((
            s.id,
            Stage {
                id: s.id.unwrap_or_else(new_id),
                pipeline_id: Uuid::nil(),
                name,
                position: i as i64,
                probability,
                category,
                required_fields: sqlx::types::Json(required),
            },
        ));
    }
    let kinds: HashSet<&str> = out.iter().map(|(_, s)| s.status()).collect();
    for k in ["open", "won", "lost"] {
        if !kinds.contains(k) {
            errs.add("stages", &format!("needs_{k}"));
        }
    }
    out
}

fn apply(errs: &mut Errors, input: &PipelineInput, p: &mut Pipeline, creating: bool) {
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => p.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    if let Some(m) = &input.moves {
        if MOVES.contains(&m.as_str()) {
            p.moves = m.clone();
        } else {
            errs.add("moves", "invalid");
        }
    }
    if let Some(r) = input.may_reopen {
        p.may_reopen = r;
    }
    if let Some(a) = input.active {
        p.active = a;
    }
}

async fn name_taken(tx: &mut Tx, tenant: Uuid, name: &str, id: Uuid) -> Result<bool> {
    let n: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM pipelines WHERE tenant_id = $1 AND name = $2 AND id <> $3",
            args![tenant, name, id],
        )
        .await?;
    Ok(n > 0)
}

/// Makes `id` the default pipeline (the one before it no longer is).
async fn make_default(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<()> {
    tx.execute(
        "UPDATE pipelines SET is_default = $1 WHERE tenant_id = $2 AND is_default = $3 AND id <> $4",
        args![false, tenant, true, id],
    )
    .await?;
    tx.execute(
        "UPDATE pipelines SET is_default = $1 WHERE tenant_id = $2 AND id = $3",
        args![true, tenant, id],
    )
    .await?;
    Ok(())
}

async fn insert_stage(tx: &mut Tx, tenant: Uuid, pipeline: Uuid, s: &Stage) -> Result<()> {
    tx.execute(
        "INSERT INTO pipeline_stages (tenant_id, id, pipeline_id, name, position, probability,
             category, required_fields)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            tenant,
            s.id,
            pipeline,
            s.name.as_str(),
            s.position,
            s.probability,
            s.category.as_str(),
            serde_json::json!(s.required_fields.0)
        ],
    )
    .await?;
    Ok(())
}

pub async fn create(db: &Db, ctx: &Ctx, input: PipelineInput) -> Result<Pipeline> {
    ctx.require("pipelines", Action::Create)?;
    let t = now();
    let mut p = Pipeline {
        id: new_id(),
        name: String::new(),
        moves: "any".into(),
        may_reopen: true,
        is_default: false,
        active: true,
        created_at: t,
        updated_at: t,
        version: 1,
        stages: vec![],
    };
    let mut errs = Errors::default();
    apply(&mut errs, &input, &mut p, true);
    let stages = match &input.stages {
        Some(s) => check_stages(&mut errs, s),
        None => {
            errs.add("stages", "required");
            vec![]
        }
    };
    if stages.iter().any(|(id, _)| id.is_some()) {
        errs.add("stages", "new_only");
    }
    let mut tx = db.begin().await?;
    if !p.name.is_empty() && name_taken(&mut tx, ctx.tenant_id, &p.name, p.id).await? {
        errs.add("name", "taken");
    }
    errs.finish()?;
    let first = default_in(&mut tx, ctx.tenant_id).await?.is_none();
    tx.execute(
        "INSERT INTO pipelines (tenant_id, id, name, moves, may_reopen, is_default, active,
             created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)",
        args![
            ctx.tenant_id,
            p.id,
            p.name.as_str(),
            p.moves.as_str(),
            p.may_reopen,
            false,
            p.active,
            t,
            t
        ],
    )
    .await?;
    for (_, s) in &stages {
        insert_stage(&mut tx, ctx.tenant_id, p.id, s).await?;
    }
    if first || input.is_default == Some(true) {
        make_default(&mut tx, ctx.tenant_id, p.id).await?;
    }
    let after = load(&mut tx, ctx.tenant_id, p.id).await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "pipelines",
        Some(p.id),
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: PipelineInput,
) -> Result<Pipeline> {
    ctx.require("pipelines", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    version::check(expected, before.version)?;
    let mut p = before.clone();
    let mut errs = Errors::default();
    apply(&mut errs, &input, &mut p, false);
    if input.is_default == Some(false) && before.is_default {
        errs.add("is_default", "choose_another");
    }
    if name_taken(&mut tx, ctx.tenant_id, &p.name, id).await? {
        errs.add("name", "taken");
    }
    if input.remap.len() > MAX_STAGES {
        errs.add("remap", "too_many");
    }
    let stages = input.stages.as_ref().map(|s| check_stages(&mut errs, s));
    // Kept stages must be this pipeline's; removed ones holding deals need a mapping.
    let mut moves: Vec<(Uuid, &Stage)> = vec![];
    if let Some(stages) = &stages {
        for (i, (kept, _)) in stages.iter().enumerate() {
            if kept.is_some_and(|k| before.stage(k).is_none()) {
                errs.add(&format!("stages.{i}.id"), "unknown");
            }
        }
        for old in &before.stages {
            if stages.iter().any(|(k, _)| *k == Some(old.id)) {
                continue;
            }
            let held: i64 = tx
                .scalar(
                    "SELECT COUNT(*) FROM opportunities WHERE tenant_id = $1 AND stage_id = $2",
                    args![ctx.tenant_id, old.id],
                )
                .await?;
            if held == 0 {
                continue;
            }
            let field = format!("remap.{}", old.id);
            match input.remap.get(&old.id) {
                None => errs.add(&field, "required"),
                Some(to) => match stages.iter().find(|(k, _)| *k == Some(*to)) {
                    None => errs.add(&field, "unknown"),
                    Some((_, s)) if s.status() != old.status() => errs.add(&field, "other_kind"),
                    Some((_, s)) => moves.push((old.id, s)),
                },
            }
        }
    }
    errs.finish()?;
    let t = now();
    version::update(
        &mut tx,
        version::Row {
            table: "pipelines",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, moves = $2, may_reopen = $3, active = $4, updated_at = $5",
        args![p.name.as_str(), p.moves.as_str(), p.may_reopen, p.active, t],
    )
    .await?;
    if let Some(stages) = &stages {
        // Positions out of the way first (they are unique), then the list as given.
        tx.execute(
            "UPDATE pipeline_stages SET position = -position - 1 WHERE tenant_id = $1 AND pipeline_id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
        for (kept, s) in stages {
            if kept.is_some() {
                tx.execute(
                    "UPDATE pipeline_stages SET name = $1, position = $2, probability = $3,
                         category = $4, required_fields = $5
                     WHERE tenant_id = $6 AND id = $7",
                    args![
                        s.name.as_str(),
                        s.position,
                        s.probability,
                        s.category.as_str(),
                        serde_json::json!(s.required_fields.0),
                        ctx.tenant_id,
                        s.id
                    ],
                )
                .await?;
            } else {
                insert_stage(&mut tx, ctx.tenant_id, id, s).await?;
            }
        }
        for (from, to) in &moves {
            crate::opportunities::remap_stage(&mut tx, ctx, *from, to, t).await?;
        }
        for old in &before.stages {
            if !stages.iter().any(|(k, _)| *k == Some(old.id)) {
                tx.execute(
                    "DELETE FROM pipeline_stages WHERE tenant_id = $1 AND id = $2",
                    args![ctx.tenant_id, old.id],
                )
                .await?;
            }
        }
    }
    if input.is_default == Some(true) {
        make_default(&mut tx, ctx.tenant_id, id).await?;
    }
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "pipelines",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
