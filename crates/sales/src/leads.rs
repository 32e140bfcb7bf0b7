//! Leads: a person (usually at a company) who may become a customer. A lead has a source, a
//! status worked from `new` to `qualified` (or `disqualified`, with a reason) and is converted
//! into an account and contact once ([`crate::convert`]). Leads get the record machinery by
//! declaring [`ENTITY`]: custom fields, tags, lists with filters and search (Chinese, pinyin,
//! initials, phone), saved views, bulk actions, trash and restore, history.
//!
//! New leads arrive through [`crate::intake`], which matches a person already known (a lead or
//! a contact) and records the arrival on that record instead of creating a second one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::activities::{self, Subject, TimelineEntry, TimelineFilter};
use guanxi_platform::db::{Backend, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, validate, version, Ctx, Error};
use guanxi_records::custom_fields::{self, CustomFilter};
use guanxi_records::record::{
    self, apply_phone, apply_text, plain, resolve_owner, Lookups, Record,
};
use guanxi_records::{eras, normalize, Entity, EntityDef};

/// The declaration that gives leads the shared record machinery.
pub const ENTITY: Entity = Entity::declare(&EntityDef {
    table: "leads",
    path: "/leads",
    shared: false,
    title: "name",
});

/// Where a lead came from.
pub const SOURCES: &[&str] = &["form", "import", "api", "manual", "campaign"];

/// A lead's statuses; `converted` is reached only by converting.
pub const STATUSES: &[&str] = &[
    "new",
    "working",
    "nurturing",
    "qualified",
    "disqualified",
    "converted",
];

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Lead {
    pub id: Uuid,
    /// The person's name as written.
    pub name: String,
    pub company: Option<String>,
    pub title: Option<String>,
    /// As entered.
    pub phone: Option<String>,
    /// `phone` in E.164.
    pub phone_e164: Option<String>,
    pub email: Option<String>,
    pub wechat: Option<String>,
    /// ISO 3166 alpha-2; phones without a country code are read as this country's.
    pub country: String,
    pub province: Option<String>,
    pub city: Option<String>,
    pub industry: Option<String>,
    pub product_interest: Option<String>,
    pub notes: Option<String>,
    /// `form`, `import`, `api`, `manual` or `campaign`.
    pub source: String,
    /// Which form, file or campaign.
    pub source_detail: Option<String>,
    /// `new`, `working`, `nurturing`, `qualified`, `disqualified` or `converted`.
    pub status: String,
    /// Why it was disqualified (required for that status).
    pub disqualify_reason: Option<String>,
    /// 0–100, from the scoring rules.
    pub score: i64,
    /// `A` (80 and more), `B` (60–79), `C` (40–59) or `D`.
    pub grade: String,
    /// Why the score is what it is: each scoring rule that matched and its points.
    #[schema(value_type = Vec<crate::scoring::Reason>)]
    pub score_reasons: sqlx::types::Json<Vec<crate::scoring::Reason>>,
    pub converted_account_id: Option<Uuid>,
    pub converted_contact_id: Option<Uuid>,
    pub converted_at: Option<DateTime<Utc>>,
    /// The last time the person reached out (a form, an import row, an API call).
    pub last_touch_at: DateTime<Utc>,
    /// Answer by then (the first-response policy of its source, in business time).
    pub response_due_at: Option<DateTime<Utc>>,
    /// When its status first left `new`.
    pub responded_at: Option<DateTime<Utc>>,
    /// When the deadline passed unanswered.
    pub sla_breached_at: Option<DateTime<Utc>>,
    /// Absent while the lead waits in a pool.
    pub owner_id: Option<Uuid>,
    pub owner_name: Option<String>,
    pub pool_id: Option<Uuid>,
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

/// Create or update a lead. On update, absent fields stay as they are and `null` (or an empty
/// string) clears a field.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    /// Required on update (or send `If-Match`); ignored on create.
    pub version: Option<i64>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub wechat: Option<Option<String>>,
    /// ISO 3166 alpha-2, default `CN`.
    pub country: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub province: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub city: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub product_interest: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// On create: `manual` (the default), `api`, `import`, `form` or `campaign`.
    pub source: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub source_detail: Option<Option<String>>,
    /// Any status but `converted` (convert the lead instead).
    pub status: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub disqualify_reason: Option<Option<String>>,
    /// Default: the creator.
    pub owner_id: Option<Uuid>,
    /// Custom field values by key (`/api/v1/custom-fields?entity=leads`); `null` clears one.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
    /// Replaces the lead's tags.
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadFilter {
    /// Search box: any part of the name or company, their pinyin or initials, a phone in any
    /// format, email or WeChat id.
    pub q: Option<String>,
    /// One status, or several separated by commas.
    pub status: Option<String>,
    pub source: Option<String>,
    pub owner_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub industry: Option<String>,
    /// Leads scoring at least this.
    pub min_score: Option<i64>,
    /// `A`, `B`, `C` or `D` (score 80+, 60–79, 40–59, below 40).
    pub grade: Option<String>,
    /// `waiting`: not answered yet, with a deadline; `breached`: its deadline passed
    /// unanswered (answered since or not: every lead nobody answered in time).
    pub sla: Option<String>,
    /// Records with this tag.
    pub tag: Option<String>,
    /// `true` lists the trash instead.
    pub deleted: Option<bool>,
    /// `name`, `created_at` (the default, newest first with `-`), `updated_at`, `score`,
    /// `last_touch_at` or `custom.<key>`; prefix `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    #[serde(skip)]
    #[param(ignore)]
    pub custom: Vec<CustomFilter>,
}

impl custom_fields::CustomFilters for LeadFilter {
    fn set_custom(&mut self, filters: Vec<CustomFilter>) {
        self.custom = filters;
    }
}

const SELECT: &str = "SELECT l.id, l.name, l.company, l.title, l.phone, l.phone_e164, l.email,
    l.wechat, l.country, l.province, l.city, l.industry, l.product_interest, l.notes, l.source,
    l.source_detail, l.status, l.disqualify_reason, l.score,
    CASE WHEN l.score >= 80 THEN 'A' WHEN l.score >= 60 THEN 'B' WHEN l.score >= 40 THEN 'C' ELSE 'D' END AS grade,
    l.score_reasons, l.converted_account_id,
    l.converted_contact_id, l.converted_at, l.last_touch_at, l.response_due_at, l.responded_at,
    l.sla_breached_at, l.owner_id, o.name AS owner_name,
    l.pool_id, l.team_id, l.custom, l.tags, l.created_at, l.updated_at, l.deleted_at, l.version,
    l.name_key
    FROM leads l
    LEFT JOIN users o ON o.tenant_id = l.tenant_id AND o.id = l.owner_id";

const SORTS: &[SortField] = &[
    ("name", "l.name_key", SortKind::Text),
    ("created_at", "l.created_at", SortKind::Time),
    ("updated_at", "l.updated_at", SortKind::Time),
    ("last_touch_at", "l.last_touch_at", SortKind::Time),
    ("score", "l.score", SortKind::Int),
];

guanxi_records::declare_record!(
    Lead,
    entity: ENTITY,
    select: SELECT,
    alias: "l",
    input: LeadInput,
    update: update
);

pub async fn list(db: &Db, ctx: &Ctx, f: &LeadFilter) -> Result<Page<Lead>> {
    let defs =
        custom_fields::for_list(db, ctx.tenant_id, ENTITY, &f.custom, f.sort.as_deref()).await?;
    let (q, order, limit) = list_sql(db.backend(), ctx, f, &defs)?;
    let rows: Vec<Lead> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |l| {
        order.cursor(l.seq, l.id, |sort| match &*sort.field {
            "created_at" => guanxi_platform::db::sqlite_time(&l.created_at),
            "updated_at" => guanxi_platform::db::sqlite_time(&l.updated_at),
            "last_touch_at" => guanxi_platform::db::sqlite_time(&l.last_touch_at),
            "score" => l.score.to_string(),
            "name" => l.name_key.clone().unwrap_or_default(),
            other => custom_fields::cursor_value(&l.custom, other, sort.kind),
        })
    }))
}

/// The one statement behind [`list`].
pub fn list_sql(
    backend: Backend,
    ctx: &Ctx,
    f: &LeadFilter,
    defs: &[custom_fields::CustomField],
) -> Result<(Sql, record::ListOrder, i64)> {
    let scope = ctx.require("leads", Action::Read)?;
    let sort = f.sort.clone().or_else(|| {
        // Newest first unless searching (a search answers in its index's order).
        f.q.as_deref()
            .is_none_or(|q| q.trim().is_empty())
            .then(|| "-created_at".to_owned())
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
        (ENTITY, "l"),
        f.q.as_deref(),
        f.sort.as_deref(),
        f.deleted == Some(true),
    );
    let q = &mut list.q;
    for (col, v) in [("l.owner_id", f.owner_id), ("l.team_id", f.team_id)] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    for (col, v) in [
        ("l.province", &f.province),
        ("l.city", &f.city),
        ("l.industry", &f.industry),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    if let Some(source) = f.source.as_deref().filter(|s| !s.is_empty()) {
        if !SOURCES.contains(&source) {
            return Err(Error::field("source", "invalid"));
        }
        q.push(" AND l.source = ").bind(source);
    }
    record::one_of(q, "l.status", "status", f.status.as_deref(), STATUSES)?;
    if let Some(min) = f.min_score {
        q.push(" AND l.score >= ").bind(min);
    }
    match f.sla.as_deref() {
        None | Some("") => {}
        Some("waiting") => {
            q.push(" AND l.response_due_at IS NOT NULL AND l.responded_at IS NULL");
        }
        Some("breached") => {
            q.push(" AND l.sla_breached_at IS NOT NULL");
        }
        Some(_) => return Err(Error::field("sla", "invalid")),
    }
    if let Some(g) = f.grade.as_deref().filter(|g| !g.is_empty()) {
        let (lo, hi) = match g {
            "A" => (80, 100),
            "B" => (60, 79),
            "C" => (40, 59),
            "D" => (0, 39),
            _ => return Err(Error::field("grade", "invalid")),
        };
        q.push(" AND l.score BETWEEN ")
            .bind(lo)
            .push(" AND ")
            .bind(hi);
    }
    custom_fields::filter_sql(backend, q, "l", defs, &f.custom)?;
    if let Some(tag) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        record::tag_sql(backend, q, "l.tags", tag);
    }
    list.finish(&page, "l.id", || {
        page.sort_or(SORTS, |name| {
            custom_fields::sort_column(backend, "l", defs, name)
        })
    })
}

/// One lead, in the trash or not; outside the caller's scope it does not exist.
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Lead> {
    record::get(db, ctx, id).await
}

/// Moves a lead to the trash (`deleted = true`) or back.
pub async fn set_deleted(db: &Db, ctx: &Ctx, id: Uuid, deleted: bool) -> Result<Lead> {
    record::set_deleted(db, ctx, id, deleted).await
}

/// The editable columns, validated together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    pub name: String,
    pub company: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub phone_e164: Option<String>,
    pub phone_national: Option<String>,
    pub email: Option<String>,
    pub wechat: Option<String>,
    pub country: String,
    pub province: Option<String>,
    pub city: Option<String>,
    pub industry: Option<String>,
    pub product_interest: Option<String>,
    pub notes: Option<String>,
    pub source: String,
    pub source_detail: Option<String>,
    pub status: String,
    pub disqualify_reason: Option<String>,
    pub owner_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub custom: serde_json::Map<String, serde_json::Value>,
    pub tags: Vec<String>,
}

impl Fields {
    pub(crate) fn new() -> Fields {
        Fields {
            country: "CN".into(),
            source: "manual".into(),
            status: "new".into(),
            ..Fields::default()
        }
    }

    fn of(l: &Lead) -> Fields {
        Fields {
            name: l.name.clone(),
            company: l.company.clone(),
            title: l.title.clone(),
            phone: l.phone.clone(),
            phone_e164: l.phone_e164.clone(),
            phone_national: None,
            email: l.email.clone(),
            wechat: l.wechat.clone(),
            country: l.country.clone(),
            province: l.province.clone(),
            city: l.city.clone(),
            industry: l.industry.clone(),
            product_interest: l.product_interest.clone(),
            notes: l.notes.clone(),
            source: l.source.clone(),
            source_detail: l.source_detail.clone(),
            status: l.status.clone(),
            disqualify_reason: l.disqualify_reason.clone(),
            owner_id: l.owner_id,
            team_id: l.team_id,
            custom: l.custom.0.as_object().cloned().unwrap_or_default(),
            tags: l.tags.0.clone(),
        }
    }

    /// The lead's facts for assignment and scoring rules (see [`crate::rules`]).
    pub(crate) fn facts(&self) -> serde_json::Value {
        crate::scoring::new_lead_facts(self)
    }

    /// The search text: the name (with pinyin and initials), phone digits, email, WeChat id
    /// and the company (so a lead is found by its company too).
    fn search(&self) -> String {
        let national = self.phone_national.clone().or_else(|| {
            self.phone
                .as_deref()
                .and_then(|raw| normalize::phone(raw, &self.country).ok())
                .map(|p| p.national)
        });
        let (company_py, company_initials) = self
            .company
            .as_deref()
            .map(normalize::pinyin)
            .unwrap_or_default();
        record::search_of(
            &self.name,
            national.as_deref(),
            self.phone_e164.as_deref(),
            &[
                self.email.as_deref(),
                self.wechat.as_deref(),
                self.company.as_deref(),
                Some(company_py.as_str()).filter(|s| !s.is_empty()),
                Some(company_initials.as_str()).filter(|s| !s.is_empty()),
            ],
        )
    }
}

/// Validates `input` onto `f` (one validation for create, update and intake).
pub(crate) async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &LeadInput,
    f: &mut Fields,
    defs: &[custom_fields::CustomField],
    creating: bool,
    lk: &mut Lookups,
) -> Result<()> {
    let mut errs = Errors::default();
    record::apply_name_and_country(
        &mut errs,
        &input.name,
        &input.country,
        &mut f.name,
        &mut f.country,
    );
    apply_text(
        &mut errs,
        "email",
        &input.email,
        &mut f.email,
        validate::email,
    );
    apply_text(
        &mut errs,
        "wechat",
        &input.wechat,
        &mut f.wechat,
        normalize::wechat,
    );
    for (field, value, current) in [
        ("company", &input.company, &mut f.company),
        ("title", &input.title, &mut f.title),
        ("province", &input.province, &mut f.province),
        ("city", &input.city, &mut f.city),
        ("industry", &input.industry, &mut f.industry),
        (
            "product_interest",
            &input.product_interest,
            &mut f.product_interest,
        ),
        ("source_detail", &input.source_detail, &mut f.source_detail),
    ] {
        apply_text(&mut errs, field, value, current, plain(200));
    }
    apply_text(
        &mut errs,
        "notes",
        &input.notes,
        &mut f.notes,
        plain(10_000),
    );
    f.phone_national = apply_phone(
        &mut errs,
        &input.phone,
        input.country.is_some(),
        &f.country,
        &mut f.phone,
        &mut f.phone_e164,
    );
    match (&input.source, creating) {
        (Some(s), true) if SOURCES.contains(&s.as_str()) => f.source = s.clone(),
        (Some(_), true) => errs.add("source", "invalid"),
        (Some(s), false) if *s != f.source => errs.add("source", "immutable"),
        _ => {}
    }
    if let Some(status) = &input.status {
        match status.as_str() {
            "converted" => errs.add("status", "convert_instead"),
            s if STATUSES.contains(&s) => f.status = s.to_owned(),
            _ => errs.add("status", "invalid"),
        }
    }
    apply_text(
        &mut errs,
        "disqualify_reason",
        &input.disqualify_reason,
        &mut f.disqualify_reason,
        plain(500),
    );
    if f.status == "disqualified" && f.disqualify_reason.is_none() {
        errs.add("disqualify_reason", "required");
    }
    if f.status != "disqualified" {
        f.disqualify_reason = None;
    }
    if let Some((owner, team)) =
        resolve_owner(tx, ctx, &mut errs, input.owner_id, f.owner_id, creating, lk).await?
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
        &f.country,
    )
    .await?;
    errs.finish()
}

/// Inserts a validated lead (the caller checked permission and scope).
pub(crate) async fn insert(
    tx: &mut Tx,
    ctx: &Ctx,
    f: &Fields,
    defs: &[custom_fields::CustomField],
) -> Result<Lead> {
    let id = guanxi_platform::time::new_id();
    let t = now();
    // Scored and given its deadline before the insert: the row is written once.
    let (score, reasons) =
        crate::scoring::for_new(tx, ctx.tenant_id, f.team_id, &f.facts()).await?;
    let deadline = crate::sla::deadline(tx, ctx.tenant_id, &f.source, f.team_id, t).await?;
    let search = f.search();
    let era: i64 = tx
        .scalar(
            &format!(
                "INSERT INTO leads (tenant_id, id, name, company, title, phone, phone_e164, email,
                     wechat, country, province, city, industry, product_interest, notes, source,
                     source_detail, status, disqualify_reason, score, score_reasons,
                     response_due_at, last_touch_at, owner_id, team_id, search, grams, era,
                     custom, tags, created_at, updated_at, created_by, updated_by, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, {}, $28, $29, $30,
                     $31, $32, $33, 1)
                 RETURNING era",
                eras::newest_for(ENTITY.table(), "$1")
            ),
            args![
                ctx.tenant_id,
                id,
                f.name.as_str(),
                f.company.clone(),
                f.title.clone(),
                f.phone.clone(),
                f.phone_e164.clone(),
                f.email.clone(),
                f.wechat.clone(),
                f.country.as_str(),
                f.province.clone(),
                f.city.clone(),
                f.industry.clone(),
                f.product_interest.clone(),
                f.notes.clone(),
                f.source.as_str(),
                f.source_detail.clone(),
                f.status.as_str(),
                f.disqualify_reason.clone(),
                score,
                serde_json::json!(reasons),
                deadline.as_ref().map(|d| d.due),
                t,
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
    eras::count_one(tx, ctx.tenant_id, "leads", era, id).await?;
    custom_fields::hold_unique(tx, ctx.tenant_id, ENTITY, id, defs, &f.custom).await?;
    if let Some(d) = &deadline {
        crate::sla::plan(tx, ctx.tenant_id, id, t, d).await?;
    }
    let l: Lead = record::load(tx, ctx.tenant_id, id).await?;
    audit::record(tx, ctx, "create", "leads", Some(id), None, Some(&l)).await?;
    Ok(l)
}

/// Validates a new lead's input: permission, fields and the caller's scope.
pub(crate) async fn prepare(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &LeadInput,
    lk: &mut Lookups,
) -> Result<(Fields, Vec<custom_fields::CustomField>)> {
    ctx.require("leads", Action::Create)?;
    let mut f = Fields::new();
    let defs = custom_fields::active(tx, ctx.tenant_id, ENTITY).await?;
    apply(tx, ctx, input, &mut f, &defs, true, lk).await?;
    record::check_create_scope(ctx, "leads", f.owner_id, f.team_id)?;
    Ok((f, defs))
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: LeadInput,
) -> Result<Lead> {
    ctx.require("leads", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before: Lead = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    if before.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the lead is in the trash; restore it first".into(),
        ));
    }
    if before.status == "converted" {
        return Err(Error::Conflict(
            "the lead was converted; change its account and contact instead".into(),
        ));
    }
    version::check(expected, before.version)?;
    let mut f = Fields::of(&before);
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, ENTITY).await?;
    apply(
        &mut tx,
        ctx,
        &input,
        &mut f,
        &defs,
        false,
        &mut Lookups::default(),
    )
    .await?;
    let search = f.search();
    version::update(
        &mut tx,
        version::Row {
            table: "leads",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, company = $2, title = $3, phone = $4, phone_e164 = $5, email = $6,
             wechat = $7, country = $8, province = $9, city = $10, industry = $11,
             product_interest = $12, notes = $13, source_detail = $14, status = $15,
             disqualify_reason = $16, owner_id = $17, team_id = $18, search = $19, grams = $20,
             custom = $21, tags = $22, updated_at = $23, updated_by = $24,
             responded_at = CASE WHEN responded_at IS NULL AND $25 <> 'new' THEN $26 ELSE responded_at END",
        args![
            f.name.as_str(),
            f.company.clone(),
            f.title.clone(),
            f.phone.clone(),
            f.phone_e164.clone(),
            f.email.clone(),
            f.wechat.clone(),
            f.country.as_str(),
            f.province.clone(),
            f.city.clone(),
            f.industry.clone(),
            f.product_interest.clone(),
            f.notes.clone(),
            f.source_detail.clone(),
            f.status.as_str(),
            f.disqualify_reason.clone(),
            f.owner_id,
            f.team_id,
            search.as_str(),
            normalize::grams(&search),
            serde_json::Value::Object(f.custom.clone()),
            serde_json::json!(f.tags),
            now(),
            ctx.user_id,
            f.status.as_str(),
            now()
        ],
    )
    .await?;
    if input.custom.is_some() {
        custom_fields::hold_unique(&mut tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    }
    crate::scoring::rescore(&mut tx, ctx.tenant_id, id).await?;
    let after: Lead = record::load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "leads",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    if let (Some(from), Some(to)) = (before.owner_id, after.owner_id) {
        record::audit_transfer(
            &mut tx,
            ctx,
            ENTITY,
            id,
            (from, before.owner_name.as_deref().unwrap_or_default()),
            (to, after.owner_name.as_deref().unwrap_or_default()),
            Some(&after.name),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(after)
}

/// A lead's timeline, newest first: the calls, visits, notes and tasks logged on it, and every
/// touch (each time the person reached out, with what they sent), status and field changes,
/// hand-overs, pool moves, conversion, trash and restore.
pub async fn timeline(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    f: &TimelineFilter,
) -> Result<Page<TimelineEntry>> {
    activities::timeline(db, ctx, Subject::Record(ENTITY, id), f).await
}

/// What counts as the rep answering a lead: reaching the person, not a note to self.
const RESPONSES: &[&str] = &["call", "email", "meeting", "visit"];

/// Logs a call, email, meeting, visit, note or task on a lead the caller may read. A call,
/// email, meeting or visit answers the lead (its first-response clock stops) and counts toward
/// its engagement score.
pub async fn log_activity(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    input: activities::ActivityInput,
) -> Result<activities::Activity> {
    let mut tx = db.begin().await?;
    let a = activities::create_in(&mut tx, ctx, Some((ENTITY, id)), input).await?;
    if RESPONSES.contains(&a.kind.as_str()) {
        // Derived, like the score: the version stays, an open edit form is not made stale.
        tx.execute(
            "UPDATE leads SET responded_at = $1 WHERE tenant_id = $2 AND id = $3 AND responded_at IS NULL",
            args![now(), ctx.tenant_id, id],
        )
        .await?;
        crate::scoring::rescore(&mut tx, ctx.tenant_id, id).await?;
    }
    tx.commit().await?;
    Ok(a)
}

/// A stored lead's facts for the rules (touches not counted: see [`crate::scoring`]).
pub(crate) fn facts_of(l: &Lead) -> serde_json::Value {
    serde_json::json!({
        "source": l.source, "source_detail": l.source_detail, "status": l.status,
        "company": l.company, "title": l.title, "industry": l.industry, "province": l.province,
        "city": l.city, "product_interest": l.product_interest, "tags": l.tags.0,
        "custom": l.custom.0, "score": l.score,
    })
}

/// The one-row select of a lead (`$1` tenant, `$2` id).
pub(crate) fn select_one() -> String {
    <Lead as Record>::select_one()
}

/// The leads waiting in a pool, by id, a page of up to 200 after `after` (the caller checked
/// the pool may be seen).
pub async fn in_pool(
    db: &Db,
    tenant: uuid::Uuid,
    pool: Uuid,
    after: Option<Uuid>,
) -> Result<Vec<Lead>> {
    db.fetch_all(
        &format!(
            "{SELECT} WHERE l.tenant_id = $1 AND l.pool_id = $2 AND l.owner_id IS NULL
               AND l.deleted_at IS NULL AND l.id > $3 ORDER BY l.id LIMIT 200"
        ),
        args![tenant, pool, after.unwrap_or(Uuid::nil())],
    )
    .await
}

/// Leads for the one search box (`kind` `lead`, the company as detail), ranked as accounts and
/// contacts are; none when the caller may not read leads or nothing was typed.
pub async fn search_hits(
    db: &Db,
    ctx: &Ctx,
    q: &str,
    limit: i64,
) -> Result<Vec<guanxi_records::search::SearchHit>> {
    use guanxi_records::search::{exact, ranked, window};
    let Some(scope) = ctx.can("leads", Action::Read) else {
        return Ok(vec![]);
    };
    let terms = normalize::search_terms(q);
    let Some(term) = terms.first() else {
        return Ok(vec![]);
    };
    const HIT: &str = "SELECT 'lead' AS kind, l.id, l.name, l.company AS detail, l.phone, l.email, l.search FROM leads l";
    let backend = db.backend();
    let arms = vec![
        window(backend, ctx, scope, HIT, (ENTITY, "l"), Some(q))?,
        exact(ctx, scope, HIT, (ENTITY, "l"), q.trim()),
    ];
    db.fetch_sql(ranked(backend, arms, term, limit)).await
}
