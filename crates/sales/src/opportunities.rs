//! Opportunities (deals): an account's possible sale moving through one pipeline's stages. They
//! have the record machinery (custom fields, tags, lists, saved views, bulk actions, trash,
//! search, timeline). A stage move follows the pipeline's rules (forward only, reopening) and
//! asks for the stage's required fields; the deal's status (open, won, lost) follows the stage's
//! category. Every change of stage, amount, probability or expected close date is appended to
//! the deal's history (who, when, from → to), from which time in stage and slipped dates are
//! read. Amounts are integers in minor units (fen).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::accounts::Account;
use guanxi_customers::contacts::Contact;
use guanxi_platform::db::{Backend, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};
use guanxi_records::custom_fields::{self, CustomFilter};
use guanxi_records::record::{self, apply_text, plain, resolve_owner};
use guanxi_records::shares;
use guanxi_records::{eras, normalize, Entity, EntityDef};

use crate::pipelines::{self, Pipeline, Stage};

/// The declaration that gives opportunities the shared record machinery.
pub const ENTITY: Entity = Entity::declare(&EntityDef {
    table: "opportunities",
    path: "/opportunities",
    shared: true,
    title: "name",
});

pub const STATUSES: &[&str] = &["open", "won", "lost"];
/// The largest amount accepted, in minor units (10^15 fen: ten trillion yuan).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Opportunity {
    pub id: Uuid,
    pub name: String,
    pub account_id: Uuid,
    pub account_name: Option<String>,
    /// The main contact on the customer's side.
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub pipeline_id: Uuid,
    pub stage_id: Uuid,
    pub stage_name: Option<String>,
    /// `open`, `won` or `lost` (the stage's category).
    pub status: String,
    /// Minor units (fen).
    pub amount: i64,
    /// ISO 4217, default `CNY`.
    pub currency: String,
    /// 0–100; the stage's default when it moves, unless given.
    pub probability: i64,
    /// `amount × probability / 100`, in minor units.
    pub weighted: i64,
    /// `YYYY-MM-DD`.
    pub expected_close: Option<String>,
    /// Why it was won or lost.
    pub close_reason: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Since when it is in its stage.
    pub stage_since: DateTime<Utc>,
    /// Its place in the stage's column (smaller first).
    pub position: f64,
    /// The lead it was converted from.
    pub lead_id: Option<Uuid>,
    pub description: Option<String>,
    pub owner_id: Uuid,
    pub owner_name: Option<String>,
    pub team_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub custom: sqlx::types::Json<serde_json::Value>,
    #[schema(value_type = Vec<String>)]
    pub tags: sqlx::types::Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
    #[serde(skip)]
    #[sqlx(default)]
    pub seq: Option<i64>,
    #[serde(skip)]
    #[sqlx(default)]
    pub name_key: Option<String>,
}

/// Create or update a deal. On update, absent fields stay as they are and `null` clears one.
/// Moving it is changing `stage_id` (with the stage's required fields in the same request).
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpportunityInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    /// Required on create.
    pub account_id: Option<Uuid>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    /// Default: the default pipeline.
    pub pipeline_id: Option<Uuid>,
    /// Default: the pipeline's first stage.
    pub stage_id: Option<Uuid>,
    /// Minor units (fen), 0 … 10^15.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub probability: Option<i64>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub expected_close: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub close_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Its place in the stage's column; default: first.
    pub position: Option<f64>,
    /// Default: the creator.
    pub owner_id: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OpportunityFilter {
    /// Search box: the deal's or its account's name, pinyin or initials.
    pub q: Option<String>,
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    /// `open`, `won`, `lost` (several comma-separated).
    pub status: Option<String>,
    pub account_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Expected to close on or after / before this date (`YYYY-MM-DD`).
    pub close_from: Option<String>,
    pub close_to: Option<String>,
    pub tag: Option<String>,
    /// `true` lists the trash.
    pub deleted: Option<bool>,
    /// `name`, `amount`, `expected_close`, `created_at`, `updated_at` or `custom.<key>`; `-`
    /// for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    #[serde(skip)]
    #[param(ignore)]
    pub custom: Vec<CustomFilter>,
}

impl custom_fields::CustomFilters for OpportunityFilter {
    fn set_custom(&mut self, filters: Vec<CustomFilter>) {
        self.custom = filters;
    }
}

const SELECT: &str = "SELECT d.id, d.name, d.account_id, a.name AS account_name, d.contact_id,
    c.name AS contact_name, d.pipeline_id, d.stage_id, s.name AS stage_name, d.status, d.amount,
    d.currency, d.probability, d.amount * d.probability / 100 AS weighted, d.expected_close,
    d.close_reason, d.closed_at, d.stage_since, d.position, d.lead_id, d.description, d.owner_id,
    o.name AS owner_name, d.team_id, d.custom, d.tags, d.created_at, d.updated_at, d.deleted_at,
    d.version, d.name_key
    FROM opportunities d
    LEFT JOIN accounts a ON a.tenant_id = d.tenant_id AND a.id = d.account_id
    LEFT JOIN contacts c ON c.tenant_id = d.tenant_id AND c.id = d.contact_id
    LEFT JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
    LEFT JOIN users o ON o.tenant_id = d.tenant_id AND o.id = d.owner_id";

const SORTS: &[SortField] = &[
    ("name", "d.name_key", SortKind::Text),
    ("amount", "d.amount", SortKind::Int),
    ("expected_close", "d.expected_close", SortKind::Text),
    ("created_at", "d.created_at", SortKind::Time),
    ("updated_at", "d.updated_at", SortKind::Time),
];

guanxi_records::declare_record!(
    Opportunity,
    entity: ENTITY,
    select: SELECT,
    alias: "d",
    input: OpportunityInput,
    update: update
);

pub async fn list(db: &Db, ctx: &Ctx, f: &OpportunityFilter) -> Result<Page<Opportunity>> {
    let defs =
        custom_fields::for_list(db, ctx.tenant_id, ENTITY, &f.custom, f.sort.as_deref()).await?;
    let (q, order, limit) = list_sql(db.backend(), ctx, f, &defs)?;
    let rows: Vec<Opportunity> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |d| {
        order.cursor(d.seq, d.id, |sort| match &*sort.field {
            "created_at" => guanxi_platform::db::sqlite_time(&d.created_at),
            "updated_at" => guanxi_platform::db::sqlite_time(&d.updated_at),
            "amount" => d.amount.to_string(),
            "expected_close" => d.expected_close.clone().unwrap_or_default(),
            "name" => d.name_key.clone().unwrap_or_default(),
            other => custom_fields::cursor_value(&d.custom, other, sort.kind),
        })
    }))
}

fn date(field: &str, raw: &str) -> Result<String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| Error::field(field, "invalid_date"))
}

fn list_sql(
    backend: Backend,
    ctx: &Ctx,
    f: &OpportunityFilter,
    defs: &[custom_fields::CustomField],
) -> Result<(Sql, record::ListOrder, i64)> {
    let scope = ctx.require("opportunities", Action::Read)?;
    let sort = f.sort.clone().or_else(|| {
        f.q.as_deref()
            .is_none_or(|q| q.trim().is_empty())
            .then(|| "-updated_at".to_owned())
    });
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: sort.clone(),
    };
    let mut list = record::ListQuery::start(
        backend,
        ctx,
        scope,
        SELECT,
        (ENTITY, "d"),
        f.q.as_deref(),
        f.sort.as_deref(),
        f.deleted == Some(true),
    );
    let q = &mut list.q;
    for (col, v) in [
        ("d.pipeline_id", f.pipeline_id),
        ("d.stage_id", f.stage_id),
        ("d.account_id", f.account_id),
        ("d.owner_id", f.owner_id),
        ("d.team_id", f.team_id),
    ] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    record::one_of(q, "d.status", "status", f.status.as_deref(), STATUSES)?;
    for (field, op, v) in [
        ("close_from", ">=", &f.close_from),
        ("close_to", "<=", &f.close_to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            q.push(&format!(" AND d.expected_close {op} "))
                .bind(date(field, v)?);
        }
    }
    custom_fields::filter_sql(backend, q, "d", defs, &f.custom)?;
    if let Some(tag) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        record::tag_sql(backend, q, "d.tags", tag);
    }
    list.finish(&page, "d.id", || {
        page.sort_or(SORTS, |name| {
            custom_fields::sort_column(backend, "d", defs, name)
        })
    })
}

/// One deal, in the trash or not; outside the caller's scope it does not exist.
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Opportunity> {
    record::get(db, ctx, id).await
}

pub async fn set_deleted(db: &Db, ctx: &Ctx, id: Uuid, deleted: bool) -> Result<Opportunity> {
    record::set_deleted(db, ctx, id, deleted).await
}

/// The editable columns, validated together.
#[derive(Debug, Clone)]
struct Fields {
    name: String,
    account_id: Option<Uuid>,
    account_name: String,
    contact_id: Option<Uuid>,
    pipeline_id: Option<Uuid>,
    amount: i64,
    currency: String,
    probability: Option<i64>,
    expected_close: Option<String>,
    close_reason: Option<String>,
    description: Option<String>,
    owner_id: Option<Uuid>,
    team_id: Option<Uuid>,
    custom: serde_json::Map<String, serde_json::Value>,
    tags: Vec<String>,
}

impl Fields {
    fn new() -> Fields {
        Fields {
            name: String::new(),
            account_id: None,
            account_name: String::new(),
            contact_id: None,
            pipeline_id: None,
            amount: 0,
            currency: "CNY".into(),
            probability: None,
            expected_close: None,
            close_reason: None,
            description: None,
            owner_id: None,
            team_id: None,
            custom: Default::default(),
            tags: vec![],
        }
    }

    fn of(d: &Opportunity) -> Fields {
        Fields {
            name: d.name.clone(),
            account_id: Some(d.account_id),
            account_name: d.account_name.clone().unwrap_or_default(),
            contact_id: d.contact_id,
            pipeline_id: Some(d.pipeline_id),
            amount: d.amount,
            currency: d.currency.clone(),
            probability: Some(d.probability),
            expected_close: d.expected_close.clone(),
            close_reason: d.close_reason.clone(),
            description: d.description.clone(),
            owner_id: Some(d.owner_id),
            team_id: d.team_id,
            custom: d.custom.0.as_object().cloned().unwrap_or_default(),
            tags: d.tags.0.clone(),
        }
    }

    /// The deal's name and its account's, each with pinyin and initials.
    fn search(&self) -> String {
        let (apy, ainit) = normalize::pinyin(&self.account_name);
        record::search_of(
            &self.name,
            None,
            None,
            &[
                Some(self.account_name.as_str()),
                Some(apy.as_str()),
                Some(ainit.as_str()),
            ],
        )
    }

    /// Whether the stage's required field `name` has a value.
    fn has(&self, name: &str) -> bool {
        match name {
            "amount" => self.amount > 0,
            "expected_close" => self.expected_close.is_some(),
            "contact_id" => self.contact_id.is_some(),
            "close_reason" => self.close_reason.is_some(),
            "description" => self.description.is_some(),
            _ => true,
        }
    }
}

/// Where a deal lands: its pipeline and stage after the input, checked against the pipeline's
/// rules when it moves (`from`: the stage it is in).
fn place<'p>(
    errs: &mut Errors,
    pipeline: &'p Pipeline,
    stage: Option<Uuid>,
    from: Option<&Stage>,
) -> Option<&'p Stage> {
    let to = match stage {
        Some(id) => match pipeline.stage(id) {
            Some(s) => s,
            None => {
                errs.add("stage_id", "unknown");
                return None;
            }
        },
        None => pipeline.stages.first()?,
    };
    if let Some(from) = from.filter(|f| f.id != to.id) {
        if from.status() != "open" && to.status() == "open" && !pipeline.may_reopen {
            errs.add("stage_id", "no_reopen");
        } else if pipeline.moves == "forward"
            && from.status() == "open"
            && to.status() == "open"
            && to.position < from.position
        {
            errs.add("stage_id", "backward");
        }
    }
    Some(to)
}

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &OpportunityInput,
    f: &mut Fields,
    defs: &[custom_fields::CustomField],
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => f.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    match input.account_id {
        Some(a) => match record::get::<Account>(&mut *tx, ctx, a).await {
            Ok(acc) if acc.deleted_at.is_some() => errs.add("account_id", "in_trash"),
            Ok(acc) => {
                f.account_id = Some(a);
                f.account_name = acc.name;
            }
            Err(Error::NotFound) => errs.add("account_id", "unknown"),
            Err(e) => return Err(e),
        },
        None if creating => errs.add("account_id", "required"),
        None => {}
    }
    if let Some(c) = input.contact_id {
        f.contact_id = c;
    }
    if let Some(c) = f.contact_id.filter(|_| input.contact_id.is_some()) {
        match record::get::<Contact>(&mut *tx, ctx, c).await {
            Ok(p) if p.deleted_at.is_some() => errs.add("contact_id", "in_trash"),
            Ok(p) if p.account_id.is_some() && p.account_id != f.account_id => {
                errs.add("contact_id", "other_account")
            }
            Ok(_) => {}
            Err(Error::NotFound) => errs.add("contact_id", "unknown"),
            Err(e) => return Err(e),
        }
    }
    if let Some(a) = input.amount {
        if (0..=MAX_AMOUNT).contains(&a) {
            f.amount = a;
        } else {
            errs.add("amount", "out_of_range");
        }
    }
    if let Some(c) = &input.currency {
        let c = c.trim().to_ascii_uppercase();
        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
            f.currency = c;
        } else {
            errs.add("currency", "invalid");
        }
    }
    if let Some(p) = input.probability {
        if (0..=100).contains(&p) {
            f.probability = Some(p);
        } else {
            errs.add("probability", "out_of_range");
        }
    }
    apply_text(
        &mut errs,
        "expected_close",
        &input.expected_close,
        &mut f.expected_close,
        |raw| date("expected_close", raw).map_err(|_| "invalid_date"),
    );
    apply_text(
        &mut errs,
        "close_reason",
        &input.close_reason,
        &mut f.close_reason,
        plain(500),
    );
    apply_text(
        &mut errs,
        "description",
        &input.description,
        &mut f.description,
        plain(10_000),
    );
    if let Some((owner, team)) = resolve_owner(
        tx,
        ctx,
        &mut errs,
        input.owner_id,
        f.owner_id,
        creating,
        &mut Default::default(),
    )
    .await?
    {
        f.owner_id = Some(owner);
        f.team_id = team;
    }
    if let Some(tags) = &input.tags {
        record::apply_tags(&mut errs, tags, &mut f.tags);
    }
    custom_fields::apply(
        tx,
        ctx.tenant_id,
        &mut errs,
        defs,
        input.custom.as_ref(),
        &mut f.custom,
        creating,
        "CN",
    )
    .await?;
    errs.finish()
}

/// The pipeline a deal goes to: the one asked for, else its own, else the tenant's default.
async fn pipeline_of(tx: &mut Tx, ctx: &Ctx, f: &Fields, asked: Option<Uuid>) -> Result<Pipeline> {
    let id = match asked.or(f.pipeline_id) {
        Some(id) => id,
        None => pipelines::default_in(&mut *tx, ctx.tenant_id)
            .await?
            .ok_or_else(|| Error::field("pipeline_id", "required"))?,
    };
    match pipelines::load(&mut *tx, ctx.tenant_id, id).await {
        Ok(p) if p.active || f.pipeline_id == Some(p.id) => Ok(p),
        Ok(_) => Err(Error::field("pipeline_id", "inactive")),
        Err(Error::NotFound) => Err(Error::field("pipeline_id", "unknown")),
        Err(e) => Err(e),
    }
}

/// The stage's required fields the deal lacks, each named.
fn check_required(errs: &mut Errors, stage: &Stage, f: &Fields) {
    for r in stage.required_fields.0.iter() {
        if !f.has(r) {
            errs.add(r, "required_for_stage");
        }
    }
}

/// The top of a stage's column (new and moved cards go first).
async fn top_of(tx: &mut Tx, tenant: Uuid, stage: Uuid) -> Result<f64> {
    let min: Option<f64> = tx
        .scalar(
            "SELECT MIN(position) FROM opportunities WHERE tenant_id = $1 AND stage_id = $2 AND deleted_at IS NULL",
            args![tenant, stage],
        )
        .await?;
    Ok(min.map(|m| m - 1.0).unwrap_or(0.0))
}

pub async fn create(db: &Db, ctx: &Ctx, input: OpportunityInput) -> Result<Opportunity> {
    let mut tx = db.begin().await?;
    let d = create_in(&mut tx, ctx, input, None).await?;
    tx.commit().await?;
    Ok(d)
}

/// [`create`] inside the caller's transaction (a lead's conversion), from `lead` if given.
pub async fn create_in(
    tx: &mut Tx,
    ctx: &Ctx,
    input: OpportunityInput,
    lead: Option<Uuid>,
) -> Result<Opportunity> {
    ctx.require("opportunities", Action::Create)?;
    let mut f = Fields::new();
    let defs = custom_fields::active(tx, ctx.tenant_id, ENTITY).await?;
    apply(tx, ctx, &input, &mut f, &defs, true).await?;
    let pipeline = pipeline_of(tx, ctx, &f, input.pipeline_id).await?;
    let mut errs = Errors::default();
    let stage = place(&mut errs, &pipeline, input.stage_id, None).cloned();
    if let Some(s) = &stage {
        check_required(&mut errs, s, &f);
    }
    errs.finish()?;
    let stage = stage.ok_or_else(|| Error::field("stage_id", "required"))?;
    record::check_create_scope(ctx, "opportunities", f.owner_id, f.team_id)?;
    let id = new_id();
    let t = now();
    let search = f.search();
    let position = match input.position {
        Some(p) if p.is_finite() => p,
        _ => top_of(tx, ctx.tenant_id, stage.id).await?,
    };
    let status = stage.status();
    let era: i64 = tx
        .scalar(
            &format!(
            "INSERT INTO opportunities (tenant_id, id, name, account_id, contact_id, pipeline_id,
             stage_id, status, amount, currency, probability, expected_close, close_reason,
             closed_at, stage_since, position, lead_id, description, owner_id, team_id, search,
             grams, era, custom, tags, created_at, updated_at, created_by, updated_by, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20, $21, $22, {}, $23, $24, $25, $26, $27, $28, 1)
         RETURNING era",
            eras::newest_for("opportunities", "$1")
        ),
            args![
                ctx.tenant_id,
                id,
                f.name.as_str(),
                f.account_id,
                f.contact_id,
                pipeline.id,
                stage.id,
                status,
                f.amount,
                f.currency.as_str(),
                f.probability.unwrap_or(stage.probability),
                f.expected_close.clone(),
                f.close_reason.clone(),
                (status != "open").then_some(t),
                t,
                position,
                lead,
                f.description.clone(),
                f.owner_id,
                f.team_id,
                search.as_str(),
                normalize::grams(&search),
                serde_json::Value::Object(f.custom.clone()),
                serde_json::json!(f.tags),
                t,
                t,
                ctx.user_id,
                ctx.user_id
            ],
        )
        .await?;
    eras::count_one(tx, ctx.tenant_id, "opportunities", era, id).await?;
    custom_fields::hold_unique(tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    let d: Opportunity = record::load(tx, ctx.tenant_id, id).await?;
    history(tx, ctx, &[(id, "stage", None, Some(stage.name.clone()))], t).await?;
    audit::record(tx, ctx, "create", "opportunities", Some(id), None, Some(&d)).await?;
    Ok(d)
}

/// Sets a deal's amount to its quote's when a version is sent, inside the caller's transaction
/// (the quote's write was checked), with the change in the deal's history and audit.
pub async fn set_amount_in(tx: &mut Tx, ctx: &Ctx, id: Uuid, amount: i64) -> Result<()> {
    let before: Opportunity = record::load(tx, ctx.tenant_id, id).await?;
    if before.amount == amount {
        return Ok(());
    }
    if !(0..=MAX_AMOUNT).contains(&amount) {
        return Err(Error::field("total", "out_of_range"));
    }
    let t = now();
    tx.execute(
        "UPDATE opportunities SET amount = $1, updated_at = $2, updated_by = $3, version = version + 1
         WHERE tenant_id = $4 AND id = $5",
        args![amount, t, ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    let change: Change = (
        id,
        "amount",
        Some(before.amount.to_string()),
        Some(amount.to_string()),
    );
    history(tx, ctx, &[change], t).await?;
    let after: Opportunity = record::load(tx, ctx.tenant_id, id).await?;
    audit::record(
        tx,
        ctx,
        "update",
        "opportunities",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await
}

/// Moves each deal's furthest-reached stage (the funnel's) up to its current stage when that
/// is further along the same pipeline and not a lost stage (a deal moved to another pipeline
/// starts there again). Every stage change passes through [`history`], which calls this.
async fn advance_reached(tx: &mut Tx, tenant: Uuid, ids: &[Uuid]) -> Result<()> {
    for chunk in ids.chunks(500) {
        let mut q =
            Sql::new("UPDATE opportunities SET reached_stage_id = stage_id WHERE tenant_id = ");
        q.bind(tenant);
        q.push(" AND id IN ").bind_list(chunk.iter().copied());
        q.push(
            " AND EXISTS (SELECT 1 FROM pipeline_stages s
                 WHERE s.tenant_id = opportunities.tenant_id AND s.id = opportunities.stage_id
                   AND s.category <> 'lost'
                   AND s.position >= COALESCE((SELECT r.position FROM pipeline_stages r
                       WHERE r.tenant_id = opportunities.tenant_id
                         AND r.id = opportunities.reached_stage_id
                         AND r.pipeline_id = opportunities.pipeline_id), -1))",
        );
        tx.execute(&q.sql, q.args).await?;
    }
    Ok(())
}

/// One change of a deal's history: the deal, the field, from, to.
type Change<'a> = (Uuid, &'a str, Option<String>, Option<String>);

/// Appends changes to deals' histories (unchanged values skipped), in one statement.
async fn history(tx: &mut Tx, ctx: &Ctx, changes: &[Change<'_>], at: DateTime<Utc>) -> Result<()> {
    let rows: Vec<_> = changes
        .iter()
        .filter(|(_, _, from, to)| from != to)
        .map(|(id, field, from, to)| {
            args![
                ctx.tenant_id,
                new_id(),
                *id,
                *field,
                from.clone(),
                to.clone(),
                ctx.user_id,
                at
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let moved: Vec<Uuid> = changes
        .iter()
        .filter(|(_, field, from, to)| *field == "stage" && from != to)
        .map(|c| c.0)
        .collect();
    advance_reached(tx, ctx.tenant_id, &moved).await?;
    tx.insert_rows(
        "opportunity_history",
        &[
            "tenant_id",
            "id",
            "opportunity_id",
            "field",
            "from_value",
            "to_value",
            "user_id",
            "at",
        ],
        rows,
    )
    .await?;
    Ok(())
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: OpportunityInput,
) -> Result<Opportunity> {
    ctx.require("opportunities", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before: Opportunity = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    if before.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the deal is in the trash; restore it first".into(),
        ));
    }
    version::check(expected, before.version)?;
    // A collaborator may edit the deal, not hand it to another owner.
    if input.owner_id.is_some_and(|o| o != before.owner_id) && !shares::manages(ctx, &before) {
        return Err(Error::field("owner_id", "out_of_scope"));
    }
    let mut f = Fields::of(&before);
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, ENTITY).await?;
    apply(&mut tx, ctx, &input, &mut f, &defs, false).await?;
    let pipeline = pipeline_of(&mut tx, ctx, &f, input.pipeline_id).await?;
    let old_pipeline = if pipeline.id == before.pipeline_id {
        pipeline.clone()
    } else {
        pipelines::load(&mut tx, ctx.tenant_id, before.pipeline_id).await?
    };
    let from = old_pipeline.stage(before.stage_id);
    let mut errs = Errors::default();
    if pipeline.id != before.pipeline_id && input.stage_id.is_none() {
        errs.add("stage_id", "required");
    }
    let asked = input.stage_id.or(Some(before.stage_id));
    let to = place(&mut errs, &pipeline, asked, from).cloned();
    let moved = to.as_ref().is_some_and(|s| s.id != before.stage_id);
    if let (Some(s), true) = (&to, moved) {
        check_required(&mut errs, s, &f);
    }
    errs.finish()?;
    let to = to.ok_or_else(|| Error::field("stage_id", "required"))?;
    let t = now();
    let probability = match (input.probability, moved) {
        (Some(p), _) => p,
        (None, true) => to.probability,
        (None, false) => before.probability,
    };
    let status = to.status();
    let closed_at = match (status, before.closed_at) {
        ("open", _) => None,
        (_, Some(at)) if before.status == status => Some(at),
        _ => Some(t),
    };
    let stage_since = if moved { t } else { before.stage_since };
    let position = match input.position {
        Some(p) if p.is_finite() => p,
        _ if moved => top_of(&mut tx, ctx.tenant_id, to.id).await?,
        _ => before.position,
    };
    let search = f.search();
    version::update(
        &mut tx,
        version::Row {
            table: "opportunities",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, account_id = $2, contact_id = $3, pipeline_id = $4, stage_id = $5,
             status = $6, amount = $7, currency = $8, probability = $9, expected_close = $10,
             close_reason = $11, closed_at = $12, stage_since = $13, position = $14,
             description = $15, owner_id = $16, team_id = $17, search = $18, grams = $19,
             custom = $20, tags = $21, updated_at = $22, updated_by = $23",
        args![
            f.name.as_str(),
            f.account_id,
            f.contact_id,
            pipeline.id,
            to.id,
            status,
            f.amount,
            f.currency.as_str(),
            probability,
            f.expected_close.clone(),
            f.close_reason.clone(),
            closed_at,
            stage_since,
            position,
            f.description.clone(),
            f.owner_id,
            f.team_id,
            search.as_str(),
            normalize::grams(&search),
            serde_json::Value::Object(f.custom.clone()),
            serde_json::json!(f.tags),
            t,
            ctx.user_id
        ],
    )
    .await?;
    if input.custom.is_some() {
        custom_fields::hold_unique(&mut tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    }
    let changes: [Change; 4] = [
        (
            id,
            "stage",
            before.stage_name.clone(),
            Some(to.name.clone()),
        ),
        (
            id,
            "amount",
            Some(before.amount.to_string()),
            Some(f.amount.to_string()),
        ),
        (
            id,
            "probability",
            Some(before.probability.to_string()),
            Some(probability.to_string()),
        ),
        (
            id,
            "expected_close",
            before.expected_close.clone(),
            f.expected_close.clone(),
        ),
    ];
    history(&mut tx, ctx, &changes, t).await?;
    let after: Opportunity = record::load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "opportunities",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    if before.owner_id != after.owner_id {
        record::audit_transfer(
            &mut tx,
            ctx,
            ENTITY,
            id,
            (
                before.owner_id,
                before.owner_name.as_deref().unwrap_or_default(),
            ),
            (
                after.owner_id,
                after.owner_name.as_deref().unwrap_or_default(),
            ),
            Some(&after.name),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(after)
}

/// Moves every deal of a removed stage to `to` (a pipeline edit's mapping), each move in its
/// history.
pub(crate) async fn remap_stage(
    tx: &mut Tx,
    ctx: &Ctx,
    from: Uuid,
    to: &Stage,
    at: DateTime<Utc>,
) -> Result<()> {
    let moved: Vec<(Uuid, Option<String>)> = tx
        .fetch_all(
            "SELECT d.id, s.name FROM opportunities d
               JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
             WHERE d.tenant_id = $1 AND d.stage_id = $2",
            args![ctx.tenant_id, from],
        )
        .await?;
    tx.execute(
        "UPDATE opportunities SET stage_id = $1, probability = $2, stage_since = $3,
             updated_at = $3, version = version + 1
         WHERE tenant_id = $4 AND stage_id = $5",
        args![to.id, to.probability, at, ctx.tenant_id, from],
    )
    .await?;
    let changes: Vec<Change> = moved
        .into_iter()
        .map(|(id, name)| (id, "stage", name, Some(to.name.clone())))
        .collect();
    history(tx, ctx, &changes, at).await
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct HistoryEntry {
    /// `stage`, `amount`, `probability` or `expected_close`.
    pub field: String,
    pub from_value: Option<String>,
    pub to_value: Option<String>,
    pub user_id: Option<Uuid>,
    pub user_name: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct History {
    /// Oldest first.
    pub items: Vec<HistoryEntry>,
    /// Seconds spent in each stage (by stage name), the current one up to now.
    #[schema(value_type = Object)]
    pub time_in_stage: std::collections::BTreeMap<String, i64>,
    /// How many times the expected close date was moved later.
    pub slipped: i64,
}

/// A deal's history (up to its last 1,000 changes), with time in each stage and how often its
/// close date slipped.
pub async fn history_of(db: &Db, ctx: &Ctx, id: Uuid) -> Result<History> {
    let d = get(db, ctx, id).await?;
    let mut items: Vec<HistoryEntry> = db
        .fetch_all(
            "SELECT h.field, h.from_value, h.to_value, h.user_id, u.name AS user_name, h.at
               FROM opportunity_history h
               LEFT JOIN users u ON u.tenant_id = h.tenant_id AND u.id = h.user_id
             WHERE h.tenant_id = $1 AND h.opportunity_id = $2
             ORDER BY h.at DESC, h.id DESC LIMIT 1000",
            args![ctx.tenant_id, id],
        )
        .await?;
    items.reverse();
    let mut time_in_stage = std::collections::BTreeMap::new();
    let stages: Vec<&HistoryEntry> = items.iter().filter(|h| h.field == "stage").collect();
    for (i, h) in stages.iter().enumerate() {
        let until = match stages.get(i + 1) {
            Some(next) => next.at,
            None if d.status == "open" => now(),
            None => d.closed_at.unwrap_or_else(now),
        };
        if let Some(name) = &h.to_value {
            *time_in_stage.entry(name.clone()).or_insert(0) += (until - h.at).num_seconds().max(0);
        }
    }
    let slipped = items
        .iter()
        .filter(|h| {
            h.field == "expected_close"
                && matches!((&h.from_value, &h.to_value), (Some(a), Some(b)) if b > a)
        })
        .count() as i64;
    Ok(History {
        items,
        time_in_stage,
        slipped,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Column {
    pub stage: Stage,
    /// Deals in the stage the caller may see (with the board's filters).
    pub count: i64,
    /// Sum of amounts, minor units.
    pub amount: i64,
    /// Sum of amount × probability / 100.
    pub weighted: i64,
    /// The first cards, in column order.
    pub items: Vec<Opportunity>,
    /// Pass as `cursor` (with `stage_id`) for the column's next cards.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Board {
    pub pipeline: Pipeline,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BoardFilter {
    /// Only this column (for its next page).
    pub stage_id: Option<Uuid>,
    /// Cards a column (1–100, default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub owner_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub tag: Option<String>,
    /// Search box, as on the list.
    pub q: Option<String>,
}

/// The filters a board shares with its counts and its cards.
fn board_filter(backend: Backend, ctx: &Ctx, q: &mut Sql, f: &BoardFilter) -> Result<()> {
    let scope = ctx.require("opportunities", Action::Read)?;
    shares::scope_sql(ctx, q, scope, ENTITY, "d");
    for (col, v) in [("d.owner_id", f.owner_id), ("d.team_id", f.team_id)] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    if let Some(tag) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        record::tag_sql(backend, q, "d.tags", tag);
    }
    if let Some(text) = f.q.as_deref().filter(|t| !t.trim().is_empty()) {
        record::search_sql(q, "d.search", text);
    }
    Ok(())
}

/// A pipeline's kanban: one column per stage with its count and sums, each loaded a page at a
/// time in card order (one query for the sums, one per column).
pub async fn board(db: &Db, ctx: &Ctx, pipeline: Uuid, f: &BoardFilter) -> Result<Board> {
    ctx.require("opportunities", Action::Read)?;
    let pipeline = pipelines::load(db, ctx.tenant_id, pipeline).await?;
    let limit = f.limit.unwrap_or(20).clamp(1, 100);
    let backend = db.backend();
    let mut q = Sql::new(
        "SELECT d.stage_id, COUNT(*), CAST(COALESCE(SUM(d.amount), 0) AS BIGINT),
             CAST(COALESCE(SUM(d.amount * d.probability / 100), 0) AS BIGINT)
         FROM opportunities d WHERE d.tenant_id = ",
    );
    q.bind(ctx.tenant_id)
        .push(" AND d.pipeline_id = ")
        .bind(pipeline.id)
        .push(" AND d.deleted_at IS NULL");
    board_filter(backend, ctx, &mut q, f)?;
    q.push(" GROUP BY d.stage_id");
    let sums: Vec<(Uuid, i64, i64, i64)> = db.fetch_sql(q).await?;
    let after = match f.cursor.as_deref() {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    let mut columns = vec![];
    for stage in &pipeline.stages {
        if f.stage_id.is_some_and(|s| s != stage.id) {
            continue;
        }
        let (count, amount, weighted) = sums
            .iter()
            .find(|(s, ..)| *s == stage.id)
            .map(|(_, c, a, w)| (*c, *a, *w))
            .unwrap_or_default();
        let mut items: Vec<Opportunity> = vec![];
        if count > 0 {
            let mut q = Sql::new(&format!("{SELECT} WHERE d.tenant_id = "));
            q.bind(ctx.tenant_id)
                .push(" AND d.stage_id = ")
                .bind(stage.id)
                .push(" AND d.deleted_at IS NULL");
            board_filter(backend, ctx, &mut q, f)?;
            if let (Some((pos, id)), true) = (after, f.stage_id.is_some()) {
                q.push(" AND (d.position > ")
                    .bind(pos)
                    .push(" OR (d.position = ")
                    .bind(pos)
                    .push(" AND d.id > ")
                    .bind(id)
                    .push("))");
            }
            q.push(&format!(" ORDER BY d.position, d.id LIMIT {}", limit + 1));
            items = db.fetch_sql(q).await?;
        }
        let next_cursor = (items.len() as i64 > limit)
            .then(|| {
                items.truncate(limit as usize);
                items.last().map(|d| format!("{}_{}", d.position, d.id))
            })
            .flatten();
        columns.push(Column {
            stage: stage.clone(),
            count,
            amount,
            weighted,
            items,
            next_cursor,
        });
    }
    Ok(Board { pipeline, columns })
}

fn decode_cursor(c: &str) -> Result<(f64, Uuid)> {
    let bad = || Error::field("cursor", "invalid");
    let (pos, id) = c.rsplit_once('_').ok_or_else(bad)?;
    let pos: f64 = pos.parse().map_err(|_| bad())?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    if !pos.is_finite() {
        return Err(bad());
    }
    Ok((pos, id))
}

/// Logs a call, visit, note or task about the deal; it also stands on its account's timeline
/// (and counts as that customer's follow-up).
pub async fn log_activity(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    mut input: guanxi_customers::activities::ActivityInput,
) -> Result<guanxi_customers::activities::Activity> {
    let mut tx = db.begin().await?;
    let d: Opportunity = record::get(&mut tx, ctx, id).await?;
    input.account_id = Some(d.account_id);
    input.contact_id = input.contact_id.or(d.contact_id);
    let a =
        guanxi_customers::activities::create_in(&mut tx, ctx, Some((ENTITY, id)), input).await?;
    tx.commit().await?;
    Ok(a)
}

/// Deals for the one search box (`kind` `opportunity`, the account as detail), ranked as the
/// other records are; none when the caller may not read deals or nothing was typed.
pub async fn search_hits(
    db: &Db,
    ctx: &Ctx,
    q: &str,
    limit: i64,
) -> Result<Vec<guanxi_records::search::SearchHit>> {
    use guanxi_records::search::{exact, ranked, window};
    let Some(scope) = ctx.can("opportunities", Action::Read) else {
        return Ok(vec![]);
    };
    let terms = normalize::search_terms(q);
    let Some(term) = terms.first() else {
        return Ok(vec![]);
    };
    const HIT: &str = "SELECT 'opportunity' AS kind, d.id, d.name,
        (SELECT a.name FROM accounts a WHERE a.tenant_id = d.tenant_id AND a.id = d.account_id) AS detail,
        CAST(NULL AS TEXT) AS phone, CAST(NULL AS TEXT) AS email, d.search FROM opportunities d";
    let backend = db.backend();
    let arms = vec![
        window(backend, ctx, scope, HIT, (ENTITY, "d"), Some(q))?,
        exact(ctx, scope, HIT, (ENTITY, "d"), q.trim()),
    ];
    db.fetch_sql(ranked(backend, arms, term, limit)).await
}
