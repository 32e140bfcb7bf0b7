//! Products: the catalogue orders refer to (SKU, name, category, unit, list price).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};

use guanxi_records::normalize;
use guanxi_records::record::{apply_text, plain, search_sql};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub category: Option<String>,
    /// 个, 箱, kg, 月 …
    pub unit: Option<String>,
    /// In minor units (fen for CNY).
    pub list_price: i64,
    pub currency: String,
    /// VAT rate in basis points (1300 = 13%).
    pub tax_rate: i64,
    /// What a unit costs us, minor units (for margin).
    pub cost: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub sku: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub unit: Option<Option<String>>,
    /// Minor units; default 0.
    pub list_price: Option<i64>,
    /// ISO 4217, default `CNY`.
    pub currency: Option<String>,
    /// VAT rate in basis points, 0–10000 (1300 = 13%); default 0.
    pub tax_rate: Option<i64>,
    /// Minor units; `null` clears it.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub cost: Option<Option<i64>>,
    pub active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductFilter {
    /// Part of the SKU or name (pinyin and initials too).
    pub q: Option<String>,
    pub category: Option<String>,
    pub active: Option<bool>,
    /// `name`, `sku` or `created_at`; prefix `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const SELECT: &str =
    "SELECT p.id, p.sku, p.name, p.category, p.unit, p.list_price, p.currency, p.tax_rate,
    p.cost, p.active, p.created_at, p.updated_at, p.deleted_at, p.version FROM products p";

const SORTS: &[SortField] = &[
    ("name", "p.name", SortKind::Text),
    ("sku", "p.sku", SortKind::Text),
    ("created_at", "p.created_at", SortKind::Time),
];

pub async fn list(db: &Db, ctx: &Ctx, f: &ProductFilter) -> Result<Page<Product>> {
    ctx.require("products", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: f.sort.clone(),
    };
    let sort = page.sort(SORTS)?;
    let mut q = Sql::new(SELECT);
    q.push(" WHERE p.tenant_id = ").bind(ctx.tenant_id);
    q.push(" AND p.deleted_at IS NULL");
    if let Some(s) = f.q.as_deref() {
        search_sql(&mut q, "p.search", s);
    }
    if let Some(c) = f.category.as_deref().filter(|c| !c.trim().is_empty()) {
        q.push(" AND p.category = ").bind(c.trim());
    }
    if let Some(a) = f.active {
        q.push(" AND p.active = ").bind(a);
    }
    let limit = page.apply(&mut q, &sort, "p.id")?;
    let rows: Vec<Product> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |p| {
        let v = match &*sort.field {
            "sku" => p.sku.clone(),
            "created_at" => guanxi_platform::db::sqlite_time(&p.created_at),
            _ => p.name.clone(),
        };
        sort.cursor(v, p.id)
    }))
}

/// One product, live or not, with no permission check (an order line keeps its product).
pub(crate) async fn load(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Product> {
    tx.fetch_one(
        &format!("{SELECT} WHERE p.tenant_id = $1 AND p.id = $2"),
        args![tenant_id, id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Product> {
    ctx.require("products", Action::Read)?;
    db.fetch_one(
        &format!("{SELECT} WHERE p.tenant_id = $1 AND p.id = $2 AND p.deleted_at IS NULL"),
        args![ctx.tenant_id, id],
    )
    .await
}

/// The live products of these SKUs (an import's batch of orders).
pub async fn by_skus(tx: &mut Tx, tenant_id: Uuid, skus: &[String]) -> Result<Vec<Product>> {
    if skus.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(SELECT);
    q.push(" WHERE p.tenant_id = ")
        .bind(tenant_id)
        .push(" AND p.deleted_at IS NULL AND p.sku IN ")
        .bind_list(skus.iter().map(String::as_str));
    tx.fetch_sql(q).await
}

/// A live product by SKU (orders name products by SKU).
pub async fn by_sku(tx: &mut Tx, tenant_id: Uuid, sku: &str) -> Result<Option<Product>> {
    tx.fetch_optional(
        &format!("{SELECT} WHERE p.tenant_id = $1 AND p.sku = $2 AND p.deleted_at IS NULL"),
        args![tenant_id, sku],
    )
    .await
}

/// The live product each input line names by `product_id` or else `sku` (`None` for a line
/// naming neither, or one that is not in the catalogue), in a query per 1,000 keys — a quote's
/// lines, a price book's entries: never a query per line.
pub async fn resolve(
    conn: impl Into<Conn<'_>>,
    tenant_id: Uuid,
    refs: &[(Option<Uuid>, Option<&str>)],
) -> Result<Vec<Option<Product>>> {
    fn key<'a>(&(id, sku): &(Option<Uuid>, Option<&'a str>)) -> (Option<Uuid>, Option<&'a str>) {
        (id, sku.map(str::trim).filter(|s| !s.is_empty()))
    }
    let ids: Vec<Uuid> = refs.iter().filter_map(|r| key(r).0).collect();
    let skus: Vec<&str> = refs
        .iter()
        .filter_map(|r| match key(r) {
            (None, sku) => sku,
            _ => None,
        })
        .collect();
    let found = live_by(conn, tenant_id, &ids, &skus).await?;
    Ok(refs
        .iter()
        .map(|r| match key(r) {
            (Some(id), _) => found.iter().find(|p| p.id == id).cloned(),
            (None, Some(sku)) => found.iter().find(|p| p.sku == sku).cloned(),
            (None, None) => None,
        })
        .collect())
}

async fn live_by(
    conn: impl Into<Conn<'_>>,
    tenant_id: Uuid,
    ids: &[Uuid],
    skus: &[&str],
) -> Result<Vec<Product>> {
    let mut conn = conn.into();
    let mut found = Vec::new();
    for chunk in ids.chunks(1000) {
        let mut q = Sql::new(SELECT);
        q.push(" WHERE p.tenant_id = ").bind(tenant_id);
        q.push(" AND p.deleted_at IS NULL AND p.id IN ")
            .bind_list(chunk.iter().copied());
        found.extend(conn.fetch_sql::<Product>(q).await?);
    }
    for chunk in skus.chunks(1000) {
        let mut q = Sql::new(SELECT);
        q.push(" WHERE p.tenant_id = ").bind(tenant_id);
        q.push(" AND p.deleted_at IS NULL AND p.sku IN ")
            .bind_list(chunk.iter().copied());
        found.extend(conn.fetch_sql::<Product>(q).await?);
    }
    Ok(found)
}

/// ISO 4217: three upper-case letters.
pub fn currency(raw: &str) -> std::result::Result<String, &'static str> {
    let c = raw.trim().to_uppercase();
    if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err("invalid_currency")
    }
}

struct Fields {
    sku: String,
    name: String,
    category: Option<String>,
    unit: Option<String>,
    list_price: i64,
    currency: String,
    tax_rate: i64,
    cost: Option<i64>,
    active: bool,
}

impl Fields {
    fn search(&self) -> String {
        let (py, initials) = normalize::pinyin(&self.name);
        normalize::search_text([self.sku.as_str(), self.name.as_str(), &py, &initials])
    }
}

fn apply(errs: &mut Errors, input: &ProductInput, f: &mut Fields) {
    if let Some(s) = &input.sku {
        let s = s.trim();
        if s.is_empty() {
            errs.add("sku", "required");
        } else if s.chars().count() > 64 || s.chars().any(char::is_whitespace) {
            errs.add("sku", "invalid");
        } else {
            f.sku = s.to_owned();
        }
    } else if f.sku.is_empty() {
        errs.add("sku", "required");
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
        errs,
        "category",
        &input.category,
        &mut f.category,
        plain(100),
    );
    apply_text(errs, "unit", &input.unit, &mut f.unit, plain(20));
    if let Some(p) = input.list_price {
        if p < 0 {
            errs.add("list_price", "out_of_range");
        } else {
            f.list_price = p;
        }
    }
    if let Some(c) = &input.currency {
        match currency(c) {
            Ok(c) => f.currency = c,
            Err(code) => errs.add("currency", code),
        }
    }
    if let Some(r) = input.tax_rate {
        if (0..=10_000).contains(&r) {
            f.tax_rate = r;
        } else {
            errs.add("tax_rate", "out_of_range");
        }
    }
    match input.cost {
        Some(Some(c)) if c < 0 => errs.add("cost", "out_of_range"),
        Some(c) => f.cost = c,
        None => {}
    }
    if let Some(a) = input.active {
        f.active = a;
    }
}

async fn sku_taken(tx: &mut Tx, ctx: &Ctx, errs: &mut Errors, sku: &str, id: Uuid) -> Result<()> {
    let n: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM products WHERE tenant_id = $1 AND sku = $2 AND deleted_at IS NULL AND id <> $3",
            args![ctx.tenant_id, sku, id],
        )
        .await?;
    if n > 0 {
        errs.add("sku", "taken");
    }
    Ok(())
}

pub async fn create(db: &Db, ctx: &Ctx, input: ProductInput) -> Result<Product> {
    ctx.require("products", Action::Create)?;
    let mut errs = Errors::default();
    let mut f = Fields {
        sku: String::new(),
        name: String::new(),
        category: None,
        unit: None,
        list_price: 0,
        currency: "CNY".into(),
        tax_rate: 0,
        cost: None,
        active: true,
    };
    apply(&mut errs, &input, &mut f);
    let id = new_id();
    let mut tx = db.begin().await?;
    sku_taken(&mut tx, ctx, &mut errs, &f.sku, id).await?;
    errs.finish()?;
    let t = now();
    tx.execute(
        "INSERT INTO products (tenant_id, id, sku, name, category, unit, list_price, currency, active, search,
             created_at, updated_at, created_by, updated_by, version, custom, tax_rate, cost)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15, $16, $17)",
        args![
            ctx.tenant_id, id, f.sku.as_str(), f.name.as_str(), f.category.clone(), f.unit.clone(),
            f.list_price, f.currency.as_str(), f.active, f.search(), t, t, ctx.user_id, ctx.user_id,
            serde_json::json!({}), f.tax_rate, f.cost
        ],
    )
    .await?;
    let p = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(&mut tx, ctx, "create", "products", Some(id), None, Some(&p)).await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: ProductInput,
) -> Result<Product> {
    ctx.require("products", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    if before.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    let mut errs = Errors::default();
    let mut f = Fields {
        sku: before.sku.clone(),
        name: before.name.clone(),
        category: before.category.clone(),
        unit: before.unit.clone(),
        list_price: before.list_price,
        currency: before.currency.clone(),
        tax_rate: before.tax_rate,
        cost: before.cost,
        active: before.active,
    };
    apply(&mut errs, &input, &mut f);
    sku_taken(&mut tx, ctx, &mut errs, &f.sku, id).await?;
    errs.finish()?;
    version::check(expected, before.version)?;
    version::update(
        &mut tx,
        version::Row {
            table: "products",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "sku = $1, name = $2, category = $3, unit = $4, list_price = $5, currency = $6,
             active = $7, search = $8, updated_at = $9, updated_by = $10, tax_rate = $11, cost = $12",
        args![
            f.sku.as_str(),
            f.name.as_str(),
            f.category.clone(),
            f.unit.clone(),
            f.list_price,
            f.currency.as_str(),
            f.active,
            f.search(),
            now(),
            ctx.user_id,
            f.tax_rate,
            f.cost
        ],
    )
    .await
    .map_err(|e| match e {
        Error::Conflict(_) => Error::field("sku", "taken"),
        e => e,
    })?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "products",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes a product from the catalogue; orders keep their lines (SKU and name are copied).
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    ctx.require("products", Action::Delete)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    if before.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    let t = now();
    tx.execute(
        "UPDATE products SET deleted_at = $1, updated_at = $1, updated_by = $2, version = version + 1
         WHERE tenant_id = $3 AND id = $4",
        args![t, ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "products",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}
