//! Price books: what a product costs for an audience — one customer (a negotiated price), a
//! customer grade, an industry, a sales channel, or everyone — between two days, with volume
//! tiers. [`price_for`] answers the price a customer gets for a product, quantity and day, with
//! the book it came from (the rule is [`crate::pricing::pick`]'s). Managers keep them; everyone
//! reads them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::accounts::Account;
use guanxi_customers::products;
use guanxi_platform::db::{Conn, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};
use guanxi_records::record::{self, apply_text, plain};

use crate::pricing::{self, Candidate, Price, AUDIENCES};

/// The most entries one book holds.
pub const MAX_ENTRIES: usize = 5_000;
/// The grades an account may have.
pub const GRADES: &[&str] = &["A", "B", "C", "D", "E"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct Entry {
    pub product_id: Uuid,
    pub sku: String,
    pub product_name: String,
    /// The smallest quantity this price is for (a volume tier); 1 for every quantity.
    pub min_quantity: i64,
    /// Minor units.
    pub unit_price: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PriceBook {
    pub id: Uuid,
    pub name: String,
    /// `account`, `grade`, `industry`, `channel` or `all` (most specific first: when several
    /// books price a product for a customer, the most specific wins).
    pub audience: String,
    /// The customer, for `account`.
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    /// The grade (A–E), industry or channel, for those audiences.
    pub audience_value: Option<String>,
    pub currency: String,
    /// First day it applies (`YYYY-MM-DD`), or always.
    pub valid_from: Option<String>,
    /// Last day it applies, or always.
    pub valid_to: Option<String>,
    pub active: bool,
    pub description: Option<String>,
    #[sqlx(skip)]
    pub entries: Vec<Entry>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// A catalogue product, or its `sku`.
    pub product_id: Option<Uuid>,
    pub sku: Option<String>,
    /// Default 1.
    pub min_quantity: Option<i64>,
    /// Minor units.
    pub unit_price: i64,
}

/// Create or update a book. On update absent fields stay; `entries` replaces all entries.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBookInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub name: Option<String>,
    /// Default `all`.
    pub audience: Option<String>,
    pub account_id: Option<Uuid>,
    pub audience_value: Option<String>,
    /// Default: the tenant's currency.
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub valid_from: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub valid_to: Option<Option<String>>,
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// At most 5,000; one per product and smallest quantity.
    pub entries: Option<Vec<EntryInput>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PriceQuery {
    pub product_id: Uuid,
    /// The customer; without one only books for everyone and the channel apply.
    pub account_id: Option<Uuid>,
    /// Default 1.
    pub quantity: Option<i64>,
    /// Default today (`YYYY-MM-DD`).
    pub date: Option<String>,
    /// Default `sales`.
    pub channel: Option<String>,
}

const SELECT: &str = "SELECT b.id, b.name, b.audience, b.account_id, a.name AS account_name,
    b.audience_value, b.currency, b.valid_from, b.valid_to, b.active, b.description,
    b.created_at, b.updated_at, b.version
    FROM price_books b
    LEFT JOIN accounts a ON a.tenant_id = b.tenant_id AND a.id = b.account_id";

async fn entries_of(conn: impl Into<Conn<'_>>, tenant: Uuid, book: Uuid) -> Result<Vec<Entry>> {
    conn.into()
        .fetch_all(
            "SELECT e.product_id, p.sku, p.name AS product_name, e.min_quantity, e.unit_price
             FROM price_book_entries e
             JOIN products p ON p.tenant_id = e.tenant_id AND p.id = e.product_id
             WHERE e.tenant_id = $1 AND e.book_id = $2
             ORDER BY p.sku, e.min_quantity",
            args![tenant, book],
        )
        .await
}

/// The tenant's live books (there are tens, not thousands), most specific audience first.
pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<PriceBook>> {
    ctx.require("price_books", Action::Read)?;
    db.fetch_all(
        &format!(
            "{SELECT} WHERE b.tenant_id = $1 AND b.deleted_at IS NULL
                 ORDER BY CASE b.audience WHEN 'account' THEN 0 WHEN 'grade' THEN 1
                     WHEN 'industry' THEN 2 WHEN 'channel' THEN 3 ELSE 4 END, b.name LIMIT 1000"
        ),
        args![ctx.tenant_id],
    )
    .await
}

async fn load(conn: impl Into<Conn<'_>>, tenant: Uuid, id: Uuid) -> Result<PriceBook> {
    let mut conn = conn.into();
    let mut b: PriceBook = conn
        .fetch_optional(
            &format!("{SELECT} WHERE b.tenant_id = $1 AND b.id = $2 AND b.deleted_at IS NULL"),
            args![tenant, id],
        )
        .await?
        .ok_or(Error::NotFound)?;
    b.entries = entries_of(conn, tenant, id).await?;
    Ok(b)
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<PriceBook> {
    ctx.require("price_books", Action::Read)?;
    load(db, ctx.tenant_id, id).await
}

/// `YYYY-MM-DD`, or the field's error.
pub fn day(raw: &str) -> std::result::Result<NaiveDate, &'static str> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "invalid_date")
}

#[derive(Debug, Clone, PartialEq)]
struct Fields {
    name: String,
    audience: String,
    account_id: Option<Uuid>,
    audience_value: Option<String>,
    currency: String,
    valid_from: Option<String>,
    valid_to: Option<String>,
    active: bool,
    description: Option<String>,
    entries: Vec<(Uuid, i64, i64)>,
}

impl Fields {
    fn of(b: &PriceBook) -> Fields {
        Fields {
            name: b.name.clone(),
            audience: b.audience.clone(),
            account_id: b.account_id,
            audience_value: b.audience_value.clone(),
            currency: b.currency.clone(),
            valid_from: b.valid_from.clone(),
            valid_to: b.valid_to.clone(),
            active: b.active,
            description: b.description.clone(),
            entries: b
                .entries
                .iter()
                .map(|e| (e.product_id, e.min_quantity, e.unit_price))
                .collect(),
        }
    }
}

fn apply_day(
    errs: &mut Errors,
    field: &str,
    input: &Option<Option<String>>,
    out: &mut Option<String>,
) {
    match input {
        Some(Some(raw)) if !raw.trim().is_empty() => match day(raw) {
            Ok(d) => *out = Some(d.format("%Y-%m-%d").to_string()),
            Err(c) => errs.add(field, c),
        },
        Some(_) => *out = None,
        None => {}
    }
}

async fn apply(tx: &mut Tx, ctx: &Ctx, input: &PriceBookInput, f: &mut Fields) -> Result<()> {
    let mut errs = Errors::default();
    if let Some(n) = &input.name {
        match validate::name(n) {
            Ok(n) if n.chars().count() <= 100 => f.name = n,
            Ok(_) => errs.add("name", "too_long"),
            Err(c) => errs.add("name", c),
        }
    } else if f.name.is_empty() {
        errs.add("name", "required");
    }
    if let Some(a) = &input.audience {
        if AUDIENCES.contains(&a.as_str()) {
            if *a != f.audience {
                f.account_id = None;
                f.audience_value = None;
            }
            f.audience = a.clone();
        } else {
            errs.add("audience", "invalid");
        }
    }
    if let Some(a) = input.account_id {
        f.account_id = Some(a);
    }
    if let Some(v) = &input.audience_value {
        let v = v.trim();
        f.audience_value = (!v.is_empty()).then(|| v.to_owned());
    }
    match f.audience.as_str() {
        "account" => {
            f.audience_value = None;
            match f.account_id {
                None => errs.add("account_id", "required"),
                Some(a) => match record::get::<Account>(&mut *tx, ctx, a).await {
                    Ok(acc) if acc.deleted_at.is_none() => {}
                    Ok(_) | Err(Error::NotFound | Error::Forbidden) => {
                        errs.add("account_id", "unknown")
                    }
                    Err(e) => return Err(e),
                },
            }
        }
        "all" => {
            f.account_id = None;
            f.audience_value = None;
        }
        kind => {
            f.account_id = None;
            match f.audience_value.as_deref() {
                None => errs.add("audience_value", "required"),
                Some(v) if kind == "grade" && !GRADES.contains(&v) => {
                    errs.add("audience_value", "invalid")
                }
                Some(v)
                    if kind == "channel" && !guanxi_customers::orders::CHANNELS.contains(&v) =>
                {
                    errs.add("audience_value", "invalid")
                }
                Some(v) if v.chars().count() > 100 => errs.add("audience_value", "too_long"),
                Some(_) => {}
            }
        }
    }
    if let Some(c) = &input.currency {
        match products::currency(c) {
            Ok(c) => f.currency = c,
            Err(code) => errs.add("currency", code),
        }
    }
    apply_day(
        &mut errs,
        "valid_from",
        &input.valid_from,
        &mut f.valid_from,
    );
    apply_day(&mut errs, "valid_to", &input.valid_to, &mut f.valid_to);
    if let (Some(a), Some(b)) = (&f.valid_from, &f.valid_to) {
        if a > b {
            errs.add("valid_to", "before_start");
        }
    }
    if let Some(a) = input.active {
        f.active = a;
    }
    apply_text(
        &mut errs,
        "description",
        &input.description,
        &mut f.description,
        plain(2_000),
    );
    if let Some(entries) = &input.entries {
        if entries.len() > MAX_ENTRIES {
            errs.add("entries", "too_long");
            return errs.finish();
        }
        let refs: Vec<_> = entries
            .iter()
            .map(|e| (e.product_id, e.sku.as_deref()))
            .collect();
        let found = products::resolve(&mut *tx, ctx.tenant_id, &refs).await?;
        let mut out: Vec<(Uuid, i64, i64)> = Vec::with_capacity(entries.len());
        for (i, (e, product)) in entries.iter().zip(found).enumerate() {
            let at = |field: &str| format!("entries[{i}].{field}");
            let Some(product) = product.map(|p| p.id) else {
                let named = e.product_id.is_some()
                    || e.sku.as_deref().is_some_and(|s| !s.trim().is_empty());
                errs.add(
                    &at("product_id"),
                    if named { "unknown" } else { "required" },
                );
                continue;
            };
            let min_q = e.min_quantity.unwrap_or(1);
            if !(1..=1_000_000_000).contains(&min_q) {
                errs.add(&at("min_quantity"), "out_of_range");
            }
            if !(0..=crate::opportunities::MAX_AMOUNT).contains(&e.unit_price) {
                errs.add(&at("unit_price"), "out_of_range");
            }
            if out.iter().any(|&(p, q, _)| p == product && q == min_q) {
                errs.add(&at("min_quantity"), "duplicate");
            }
            out.push((product, min_q, e.unit_price));
        }
        f.entries = out;
    }
    errs.finish()
}

async fn write_entries(
    tx: &mut Tx,
    tenant: Uuid,
    id: Uuid,
    entries: &[(Uuid, i64, i64)],
) -> Result<()> {
    tx.execute(
        "DELETE FROM price_book_entries WHERE tenant_id = $1 AND book_id = $2",
        args![tenant, id],
    )
    .await?;
    for chunk in entries.chunks(500) {
        let rows = chunk
            .iter()
            .map(|&(p, q, price)| args![tenant, id, p, q, price])
            .collect();
        tx.insert_rows(
            "price_book_entries",
            &[
                "tenant_id",
                "book_id",
                "product_id",
                "min_quantity",
                "unit_price",
            ],
            rows,
        )
        .await?;
    }
    Ok(())
}

fn name_taken(e: Error) -> Error {
    match e {
        Error::Conflict(_) => Error::field("name", "taken"),
        e => e,
    }
}

pub async fn create(db: &Db, ctx: &Ctx, input: PriceBookInput) -> Result<PriceBook> {
    ctx.require("price_books", Action::Create)?;
    let mut tx = db.begin().await?;
    let currency: String = tx
        .scalar(
            "SELECT currency FROM tenants WHERE id = $1",
            args![ctx.tenant_id],
        )
        .await?;
    let mut f = Fields {
        name: String::new(),
        audience: "all".into(),
        account_id: None,
        audience_value: None,
        currency,
        valid_from: None,
        valid_to: None,
        active: true,
        description: None,
        entries: vec![],
    };
    apply(&mut tx, ctx, &input, &mut f).await?;
    let id = new_id();
    let t = now();
    tx.execute(
        "INSERT INTO price_books (tenant_id, id, name, audience, account_id, audience_value, currency,
             valid_from, valid_to, active, description, created_at, updated_at, created_by, updated_by, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1)",
        args![
            ctx.tenant_id, id, f.name.as_str(), f.audience.as_str(), f.account_id, f.audience_value.clone(),
            f.currency.as_str(), f.valid_from.clone(), f.valid_to.clone(), f.active, f.description.clone(),
            t, t, ctx.user_id, ctx.user_id
        ],
    )
    .await
    .map_err(name_taken)?;
    write_entries(&mut tx, ctx.tenant_id, id, &f.entries).await?;
    let b = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "price_books",
        Some(id),
        None,
        Some(&b),
    )
    .await?;
    tx.commit().await?;
    Ok(b)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: PriceBookInput,
) -> Result<PriceBook> {
    ctx.require("price_books", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    version::check(expected, before.version)?;
    let mut f = Fields::of(&before);
    apply(&mut tx, ctx, &input, &mut f).await?;
    if f == Fields::of(&before) {
        return Ok(before);
    }
    version::update(
        &mut tx,
        version::Row {
            table: "price_books",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, audience = $2, account_id = $3, audience_value = $4, currency = $5,
             valid_from = $6, valid_to = $7, active = $8, description = $9, updated_at = $10,
             updated_by = $11",
        args![
            f.name.as_str(),
            f.audience.as_str(),
            f.account_id,
            f.audience_value.clone(),
            f.currency.as_str(),
            f.valid_from.clone(),
            f.valid_to.clone(),
            f.active,
            f.description.clone(),
            now(),
            ctx.user_id
        ],
    )
    .await
    .map_err(name_taken)?;
    if f.entries != Fields::of(&before).entries {
        write_entries(&mut tx, ctx.tenant_id, id, &f.entries).await?;
    }
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "price_books",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Retires a book: it prices nothing from now on; quotes already sent keep their prices.
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    ctx.require("price_books", Action::Delete)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    let t = now();
    // Retired meanwhile by another request: not found, and no second audit event.
    let n = tx
        .execute(
            "UPDATE price_books SET deleted_at = $1, updated_at = $1, updated_by = $2, version = version + 1
             WHERE tenant_id = $3 AND id = $4 AND deleted_at IS NULL",
            args![t, ctx.user_id, ctx.tenant_id, id],
        )
        .await?;
    if n != 1 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "price_books",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}

/// Who is buying, as price books see them.
#[derive(Debug, Clone, Default)]
pub struct Buyer {
    pub account_id: Option<Uuid>,
    pub grade: Option<String>,
    pub industry: Option<String>,
    /// `sales` for quotes.
    pub channel: String,
    pub currency: String,
}

impl Buyer {
    /// The buyer an account is (its grade and industry), on `channel`, paying in `currency`.
    pub fn of(account: &Account, channel: &str, currency: &str) -> Buyer {
        Buyer {
            account_id: Some(account.id),
            grade: account.grade.clone(),
            industry: account.industry.clone(),
            channel: channel.to_owned(),
            currency: currency.to_owned(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    product_id: Uuid,
    book_id: Uuid,
    book_name: String,
    audience: String,
    valid_from: Option<String>,
    valid_to: Option<String>,
    min_quantity: i64,
    unit_price: i64,
}

/// Every entry of a live, active book in the buyer's currency whose audience is the buyer, for
/// `products`, by product.
pub async fn candidates(
    conn: impl Into<Conn<'_>>,
    tenant: Uuid,
    buyer: &Buyer,
    products: &[Uuid],
) -> Result<Vec<(Uuid, Candidate)>> {
    if products.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(
        "SELECT e.product_id, b.id AS book_id, b.name AS book_name, b.audience, b.valid_from,
             b.valid_to, e.min_quantity, e.unit_price
         FROM price_book_entries e
         JOIN price_books b ON b.tenant_id = e.tenant_id AND b.id = e.book_id
         WHERE e.tenant_id = ",
    );
    q.bind(tenant);
    q.push(" AND b.deleted_at IS NULL AND b.active = ")
        .bind(true);
    q.push(" AND b.currency = ").bind(buyer.currency.as_str());
    q.push(" AND e.product_id IN ")
        .bind_list(products.iter().copied());
    q.push(" AND (b.audience = 'all' OR (b.audience = 'channel' AND b.audience_value = ");
    q.bind(buyer.channel.as_str()).push(")");
    if let Some(a) = buyer.account_id {
        q.push(" OR (b.audience = 'account' AND b.account_id = ")
            .bind(a)
            .push(")");
    }
    if let Some(g) = &buyer.grade {
        q.push(" OR (b.audience = 'grade' AND b.audience_value = ")
            .bind(g.as_str())
            .push(")");
    }
    if let Some(i) = &buyer.industry {
        q.push(" OR (b.audience = 'industry' AND b.audience_value = ")
            .bind(i.as_str())
            .push(")");
    }
    q.push(")");
    let rows: Vec<CandidateRow> = conn.into().fetch_all(&q.sql, q.args).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let parse = |d: Option<String>| d.and_then(|d| day(&d).ok());
            (
                r.product_id,
                Candidate {
                    book_id: r.book_id,
                    book_name: r.book_name,
                    rank: AUDIENCES
                        .iter()
                        .position(|a| *a == r.audience)
                        .unwrap_or(AUDIENCES.len()),
                    valid_from: parse(r.valid_from),
                    valid_to: parse(r.valid_to),
                    min_quantity: r.min_quantity,
                    unit_price: r.unit_price,
                },
            )
        })
        .collect())
}

/// The price a buyer gets (`GET /api/v1/prices`).
pub async fn price_for(db: &Db, ctx: &Ctx, q: &PriceQuery) -> Result<Price> {
    ctx.require("price_books", Action::Read)?;
    let product = products::get(db, ctx, q.product_id)
        .await
        .map_err(|e| match e {
            Error::NotFound => Error::field("product_id", "unknown"),
            e => e,
        })?;
    let mut errs = Errors::default();
    let quantity = q.quantity.unwrap_or(1);
    if quantity < 1 {
        errs.add("quantity", "out_of_range");
    }
    let today = match q.date.as_deref() {
        Some(d) => day(d).unwrap_or_else(|c| {
            errs.add("date", c);
            NaiveDate::MIN
        }),
        None => now().date_naive(),
    };
    let channel = q.channel.clone().unwrap_or_else(|| "sales".into());
    if !guanxi_customers::orders::CHANNELS.contains(&channel.as_str()) {
        errs.add("channel", "invalid");
    }
    errs.finish()?;
    let buyer = match q.account_id {
        Some(a) => {
            let account = record::get::<Account>(db, ctx, a)
                .await
                .map_err(|e| match e {
                    Error::NotFound | Error::Forbidden => Error::field("account_id", "unknown"),
                    e => e,
                })?;
            Buyer::of(&account, &channel, &product.currency)
        }
        None => Buyer {
            channel,
            currency: product.currency.clone(),
            ..Default::default()
        },
    };
    let cs: Vec<Candidate> = candidates(db, ctx.tenant_id, &buyer, &[product.id])
        .await?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    Ok(pricing::pick(&cs, quantity, today, product.list_price))
}
