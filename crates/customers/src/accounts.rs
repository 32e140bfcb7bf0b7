//! Accounts: the companies (or households) a tenant does business with, in parent/child
//! hierarchies (group → subsidiary → branch; the telecom levels customer → account → user).
//! Owned by a user and that user's team; visibility follows the role's scope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Sql, Tx, Val};
use guanxi_platform::error::{Error, Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx};

use guanxi_records::custom_fields::{self, CustomFilter};
use guanxi_records::eras;
use guanxi_records::normalize;
use guanxi_records::record::{self, apply_phone, apply_text, plain, resolve_owner};
use guanxi_records::{Entity, EntityDef};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    /// The parent account (group company, head office).
    pub parent_id: Option<Uuid>,
    pub parent_name: Option<String>,
    /// 统一社会信用代码 (18 characters, check character verified).
    pub credit_code: Option<String>,
    pub industry: Option<String>,
    /// A–E: set by hand until the quarterly evaluation writes it; price books and service
    /// levels follow it.
    pub grade: Option<String>,
    pub website: Option<String>,
    pub email: Option<String>,
    /// As entered.
    pub phone: Option<String>,
    /// `phone` in E.164, e.g. `+861062345678`.
    pub phone_e164: Option<String>,
    pub wechat: Option<String>,
    /// ISO 3166 alpha-2; phones without a country code are read as this country's.
    pub country: String,
    /// 省 / 市 / 区 and street address.
    pub province: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub address: Option<String>,
    pub postal_code: Option<String>,
    /// Where the customer came from (referral, trade show, website, …).
    pub source: Option<String>,
    pub description: Option<String>,
    /// Absent while the account waits in a pool (公海).
    pub owner_id: Option<Uuid>,
    pub owner_name: Option<String>,
    /// The owner's team, for team-scoped visibility (the pool's team while it waits there).
    pub team_id: Option<Uuid>,
    /// The pool the account waits in, when it has no owner.
    pub pool_id: Option<Uuid>,
    /// Since when its owner holds it (created, claimed or assigned), for the pool's "no order
    /// within N days" rule.
    pub held_since: Option<DateTime<Utc>>,
    /// The last follow-up: an activity logged about the account or one of its contacts (absent
    /// before any, or before this was kept; the pool's rules then read `updated_at`).
    pub followed_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub custom: sqlx::types::Json<serde_json::Value>,
    /// Free labels, each once, in the order given.
    #[schema(value_type = Vec<String>)]
    pub tags: sqlx::types::Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the account is in the trash (restorable).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Set when this account was merged into another (it is then in the trash).
    pub merged_into: Option<Uuid>,
    pub version: i64,
    /// A search in index order: SQLite's rowid or PostgreSQL's search era (for the next
    /// page's cursor).
    #[serde(skip)]
    #[sqlx(default)]
    pub seq: Option<i64>,
    /// The name's sort key (pinyin, then the name), for the name order's cursor.
    #[serde(skip)]
    #[sqlx(default)]
    pub name_key: Option<String>,
}

/// Create or update an account. On update, absent fields stay as they are and `null` (or an
/// empty string) clears a field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    /// Required on update (or send `If-Match`); ignored on create.
    pub version: Option<i64>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub credit_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    /// `A`–`E`, or `null`.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub grade: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub website: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
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
    pub district: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub postal_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Default: the creator.
    pub owner_id: Option<Uuid>,
    /// Custom field values by key; `null` clears one. See `/api/v1/custom-fields`.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
    /// Replaces the record's tags.
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountFilter {
    /// Search box: any part of the name, its pinyin or initials, a phone in any format, email,
    /// WeChat id or credit code.
    pub q: Option<String>,
    pub owner_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Direct children of this account.
    pub parent_id: Option<Uuid>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub industry: Option<String>,
    /// `true` lists the trash instead.
    pub deleted: Option<bool>,
    /// `name` (the default), `created_at`, `updated_at` or `custom.<key>`; prefix `-` for
    /// descending. A search (`q`) without `sort` lists the newest matches first — the search
    /// index's own order, as fast for a term matching thousands as for one matching a few;
    /// with `sort`, every match is read and ordered by the field.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Records with this tag.
    pub tag: Option<String>,
    /// `custom.<key>=value` (and `custom.<key>.min` / `.max`) parameters, picked out of the
    /// query string by the web layer.
    #[serde(skip)]
    #[param(ignore)]
    pub custom: Vec<CustomFilter>,
}

impl custom_fields::CustomFilters for AccountFilter {
    fn set_custom(&mut self, filters: Vec<CustomFilter>) {
        self.custom = filters;
    }
}

const SELECT: &str =
    "SELECT a.id, a.name, a.parent_id, p.name AS parent_name, a.credit_code, a.industry,
    a.grade, a.website, a.email, a.phone, a.phone_e164, a.wechat, a.country, a.province, a.city, a.district,
    a.address, a.postal_code, a.source, a.description, a.owner_id, o.name AS owner_name, a.team_id,
    a.pool_id, a.held_since, a.followed_at, a.custom, a.tags, a.created_at, a.updated_at, a.deleted_at, a.merged_into, a.version,
    a.name_key
    FROM accounts a
    LEFT JOIN users o ON o.tenant_id = a.tenant_id AND o.id = a.owner_id
    LEFT JOIN accounts p ON p.tenant_id = a.tenant_id AND p.id = a.parent_id";

const SORTS: &[SortField] = &[
    // By the name's pinyin (`name_key`, migration 1013), so 张 sorts among the z's.
    ("name", "a.name_key", SortKind::Text),
    ("created_at", "a.created_at", SortKind::Time),
    ("updated_at", "a.updated_at", SortKind::Time),
];

pub async fn list(db: &Db, ctx: &Ctx, f: &AccountFilter) -> Result<Page<Account>> {
    let scope = ctx.require("accounts", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: f.sort.clone(),
    };
    let defs =
        custom_fields::for_list(db, ctx.tenant_id, ENTITY, &f.custom, f.sort.as_deref()).await?;
    let backend = db.backend();
    let mut list = record::ListQuery::start(
        backend,
        ctx,
        scope,
        SELECT,
        (ENTITY, "a"),
        f.q.as_deref(),
        f.sort.as_deref(),
        f.deleted == Some(true),
    );
    let q = &mut list.q;
    for (col, v) in [
        ("a.owner_id", f.owner_id),
        ("a.team_id", f.team_id),
        ("a.parent_id", f.parent_id),
    ] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    for (col, v) in [
        ("a.province", &f.province),
        ("a.city", &f.city),
        ("a.industry", &f.industry),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    custom_fields::filter_sql(backend, q, "a", &defs, &f.custom)?;
    if let Some(tag) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        record::tag_sql(backend, q, "a.tags", tag);
    }
    let (q, order, limit) = list.finish(&page, "a.id", || {
        page.sort_or(SORTS, |name| {
            custom_fields::sort_column(backend, "a", &defs, name)
        })
    })?;
    let rows: Vec<Account> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |a| {
        order.cursor(a.seq, a.id, |sort| match &*sort.field {
            "created_at" => guanxi_platform::db::sqlite_time(&a.created_at),
            "updated_at" => guanxi_platform::db::sqlite_time(&a.updated_at),
            "name" => a.name_key.clone().unwrap_or_default(),
            other => custom_fields::cursor_value(&a.custom, other, sort.kind),
        })
    }))
}

/// The declaration that gives accounts the shared record machinery.
pub const ENTITY: Entity = Entity::declare(&EntityDef {
    table: "accounts",
    path: "/customers/accounts",
    shared: false,
    title: "name",
});

guanxi_records::declare_record!(
    Account,
    entity: ENTITY,
    select: SELECT,
    alias: "a",
    input: AccountInput,
    update: update,
    unique_on_restore: "credit_code" => credit_code
);

/// One account, in the trash or not; outside the caller's scope it does not exist.
pub async fn get(conn: impl Into<Conn<'_>>, ctx: &Ctx, id: Uuid) -> Result<Account> {
    record::get(conn, ctx, id).await
}

/// Moves an account to the trash (`deleted = true`) or back. Its contacts stay linked.
pub async fn set_deleted(db: &Db, ctx: &Ctx, id: Uuid, deleted: bool) -> Result<Account> {
    record::set_deleted(db, ctx, id, deleted).await
}

/// The editable columns, validated together.
#[derive(Debug, Clone, Default)]
struct Fields {
    name: String,
    parent_id: Option<Uuid>,
    credit_code: Option<String>,
    industry: Option<String>,
    grade: Option<String>,
    website: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    phone_e164: Option<String>,
    phone_national: Option<String>,
    wechat: Option<String>,
    country: String,
    province: Option<String>,
    city: Option<String>,
    district: Option<String>,
    address: Option<String>,
    postal_code: Option<String>,
    source: Option<String>,
    description: Option<String>,
    owner_id: Option<Uuid>,
    team_id: Option<Uuid>,
    custom: serde_json::Map<String, serde_json::Value>,
    tags: Vec<String>,
}

impl Fields {
    fn of(a: &Account) -> Fields {
        Fields {
            name: a.name.clone(),
            parent_id: a.parent_id,
            credit_code: a.credit_code.clone(),
            industry: a.industry.clone(),
            grade: a.grade.clone(),
            website: a.website.clone(),
            email: a.email.clone(),
            phone: a.phone.clone(),
            phone_e164: a.phone_e164.clone(),
            phone_national: None,
            wechat: a.wechat.clone(),
            country: a.country.clone(),
            province: a.province.clone(),
            city: a.city.clone(),
            district: a.district.clone(),
            address: a.address.clone(),
            postal_code: a.postal_code.clone(),
            source: a.source.clone(),
            description: a.description.clone(),
            owner_id: a.owner_id,
            team_id: a.team_id,
            custom: a.custom.0.as_object().cloned().unwrap_or_default(),
            tags: a.tags.0.clone(),
        }
    }

    fn search(&self) -> String {
        record::search_of(
            &self.name,
            self.phone_national.as_deref(),
            self.phone_e164.as_deref(),
            &[
                self.email.as_deref(),
                self.wechat.as_deref(),
                self.credit_code.as_deref(),
            ],
        )
    }
}

/// Applies `input` onto `f` (validating every field it names) and resolves parent and owner.
/// `creating`: the lookups of the batch being created (`None`: an update).
async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    id: Uuid,
    input: &AccountInput,
    f: &mut Fields,
    defs: &[custom_fields::CustomField],
    mut creating: Option<&mut record::Lookups>,
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
        "credit_code",
        &input.credit_code,
        &mut f.credit_code,
        normalize::credit_code,
    );
    apply_text(
        &mut errs,
        "website",
        &input.website,
        &mut f.website,
        normalize::url,
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
        ("industry", &input.industry, &mut f.industry),
        ("province", &input.province, &mut f.province),
        ("city", &input.city, &mut f.city),
        ("district", &input.district, &mut f.district),
        ("address", &input.address, &mut f.address),
        ("postal_code", &input.postal_code, &mut f.postal_code),
        ("source", &input.source, &mut f.source),
    ] {
        apply_text(&mut errs, field, value, current, plain(200));
    }
    apply_text(
        &mut errs,
        "description",
        &input.description,
        &mut f.description,
        plain(10_000),
    );
    match &input.grade {
        Some(Some(g)) => match g.trim().to_uppercase().as_str() {
            "" => f.grade = None,
            g @ ("A" | "B" | "C" | "D" | "E") => f.grade = Some(g.to_owned()),
            _ => errs.add("grade", "invalid"),
        },
        Some(None) => f.grade = None,
        None => {}
    }
    f.phone_national = apply_phone(
        &mut errs,
        &input.phone,
        input.country.is_some(),
        &f.country,
        &mut f.phone,
        &mut f.phone_e164,
    );
    if let Some(parent) = input.parent_id {
        f.parent_id = parent;
        match (parent, creating.as_deref_mut()) {
            // A new account is nobody's ancestor: only the parent's existence is checked.
            (Some(p), Some(lk)) => {
                if !lk.live(tx, ctx.tenant_id, "accounts", p).await? {
                    errs.add("parent_id", "unknown");
                }
            }
            (Some(p), None) => check_parent(tx, ctx, &mut errs, id, p).await?,
            (None, _) => {}
        }
    }
    let is_new = creating.is_some();
    if let Some((owner, team)) = resolve_owner(
        tx,
        ctx,
        &mut errs,
        input.owner_id,
        f.owner_id,
        is_new,
        creating.unwrap_or(&mut record::Lookups::default()),
    )
    .await?
    {
        f.owner_id = Some(owner);
        f.team_id = team;
    }
    if let Some(code) = &f.credit_code {
        let taken: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM accounts WHERE tenant_id = $1 AND credit_code = $2 AND deleted_at IS NULL AND id <> $3",
                args![ctx.tenant_id, code.as_str(), id],
            )
            .await?;
        if taken > 0 {
            errs.add("credit_code", "taken");
        }
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
        is_new,
        &f.country,
    )
    .await?;
    errs.finish()
}

/// The parent must be a live account of the tenant, and not the account itself or one of its
/// descendants (no cycles).
async fn check_parent(
    tx: &mut Tx,
    ctx: &Ctx,
    errs: &mut Errors,
    id: Uuid,
    parent: Uuid,
) -> Result<()> {
    let exists: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM accounts WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            args![ctx.tenant_id, parent],
        )
        .await?;
    if exists == 0 {
        errs.add("parent_id", "unknown");
        return Ok(());
    }
    // Walk up from the proposed parent; meeting `id` on the way would close a loop.
    let loops: i64 = tx
        .scalar(
            "WITH RECURSIVE up (id, parent_id, depth) AS (
                 SELECT id, parent_id, 0 FROM accounts WHERE tenant_id = $1 AND id = $2
                 UNION ALL
                 SELECT a.id, a.parent_id, up.depth + 1 FROM accounts a
                 JOIN up ON a.tenant_id = $1 AND a.id = up.parent_id WHERE up.depth < 100)
             SELECT COUNT(*) FROM up WHERE id = $3",
            args![ctx.tenant_id, parent, id],
        )
        .await?;
    if loops > 0 {
        errs.add("parent_id", "cycle");
    }
    Ok(())
}

pub async fn create(db: &Db, ctx: &Ctx, input: AccountInput) -> Result<Account> {
    let mut tx = db.begin().await?;
    let a = create_in(&mut tx, ctx, input).await?;
    tx.commit().await?;
    Ok(a)
}

/// [`create`] inside the caller's transaction (an import creates the companies its rows
/// name). On an error the caller rolls back (a unique custom value is checked after the row
/// is written).
pub async fn create_in(tx: &mut Tx, ctx: &Ctx, input: AccountInput) -> Result<Account> {
    let defs = custom_fields::active(tx, ctx.tenant_id, ENTITY).await?;
    let new = prepare(tx, ctx, &input, &defs, &mut Default::default()).await?;
    let stored = create_many(tx, ctx, &defs, std::slice::from_ref(&new)).await?;
    stored.into_iter().next().ok_or(Error::NotFound)
}

/// An account validated exactly as [`create`] validates it, not yet written: the import's bulk
/// path collects these and writes them with [`create_many`].
pub struct NewAccount {
    id: Uuid,
    f: Fields,
}

impl NewAccount {
    pub fn id(&self) -> Uuid {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.f.name
    }
    pub fn credit_code(&self) -> Option<&str> {
        self.f.credit_code.as_deref()
    }
}

/// Validates a new account inside the caller's transaction (`defs`: the tenant's active
/// account fields; `lk`: lookups shared by the batch). Writes nothing; a credit code is checked
/// against the stored accounts, not against the rest of the batch ([`create_many`] refuses a
/// code taken twice).
pub async fn prepare(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &AccountInput,
    defs: &[custom_fields::CustomField],
    lk: &mut record::Lookups,
) -> Result<NewAccount> {
    ctx.require("accounts", Action::Create)?;
    let id = new_id();
    let mut f = Fields {
        country: "CN".into(),
        ..Fields::default()
    };
    apply(tx, ctx, id, input, &mut f, defs, Some(lk)).await?;
    record::check_create_scope(ctx, "accounts", f.owner_id, f.team_id)?;
    Ok(NewAccount { id, f })
}

/// Writes prepared accounts as [`create`] writes one — the row, its unique custom values and a
/// `create` audit event with the stored record — many rows to a statement. A credit code or a
/// unique custom value taken meanwhile fails the whole call (the caller rolls back). Returns
/// the stored accounts.
pub async fn create_many(
    tx: &mut Tx,
    ctx: &Ctx,
    defs: &[custom_fields::CustomField],
    rows: &[NewAccount],
) -> Result<Vec<Account>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let t = now();
    let era = eras::newest(tx, ctx.tenant_id, "accounts").await?;
    // 34 values a row: small statements (sqlx's SQLite driver binds by name, quadratically).
    for chunk in rows.chunks(40) {
        let mut q = Sql::new(
            "INSERT INTO accounts (tenant_id, id, name, parent_id, credit_code, industry, website, email,
                 phone, phone_e164, wechat, country, province, city, district, address, postal_code,
                 source, description, owner_id, team_id, search, created_at, updated_at, created_by,
                 updated_by, custom, tags, grams, era, held_since, followed_at, grade, version) VALUES ",
        );
        for (i, r) in chunk.iter().enumerate() {
            let f = &r.f;
            let search = f.search();
            let grams = normalize::grams(&search);
            let values: [Val; 34] = [
                ctx.tenant_id.into(),
                r.id.into(),
                f.name.as_str().into(),
                f.parent_id.into(),
                f.credit_code.clone().into(),
                f.industry.clone().into(),
                f.website.clone().into(),
                f.email.clone().into(),
                f.phone.clone().into(),
                f.phone_e164.clone().into(),
                f.wechat.clone().into(),
                f.country.as_str().into(),
                f.province.clone().into(),
                f.city.clone().into(),
                f.district.clone().into(),
                f.address.clone().into(),
                f.postal_code.clone().into(),
                f.source.clone().into(),
                f.description.clone().into(),
                f.owner_id.into(),
                f.team_id.into(),
                search.into(),
                t.into(),
                t.into(),
                ctx.user_id.into(),
                ctx.user_id.into(),
                serde_json::Value::Object(f.custom.clone()).into(),
                serde_json::json!(f.tags).into(),
                grams.into(),
                era.into(),
                t.into(),
                t.into(),
                f.grade.clone().into(),
                Val::I64(Some(1)),
            ];
            q.push(if i == 0 { "" } else { ", " }).bind_list(values);
        }
        tx.execute(&q.sql, q.args).await?;
    }
    match rows {
        [one] => eras::count_one(tx, ctx.tenant_id, "accounts", era, one.id).await?,
        _ => eras::count(tx, ctx.tenant_id, "accounts", era, rows.len() as i64).await?,
    }
    if defs.iter().any(|d| d.unique) {
        for r in rows {
            custom_fields::hold_unique(tx, ctx.tenant_id, ENTITY, r.id, defs, &r.f.custom).await?;
        }
    }
    // The audit events carry the stored records.
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let stored = record::load_many::<Account>(tx, ctx.tenant_id, &ids).await?;
    let events: Vec<(Uuid, Option<&Account>, Option<&Account>)> =
        stored.iter().map(|a| (a.id, None, Some(a))).collect();
    audit::record_many(tx, ctx, "create", "accounts", &events).await?;
    Ok(stored)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: AccountInput,
) -> Result<Account> {
    ctx.require("accounts", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let after = update_in(&mut tx, ctx, id, expected, input).await?;
    tx.commit().await?;
    Ok(after)
}

/// `update` inside the caller's transaction (a merge changes the survivor and moves the
/// records' history in one transaction).
pub(crate) async fn update_in(
    tx: &mut Tx,
    ctx: &Ctx,
    id: Uuid,
    expected: i64,
    input: AccountInput,
) -> Result<Account> {
    let before: Account = record::load_for(tx, ctx, id, Action::Update).await?;
    if before.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the account is in the trash; restore it first".into(),
        ));
    }
    version::check(expected, before.version)?;
    let mut f = Fields::of(&before);
    let defs = custom_fields::active(tx, ctx.tenant_id, ENTITY).await?;
    apply(tx, ctx, id, &input, &mut f, &defs, None).await?;
    version::update(
        &mut *tx,
        version::Row {
            table: "accounts",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, parent_id = $2, credit_code = $3, industry = $4, website = $5,
             email = $6, phone = $7, phone_e164 = $8, wechat = $9, country = $10, province = $11,
             city = $12, district = $13, address = $14, postal_code = $15, source = $16,
             description = $17, owner_id = $18, team_id = $19, search = $20, updated_at = $21,
             updated_by = $22, custom = $23, tags = $24, grams = $25, held_since = $26, grade = $27",
        args![
            f.name.as_str(),
            f.parent_id,
            f.credit_code.clone(),
            f.industry.clone(),
            f.website.clone(),
            f.email.clone(),
            f.phone.clone(),
            f.phone_e164.clone(),
            f.wechat.clone(),
            f.country.as_str(),
            f.province.clone(),
            f.city.clone(),
            f.district.clone(),
            f.address.clone(),
            f.postal_code.clone(),
            f.source.clone(),
            f.description.clone(),
            f.owner_id,
            f.team_id,
            f.search(),
            now(),
            ctx.user_id,
            serde_json::Value::Object(f.custom.clone()),
            serde_json::json!(f.tags),
            guanxi_records::normalize::grams(&f.search()),
            // A new holder's clock starts now.
            if f.owner_id != before.owner_id {
                Some(now())
            } else {
                before.held_since
            },
            f.grade.clone()
        ],
    )
    .await?;
    if input.custom.is_some() {
        custom_fields::hold_unique(tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    }
    let after: Account = record::load(tx, ctx.tenant_id, id).await?;
    audit::record(
        tx,
        ctx,
        "update",
        "accounts",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    if let (Some(from), Some(to)) = (before.owner_id, after.owner_id) {
        record::audit_transfer(
            tx,
            ctx,
            ENTITY,
            id,
            (from, before.owner_name.as_deref().unwrap_or_default()),
            (to, after.owner_name.as_deref().unwrap_or_default()),
            Some(&after.name),
        )
        .await?;
    }
    Ok(after)
}

/// Validates a new account exactly as `create` would, without saving anything (import dry
/// runs).
pub async fn check(db: &Db, ctx: &Ctx, input: &AccountInput) -> Result<()> {
    ctx.require("accounts", Action::Create)?;
    let mut f = Fields {
        country: "CN".into(),
        ..Fields::default()
    };
    let mut tx = db.begin().await?;
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, ENTITY).await?;
    let result = apply(
        &mut tx,
        ctx,
        new_id(),
        input,
        &mut f,
        &defs,
        Some(&mut Default::default()),
    )
    .await;
    // Dropping the transaction rolls it back: nothing of the check is kept.
    drop(tx);
    result?;
    record::check_create_scope(ctx, "accounts", f.owner_id, f.team_id)
}

/// The accounts waiting in a pool, by id, a page of up to 200 after `after` (the caller checked
/// the pool may be seen).
pub async fn in_pool(
    db: &Db,
    tenant: Uuid,
    pool: Uuid,
    after: Option<Uuid>,
) -> Result<Vec<Account>> {
    db.fetch_all(
        &format!(
            "{SELECT} WHERE a.tenant_id = $1 AND a.pool_id = $2 AND a.owner_id IS NULL
               AND a.deleted_at IS NULL AND a.id > $3 ORDER BY a.id LIMIT 200"
        ),
        args![tenant, pool, after.unwrap_or(Uuid::nil())],
    )
    .await
}
