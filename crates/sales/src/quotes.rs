//! Quotes: what a deal's customer is offered, line by line, priced from the price books.
//!
//! A deal has at most one quote (so its customer never holds two live prices). The quote's own
//! lines and terms are the working copy the rep edits; [`send`] freezes the working copy into
//! the next *version* — a snapshot of the lines, totals, terms and the customer as sent, which
//! no later change to products, prices or the customer alters — and supersedes the version
//! before. The customer's answer is recorded on the version they hold: [`accept`] turns it into
//! an order in the customer's purchase history, [`decline`] keeps it with the reason (the rep
//! may revise and send again). An accepted quote is final. Numbers come from the tenant's
//! pattern (`Q-{YYYY}-{SEQ:6}` unless set), without gaps or repeats under concurrency.
//!
//! Quotes follow their deal's owner and team for permissions (module `quotes`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::accounts::Account;
use guanxi_customers::contacts::Contact;
use guanxi_customers::orders::{self, LineInput as OrderLineInput, OrderInput};
use guanxi_customers::products;
use guanxi_platform::db::{Conn, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{approvals, args, audit, numbering, validate, version, Ctx, Error};
use guanxi_records::record::{self, apply_text, plain, Record};
use guanxi_records::{shares, Entity, EntityDef};

use crate::opportunities::{self, Opportunity};
use crate::price_books::{self, Buyer};
use crate::pricing::{self, Candidate, LineIn};

/// Quotes as the record machinery names them (permissions, audit, links).
pub const ENTITY: Entity = Entity::declare(&EntityDef {
    table: "quotes",
    path: "/quotes",
    shared: false,
    title: "number",
});

pub const STATUSES: &[&str] = &["draft", "sent", "accepted", "declined"];
/// The numbering a tenant may set (`PUT /api/v1/numbering/quotes`).
pub const NUMBERING: &str = "quotes";
pub const DEFAULT_PATTERN: &str = "Q-{YYYY}-{SEQ:6}";
/// The most lines a quote holds.
pub const MAX_LINES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct QuoteLine {
    pub line_no: i64,
    pub product_id: Option<Uuid>,
    pub sku: Option<String>,
    pub name: String,
    pub unit: Option<String>,
    pub quantity: i64,
    /// The price the price books give this customer (minor units): the reference a discount is
    /// measured against.
    pub book_price: i64,
    /// The book that price came from; `null` for the product's list price.
    pub book_id: Option<Uuid>,
    pub book_name: Option<String>,
    /// The price offered, minor units.
    pub unit_price: i64,
    /// The line's discount, basis points.
    pub discount_bp: i64,
    /// VAT, basis points.
    pub tax_rate: i64,
    /// `quantity × unit_price`.
    pub gross: i64,
    /// The line's discount plus its share of the discount on the total.
    pub discount: i64,
    pub net: i64,
    pub tax: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Quote {
    pub id: Uuid,
    pub number: String,
    pub opportunity_id: Uuid,
    pub opportunity_name: Option<String>,
    pub account_id: Uuid,
    pub account_name: Option<String>,
    /// The customer's grade now (A–E), for quoting them knowingly.
    pub account_grade: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub owner_id: Uuid,
    pub owner_name: Option<String>,
    pub team_id: Option<Uuid>,
    /// `draft` (never sent), `sent` (a version is with the customer), `accepted` (final) or
    /// `declined`.
    pub status: String,
    /// The version the customer holds (the last sent); `null` before the first send.
    pub sent_version: Option<i64>,
    /// Whether the working copy differs from the version sent (a revision being drafted).
    pub edited: bool,
    pub currency: String,
    /// Last day the offer holds (`YYYY-MM-DD`).
    pub valid_until: Option<String>,
    pub payment_terms: Option<String>,
    pub delivery_terms: Option<String>,
    pub notes: Option<String>,
    /// The discount on the total, basis points.
    pub discount_bp: i64,
    /// Σ quantity × book price: what the price books would charge.
    pub book_gross: i64,
    pub gross: i64,
    pub discount: i64,
    /// Before VAT.
    pub net: i64,
    pub tax: i64,
    /// What the customer pays.
    pub total: i64,
    /// How far the net is below the book prices, basis points (approval rules read it).
    #[sqlx(skip)]
    pub effective_discount_bp: i64,
    /// The order an accepted quote became.
    pub order_id: Option<Uuid>,
    /// The quote's latest approval request (`/api/v1/approvals/{id}`), and where it stands
    /// (`pending` locks the quote; `approved` clears it to be sent at the version approved).
    pub approval_id: Option<Uuid>,
    pub approval_status: Option<String>,
    #[sqlx(skip)]
    pub lines: Vec<QuoteLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QuoteLineInput)]
pub struct LineInput {
    /// A catalogue product, or its `sku`; or neither, with `name` and `unit_price`.
    pub product_id: Option<Uuid>,
    pub sku: Option<String>,
    /// Default: the product's name.
    pub name: Option<String>,
    /// Default 1.
    pub quantity: Option<i64>,
    /// Minor units; default the price book's price for this customer (or the list price).
    pub unit_price: Option<i64>,
    /// Basis points, 0–10000; default 0.
    pub discount_bp: Option<i64>,
    /// VAT in basis points; default the product's rate (0 without a product).
    pub tax_rate: Option<i64>,
}

/// Create a quote for a deal, or change its working copy. On update absent fields stay, `null`
/// clears one, and `lines` replaces every line (re-priced from the books).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    /// The deal (create only).
    pub opportunity_id: Option<Uuid>,
    /// Default: the deal's contact.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub valid_until: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub payment_terms: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub delivery_terms: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// Discount on the total, basis points 0–10000.
    pub discount_bp: Option<i64>,
    /// At most 200. On create, default: one line for the deal's amount.
    pub lines: Option<Vec<LineInput>>,
}

/// The customer's answer to the version they hold.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The quote's version as read (optional): a quote changed since is refused (412).
    pub version: Option<i64>,
    /// The version answered (required): must be the one sent last.
    pub version_no: Option<i64>,
    /// Why (a decline's reason, or a note on the acceptance).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuoteFilter {
    /// Part of the number, the deal's or the customer's name.
    pub q: Option<String>,
    /// `draft`, `sent`, `accepted`, `declined` (several comma-separated).
    pub status: Option<String>,
    pub opportunity_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    /// `-updated_at` (default), `updated_at`, `number` or `total`.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One sent version, frozen.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct QuoteVersion {
    pub version_no: i64,
    /// `live` (with the customer), `superseded`, `accepted` or `declined`.
    pub status: String,
    pub total: i64,
    pub valid_until: Option<String>,
    /// Everything as sent: lines, totals, terms, the customer and the seller.
    #[schema(value_type = Object)]
    pub snapshot: sqlx::types::Json<Snapshot>,
    pub sent_at: DateTime<Utc>,
    pub sent_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub reason: Option<String>,
}

/// The party on either side of a quote, as it was when sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = QuoteParty)]
pub struct Party {
    pub name: String,
    pub person: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// 统一社会信用代码 (the customer's).
    pub credit_code: Option<String>,
}

/// A version's content: what the customer received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    pub number: String,
    pub version_no: i64,
    pub opportunity_name: String,
    pub currency: String,
    pub lines: Vec<QuoteLine>,
    pub discount_bp: i64,
    pub gross: i64,
    pub discount: i64,
    pub net: i64,
    pub tax: i64,
    pub total: i64,
    pub valid_until: Option<String>,
    pub payment_terms: Option<String>,
    pub delivery_terms: Option<String>,
    pub notes: Option<String>,
    pub customer: Party,
    pub seller: Party,
    pub sent_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT q.id, q.number, q.opportunity_id, d.name AS opportunity_name,
    q.account_id, a.name AS account_name, a.grade AS account_grade, q.contact_id, c.name AS contact_name, q.owner_id,
    o.name AS owner_name, q.team_id, q.status, q.sent_version, q.edited, q.currency,
    q.valid_until, q.payment_terms, q.delivery_terms, q.notes, q.discount_bp, q.book_gross,
    q.gross, q.discount, q.net, q.tax, q.total, q.order_id, q.created_at, q.updated_at, q.version,
    (SELECT ar.id FROM approval_requests ar WHERE ar.tenant_id = q.tenant_id AND ar.entity = 'quotes'
        AND ar.record_id = q.id ORDER BY ar.submitted_at DESC, ar.id DESC LIMIT 1) AS approval_id,
    (SELECT ar.status FROM approval_requests ar WHERE ar.tenant_id = q.tenant_id AND ar.entity = 'quotes'
        AND ar.record_id = q.id ORDER BY ar.submitted_at DESC, ar.id DESC LIMIT 1) AS approval_status
    FROM quotes q
    LEFT JOIN opportunities d ON d.tenant_id = q.tenant_id AND d.id = q.opportunity_id
    LEFT JOIN accounts a ON a.tenant_id = q.tenant_id AND a.id = q.account_id
    LEFT JOIN contacts c ON c.tenant_id = q.tenant_id AND c.id = q.contact_id
    LEFT JOIN users o ON o.tenant_id = q.tenant_id AND o.id = q.owner_id";

const SORTS: &[SortField] = &[
    ("updated_at", "q.updated_at", SortKind::Time),
    ("number", "q.number", SortKind::Text),
    ("total", "q.total", SortKind::Int),
];

impl Record for Quote {
    const ENTITY: Entity = ENTITY;
    fn select_one() -> String {
        format!("{SELECT} WHERE q.tenant_id = $1 AND q.id = $2")
    }
    fn owner(&self) -> Option<Uuid> {
        Some(self.owner_id)
    }
    fn team(&self) -> Option<Uuid> {
        self.team_id
    }
    fn in_trash(&self) -> bool {
        false
    }
    fn shared_through(&self) -> Option<(Entity, Uuid)> {
        Some((crate::opportunities::ENTITY, self.opportunity_id))
    }
}

async fn lines_of(conn: impl Into<Conn<'_>>, tenant: Uuid, id: Uuid) -> Result<Vec<QuoteLine>> {
    conn.into()
        .fetch_all(
            "SELECT line_no, product_id, sku, name, unit, quantity, book_price, book_id, book_name,
             unit_price, discount_bp, tax_rate, gross, discount, net, tax, total
         FROM quote_lines WHERE tenant_id = $1 AND quote_id = $2 ORDER BY line_no",
            args![tenant, id],
        )
        .await
}

fn finish(mut q: Quote, lines: Vec<QuoteLine>) -> Quote {
    q.effective_discount_bp = pricing::effective_discount(q.book_gross, q.net);
    q.lines = lines;
    q
}

/// A quote with its lines, with no permission check.
async fn load(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<Quote> {
    let q: Quote = record::load(tx, tenant, id).await?;
    let lines = lines_of(tx, tenant, id).await?;
    Ok(finish(q, lines))
}

/// A quote the caller may change (`action`), with its lines.
async fn load_for(tx: &mut Tx, ctx: &Ctx, id: Uuid, action: Action) -> Result<Quote> {
    let q: Quote = record::load_for(tx, ctx, id, action).await?;
    let lines = lines_of(tx, ctx.tenant_id, id).await?;
    Ok(finish(q, lines))
}

/// Quotes whose number is `q` (rank 0), starts so (1) or holds it (3), for the search box:
/// nothing unless `q` has a digit (numbers do; names are the records' search).
pub async fn search_hits(
    db: &Db,
    ctx: &Ctx,
    q: &str,
    limit: i64,
) -> Result<Vec<guanxi_records::search::SearchHit>> {
    let term = q.trim().to_uppercase();
    let Some(scope) = ctx.can("quotes", Action::Read) else {
        return Ok(vec![]);
    };
    if term.chars().count() < 2
        || term.chars().count() > 40
        || !term.chars().any(|c| c.is_ascii_digit())
    {
        return Ok(vec![]);
    }
    let contains = record::like_pattern(&term);
    let starts = contains[1..].to_owned();
    let mut sql = Sql::new(
        "SELECT 'quote' AS kind, q.id, q.number AS name, a.name AS detail,
             CAST(NULL AS TEXT) AS phone, CAST(NULL AS TEXT) AS email,
             CAST(CASE WHEN UPPER(q.number) = ",
    );
    sql.bind(term.as_str());
    sql.push(" THEN 0 WHEN UPPER(q.number) LIKE ").bind(starts);
    sql.push(
        " ESCAPE '\\' THEN 1 ELSE 3 END AS BIGINT) AS rank
         FROM quotes q JOIN accounts a ON a.tenant_id = q.tenant_id AND a.id = q.account_id
         WHERE q.tenant_id = ",
    );
    sql.bind(ctx.tenant_id);
    sql.push(" AND UPPER(q.number) LIKE ").bind(contains);
    sql.push(" ESCAPE '\\'");
    ctx.scope_sql(&mut sql, scope, "q.owner_id", "q.team_id");
    sql.push(" ORDER BY rank, q.number DESC LIMIT ")
        .bind(limit.clamp(1, 50));
    db.fetch_sql(sql).await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Quote> {
    let q: Quote = record::get(db, ctx, id).await?;
    let lines = lines_of(db, ctx.tenant_id, id).await?;
    Ok(finish(q, lines))
}

/// The quote of a deal, if it has one the caller may read.
pub async fn of_opportunity(db: &Db, ctx: &Ctx, opportunity: Uuid) -> Result<Option<Quote>> {
    let id: Option<(Uuid,)> = db
        .fetch_optional(
            "SELECT id FROM quotes WHERE tenant_id = $1 AND opportunity_id = $2",
            args![ctx.tenant_id, opportunity],
        )
        .await?;
    match id {
        Some((id,)) => match get(db, ctx, id).await {
            Ok(q) => Ok(Some(q)),
            Err(Error::NotFound | Error::Forbidden) => Ok(None),
            Err(e) => Err(e),
        },
        None => Ok(None),
    }
}

pub async fn list(db: &Db, ctx: &Ctx, f: &QuoteFilter) -> Result<Page<Quote>> {
    let scope = ctx.require("quotes", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: Some(f.sort.clone().unwrap_or_else(|| "-updated_at".into())),
    };
    let sort = page.sort(SORTS)?;
    let mut q = Sql::new(SELECT);
    q.push(" WHERE q.tenant_id = ").bind(ctx.tenant_id);
    // As reading one by id: the caller's scope, or a share of its deal.
    shares::scope_sql_through(
        ctx,
        &mut q,
        scope,
        "q",
        crate::opportunities::ENTITY,
        "q.opportunity_id",
    );
    record::one_of(&mut q, "q.status", "status", f.status.as_deref(), STATUSES)?;
    if let Some(id) = f.opportunity_id {
        q.push(" AND q.opportunity_id = ").bind(id);
    }
    if let Some(id) = f.account_id {
        q.push(" AND q.account_id = ").bind(id);
    }
    if let Some(id) = f.owner_id {
        q.push(" AND q.owner_id = ").bind(id);
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let text = guanxi_records::normalize::text(text, 100)
            .map_err(|c| Error::field("q", c))?
            .unwrap_or_default();
        // Case-insensitive on both databases (`q-2026` finds `Q-2026-000001`).
        let like = format!("%{}%", text.replace(['%', '_'], "").to_lowercase());
        q.push(" AND (LOWER(q.number) LIKE ").bind(like.clone());
        q.push(" OR LOWER(d.name) LIKE ").bind(like.clone());
        q.push(" OR LOWER(a.name) LIKE ").bind(like).push(")");
    }
    let limit = page.apply(&mut q, &sort, "q.id")?;
    let rows: Vec<Quote> = db.fetch_sql(q).await?;
    let rows = rows.into_iter().map(|r| finish(r, vec![])).collect();
    Ok(Page::from_rows(rows, limit, |r: &Quote| {
        let v = match &*sort.field {
            "number" => r.number.clone(),
            "total" => r.total.to_string(),
            _ => guanxi_platform::db::sqlite_time(&r.updated_at),
        };
        sort.cursor(v, r.id)
    }))
}

/// The working copy's fields.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    contact_id: Option<Uuid>,
    valid_until: Option<String>,
    payment_terms: Option<String>,
    delivery_terms: Option<String>,
    notes: Option<String>,
    discount_bp: i64,
    lines: Vec<QuoteLine>,
    totals: pricing::Totals,
    book_gross: i64,
}

impl Fields {
    fn of(q: &Quote) -> Fields {
        Fields {
            contact_id: q.contact_id,
            valid_until: q.valid_until.clone(),
            payment_terms: q.payment_terms.clone(),
            delivery_terms: q.delivery_terms.clone(),
            notes: q.notes.clone(),
            discount_bp: q.discount_bp,
            lines: q.lines.clone(),
            totals: pricing::Totals {
                gross: q.gross,
                discount: q.discount,
                net: q.net,
                tax: q.tax,
                total: q.total,
            },
            book_gross: q.book_gross,
        }
    }
}

/// A line before its money is worked out.
struct Priced {
    product_id: Option<Uuid>,
    sku: Option<String>,
    name: String,
    unit: Option<String>,
    book: pricing::Price,
    line: LineIn,
}

/// Applies `input` to the working copy: contact, terms, and the lines priced for the deal's
/// customer from the books.
async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &QuoteInput,
    f: &mut Fields,
    account: Uuid,
    currency: &str,
) -> Result<()> {
    let mut errs = Errors::default();
    if let Some(c) = input.contact_id {
        f.contact_id = c;
        if let Some(c) = c {
            match record::get::<Contact>(&mut *tx, ctx, c).await {
                Ok(contact) if contact.deleted_at.is_none() => {}
                Ok(_) | Err(Error::NotFound | Error::Forbidden) => {
                    errs.add("contact_id", "unknown")
                }
                Err(e) => return Err(e),
            }
        }
    }
    match &input.valid_until {
        Some(Some(raw)) if !raw.trim().is_empty() => match price_books::day(raw) {
            Ok(d) => f.valid_until = Some(d.format("%Y-%m-%d").to_string()),
            Err(c) => errs.add("valid_until", c),
        },
        Some(_) => f.valid_until = None,
        None => {}
    }
    apply_text(
        &mut errs,
        "payment_terms",
        &input.payment_terms,
        &mut f.payment_terms,
        plain(2_000),
    );
    apply_text(
        &mut errs,
        "delivery_terms",
        &input.delivery_terms,
        &mut f.delivery_terms,
        plain(2_000),
    );
    apply_text(
        &mut errs,
        "notes",
        &input.notes,
        &mut f.notes,
        plain(10_000),
    );
    if let Some(bp) = input.discount_bp {
        if (0..=pricing::FULL).contains(&bp) {
            f.discount_bp = bp;
        } else {
            errs.add("discount_bp", "out_of_range");
        }
    }
    let mut priced: Option<Vec<Priced>> = None;
    if let Some(lines) = &input.lines {
        if lines.len() > MAX_LINES {
            errs.add("lines", "too_long");
            return errs.finish();
        }
        priced = Some(price_lines(tx, ctx, &mut errs, lines, account, currency).await?);
    }
    errs.finish()?;
    let priced = match priced {
        Some(p) => p,
        // Terms or the total discount changed: the lines keep their prices.
        None => f
            .lines
            .iter()
            .map(|l| Priced {
                product_id: l.product_id,
                sku: l.sku.clone(),
                name: l.name.clone(),
                unit: l.unit.clone(),
                book: pricing::Price {
                    unit_price: l.book_price,
                    book_id: l.book_id,
                    book_name: l.book_name.clone(),
                    min_quantity: 1,
                },
                line: LineIn {
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    discount_bp: l.discount_bp,
                    tax_rate: l.tax_rate,
                },
            })
            .collect(),
    };
    let ins: Vec<LineIn> = priced.iter().map(|p| p.line.clone()).collect();
    let (money, totals) = pricing::compute(&ins, f.discount_bp).map_err(|r| match r {
        pricing::Refused::Line(i) => Error::field(&format!("lines[{i}].quantity"), "out_of_range"),
        pricing::Refused::Discount => Error::field("discount_bp", "out_of_range"),
        pricing::Refused::Overflow => Error::field("lines", "out_of_range"),
    })?;
    if totals.total > opportunities::MAX_AMOUNT {
        return Err(Error::field("lines", "out_of_range"));
    }
    let mut book_gross: i64 = 0;
    f.lines = priced
        .into_iter()
        .zip(money)
        .enumerate()
        .map(|(i, (p, m))| {
            book_gross =
                book_gross.saturating_add(p.line.quantity.saturating_mul(p.book.unit_price));
            QuoteLine {
                line_no: i as i64 + 1,
                product_id: p.product_id,
                sku: p.sku,
                name: p.name,
                unit: p.unit,
                quantity: p.line.quantity,
                book_price: p.book.unit_price,
                book_id: p.book.book_id,
                book_name: p.book.book_name,
                unit_price: p.line.unit_price,
                discount_bp: p.line.discount_bp,
                tax_rate: p.line.tax_rate,
                gross: m.gross,
                discount: m.discount,
                net: m.net,
                tax: m.tax,
                total: m.total,
            }
        })
        .collect();
    f.totals = totals;
    f.book_gross = book_gross;
    Ok(())
}

/// Resolves each line's product and prices it for the customer from the books.
async fn price_lines(
    tx: &mut Tx,
    ctx: &Ctx,
    errs: &mut Errors,
    lines: &[LineInput],
    account: Uuid,
    currency: &str,
) -> Result<Vec<Priced>> {
    let refs: Vec<_> = lines
        .iter()
        .map(|l| (l.product_id, l.sku.as_deref()))
        .collect();
    let found = products::resolve(&mut *tx, ctx.tenant_id, &refs).await?;
    for (i, (l, p)) in lines.iter().zip(&found).enumerate() {
        let sku_given = l.sku.as_deref().is_some_and(|s| !s.trim().is_empty());
        match (p, l.product_id) {
            (None, Some(_)) => errs.add(&format!("lines[{i}].product_id"), "unknown"),
            (None, None) if sku_given => errs.add(&format!("lines[{i}].sku"), "unknown"),
            _ => {}
        }
    }
    let customer: Account = record::load(&mut *tx, ctx.tenant_id, account).await?;
    let buyer = Buyer::of(&customer, "sales", currency);
    let ids: Vec<Uuid> = found.iter().flatten().map(|p| p.id).collect();
    let candidates = price_books::candidates(&mut *tx, ctx.tenant_id, &buyer, &ids).await?;
    let today = now().date_naive();
    let mut out = Vec::with_capacity(lines.len());
    for (i, (l, p)) in lines.iter().zip(found).enumerate() {
        let at = |field: &str| format!("lines[{i}].{field}");
        let quantity = l.quantity.unwrap_or(1);
        if !(1..=1_000_000_000).contains(&quantity) {
            errs.add(&at("quantity"), "out_of_range");
        }
        let book = p.as_ref().and_then(|p| {
            let cs: Vec<Candidate> = candidates
                .iter()
                .filter(|(id, _)| *id == p.id)
                .map(|(_, c)| c.clone())
                .collect();
            // The list price counts only in the quote's currency.
            let list = (p.currency == currency).then_some(p.list_price);
            match (cs.is_empty(), list) {
                (true, None) => None,
                (_, list) => Some(pricing::pick(&cs, quantity, today, list.unwrap_or(0))),
            }
        });
        let unit_price = match (l.unit_price, &book) {
            (Some(u), _) => u,
            (None, Some(b)) => b.unit_price,
            (None, None) => {
                errs.add(&at("unit_price"), "required");
                0
            }
        };
        if !(0..=opportunities::MAX_AMOUNT).contains(&unit_price) {
            errs.add(&at("unit_price"), "out_of_range");
        }
        let discount_bp = l.discount_bp.unwrap_or(0);
        if !(0..=pricing::FULL).contains(&discount_bp) {
            errs.add(&at("discount_bp"), "out_of_range");
        }
        let tax_rate = l
            .tax_rate
            .unwrap_or_else(|| p.as_ref().map(|p| p.tax_rate).unwrap_or(0));
        if !(0..=pricing::FULL).contains(&tax_rate) {
            errs.add(&at("tax_rate"), "out_of_range");
        }
        let name = l
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| validate::name(n).map_err(|c| (c, n)))
            .transpose();
        let name = match name {
            Ok(Some(n)) if n.chars().count() <= 200 => Some(n),
            Ok(Some(_)) => {
                errs.add(&at("name"), "too_long");
                None
            }
            Ok(None) => p.as_ref().map(|p| p.name.clone()),
            Err((c, _)) => {
                errs.add(&at("name"), c);
                None
            }
        };
        let Some(name) = name else {
            if p.is_some() || l.product_id.is_none() && l.sku.is_none() {
                errs.add(&at("name"), "required");
            }
            continue;
        };
        out.push(Priced {
            product_id: p.as_ref().map(|p| p.id),
            sku: p.as_ref().map(|p| p.sku.clone()),
            unit: p.as_ref().and_then(|p| p.unit.clone()),
            name,
            book: book.unwrap_or(pricing::Price {
                unit_price,
                book_id: None,
                book_name: None,
                min_quantity: 1,
            }),
            line: LineIn {
                quantity,
                unit_price,
                discount_bp,
                tax_rate,
            },
        });
    }
    Ok(out)
}

async fn write_lines(tx: &mut Tx, tenant: Uuid, id: Uuid, lines: &[QuoteLine]) -> Result<()> {
    tx.execute(
        "DELETE FROM quote_lines WHERE tenant_id = $1 AND quote_id = $2",
        args![tenant, id],
    )
    .await?;
    if lines.is_empty() {
        return Ok(());
    }
    let rows = lines
        .iter()
        .map(|l| {
            args![
                tenant,
                id,
                l.line_no,
                l.product_id,
                l.sku.clone(),
                l.name.as_str(),
                l.unit.clone(),
                l.quantity,
                l.book_price,
                l.book_id,
                l.book_name.clone(),
                l.unit_price,
                l.discount_bp,
                l.tax_rate,
                l.gross,
                l.discount,
                l.net,
                l.tax,
                l.total
            ]
        })
        .collect();
    tx.insert_rows(
        "quote_lines",
        &[
            "tenant_id",
            "quote_id",
            "line_no",
            "product_id",
            "sku",
            "name",
            "unit",
            "quantity",
            "book_price",
            "book_id",
            "book_name",
            "unit_price",
            "discount_bp",
            "tax_rate",
            "gross",
            "discount",
            "net",
            "tax",
            "total",
        ],
        rows,
    )
    .await?;
    Ok(())
}

/// Opens the quote of a deal (one per deal: a second is refused with `opportunity_id: taken`).
pub async fn create(db: &Db, ctx: &Ctx, input: QuoteInput) -> Result<Quote> {
    ctx.require("quotes", Action::Create)?;
    let Some(deal_id) = input.opportunity_id else {
        return Err(Error::field("opportunity_id", "required"));
    };
    let mut tx = db.begin().await?;
    let deal = match record::get::<Opportunity>(&mut tx, ctx, deal_id).await {
        Ok(d) if d.deleted_at.is_none() => d,
        Ok(_) | Err(Error::NotFound | Error::Forbidden) => {
            return Err(Error::field("opportunity_id", "unknown"))
        }
        Err(e) => return Err(e),
    };
    record::check_create_scope(ctx, "quotes", Some(deal.owner_id), deal.team_id)
        .map_err(|_| Error::Forbidden)?;
    let mut f = Fields {
        contact_id: deal.contact_id,
        valid_until: None,
        payment_terms: None,
        delivery_terms: None,
        notes: None,
        discount_bp: 0,
        lines: vec![],
        totals: pricing::Totals::default(),
        book_gross: 0,
    };
    let mut input = input;
    if input.lines.is_none() && deal.amount > 0 {
        input.lines = Some(vec![LineInput {
            name: Some(deal.name.clone()),
            unit_price: Some(deal.amount),
            ..Default::default()
        }]);
    }
    apply(
        &mut tx,
        ctx,
        &input,
        &mut f,
        deal.account_id,
        &deal.currency,
    )
    .await?;
    let id = new_id();
    let t = now();
    // A number the tenant's pattern already gave by hand (a changed pattern can produce one)
    // is skipped, never reported as the caller's mistake.
    let mut attempt = 0;
    loop {
        let number = numbering::next(&mut tx, ctx.tenant_id, NUMBERING, DEFAULT_PATTERN).await?;
        tx.execute("SAVEPOINT quote_number", vec![]).await?;
        let r = tx
            .execute(
                "INSERT INTO quotes (tenant_id, id, number, opportunity_id, account_id, contact_id,
                     owner_id, team_id, status, sent_version, edited, currency, valid_until,
                     payment_terms, delivery_terms, notes, discount_bp, book_gross, gross, discount,
                     net, tax, total, order_id, created_at, updated_at, created_by, updated_by, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'draft', NULL, $9, $10, $11, $12, $13, $14,
                     $15, $16, $17, $18, $19, $20, $21, NULL, $22, $23, $24, $25, 1)",
                args![
                    ctx.tenant_id, id, number.as_str(), deal.id, deal.account_id, f.contact_id,
                    deal.owner_id, deal.team_id, false, deal.currency.as_str(), f.valid_until.clone(),
                    f.payment_terms.clone(), f.delivery_terms.clone(), f.notes.clone(), f.discount_bp,
                    f.book_gross, f.totals.gross, f.totals.discount, f.totals.net, f.totals.tax,
                    f.totals.total, t, t, ctx.user_id, ctx.user_id
                ],
            )
            .await;
        match r {
            Ok(_) => {
                tx.execute("RELEASE SAVEPOINT quote_number", vec![]).await?;
                break;
            }
            Err(Error::Conflict(_)) => {
                tx.execute("ROLLBACK TO SAVEPOINT quote_number", vec![])
                    .await?;
                let has: i64 = tx
                    .scalar(
                        "SELECT COUNT(*) FROM quotes WHERE tenant_id = $1 AND opportunity_id = $2",
                        args![ctx.tenant_id, deal.id],
                    )
                    .await?;
                if has > 0 {
                    return Err(Error::field("opportunity_id", "taken"));
                }
                attempt += 1;
                if attempt > 20 {
                    return Err(Error::field("number", "taken"));
                }
            }
            Err(e) => return Err(e),
        }
    }
    write_lines(&mut tx, ctx.tenant_id, id, &f.lines).await?;
    let q = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(&mut tx, ctx, "create", "quotes", Some(id), None, Some(&q)).await?;
    tx.commit().await?;
    Ok(q)
}

/// Refuses a change to an accepted quote (final) or one waiting for approval (locked).
fn unlocked(q: &Quote) -> Result<()> {
    if q.status == "accepted" {
        return Err(Error::Conflict(
            "the quote was accepted: it is final (its order is in the purchase history)".into(),
        ));
    }
    if q.approval_status.as_deref() == Some("pending") {
        return Err(Error::Conflict(
            "the quote is waiting for approval: it is locked until decided or recalled".into(),
        ));
    }
    Ok(())
}

/// What approval conditions test on a quote: how far below the book prices it is (basis
/// points), its total and net (minor units).
pub fn facts(q: &Quote) -> BTreeMap<String, i64> {
    [
        ("discount_bp".to_owned(), q.effective_discount_bp),
        ("total".to_owned(), q.total),
        ("net".to_owned(), q.net),
    ]
    .into()
}

/// Submits the quote for approval by the process its facts call for (`approval:
/// not_required` when none does); it stays locked until the request is decided or recalled.
pub async fn submit(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    comment: Option<String>,
) -> Result<approvals::Request> {
    let mut tx = db.begin().await?;
    let q = load_for(&mut tx, ctx, id, Action::Update).await?;
    if let Some(v) = if_match {
        version::check(v, q.version)?;
    }
    unlocked(&q)?;
    if q.lines.is_empty() {
        return Err(Error::field("lines", "required"));
    }
    let r = approvals::submit(
        &mut tx,
        ctx,
        approvals::Submission {
            entity: "quotes",
            record_id: id,
            record_version: q.version,
            title: q.number.clone(),
            link: ENTITY.link(id),
            facts: facts(&q),
            comment,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

/// Changes the working copy. A quote already sent stays with the customer as sent until the
/// revision is sent (`edited` says one is being drafted).
pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: QuoteInput,
) -> Result<Quote> {
    let expected = version::expected(if_match, input.version)?;
    if input.opportunity_id.is_some() {
        return Err(Error::field("opportunity_id", "read_only"));
    }
    let mut tx = db.begin().await?;
    let before = load_for(&mut tx, ctx, id, Action::Update).await?;
    version::check(expected, before.version)?;
    unlocked(&before)?;
    let mut f = Fields::of(&before);
    apply(
        &mut tx,
        ctx,
        &input,
        &mut f,
        before.account_id,
        &before.currency,
    )
    .await?;
    if f == Fields::of(&before) {
        return Ok(before);
    }
    version::update(
        &mut tx,
        version::Row {
            table: "quotes",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "contact_id = $1, valid_until = $2, payment_terms = $3, delivery_terms = $4, notes = $5,
             discount_bp = $6, book_gross = $7, gross = $8, discount = $9, net = $10, tax = $11,
             total = $12, edited = $13, updated_at = $14, updated_by = $15",
        args![
            f.contact_id,
            f.valid_until.clone(),
            f.payment_terms.clone(),
            f.delivery_terms.clone(),
            f.notes.clone(),
            f.discount_bp,
            f.book_gross,
            f.totals.gross,
            f.totals.discount,
            f.totals.net,
            f.totals.tax,
            f.totals.total,
            before.sent_version.is_some(),
            now(),
            ctx.user_id
        ],
    )
    .await?;
    if f.lines != before.lines {
        write_lines(&mut tx, ctx.tenant_id, id, &f.lines).await?;
    }
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "quotes",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a quote never sent (a sent one is part of what the customer was told: it stays).
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = load_for(&mut tx, ctx, id, Action::Delete).await?;
    unlocked(&before)?;
    if before.sent_version.is_some() {
        return Err(Error::Conflict(
            "a quote that was sent stays on record; revise it instead".into(),
        ));
    }
    tx.execute(
        "DELETE FROM quote_lines WHERE tenant_id = $1 AND quote_id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    // Deleted meanwhile by another request (PostgreSQL lets both read it): not found.
    let gone = tx
        .execute(
            "DELETE FROM quotes WHERE tenant_id = $1 AND id = $2 AND sent_version IS NULL",
            args![ctx.tenant_id, id],
        )
        .await?;
    if gone != 1 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "quotes",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}

async fn customer_party(tx: &mut Tx, ctx: &Ctx, q: &Quote) -> Result<Party> {
    let a: Account = record::load(tx, ctx.tenant_id, q.account_id).await?;
    let contact: Option<Contact> = match q.contact_id {
        Some(c) => Some(record::load(tx, ctx.tenant_id, c).await?),
        None => None,
    };
    let address = [
        a.province.clone(),
        a.city.clone(),
        a.district.clone(),
        a.address.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    Ok(Party {
        name: a.name.clone(),
        person: contact.as_ref().map(|c| c.name.clone()),
        phone: contact
            .as_ref()
            .and_then(|c| c.phone.clone())
            .or(a.phone.clone()),
        email: contact
            .as_ref()
            .and_then(|c| c.email.clone())
            .or(a.email.clone()),
        address: (!address.is_empty()).then_some(address),
        credit_code: a.credit_code.clone(),
    })
}

async fn seller_party(tx: &mut Tx, ctx: &Ctx, q: &Quote) -> Result<Party> {
    let company: String = tx
        .scalar(
            "SELECT name FROM tenants WHERE id = $1",
            args![ctx.tenant_id],
        )
        .await?;
    let rep: Option<(String, String)> = tx
        .fetch_optional(
            "SELECT name, email FROM users WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, q.owner_id],
        )
        .await?;
    Ok(Party {
        name: company,
        person: rep.as_ref().map(|r| r.0.clone()),
        email: rep.map(|r| r.1),
        ..Default::default()
    })
}

/// Sends the working copy as the next version: frozen, with the customer and seller as they
/// are now; the version before is superseded, and the deal's amount becomes the quote's net total
/// (before VAT).
pub async fn send(db: &Db, ctx: &Ctx, id: Uuid, if_match: Option<i64>) -> Result<Quote> {
    let mut tx = db.begin().await?;
    let before = load_for(&mut tx, ctx, id, Action::Update).await?;
    let expected = version::expected(if_match, None)?;
    version::check(expected, before.version)?;
    unlocked(&before)?;
    if before.sent_version.is_some() && !before.edited {
        return Err(Error::Conflict(format!(
            "version {} already holds this quote; change it before sending again",
            before.sent_version.unwrap_or_default()
        )));
    }
    let mut errs = Errors::default();
    if before.lines.is_empty() {
        errs.add("lines", "required");
    }
    // A quote the approval processes call for goes out only as approved, at this version.
    if approvals::applies(&mut tx, ctx.tenant_id, "quotes", &facts(&before))
        .await?
        .is_some()
        && !approvals::cleared(&mut tx, ctx.tenant_id, "quotes", id, before.version).await?
    {
        errs.add("approval", "required");
    }
    let today = now().date_naive().format("%Y-%m-%d").to_string();
    if before
        .valid_until
        .as_deref()
        .is_some_and(|v| v < today.as_str())
    {
        errs.add("valid_until", "past");
    }
    errs.finish()?;
    let no = before.sent_version.unwrap_or(0) + 1;
    let t = now();
    let snapshot = Snapshot {
        number: before.number.clone(),
        version_no: no,
        opportunity_name: before.opportunity_name.clone().unwrap_or_default(),
        currency: before.currency.clone(),
        lines: before.lines.clone(),
        discount_bp: before.discount_bp,
        gross: before.gross,
        discount: before.discount,
        net: before.net,
        tax: before.tax,
        total: before.total,
        valid_until: before.valid_until.clone(),
        payment_terms: before.payment_terms.clone(),
        delivery_terms: before.delivery_terms.clone(),
        notes: before.notes.clone(),
        customer: customer_party(&mut tx, ctx, &before).await?,
        seller: seller_party(&mut tx, ctx, &before).await?,
        sent_at: t,
    };
    // The quote's versioned write first: a second sender of the same version waits on its row
    // and gets 412, never a clash on the version number.
    version::update(
        &mut tx,
        version::Row {
            table: "quotes",
            tenant_id: ctx.tenant_id,
            id,
        },
        before.version,
        "status = 'sent', sent_version = $1, edited = $2, updated_at = $3, updated_by = $4",
        args![no, false, t, ctx.user_id],
    )
    .await?;
    tx.execute(
        "UPDATE quote_versions SET status = 'superseded'
         WHERE tenant_id = $1 AND quote_id = $2 AND status <> 'superseded'",
        args![ctx.tenant_id, id],
    )
    .await?;
    let json = serde_json::to_value(&snapshot).map_err(|e| Error::Internal(e.into()))?;
    tx.execute(
        "INSERT INTO quote_versions (tenant_id, quote_id, version_no, status, total, valid_until,
             snapshot, sent_at, sent_by)
         VALUES ($1, $2, $3, 'live', $4, $5, $6, $7, $8)",
        args![
            ctx.tenant_id,
            id,
            no,
            before.total,
            before.valid_until.clone(),
            json,
            t,
            ctx.user_id
        ],
    )
    .await?;
    // Before VAT, as the order its acceptance makes and the forecast's revenue: a deal's
    // amount never jumps by the tax when its quote is sent.
    opportunities::set_amount_in(&mut tx, ctx, before.opportunity_id, before.net).await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "send",
        "quotes",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The version a decision is about: the one the customer holds, still undecided.
async fn deciding(tx: &mut Tx, ctx: &Ctx, q: &Quote, d: &Decision) -> Result<QuoteVersion> {
    if let Some(v) = d.version {
        version::check(v, q.version)?;
    }
    let Some(no) = d.version_no else {
        return Err(Error::field("version_no", "required"));
    };
    let v: Option<QuoteVersion> = tx
        .fetch_optional(
            &format!("{VERSION_SELECT} WHERE tenant_id = $1 AND quote_id = $2 AND version_no = $3"),
            args![ctx.tenant_id, q.id, no],
        )
        .await?;
    let Some(v) = v else {
        return Err(Error::field("version_no", "unknown"));
    };
    match v.status.as_str() {
        "live" => {}
        "superseded" => return Err(Error::field("version_no", "superseded")),
        _ => return Err(Error::field("version_no", "decided")),
    }
    let today = now().date_naive().format("%Y-%m-%d").to_string();
    if v.valid_until.as_deref().is_some_and(|u| u < today.as_str()) {
        return Err(Error::field("version_no", "expired"));
    }
    Ok(v)
}

fn reason(d: &Decision) -> Result<Option<String>> {
    match d.reason.as_deref() {
        Some(r) => guanxi_records::normalize::text(r, 2_000).map_err(|c| Error::field("reason", c)),
        None => Ok(None),
    }
}

/// Writes the customer's answer (`accepted` with its order, or `declined`) on the quote — its
/// versioned write, so a second answer to the same version gets 412 — and on the version.
async fn answer(
    tx: &mut Tx,
    ctx: &Ctx,
    before: &Quote,
    version_no: i64,
    status: &str,
    reason: Option<String>,
    order: Option<Uuid>,
) -> Result<()> {
    let t = now();
    version::update(
        &mut *tx,
        version::Row {
            table: "quotes",
            tenant_id: ctx.tenant_id,
            id: before.id,
        },
        before.version,
        "status = $1, order_id = $2, updated_at = $3, updated_by = $4",
        args![status, order, t, ctx.user_id],
    )
    .await?;
    tx.execute(
        "UPDATE quote_versions SET status = $1, decided_at = $2, decided_by = $3, reason = $4
         WHERE tenant_id = $5 AND quote_id = $6 AND version_no = $7",
        args![
            status,
            t,
            ctx.user_id,
            reason,
            ctx.tenant_id,
            before.id,
            version_no
        ],
    )
    .await?;
    Ok(())
}

/// Records the customer's acceptance of the version they hold: it becomes an order (lines,
/// prices and discounts as sent; amounts before VAT) in the customer's purchase history.
pub async fn accept(db: &Db, ctx: &Ctx, id: Uuid, d: Decision) -> Result<Quote> {
    let note = reason(&d)?;
    let mut tx = db.begin().await?;
    let before = load_for(&mut tx, ctx, id, Action::Update).await?;
    unlocked(&before)?;
    let v = deciding(&mut tx, ctx, &before, &d).await?;
    let s = &v.snapshot.0;
    let order = orders::create_in(
        &mut tx,
        ctx,
        &OrderInput {
            channel: Some("sales".into()),
            status: Some("confirmed".into()),
            account_id: Some(before.account_id),
            contact_id: before.contact_id,
            currency: Some(s.currency.clone()),
            notes: Some(Some(format!("{} v{}", s.number, s.version_no))),
            lines: Some(
                s.lines
                    .iter()
                    .map(|l| OrderLineInput {
                        product_id: l.product_id,
                        sku: None,
                        name: Some(l.name.clone()),
                        quantity: Some(l.quantity),
                        unit_price: Some(l.unit_price),
                        discount: Some(l.discount),
                    })
                    .collect(),
            ),
            ..Default::default()
        },
    )
    .await?;
    answer(
        &mut tx,
        ctx,
        &before,
        v.version_no,
        "accepted",
        note,
        Some(order.id),
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "accept",
        "quotes",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Records the customer's refusal of the version they hold, with the reason; the rep may
/// revise the quote and send a new version.
pub async fn decline(db: &Db, ctx: &Ctx, id: Uuid, d: Decision) -> Result<Quote> {
    let why = reason(&d)?;
    let mut tx = db.begin().await?;
    let before = load_for(&mut tx, ctx, id, Action::Update).await?;
    unlocked(&before)?;
    let v = deciding(&mut tx, ctx, &before, &d).await?;
    answer(&mut tx, ctx, &before, v.version_no, "declined", why, None).await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "decline",
        "quotes",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

const VERSION_SELECT: &str = "SELECT version_no, status, total, valid_until, snapshot, sent_at,
    sent_by, decided_at, decided_by, reason FROM quote_versions";

/// Versions of a quote the caller may read (`no`: that one), newest first.
async fn versions_where(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    no: Option<i64>,
) -> Result<Vec<QuoteVersion>> {
    record::get::<Quote>(db, ctx, id).await?;
    let mut q = Sql::new(VERSION_SELECT);
    q.push(" WHERE tenant_id = ").bind(ctx.tenant_id);
    q.push(" AND quote_id = ").bind(id);
    if let Some(no) = no {
        q.push(" AND version_no = ").bind(no);
    }
    q.push(" ORDER BY version_no DESC");
    db.fetch_sql(q).await
}

/// Every version sent, newest first.
pub async fn versions(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Vec<QuoteVersion>> {
    versions_where(db, ctx, id, None).await
}

/// One version as sent.
pub async fn version_of(db: &Db, ctx: &Ctx, id: Uuid, no: i64) -> Result<QuoteVersion> {
    versions_where(db, ctx, id, Some(no))
        .await?
        .pop()
        .ok_or(Error::NotFound)
}
