//! Custom fields without programming: an admin defines extra fields per entity (accounts,
//! contacts; later deals and tickets) and they take part everywhere a built-in field does —
//! forms, detail pages, list columns, filters, sorting, import/export and the API's `custom`
//! object — with one validation ([`apply`]) used by all of them.
//!
//! Values live in the record's `custom` JSON column under the field's key. A unique field's
//! values are also held in `custom_unique`, whose primary key enforces uniqueness on both
//! databases even under concurrent saves. A field is never deleted (that would lose data): it is
//! archived — hidden from forms and lists, refused on write, its stored values kept.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Backend, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::SortKind;
use guanxi_platform::perms::Action;
use guanxi_platform::settings::Setting;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};

use crate::normalize;
use crate::Entity;

/// What a field holds, and so how it is entered, validated, stored, filtered and sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One line, up to 500 characters.
    Text,
    /// Up to 10,000 characters.
    LongText,
    /// A decimal number.
    Number,
    /// Minor units (fen), an integer.
    Money,
    /// `YYYY-MM-DD`.
    Date,
    /// An instant, stored as RFC 3339 UTC (`2026-11-30T08:00:00Z`).
    Datetime,
    Boolean,
    /// One of `options`.
    Select,
    /// Any of `options`, stored as an array.
    MultiSelect,
    /// A user of the tenant, by id.
    User,
    Url,
    Email,
    /// Stored in E.164, read as a number of the record's country.
    Phone,
}

pub const KINDS: [FieldKind; 13] = [
    FieldKind::Text,
    FieldKind::LongText,
    FieldKind::Number,
    FieldKind::Money,
    FieldKind::Date,
    FieldKind::Datetime,
    FieldKind::Boolean,
    FieldKind::Select,
    FieldKind::MultiSelect,
    FieldKind::User,
    FieldKind::Url,
    FieldKind::Email,
    FieldKind::Phone,
];

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::LongText => "long_text",
            FieldKind::Number => "number",
            FieldKind::Money => "money",
            FieldKind::Date => "date",
            FieldKind::Datetime => "datetime",
            FieldKind::Boolean => "boolean",
            FieldKind::Select => "select",
            FieldKind::MultiSelect => "multi_select",
            FieldKind::User => "user",
            FieldKind::Url => "url",
            FieldKind::Email => "email",
            FieldKind::Phone => "phone",
        }
    }

    fn parse(s: &str) -> Option<FieldKind> {
        KINDS.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds whose values can be required to be unique.
    fn can_be_unique(self) -> bool {
        matches!(
            self,
            FieldKind::Text
                | FieldKind::Number
                | FieldKind::Url
                | FieldKind::Email
                | FieldKind::Phone
        )
    }

    /// How a list sorts by the field, if it can.
    fn sort_kind(self) -> Option<SortKind> {
        match self {
            FieldKind::Number => Some(SortKind::Float),
            FieldKind::Money => Some(SortKind::Int),
            FieldKind::LongText | FieldKind::MultiSelect | FieldKind::Boolean | FieldKind::User => {
                None
            }
            _ => Some(SortKind::Text),
        }
    }
}

/// The profile groups a field can be shown in (the seed's groups, plus `custom`).
pub const SECTIONS: &[&str] = &[
    "basic",
    "contact",
    "address",
    "personal",
    "management",
    "sales",
    "image",
    "evaluation",
    "custom",
];

/// At most this many fields per entity (forms and lists stay usable).
pub const MAX_FIELDS: i64 = 200;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomField {
    pub id: Uuid,
    /// The entity's table: `accounts`, `contacts`, `leads`, …
    pub entity: String,
    /// The key in the record's `custom` object: lower-case letters, digits and `_`.
    pub key: String,
    /// Shown when no translation for the reader's language is given.
    pub label: String,
    /// Labels by language (`en`, `zh-CN`, `zh-TW`).
    pub labels: BTreeMap<String, String>,
    pub kind: FieldKind,
    /// The choices of a `select` or `multi_select` field.
    pub options: Vec<String>,
    pub required: bool,
    pub unique: bool,
    /// Given to new records that leave the field out.
    pub default: Option<Value>,
    /// The profile group the field appears in.
    pub section: String,
    /// Order within the section.
    pub position: i64,
    /// Archived fields are hidden and read-only; their values are kept.
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl CustomField {
    /// The label in `locale`, else the default one.
    pub fn label_in(&self, locale: &str) -> &str {
        self.labels
            .get(locale)
            .or_else(|| {
                locale
                    .starts_with("zh")
                    .then(|| self.labels.get("zh-CN"))
                    .flatten()
            })
            .unwrap_or(&self.label)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    entity: String,
    key: String,
    label: String,
    labels: sqlx::types::Json<BTreeMap<String, String>>,
    kind: String,
    options: sqlx::types::Json<Vec<String>>,
    required: bool,
    is_unique: bool,
    default_value: Option<sqlx::types::Json<Value>>,
    section: String,
    position: i64,
    archived_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl Row {
    fn into_field(self) -> Result<CustomField> {
        let bad = |what: &str| Error::Internal(anyhow::anyhow!("custom field {what} unknown"));
        Ok(CustomField {
            id: self.id,
            entity: self.entity,
            key: self.key,
            label: self.label,
            labels: self.labels.0,
            kind: FieldKind::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            options: self.options.0,
            required: self.required,
            unique: self.is_unique,
            default: self.default_value.map(|j| j.0),
            section: self.section,
            position: self.position,
            archived_at: self.archived_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

const SELECT: &str = "SELECT id, entity, key, label, labels, kind, options, required, is_unique,
    default_value, section, position, archived_at, created_at, updated_at, version
    FROM custom_fields";

/// Create or change a field. `entity`, `key` and `kind` are set on create and never change
/// (stored values would no longer fit); everything else may change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    /// `accounts`, `contacts`, `leads`, … (set on create).
    pub entity: Option<String>,
    pub key: Option<String>,
    pub kind: Option<FieldKind>,
    pub label: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
    pub unique: Option<bool>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Object>)]
    pub default: Option<Option<Value>>,
    pub section: Option<String>,
    pub position: Option<i64>,
    /// `true` archives the field, `false` brings it back.
    pub archived: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomFieldFilter {
    /// `accounts`, `contacts`, `leads`, …; default all.
    pub entity: Option<String>,
    /// `true` includes archived fields.
    pub archived: Option<bool>,
}

/// Every field of the tenant (ordered by entity, section, position), for anyone who may read
/// the definitions.
pub async fn list(db: &Db, ctx: &Ctx, f: &CustomFieldFilter) -> Result<Vec<CustomField>> {
    ctx.require("custom_fields", Action::Read)?;
    let mut q = Sql::new(SELECT);
    q.push(" WHERE tenant_id = ").bind(ctx.tenant_id);
    if let Some(e) = &f.entity {
        q.push(" AND entity = ").bind(e.as_str());
    }
    if f.archived != Some(true) {
        q.push(" AND archived_at IS NULL");
    }
    q.push(" ORDER BY entity, position, created_at, id");
    let rows: Vec<Row> = db.fetch_sql(q).await?;
    rows.into_iter().map(Row::into_field).collect()
}

/// The live (not archived) fields of an entity, in display order; no permission check (every
/// reader of a record sees its fields).
pub async fn active(tx: &mut Tx, tenant_id: Uuid, entity: Entity) -> Result<Vec<CustomField>> {
    live(tx, tenant_id, entity.table()).await
}

/// [`active`] by the entity's table name (a module naming another's entity, which it cannot
/// import: a form that opens tickets).
pub async fn live<'a>(
    conn: impl Into<guanxi_platform::db::Conn<'a>>,
    tenant_id: Uuid,
    table: &str,
) -> Result<Vec<CustomField>> {
    let mut conn = conn.into();
    let cache = conn.settings();
    let read = async {
        let rows: Vec<Row> = conn
            .fetch_all(
                &format!(
                    "{SELECT} WHERE tenant_id = $1 AND entity = $2 AND archived_at IS NULL
                     ORDER BY position, created_at, id"
                ),
                args![tenant_id, table],
            )
            .await?;
        rows.into_iter().map(Row::into_field).collect()
    };
    cache.cached(&LIVE, tenant_id, table, read).await
}

/// An entity's live fields, read by every write of its records: cached in the process.
const LIVE: Setting = Setting {
    name: "custom_fields.live",
    tables: &["custom_fields"],
};

/// The fields a list needs: the entity's live ones when it filters or sorts by a custom field,
/// else none (no query).
pub async fn for_list(
    db: &Db,
    tenant_id: Uuid,
    entity: Entity,
    filters: &[CustomFilter],
    sort: Option<&str>,
) -> Result<Vec<CustomField>> {
    if filters.is_empty() && !sort.is_some_and(|s| s.contains("custom.")) {
        return Ok(vec![]);
    }
    active_in(db, tenant_id, entity).await
}

/// [`active`] outside a transaction.
pub async fn active_in(db: &Db, tenant_id: Uuid, entity: Entity) -> Result<Vec<CustomField>> {
    live(db, tenant_id, entity.table()).await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<CustomField> {
    ctx.require("custom_fields", Action::Read)?;
    let row: Row = db
        .fetch_one(
            &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    row.into_field()
}

fn valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some('a'..='z'))
        && k.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Applies the changeable attributes of `input` to `f`, checking them together.
fn apply_definition(errs: &mut Errors, input: &CustomFieldInput, f: &mut CustomField) {
    if let Some(l) = &input.label {
        match validate::name(l) {
            Ok(l) => f.label = l,
            Err(c) => errs.add("label", c),
        }
    } else if f.label.is_empty() {
        errs.add("label", "required");
    }
    if let Some(labels) = &input.labels {
        let mut clean = BTreeMap::new();
        for (loc, l) in labels {
            let Ok(loc) = validate::locale(loc) else {
                errs.add(&format!("labels.{loc}"), "unknown_locale");
                continue;
            };
            if l.trim().is_empty() {
                continue;
            }
            match validate::name(l) {
                Ok(l) => {
                    clean.insert(loc, l);
                }
                Err(c) => errs.add(&format!("labels.{loc}"), c),
            }
        }
        f.labels = clean;
    }
    if let Some(options) = &input.options {
        let mut seen = HashSet::new();
        let mut clean = Vec::new();
        for (i, o) in options.iter().enumerate() {
            match normalize::text(o, 100) {
                Ok(Some(o)) if seen.insert(o.clone()) => clean.push(o),
                Ok(Some(_)) => errs.add(&format!("options.{i}"), "duplicate"),
                Ok(None) => errs.add(&format!("options.{i}"), "required"),
                Err(c) => errs.add(&format!("options.{i}"), c),
            }
        }
        if clean.len() > 200 {
            errs.add("options", "too_many");
        }
        f.options = clean;
    }
    let chooses = matches!(f.kind, FieldKind::Select | FieldKind::MultiSelect);
    if chooses && f.options.is_empty() {
        errs.add("options", "required");
    }
    if !chooses && !f.options.is_empty() {
        errs.add("options", "not_applicable");
    }
    if let Some(r) = input.required {
        f.required = r;
    }
    if let Some(u) = input.unique {
        f.unique = u;
    }
    if f.unique && !f.kind.can_be_unique() {
        errs.add("unique", "not_applicable");
    }
    if let Some(s) = &input.section {
        if SECTIONS.contains(&s.as_str()) {
            f.section = s.clone();
        } else {
            errs.add("section", "unknown");
        }
    }
    if let Some(p) = input.position {
        f.position = p;
    }
    match &input.default {
        None => {}
        Some(None) => f.default = None,
        Some(Some(v)) if v.is_null() => f.default = None,
        Some(Some(v)) => match check_static(f, v, "CN") {
            Ok(v) => f.default = Some(v),
            Err(code) => errs.add("default", code),
        },
    }
    if f.default.is_some() && (f.unique || f.kind == FieldKind::User) {
        errs.add("default", "not_applicable");
    }
}

/// Defines a field on one of the `known` entities (the application's declared ones).
pub async fn create(
    db: &Db,
    ctx: &Ctx,
    known: &[Entity],
    input: CustomFieldInput,
) -> Result<CustomField> {
    ctx.require("custom_fields", Action::Create)?;
    let mut errs = Errors::default();
    let entity = input.entity.as_deref().map(str::trim).unwrap_or_default();
    if entity.is_empty() {
        errs.add("entity", "required");
    } else if Entity::parse(known, entity).is_none() {
        errs.add("entity", "unknown");
    }
    let key = input.key.as_deref().map(str::trim).unwrap_or_default();
    if key.is_empty() {
        errs.add("key", "required");
    } else if !valid_key(key) {
        errs.add("key", "invalid_key");
    }
    let Some(kind) = input.kind else {
        errs.add("kind", "required");
        return Err(Error::Validation(errs.0));
    };
    let t = now();
    let mut f = CustomField {
        id: new_id(),
        entity: entity.to_owned(),
        key: key.to_owned(),
        label: String::new(),
        labels: BTreeMap::new(),
        kind,
        options: vec![],
        required: false,
        unique: false,
        default: None,
        section: "custom".into(),
        position: 0,
        archived_at: None,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    apply_definition(&mut errs, &input, &mut f);
    if input.archived == Some(true) {
        errs.add("archived", "not_applicable");
    }
    errs.finish()?;
    let mut tx = db.begin().await?;
    let (taken, count): (i64, i64) = tx
        .fetch_one(
            "SELECT COALESCE(SUM(CASE WHEN key = $3 THEN 1 ELSE 0 END), 0),
                    COUNT(*)
             FROM custom_fields WHERE tenant_id = $1 AND entity = $2",
            args![ctx.tenant_id, f.entity.as_str(), f.key.as_str()],
        )
        .await?;
    if taken > 0 {
        return Err(Error::field("key", "taken"));
    }
    if count >= MAX_FIELDS {
        return Err(Error::field("entity", "too_many_fields"));
    }
    if input.position.is_none() {
        f.position = count + 1;
    }
    tx.execute(
        "INSERT INTO custom_fields (tenant_id, id, entity, key, label, labels, kind, options,
             required, is_unique, default_value, section, position, archived_at, created_at,
             updated_at, created_by, updated_by, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, $14, $15, $16, $17, 1)",
        args![
            ctx.tenant_id,
            f.id,
            f.entity.as_str(),
            f.key.as_str(),
            f.label.as_str(),
            serde_json::to_value(&f.labels).unwrap_or_default(),
            f.kind.as_str(),
            serde_json::to_value(&f.options).unwrap_or_default(),
            f.required,
            f.unique,
            f.default.clone(),
            f.section.as_str(),
            f.position,
            t,
            t,
            ctx.user_id,
            ctx.user_id
        ],
    )
    .await?;
    if f.unique {
        backfill_unique(&mut tx, ctx.tenant_id, &f).await?;
    }
    audit::record(
        &mut tx,
        ctx,
        "create",
        "custom_fields",
        Some(f.id),
        None,
        Some(&f),
    )
    .await?;
    tx.commit().await?;
    Ok(f)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: CustomFieldInput,
) -> Result<CustomField> {
    ctx.require("custom_fields", Action::Update)?;
    let mut tx = db.begin().await?;
    let row: Row = tx
        .fetch_one(
            &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    let before = row.into_field()?;
    let expected = version::expected(if_match, input.version)?;
    version::check(expected, before.version)?;
    let mut errs = Errors::default();
    if input
        .entity
        .as_deref()
        .is_some_and(|e| e.trim() != before.entity)
    {
        errs.add("entity", "immutable");
    }
    if input.key.as_deref().is_some_and(|k| k.trim() != before.key) {
        errs.add("key", "immutable");
    }
    if input.kind.is_some_and(|k| k != before.kind) {
        errs.add("kind", "immutable");
    }
    let mut f = before.clone();
    apply_definition(&mut errs, &input, &mut f);
    errs.finish()?;
    let t = now();
    f.archived_at = match input.archived {
        Some(true) => before.archived_at.or(Some(t)),
        Some(false) => None,
        None => before.archived_at,
    };
    f.updated_at = t;
    f.version = version::update(
        &mut tx,
        version::Row {
            table: "custom_fields",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "label = $1, labels = $2, options = $3, required = $4,
             is_unique = $5, default_value = $6, section = $7, position = $8, archived_at = $9,
             updated_at = $10, updated_by = $11",
        args![
            f.label.as_str(),
            serde_json::to_value(&f.labels).unwrap_or_default(),
            serde_json::to_value(&f.options).unwrap_or_default(),
            f.required,
            f.unique,
            f.default.clone(),
            f.section.as_str(),
            f.position,
            f.archived_at,
            t,
            ctx.user_id
        ],
    )
    .await?;
    let enforced_before = before.unique && before.archived_at.is_none();
    let enforced_after = f.unique && f.archived_at.is_none();
    if enforced_before && !enforced_after {
        tx.execute(
            "DELETE FROM custom_unique WHERE tenant_id = $1 AND entity = $2 AND field_key = $3",
            args![ctx.tenant_id, f.entity.as_str(), f.key.as_str()],
        )
        .await?;
    } else if enforced_after && !enforced_before {
        backfill_unique(&mut tx, ctx.tenant_id, &f).await?;
    }
    audit::record(
        &mut tx,
        ctx,
        "update",
        "custom_fields",
        Some(id),
        Some(&before),
        Some(&f),
    )
    .await?;
    tx.commit().await?;
    Ok(f)
}

/// Starts enforcing uniqueness of a field that may already hold values: refused (nothing
/// changes) when two live records share a value.
async fn backfill_unique(tx: &mut Tx, tenant_id: Uuid, f: &CustomField) -> Result<()> {
    let expr = text_expr(tx.backend(), "r", &f.key);
    let rows: Vec<(Uuid, String)> = tx
        .fetch_all(
            &format!(
                "SELECT r.id, CAST({expr} AS TEXT) FROM {} r
                 WHERE r.tenant_id = $1 AND r.deleted_at IS NULL AND {expr} IS NOT NULL",
                f.entity.as_str()
            ),
            args![tenant_id],
        )
        .await?;
    let mut seen = HashSet::new();
    for (_, v) in &rows {
        if !seen.insert(v.as_str()) {
            return Err(Error::field("unique", "values_not_unique"));
        }
    }
    for (id, v) in rows {
        tx.execute(
            "INSERT INTO custom_unique (tenant_id, entity, field_key, value, record_id)
             VALUES ($1, $2, $3, $4, $5)",
            args![tenant_id, f.entity.as_str(), f.key.as_str(), v, id],
        )
        .await?;
    }
    Ok(())
}

/// Custom values from text (a form post, an import row): `value` gives the text of
/// `custom.<key>`; money is read in yuan (stored in fen), everything else as text for
/// [`apply`] to check. `None` when no custom field has a value.
pub fn from_text(
    defs: &[CustomField],
    value: &dyn Fn(&str) -> Option<String>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    for d in defs {
        let Some(v) = value(&format!("custom.{}", d.key)) else {
            continue;
        };
        let v = match d.kind {
            FieldKind::Money => normalize::money(&v)
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::String(v)),
            _ => serde_json::Value::String(v),
        };
        m.insert(d.key.clone(), v);
    }
    (!m.is_empty()).then_some(m)
}

// ---- values --------------------------------------------------------------------------------

/// Applies a PATCH-style `custom` input to a record's stored values: a present key sets (or,
/// with `null`/blank, clears) its value; absent keys stay. On create, absent fields take their
/// default and required fields must end up with a value. Errors name `custom.<key>`.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    tx: &mut Tx,
    tenant_id: Uuid,
    errs: &mut Errors,
    defs: &[CustomField],
    input: Option<&Map<String, Value>>,
    current: &mut Map<String, Value>,
    creating: bool,
    country: &str,
) -> Result<()> {
    let empty = Map::new();
    let input = input.unwrap_or(&empty);
    for (key, v) in input {
        let name = format!("custom.{key}");
        let Some(def) = defs.iter().find(|d| &d.key == key) else {
            errs.add(&name, "unknown_field");
            continue;
        };
        match check_value(tx, tenant_id, def, v, country).await? {
            Ok(None) if def.required => errs.add(&name, "required"),
            Ok(None) => {
                current.remove(key);
            }
            Ok(Some(v)) => {
                current.insert(key.clone(), v);
            }
            Err(code) => errs.add(&name, code),
        }
    }
    if creating {
        for def in defs {
            if input.contains_key(&def.key) {
                continue;
            }
            match &def.default {
                Some(d) => {
                    current.insert(def.key.clone(), d.clone());
                }
                None if def.required => errs.add(&format!("custom.{}", def.key), "required"),
                None => {}
            }
        }
    }
    Ok(())
}

/// Checks one value against its field: `Ok(None)` is "no value".
async fn check_value(
    tx: &mut Tx,
    tenant_id: Uuid,
    def: &CustomField,
    v: &Value,
    country: &str,
) -> Result<std::result::Result<Option<Value>, &'static str>> {
    if is_blank(v) {
        return Ok(Ok(None));
    }
    if def.kind != FieldKind::User {
        return Ok(check_static(def, v, country).map(Some));
    }
    // A user id, or (from imports and exports) the user's email or exact name.
    let Some(raw) = v.as_str().map(str::trim) else {
        return Ok(Err("invalid_user"));
    };
    let found: Option<(Uuid,)> = match Uuid::parse_str(raw) {
        Ok(id) => {
            tx.fetch_optional(
                "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                args![tenant_id, id],
            )
            .await?
        }
        Err(_) => {
            tx.fetch_optional(
                "SELECT id FROM users WHERE tenant_id = $1 AND deleted_at IS NULL
                     AND (email = $2 OR name = $3) ORDER BY created_at LIMIT 1",
                args![tenant_id, raw.to_lowercase(), raw],
            )
            .await?
        }
    };
    Ok(match found {
        Some((id,)) => Ok(Some(Value::String(id.to_string()))),
        None => Err("unknown"),
    })
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The stored form of `v` for field `def`, or the error code. Strings are accepted for every
/// kind (forms and imports send text); `User` is checked against the database by the caller.
pub fn check_static(
    def: &CustomField,
    v: &Value,
    country: &str,
) -> std::result::Result<Value, &'static str> {
    let text = || match v {
        Value::String(s) => Ok(s.trim().to_owned()),
        _ => Err("invalid_type"),
    };
    match def.kind {
        FieldKind::Text => {
            normalize::text(&text()?, 500).map(|t| Value::String(t.unwrap_or_default()))
        }
        FieldKind::LongText => {
            normalize::text(&text()?, 10_000).map(|t| Value::String(t.unwrap_or_default()))
        }
        FieldKind::Number => {
            let n = match v {
                Value::Number(n) => n.as_f64().ok_or("invalid_number")?,
                Value::String(s) => s
                    .trim()
                    .replace([',', '，'], "")
                    .parse::<f64>()
                    .map_err(|_| "invalid_number")?,
                _ => return Err("invalid_number"),
            };
            number_value(n).ok_or("invalid_number")
        }
        FieldKind::Money => match v {
            Value::Number(n) => n.as_i64().map(Value::from).ok_or("invalid_money"),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| "invalid_money"),
            _ => Err("invalid_money"),
        },
        FieldKind::Date => NaiveDate::parse_from_str(&text()?, "%Y-%m-%d")
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| "invalid_date"),
        FieldKind::Datetime => DateTime::parse_from_rfc3339(&text()?)
            .map(|d| {
                Value::String(
                    d.with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::Secs, true),
                )
            })
            .map_err(|_| "invalid_datetime"),
        FieldKind::Boolean => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) => match s.trim().to_lowercase().as_str() {
                "true" | "1" | "yes" | "y" | "t" | "on" | "是" | "真" => Ok(Value::Bool(true)),
                "false" | "0" | "no" | "n" | "f" | "off" | "否" | "假" => Ok(Value::Bool(false)),
                _ => Err("invalid_boolean"),
            },
            _ => Err("invalid_boolean"),
        },
        FieldKind::Select => {
            let s = text()?;
            if def.options.contains(&s) {
                Ok(Value::String(s))
            } else {
                Err("unknown_option")
            }
        }
        FieldKind::MultiSelect => {
            let items: Vec<String> = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(|s| s.trim().to_owned())
                            .ok_or("invalid_type")
                    })
                    .collect::<std::result::Result<_, _>>()?,
                Value::String(s) => s
                    .split([',', '，', '、', ';', '；'])
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect(),
                _ => return Err("invalid_type"),
            };
            // Kept in the field's option order, each once.
            if items.iter().any(|i| !def.options.contains(i)) {
                return Err("unknown_option");
            }
            Ok(Value::Array(
                def.options
                    .iter()
                    .filter(|o| items.contains(o))
                    .map(|o| Value::String(o.clone()))
                    .collect(),
            ))
        }
        FieldKind::User => Err("invalid_user"),
        FieldKind::Url => normalize::url(&text()?).map(Value::String),
        FieldKind::Email => validate::email(&text()?).map(Value::String),
        FieldKind::Phone => normalize::phone(&text()?, country).map(|p| Value::String(p.e164)),
    }
}

/// A finite number as JSON: an integer when it is one (so `12` stays `12`, not `12.0`).
fn number_value(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Some(Value::from(n as i64));
    }
    serde_json::Number::from_f64(n).map(Value::Number)
}

/// The text a unique field's value is held under (what `CAST(json AS TEXT)` gives).
fn unique_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Holds the record's unique values in `custom_unique` (after its row is written): a value
/// another live record holds is refused as `custom.<key>: taken`.
pub async fn hold_unique(
    tx: &mut Tx,
    tenant_id: Uuid,
    entity: Entity,
    record_id: Uuid,
    defs: &[CustomField],
    custom: &Map<String, Value>,
) -> Result<()> {
    let unique: Vec<&CustomField> = defs.iter().filter(|d| d.unique).collect();
    if unique.is_empty() {
        return Ok(());
    }
    release_unique(tx, tenant_id, entity, record_id).await?;
    let mut errs = Errors::default();
    for def in unique {
        let Some(v) = custom.get(&def.key).and_then(unique_text) else {
            continue;
        };
        let holder: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT record_id FROM custom_unique
                 WHERE tenant_id = $1 AND entity = $2 AND field_key = $3 AND value = $4",
                args![tenant_id, entity.table(), def.key.as_str(), v.as_str()],
            )
            .await?;
        if holder.is_some() {
            errs.add(&format!("custom.{}", def.key), "taken");
            continue;
        }
        tx.execute(
            "INSERT INTO custom_unique (tenant_id, entity, field_key, value, record_id)
             VALUES ($1, $2, $3, $4, $5)",
            args![tenant_id, entity.table(), def.key.as_str(), v, record_id],
        )
        .await?;
    }
    errs.finish()
}

/// Lets go of a record's unique values (it went to the trash).
pub async fn release_unique(
    tx: &mut Tx,
    tenant_id: Uuid,
    entity: Entity,
    record_id: Uuid,
) -> Result<()> {
    tx.execute(
        "DELETE FROM custom_unique WHERE tenant_id = $1 AND entity = $2 AND record_id = $3",
        args![tenant_id, entity.table(), record_id],
    )
    .await?;
    Ok(())
}

// ---- lists: filters, sorting, display --------------------------------------------------------

/// A field's value as SQL text (NULL when absent). Keys are validated identifiers, so they are
/// safe inside the SQL text.
fn text_expr(backend: Backend, alias: &str, key: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_extract({alias}.custom, '$.{key}')"),
        Backend::Postgres => format!("({alias}.custom->>'{key}')"),
    }
}

fn float_expr(backend: Backend, alias: &str, key: &str) -> String {
    match backend {
        Backend::Sqlite => format!("CAST(json_extract({alias}.custom, '$.{key}') AS REAL)"),
        Backend::Postgres => format!("({alias}.custom->>'{key}')::double precision"),
    }
}

fn int_expr(backend: Backend, alias: &str, key: &str) -> String {
    match backend {
        Backend::Sqlite => format!("CAST(json_extract({alias}.custom, '$.{key}') AS INTEGER)"),
        Backend::Postgres => format!("({alias}.custom->>'{key}')::bigint"),
    }
}

/// The SQL value of a field for reports (grouping, filtering, summing): numbers and money as
/// numbers (`true`), one-line kinds as text (`false`); kinds that hold lists, long text or
/// instants are not reported on (`None`). Keys are `[a-z0-9_]`, so they are inlined.
pub fn value_expr(backend: Backend, alias: &str, def: &CustomField) -> Option<(String, bool)> {
    match def.kind {
        FieldKind::Number => Some((float_expr(backend, alias, &def.key), true)),
        FieldKind::Money => Some((int_expr(backend, alias, &def.key), true)),
        FieldKind::Text
        | FieldKind::Select
        | FieldKind::Date
        | FieldKind::Url
        | FieldKind::Email
        | FieldKind::Phone => Some((text_expr(backend, alias, &def.key), false)),
        _ => None,
    }
}

/// What sorted lists put in place of a missing value (first in ascending order).
const FLOAT_NONE: f64 = -1e308;
const INT_NONE: i64 = -9_007_199_254_740_991;

/// The ORDER BY expression and kind for sorting by `custom.<key>`, if the field can be sorted.
pub fn sort_column(
    backend: Backend,
    alias: &str,
    defs: &[CustomField],
    name: &str,
) -> Option<(String, SortKind)> {
    let key = name.strip_prefix("custom.")?;
    let def = defs.iter().find(|d| d.key == key)?;
    let kind = def.kind.sort_kind()?;
    let col = match kind {
        SortKind::Float => format!(
            "COALESCE({}, {FLOAT_NONE:e})",
            float_expr(backend, alias, key)
        ),
        SortKind::Int => format!("COALESCE({}, {INT_NONE})", int_expr(backend, alias, key)),
        _ => format!("COALESCE({}, '')", text_expr(backend, alias, key)),
    };
    Some((col, kind))
}

/// The cursor value of a row sorted by a custom field: what [`sort_column`] computes in SQL.
pub fn cursor_value(custom: &Value, field: &str, kind: SortKind) -> String {
    let v = field
        .strip_prefix("custom.")
        .and_then(|k| custom.get(k))
        .filter(|v| !v.is_null());
    match kind {
        SortKind::Float => v.and_then(Value::as_f64).unwrap_or(FLOAT_NONE).to_string(),
        SortKind::Int => v.and_then(Value::as_i64).unwrap_or(INT_NONE).to_string(),
        _ => v
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

/// A list filter on a custom field, from a query parameter `custom.<key>` (equals; contains
/// for text; any of for multi-select) or `custom.<key>.min` / `.max` (number, money, date,
/// date-time ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFilter {
    pub param: String,
    pub value: String,
}

/// A list filter that also takes custom-field filters (picked out of the query string by the
/// web layer: `custom.<key>=…`).
pub trait CustomFilters {
    fn set_custom(&mut self, filters: Vec<CustomFilter>);
}

/// Picks the `custom.*` parameters out of a query string's pairs.
pub fn filters_of(pairs: &[(String, String)]) -> Vec<CustomFilter> {
    pairs
        .iter()
        .filter(|(k, v)| k.starts_with("custom.") && !v.trim().is_empty())
        .map(|(k, v)| CustomFilter {
            param: k.clone(),
            value: v.trim().to_owned(),
        })
        .collect()
}

/// Appends the conditions of `filters`; an unknown field or a bad value is a 422 naming the
/// parameter.
pub fn filter_sql(
    backend: Backend,
    q: &mut Sql,
    alias: &str,
    defs: &[CustomField],
    filters: &[CustomFilter],
) -> Result<()> {
    let mut errs = Errors::default();
    for f in filters {
        let rest = &f.param["custom.".len()..];
        let (key, op) = match rest.rsplit_once('.') {
            Some((k, o @ ("min" | "max"))) => (k, Some(o)),
            _ => (rest, None),
        };
        let Some(def) = defs.iter().find(|d| d.key == key) else {
            errs.add(&f.param, "unknown_field");
            continue;
        };
        let v = Value::String(f.value.clone());
        let ranged = matches!(
            def.kind,
            FieldKind::Number | FieldKind::Money | FieldKind::Date | FieldKind::Datetime
        );
        let cmp = match op {
            Some("min") if ranged => ">=",
            Some("max") if ranged => "<=",
            Some(_) => {
                errs.add(&f.param, "not_applicable");
                continue;
            }
            None => "=",
        };
        match def.kind {
            FieldKind::Text
            | FieldKind::LongText
            | FieldKind::Url
            | FieldKind::Email
            | FieldKind::Phone => {
                q.push(&format!(
                    " AND LOWER({}) LIKE ",
                    text_expr(backend, alias, key)
                ))
                .bind(crate::record::like_pattern(&f.value.to_lowercase()))
                .push(" ESCAPE '\\'");
            }
            FieldKind::Number => match check_static(def, &v, "CN") {
                Ok(n) => {
                    q.push(&format!(" AND {} {cmp} ", float_expr(backend, alias, key)))
                        .bind(n.as_f64().unwrap_or_default());
                }
                Err(c) => errs.add(&f.param, c),
            },
            FieldKind::Money => match check_static(def, &v, "CN") {
                Ok(n) => {
                    q.push(&format!(" AND {} {cmp} ", int_expr(backend, alias, key)))
                        .bind(n.as_i64().unwrap_or_default());
                }
                Err(c) => errs.add(&f.param, c),
            },
            FieldKind::Date | FieldKind::Datetime => {
                // A date bounds a date-time field by whole days.
                let bound = match (def.kind, op, f.value.len()) {
                    (FieldKind::Datetime, Some("max"), 10) => format!("{}T23:59:59Z", f.value),
                    (FieldKind::Datetime, _, 10) => format!("{}T00:00:00Z", f.value),
                    _ => f.value.clone(),
                };
                let date_part = bound.get(..10).unwrap_or_default();
                if NaiveDate::parse_from_str(date_part, "%Y-%m-%d").is_err() {
                    errs.add(&f.param, "invalid_date");
                    continue;
                }
                if cmp == "=" && def.kind == FieldKind::Datetime {
                    q.push(&format!(" AND {} LIKE ", text_expr(backend, alias, key)))
                        .bind(format!("{date_part}%"));
                } else {
                    q.push(&format!(" AND {} {cmp} ", text_expr(backend, alias, key)))
                        .bind(bound);
                }
            }
            FieldKind::Boolean => match check_static(def, &v, "CN") {
                Ok(Value::Bool(b)) => {
                    let expr = text_expr(backend, alias, key);
                    let (yes, no) = match backend {
                        Backend::Sqlite => ("1", "0"),
                        Backend::Postgres => ("'true'", "'false'"),
                    };
                    if b {
                        q.push(&format!(" AND {expr} = {yes}"));
                    } else {
                        q.push(&format!(" AND ({expr} IS NULL OR {expr} = {no})"));
                    }
                }
                _ => errs.add(&f.param, "invalid_boolean"),
            },
            FieldKind::Select | FieldKind::User => {
                q.push(&format!(" AND {} = ", text_expr(backend, alias, key)))
                    .bind(f.value.clone());
            }
            FieldKind::MultiSelect => {
                match backend {
                    Backend::Sqlite => q
                        .push(&format!(
                            " AND EXISTS (SELECT 1 FROM json_each({alias}.custom, '$.{key}') j WHERE j.value = "
                        ))
                        .bind(f.value.clone())
                        .push(")"),
                    Backend::Postgres => q
                        .push(&format!(" AND ({alias}.custom->'{key}') @> "))
                        .bind(Value::Array(vec![Value::String(f.value.clone())])),
                };
            }
        }
    }
    errs.finish()
}

/// A stored value as a person reads it (lists, exports, detail pages): money in yuan with two
/// decimals, booleans and users spelled out by the caller's `yes`/`no` and user names.
pub fn display(
    def: &CustomField,
    v: Option<&Value>,
    yes_no: (&str, &str),
    user_name: impl Fn(&str) -> Option<String>,
) -> Cow<'static, str> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Cow::Borrowed("");
    };
    match (def.kind, v) {
        (FieldKind::Money, Value::Number(n)) => {
            let fen = n.as_i64().unwrap_or_default();
            let sign = if fen < 0 { "-" } else { "" };
            Cow::Owned(format!(
                "{sign}{}.{:02}",
                fen.unsigned_abs() / 100,
                fen.unsigned_abs() % 100
            ))
        }
        (FieldKind::Boolean, Value::Bool(b)) => {
            Cow::Owned(if *b { yes_no.0 } else { yes_no.1 }.to_owned())
        }
        (FieldKind::User, Value::String(id)) => {
            Cow::Owned(user_name(id).unwrap_or_else(|| id.clone()))
        }
        (_, Value::Array(items)) => Cow::Owned(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("、"),
        ),
        (_, Value::String(s)) => Cow::Owned(s.clone()),
        (_, other) => Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn def(kind: FieldKind, options: &[&str]) -> CustomField {
        CustomField {
            id: Uuid::nil(),
            entity: "contacts".into(),
            key: "k".into(),
            label: "K".into(),
            labels: BTreeMap::new(),
            kind,
            options: options.iter().map(|s| s.to_string()).collect(),
            required: false,
            unique: false,
            default: None,
            section: "custom".into(),
            position: 0,
            archived_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        }
    }

    #[test]
    fn values_are_checked_by_kind() {
        let s = |x: &str| Value::String(x.into());
        let n = def(FieldKind::Number, &[]);
        assert_eq!(
            check_static(&n, &s("1,234.5"), "CN"),
            Ok(Value::from(1234.5))
        );
        assert_eq!(check_static(&n, &s("12"), "CN"), Ok(Value::from(12)));
        assert_eq!(check_static(&n, &s("abc"), "CN"), Err("invalid_number"));
        let m = def(FieldKind::Money, &[]);
        assert_eq!(
            check_static(&m, &Value::from(1250), "CN"),
            Ok(Value::from(1250))
        );
        assert_eq!(
            check_static(&m, &Value::from(12.5), "CN"),
            Err("invalid_money")
        );
        let b = def(FieldKind::Boolean, &[]);
        assert_eq!(check_static(&b, &s("是"), "CN"), Ok(Value::Bool(true)));
        assert_eq!(check_static(&b, &s("maybe"), "CN"), Err("invalid_boolean"));
        let sel = def(FieldKind::Select, &["华东", "华北"]);
        assert_eq!(check_static(&sel, &s("华北"), "CN"), Ok(s("华北")));
        assert_eq!(check_static(&sel, &s("西北"), "CN"), Err("unknown_option"));
        let multi = def(FieldKind::MultiSelect, &["VIP", "渠道", "政府"]);
        assert_eq!(
            check_static(&multi, &s("政府、VIP"), "CN"),
            Ok(serde_json::json!(["VIP", "政府"]))
        );
        let dt = def(FieldKind::Datetime, &[]);
        assert_eq!(
            check_static(&dt, &s("2026-11-30T16:00:00+08:00"), "CN"),
            Ok(s("2026-11-30T08:00:00Z"))
        );
        let ph = def(FieldKind::Phone, &[]);
        assert_eq!(
            check_static(&ph, &s("138 0013 8000"), "CN"),
            Ok(s("+8613800138000"))
        );
        let d = def(FieldKind::Date, &[]);
        assert_eq!(
            check_static(&d, &s("2026-02-30"), "CN"),
            Err("invalid_date")
        );
    }

    #[test]
    fn keys_are_identifiers() {
        assert!(valid_key("region_2"));
        for bad in ["", "2x", "Region", "a-b", "a.b", "a'b", "区域"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    proptest! {
        /// A number survives storage and the cursor round trip unchanged.
        #[test]
        fn numbers_round_trip(n in -1.0e12f64..1.0e12) {
            let d = def(FieldKind::Number, &[]);
            let v = check_static(&d, &Value::String(n.to_string()), "CN").unwrap();
            prop_assert_eq!(v.as_f64().unwrap(), n);
            let custom = serde_json::json!({"k": v});
            let c = cursor_value(&custom, "custom.k", SortKind::Float);
            prop_assert_eq!(c.parse::<f64>().unwrap(), n);
        }

        /// Any string is either refused or stored as one of the options.
        #[test]
        fn selects_store_only_options(raw in ".{0,20}") {
            let d = def(FieldKind::MultiSelect, &["a", "b"]);
            if let Ok(Value::Array(items)) = check_static(&d, &Value::String(raw), "CN") {
                prop_assert!(items.iter().all(|i| i == "a" || i == "b"));
            }
        }
    }
}
