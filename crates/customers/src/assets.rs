//! Assets: what a customer owns or subscribes to — a machine with its serial number, a phone
//! line with its number, a licence — with start and end dates and a warranty. An asset belongs
//! to an account and/or a contact and, like an order, has no owner of its own: whoever may read
//! the customer reads it, and it is changed within the `assets` scope of the customer's owner.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};

use guanxi_records::record::{self, apply_text, plain};

pub const KINDS: &[&str] = &["product", "service", "subscription"];
pub const STATUSES: &[&str] = &["active", "suspended", "ended"];

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Asset {
    pub id: Uuid,
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    /// The catalogue product it is, if any.
    pub product_id: Option<Uuid>,
    pub name: String,
    /// Serial number, line number, licence key…: unique among the tenant's live assets.
    pub serial: Option<String>,
    /// `product`, `service` or `subscription`.
    pub kind: String,
    /// `active`, `suspended` or `ended`.
    pub status: String,
    pub quantity: i64,
    /// `YYYY-MM-DD`.
    pub started_on: Option<String>,
    pub ends_on: Option<String>,
    pub warranty_until: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// Create or change an asset (PATCH semantics on update: absent unchanged, `null` clears).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetInput {
    pub version: Option<i64>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub account_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub product_id: Option<Option<Uuid>>,
    /// Default: the product's name.
    pub name: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub serial: Option<Option<String>>,
    /// Default `product`.
    pub kind: Option<String>,
    /// Default `active`.
    pub status: Option<String>,
    /// Default 1.
    pub quantity: Option<i64>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub started_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub ends_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub warranty_until: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssetFilter {
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// Exact serial (which customer has this machine or line?).
    pub serial: Option<String>,
    pub status: Option<String>,
    /// Assets whose warranty ends on or before this date (`YYYY-MM-DD`): for renewal calls.
    pub warranty_before: Option<String>,
    /// `name` (default), `ends_on` or `warranty_until` (as text; absent dates first).
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const SELECT: &str = "SELECT s.id, s.account_id, a.name AS account_name, s.contact_id,
    c.name AS contact_name, s.product_id, s.name, s.serial, s.kind, s.status, s.quantity,
    s.started_on, s.ends_on, s.warranty_until, s.notes, s.created_at, s.updated_at,
    s.deleted_at, s.version
    FROM assets s
    LEFT JOIN accounts a ON a.tenant_id = s.tenant_id AND a.id = s.account_id
    LEFT JOIN contacts c ON c.tenant_id = s.tenant_id AND c.id = s.contact_id";

const SORTS: &[SortField] = &[
    ("name", "s.name", SortKind::Text),
    ("ends_on", "COALESCE(s.ends_on, '')", SortKind::Text),
    (
        "warranty_until",
        "COALESCE(s.warranty_until, '')",
        SortKind::Text,
    ),
];

pub async fn list(db: &Db, ctx: &Ctx, f: &AssetFilter) -> Result<Page<Asset>> {
    ctx.require("assets", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: f.sort.clone(),
    };
    let sort = page.sort(SORTS)?;
    let mut q = Sql::new(SELECT);
    q.push(" WHERE s.tenant_id = ")
        .bind(ctx.tenant_id)
        .push(" AND s.deleted_at IS NULL");
    crate::dependents::customer_visible_sql(&mut q, ctx, "a", "c");
    if let Some(a) = f.account_id {
        q.push(" AND s.account_id = ").bind(a);
    }
    if let Some(c) = f.contact_id {
        q.push(" AND s.contact_id = ").bind(c);
    }
    for (col, v) in [("s.serial", &f.serial), ("s.status", &f.status)] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    if let Some(d) = f.warranty_before.as_deref() {
        let d = date(d).map_err(|c| Error::field("warranty_before", c))?;
        q.push(" AND s.warranty_until <= ").bind(d);
    }
    let limit = page.apply(&mut q, &sort, "s.id")?;
    let rows: Vec<Asset> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |s| {
        let v = match &*sort.field {
            "ends_on" => s.ends_on.clone().unwrap_or_default(),
            "warranty_until" => s.warranty_until.clone().unwrap_or_default(),
            _ => s.name.clone(),
        };
        sort.cursor(v, s.id)
    }))
}

async fn load(db: &Db, tenant_id: Uuid, id: Uuid) -> Result<Asset> {
    db.fetch_one(
        &format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2"),
        args![tenant_id, id],
    )
    .await
}

/// One live asset of a customer the caller may read.
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Asset> {
    ctx.require("assets", Action::Read)?;
    let s = load(db, ctx.tenant_id, id).await?;
    if s.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    crate::dependents::customer_scope(db, ctx, s.account_id, s.contact_id).await?;
    Ok(s)
}

fn date(raw: &str) -> std::result::Result<String, &'static str> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| "invalid_date")
}

fn one_of(
    set: &'static [&'static str],
) -> impl Fn(&str) -> std::result::Result<String, &'static str> {
    move |raw| {
        let v = raw.trim().to_lowercase();
        if set.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err("invalid")
        }
    }
}

/// The editable columns, checked together.
#[derive(Debug, Clone, Default)]
struct Fields {
    account_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    product_id: Option<Uuid>,
    name: String,
    serial: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    quantity: i64,
    started_on: Option<String>,
    ends_on: Option<String>,
    warranty_until: Option<String>,
    notes: Option<String>,
}

impl Fields {
    fn of(s: &Asset) -> Fields {
        Fields {
            account_id: s.account_id,
            contact_id: s.contact_id,
            product_id: s.product_id,
            name: s.name.clone(),
            serial: s.serial.clone(),
            kind: Some(s.kind.clone()),
            status: Some(s.status.clone()),
            quantity: s.quantity,
            started_on: s.started_on.clone(),
            ends_on: s.ends_on.clone(),
            warranty_until: s.warranty_until.clone(),
            notes: s.notes.clone(),
        }
    }
}

async fn apply(db: &Db, ctx: &Ctx, id: Uuid, input: &AssetInput, f: &mut Fields) -> Result<()> {
    let mut errs = Errors::default();
    if let Some(a) = input.account_id {
        f.account_id = a;
    }
    if let Some(c) = input.contact_id {
        f.contact_id = c;
    }
    if f.account_id.is_none() && f.contact_id.is_none() {
        errs.add("account_id", "required");
    }
    // The customer must be one the caller may read (else it does not exist for them).
    for (field, table, v) in [
        ("account_id", "accounts", f.account_id),
        ("contact_id", "contacts", f.contact_id),
    ] {
        if let Some(v) = v {
            let found = match table {
                "accounts" => record::get::<crate::accounts::Account>(db, ctx, v)
                    .await
                    .map(|a| a.deleted_at.is_none()),
                _ => record::get::<crate::contacts::Contact>(db, ctx, v)
                    .await
                    .map(|c| c.deleted_at.is_none()),
            };
            match found {
                Ok(true) => {}
                Ok(false) | Err(Error::NotFound) => errs.add(field, "unknown"),
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(p) = input.product_id {
        f.product_id = p;
        if let Some(pid) = p {
            match crate::products::get(db, ctx, pid).await {
                Ok(prod) if f.name.is_empty() && input.name.is_none() => f.name = prod.name,
                Ok(_) => {}
                Err(Error::NotFound) => errs.add("product_id", "unknown"),
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(n) = &input.name {
        match validate::name(n) {
            Ok(n) => f.name = n,
            Err(c) => errs.add("name", c),
        }
    } else if f.name.is_empty() {
        errs.add("name", "required");
    }
    apply_text(
        &mut errs,
        "serial",
        &input.serial,
        &mut f.serial,
        plain(100),
    );
    let mut kind = f.kind.clone();
    apply_text(
        &mut errs,
        "kind",
        &input.kind.clone().map(Some),
        &mut kind,
        one_of(KINDS),
    );
    f.kind = kind.or(Some("product".into()));
    let mut status = f.status.clone();
    apply_text(
        &mut errs,
        "status",
        &input.status.clone().map(Some),
        &mut status,
        one_of(STATUSES),
    );
    f.status = status.or(Some("active".into()));
    if let Some(q) = input.quantity {
        if (1..=1_000_000_000).contains(&q) {
            f.quantity = q;
        } else {
            errs.add("quantity", "out_of_range");
        }
    }
    for (field, v, cur) in [
        ("started_on", &input.started_on, &mut f.started_on),
        ("ends_on", &input.ends_on, &mut f.ends_on),
        (
            "warranty_until",
            &input.warranty_until,
            &mut f.warranty_until,
        ),
    ] {
        apply_text(&mut errs, field, v, cur, date);
    }
    if let (Some(s), Some(e)) = (&f.started_on, &f.ends_on) {
        if e < s {
            errs.add("ends_on", "before_start");
        }
    }
    apply_text(
        &mut errs,
        "notes",
        &input.notes,
        &mut f.notes,
        plain(10_000),
    );
    if let Some(serial) = &f.serial {
        let taken: i64 = db
            .scalar(
                "SELECT COUNT(*) FROM assets WHERE tenant_id = $1 AND serial = $2 AND deleted_at IS NULL AND id <> $3",
                args![ctx.tenant_id, serial.as_str(), id],
            )
            .await?;
        if taken > 0 {
            errs.add("serial", "taken");
        }
    }
    errs.finish()
}

pub async fn create(db: &Db, ctx: &Ctx, input: AssetInput) -> Result<Asset> {
    ctx.require("assets", Action::Create)?;
    let id = new_id();
    let mut f = Fields {
        quantity: 1,
        ..Fields::default()
    };
    apply(db, ctx, id, &input, &mut f).await?;
    crate::dependents::check_customer_write(
        db,
        ctx,
        "assets",
        Action::Create,
        f.account_id,
        f.contact_id,
    )
    .await?;
    let t = now();
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO assets (tenant_id, id, account_id, contact_id, product_id, name, serial, kind,
             status, quantity, started_on, ends_on, warranty_until, notes, created_at, updated_at,
             created_by, updated_by, version, custom)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1, $19)",
        args![
            ctx.tenant_id, id, f.account_id, f.contact_id, f.product_id, f.name.as_str(),
            f.serial.clone(), f.kind.clone(), f.status.clone(), f.quantity, f.started_on.clone(),
            f.ends_on.clone(), f.warranty_until.clone(), f.notes.clone(), t, t, ctx.user_id,
            ctx.user_id, serde_json::json!({})
        ],
    )
    .await?;
    let s: Asset = tx
        .fetch_one(
            &format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(&mut tx, ctx, "create", "assets", Some(id), None, Some(&s)).await?;
    tx.commit().await?;
    Ok(s)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: AssetInput,
) -> Result<Asset> {
    let before = get(db, ctx, id).await?;
    crate::dependents::check_customer_write(
        db,
        ctx,
        "assets",
        Action::Update,
        before.account_id,
        before.contact_id,
    )
    .await?;
    let expected = version::expected(if_match, input.version)?;
    version::check(expected, before.version)?;
    let mut f = Fields::of(&before);
    apply(db, ctx, id, &input, &mut f).await?;
    // Moving it to another customer needs the right over that one too.
    crate::dependents::check_customer_write(
        db,
        ctx,
        "assets",
        Action::Update,
        f.account_id,
        f.contact_id,
    )
    .await?;
    let mut tx = db.begin().await?;
    version::update(
        &mut tx,
        version::Row {
            table: "assets",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "account_id = $1, contact_id = $2, product_id = $3, name = $4,
                 serial = $5, kind = $6, status = $7, quantity = $8, started_on = $9, ends_on = $10,
                 warranty_until = $11, notes = $12, updated_at = $13, updated_by = $14",
        args![
            f.account_id,
            f.contact_id,
            f.product_id,
            f.name.as_str(),
            f.serial.clone(),
            f.kind.clone(),
            f.status.clone(),
            f.quantity,
            f.started_on.clone(),
            f.ends_on.clone(),
            f.warranty_until.clone(),
            f.notes.clone(),
            now(),
            ctx.user_id
        ],
    )
    .await?;
    let after: Asset = tx
        .fetch_one(
            &format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "assets",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes an asset (to the trash: kept for the audit trail, gone from lists).
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    let before = get(db, ctx, id).await?;
    crate::dependents::check_customer_write(
        db,
        ctx,
        "assets",
        Action::Delete,
        before.account_id,
        before.contact_id,
    )
    .await?;
    let mut tx = db.begin().await?;
    let t = now();
    tx.execute(
        "UPDATE assets SET deleted_at = $1, updated_at = $1, updated_by = $2, version = version + 1
         WHERE tenant_id = $3 AND id = $4",
        args![t, ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    audit::record::<Asset>(
        &mut tx,
        ctx,
        "delete",
        "assets",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}
