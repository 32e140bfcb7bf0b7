//! Orders and their lines: purchase history from the store, the online shop, the ERP or a
//! sales rep. An order belongs to a customer (account and/or contact) and is seen and changed
//! through that customer: readable by whoever can read the customer, writable within the
//! caller's `orders` scope of the customer's owner. A shop or ERP pushes an order with
//! `(channel, external_id)`: the same order sent twice is stored once, and a changed one is a
//! new version (audited).

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use std::collections::HashMap;

use guanxi_platform::db::{Conn, Db, Sql, Tx, Val};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};

use crate::products;
use guanxi_records::record::{apply_text, plain};

pub const CHANNELS: &[&str] = &["store", "online", "erp", "sales"];
pub const STATUSES: &[&str] = &[
    "draft",
    "confirmed",
    "paid",
    "shipped",
    "completed",
    "cancelled",
    "returned",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct OrderLine {
    pub line_no: i64,
    pub product_id: Option<Uuid>,
    pub sku: Option<String>,
    pub name: String,
    /// Whole units.
    pub quantity: i64,
    /// Minor units (fen).
    pub unit_price: i64,
    /// Minor units, off the line.
    pub discount: i64,
    /// `quantity × unit_price − discount`, minor units.
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Order {
    pub id: Uuid,
    pub number: String,
    /// `store`, `online`, `erp` or `sales`.
    pub channel: String,
    /// The order's id in the shop or ERP that sent it.
    pub external_id: Option<String>,
    /// `draft`, `confirmed`, `paid`, `shipped`, `completed`, `cancelled` or `returned`.
    pub status: String,
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub ordered_at: DateTime<Utc>,
    pub currency: String,
    /// Sum of the lines, minor units.
    pub total: i64,
    pub notes: Option<String>,
    #[sqlx(skip)]
    pub lines: Vec<OrderLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderLineInput)]
pub struct LineInput {
    /// A catalogue product; or give `sku` (looked up) or just `name` and `unit_price`.
    pub product_id: Option<Uuid>,
    pub sku: Option<String>,
    pub name: Option<String>,
    /// Default 1.
    pub quantity: Option<i64>,
    /// Minor units; default the product's list price.
    pub unit_price: Option<i64>,
    /// Minor units; default 0.
    pub discount: Option<i64>,
}

/// Create, update or push an order. On update, absent fields stay; `lines` replaces all lines.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// Required on update (or send `If-Match`); not used by the external-id push.
    pub version: Option<i64>,
    /// Default: generated (`SO-…`), or the external id for pushed orders.
    pub number: Option<String>,
    /// Default `sales`.
    pub channel: Option<String>,
    pub external_id: Option<String>,
    /// Default `confirmed`.
    pub status: Option<String>,
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// Default: now.
    pub ordered_at: Option<DateTime<Utc>>,
    /// ISO 4217, default `CNY`.
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    pub lines: Option<Vec<LineInput>>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderFilter {
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub channel: Option<String>,
    pub status: Option<String>,
    /// Ordered at or after.
    pub from: Option<DateTime<Utc>>,
    /// Ordered before.
    pub to: Option<DateTime<Utc>>,
    /// `-ordered_at` (default), `ordered_at` or `number`.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const SELECT: &str = "SELECT o.id, o.number, o.channel, o.external_id, o.status, o.account_id, a.name AS account_name,
    o.contact_id, c.name AS contact_name, o.ordered_at, o.currency, o.total, o.notes, o.created_at,
    o.updated_at, o.deleted_at, o.version
    FROM orders o
    LEFT JOIN accounts a ON a.tenant_id = o.tenant_id AND a.id = o.account_id
    LEFT JOIN contacts c ON c.tenant_id = o.tenant_id AND c.id = o.contact_id";

const SORTS: &[SortField] = &[
    ("ordered_at", "o.ordered_at", SortKind::Time),
    ("number", "o.number", SortKind::Text),
];

async fn lines_of(
    db_or_tx: LinesFrom<'_>,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, OrderLine)>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(
        "SELECT order_id, line_no, product_id, sku, name, quantity, unit_price, discount, amount
         FROM order_lines WHERE tenant_id = ",
    );
    q.bind(tenant_id)
        .push(" AND order_id IN ")
        .bind_list(ids.iter().copied())
        .push(" ORDER BY order_id, line_no");
    let rows: Vec<LineRow> = match db_or_tx {
        LinesFrom::Db(db) => db.fetch_sql(q).await?,
        LinesFrom::Tx(tx) => tx.fetch_all(&q.sql, q.args).await?,
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.order_id,
                OrderLine {
                    line_no: r.line_no,
                    product_id: r.product_id,
                    sku: r.sku,
                    name: r.name,
                    quantity: r.quantity,
                    unit_price: r.unit_price,
                    discount: r.discount,
                    amount: r.amount,
                },
            )
        })
        .collect())
}

enum LinesFrom<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

#[derive(sqlx::FromRow)]
struct LineRow {
    order_id: Uuid,
    line_no: i64,
    product_id: Option<Uuid>,
    sku: Option<String>,
    name: String,
    quantity: i64,
    unit_price: i64,
    discount: i64,
    amount: i64,
}

fn attach(orders: &mut [Order], lines: Vec<(Uuid, OrderLine)>) {
    for (id, line) in lines {
        if let Some(o) = orders.iter_mut().find(|o| o.id == id) {
            o.lines.push(line);
        }
    }
}

pub async fn list(db: &Db, ctx: &Ctx, f: &OrderFilter) -> Result<Page<Order>> {
    ctx.require("orders", Action::Read)?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: Some(f.sort.clone().unwrap_or_else(|| "-ordered_at".into())),
    };
    let sort = page.sort(SORTS)?;
    let mut q = Sql::new(SELECT);
    q.push(" WHERE o.tenant_id = ").bind(ctx.tenant_id);
    q.push(" AND o.deleted_at IS NULL");
    crate::dependents::customer_visible_sql(&mut q, ctx, "a", "c");
    if let Some(a) = f.account_id {
        q.push(" AND o.account_id = ").bind(a);
    }
    if let Some(c) = f.contact_id {
        q.push(" AND o.contact_id = ").bind(c);
    }
    for (col, v) in [("o.channel", &f.channel), ("o.status", &f.status)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    if let Some(t) = f.from {
        q.push(" AND o.ordered_at >= ").bind(t);
    }
    if let Some(t) = f.to {
        q.push(" AND o.ordered_at < ").bind(t);
    }
    let limit = page.apply(&mut q, &sort, "o.id")?;
    let mut rows: Vec<Order> = db.fetch_sql(q).await?;
    let ids: Vec<Uuid> = rows.iter().map(|o| o.id).collect();
    let lines = lines_of(LinesFrom::Db(db), ctx.tenant_id, &ids).await?;
    attach(&mut rows, lines);
    Ok(Page::from_rows(rows, limit, |o| {
        let v = match &*sort.field {
            "number" => o.number.clone(),
            _ => guanxi_platform::db::sqlite_time(&o.ordered_at),
        };
        sort.cursor(v, o.id)
    }))
}

async fn load(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Order> {
    let mut o: Order = tx
        .fetch_one(
            &format!("{SELECT} WHERE o.tenant_id = $1 AND o.id = $2"),
            args![tenant_id, id],
        )
        .await?;
    o.lines = lines_of(LinesFrom::Tx(tx), tenant_id, &[id])
        .await?
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    Ok(o)
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Order> {
    ctx.require("orders", Action::Read)?;
    let mut tx = db.begin().await?;
    let o = load(&mut tx, ctx.tenant_id, id).await?;
    tx.commit().await?;
    if o.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    crate::dependents::customer_scope(db, ctx, o.account_id, o.contact_id).await?;
    Ok(o)
}

/// Checks the caller may change orders of this customer.
async fn check_write(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    action: Action,
    account: Option<Uuid>,
    contact: Option<Uuid>,
) -> Result<()> {
    crate::dependents::check_customer_write(conn, ctx, "orders", action, account, contact).await
}

/// What validating orders reads besides the input — the customers they name and the products
/// their lines name by SKU — kept for a batch: an import fills it for all its orders with a
/// few queries ([`Known::fill`]); a single order reads each through the database.
#[derive(Default)]
pub struct Known {
    customers: crate::dependents::Customers,
    skus: HashMap<String, Option<products::Product>>,
}

impl Known {
    /// Reads the batch's customers and the live products of these SKUs.
    pub async fn fill(
        &mut self,
        tx: &mut Tx,
        tenant_id: Uuid,
        accounts: &[Uuid],
        contacts: &[Uuid],
        skus: &[String],
    ) -> Result<()> {
        self.customers
            .fill(tx, tenant_id, accounts, contacts)
            .await?;
        for chunk in skus.chunks(200) {
            for sku in chunk {
                self.skus.insert(sku.clone(), None);
            }
            for p in products::by_skus(tx, tenant_id, chunk).await? {
                self.skus.insert(p.sku.clone(), Some(p));
            }
        }
        Ok(())
    }

    async fn sku(
        &mut self,
        tx: &mut Tx,
        tenant_id: Uuid,
        sku: &str,
    ) -> Result<Option<products::Product>> {
        if let Some(p) = self.skus.get(sku) {
            return Ok(p.clone());
        }
        let p = products::by_sku(tx, tenant_id, sku).await?;
        self.skus.insert(sku.to_owned(), p.clone());
        Ok(p)
    }
}

/// The order's editable state, validated as a whole.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    number: String,
    channel: String,
    external_id: Option<String>,
    status: String,
    account_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    ordered_at: DateTime<Utc>,
    currency: String,
    notes: Option<String>,
    lines: Vec<OrderLine>,
}

impl Fields {
    fn of(o: &Order) -> Fields {
        Fields {
            number: o.number.clone(),
            channel: o.channel.clone(),
            external_id: o.external_id.clone(),
            status: o.status.clone(),
            account_id: o.account_id,
            contact_id: o.contact_id,
            ordered_at: o.ordered_at,
            currency: o.currency.clone(),
            notes: o.notes.clone(),
            lines: o.lines.clone(),
        }
    }
    fn total(&self) -> i64 {
        self.lines.iter().map(|l| l.amount).sum()
    }
}

/// One line's amount, refusing overflow and discounts larger than the line.
pub fn line_amount(
    quantity: i64,
    unit_price: i64,
    discount: i64,
) -> std::result::Result<i64, &'static str> {
    if quantity < 1 || unit_price < 0 || discount < 0 {
        return Err("out_of_range");
    }
    let gross = quantity.checked_mul(unit_price).ok_or("out_of_range")?;
    if discount > gross {
        return Err("discount_too_large");
    }
    Ok(gross - discount)
}

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &OrderInput,
    f: &mut Fields,
    known: &mut Known,
) -> Result<()> {
    let mut errs = Errors::default();
    if let Some(n) = &input.number {
        match validate::name(n) {
            Ok(n) if n.chars().count() <= 64 => f.number = n,
            Ok(_) => errs.add("number", "too_long"),
            Err(c) => errs.add("number", c),
        }
    }
    if let Some(c) = &input.channel {
        if CHANNELS.contains(&c.as_str()) {
            f.channel = c.clone();
        } else {
            errs.add("channel", "invalid");
        }
    }
    if let Some(s) = &input.status {
        if STATUSES.contains(&s.as_str()) {
            f.status = s.clone();
        } else {
            errs.add("status", "invalid");
        }
    }
    if let Some(e) = &input.external_id {
        let e = e.trim();
        if e.is_empty() || e.chars().count() > 128 {
            errs.add("external_id", "invalid");
        } else {
            f.external_id = Some(e.to_owned());
        }
    }
    if let Some(c) = &input.currency {
        match products::currency(c) {
            Ok(c) => f.currency = c,
            Err(code) => errs.add("currency", code),
        }
    }
    if let Some(t) = input.ordered_at {
        // As the databases keep it (microseconds).
        f.ordered_at = t.trunc_subsecs(6);
    }
    apply_text(
        &mut errs,
        "notes",
        &input.notes,
        &mut f.notes,
        plain(10_000),
    );
    // The customer: a contact brings its account.
    if input.account_id.is_some() || input.contact_id.is_some() {
        f.account_id = input.account_id;
        f.contact_id = input.contact_id;
        if let Some(c) = input.contact_id {
            match known.customers.contact(&mut *tx, ctx, c).await {
                Ok(contact) => f.account_id = f.account_id.or(contact.account_id),
                Err(Error::NotFound | Error::Forbidden) => errs.add("contact_id", "unknown"),
                Err(e) => return Err(e),
            }
        }
        if let Some(a) = input.account_id {
            match known.customers.account(&mut *tx, ctx, a).await {
                Ok(_) => {}
                Err(Error::NotFound | Error::Forbidden) => errs.add("account_id", "unknown"),
                Err(e) => return Err(e),
            }
        }
    }
    if f.account_id.is_none() && f.contact_id.is_none() {
        errs.add("account_id", "required");
    }
    if let Some(lines) = &input.lines {
        if lines.is_empty() {
            errs.add("lines", "required");
        }
        if lines.len() > 1000 {
            errs.add("lines", "too_long");
        }
        let mut out = Vec::with_capacity(lines.len());
        for (i, l) in lines.iter().enumerate() {
            let at = |field: &str| format!("lines[{i}].{field}");
            let product = match (
                l.product_id,
                l.sku.as_deref().map(str::trim).filter(|s| !s.is_empty()),
            ) {
                (Some(id), _) => match products::load(tx, ctx.tenant_id, id).await {
                    Ok(p) => Some(p),
                    Err(Error::NotFound) => {
                        errs.add(&at("product_id"), "unknown");
                        None
                    }
                    Err(e) => return Err(e),
                },
                (None, Some(sku)) => known.sku(tx, ctx.tenant_id, sku).await?,
                (None, None) => None,
            };
            let name = l
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .or_else(|| product.as_ref().map(|p| p.name.clone()));
            let Some(name) = name else {
                errs.add(&at("name"), "required");
                continue;
            };
            let unit_price = match l.unit_price.or(product.as_ref().map(|p| p.list_price)) {
                Some(p) => p,
                None => {
                    errs.add(&at("unit_price"), "required");
                    continue;
                }
            };
            let quantity = l.quantity.unwrap_or(1);
            let discount = l.discount.unwrap_or(0);
            match line_amount(quantity, unit_price, discount) {
                Ok(amount) => out.push(OrderLine {
                    line_no: i as i64 + 1,
                    product_id: product.as_ref().map(|p| p.id),
                    sku: product
                        .as_ref()
                        .map(|p| p.sku.clone())
                        .or_else(|| l.sku.clone().filter(|s| !s.trim().is_empty())),
                    name,
                    quantity,
                    unit_price,
                    discount,
                    amount,
                }),
                Err(code) => {
                    let field = if code == "discount_too_large" {
                        "discount"
                    } else {
                        "quantity"
                    };
                    errs.add(&at(field), code);
                }
            }
        }
        f.lines = out;
    } else if f.lines.is_empty() {
        errs.add("lines", "required");
    }
    if f.lines
        .iter()
        .map(|l| l.amount)
        .try_fold(0i64, |acc, a| acc.checked_add(a))
        .is_none()
    {
        errs.add("lines", "out_of_range");
    }
    errs.finish()
}

async fn write_lines(tx: &mut Tx, ctx: &Ctx, id: Uuid, lines: &[OrderLine]) -> Result<()> {
    tx.execute(
        "DELETE FROM order_lines WHERE tenant_id = $1 AND order_id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    for l in lines {
        let mut q = Sql::new(LINE_COLUMNS);
        q.bind_list(line_values(ctx, id, l));
        tx.execute(&q.sql, q.args).await?;
    }
    Ok(())
}

const LINE_COLUMNS: &str = "INSERT INTO order_lines (tenant_id, order_id, line_no, product_id, sku,
    name, quantity, unit_price, discount, amount) VALUES ";

fn line_values(ctx: &Ctx, order_id: Uuid, l: &OrderLine) -> [Val; 10] {
    [
        ctx.tenant_id.into(),
        order_id.into(),
        l.line_no.into(),
        l.product_id.into(),
        l.sku.clone().into(),
        l.name.as_str().into(),
        l.quantity.into(),
        l.unit_price.into(),
        l.discount.into(),
        l.amount.into(),
    ]
}

fn generated_number() -> String {
    let id = new_id().simple().to_string();
    format!(
        "SO-{}-{}",
        now().format("%Y%m%d"),
        &id[id.len() - 8..].to_uppercase()
    )
}

async fn insert(
    db: &Db,
    ctx: &Ctx,
    input: &OrderInput,
    next_number: &mut (dyn FnMut() -> String + Send),
) -> Result<Order> {
    let mut tx = db.begin().await?;
    let o = insert_in(&mut tx, ctx, input, next_number).await?;
    tx.commit().await?;
    Ok(o)
}

/// Creates an order inside the caller's transaction (an accepted quote becomes one).
pub async fn create_in(tx: &mut Tx, ctx: &Ctx, input: &OrderInput) -> Result<Order> {
    insert_in(tx, ctx, input, &mut generated_number).await
}

/// An order validated exactly as [`create`] validates it, not yet written: an import collects
/// these and writes them with [`create_many`].
pub struct NewOrder {
    id: Uuid,
    f: Fields,
    /// The number is ours (drawn, not given): drawn again if taken.
    generated: bool,
    /// The customer's names, as the order shows them.
    account_name: Option<String>,
    contact_name: Option<String>,
}

impl NewOrder {
    pub fn number(&self) -> &str {
        &self.f.number
    }
}

/// Validates a new order inside the caller's transaction (`known`: what the batch has read
/// already). Writes nothing.
pub async fn prepare(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &OrderInput,
    known: &mut Known,
) -> Result<NewOrder> {
    prepare_numbered(tx, ctx, input, known, &mut generated_number).await
}

async fn prepare_numbered(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &OrderInput,
    known: &mut Known,
    next_number: &mut (dyn FnMut() -> String + Send),
) -> Result<NewOrder> {
    ctx.require("orders", Action::Create)?;
    let mut f = Fields {
        number: String::new(),
        channel: "sales".into(),
        external_id: None,
        status: "confirmed".into(),
        account_id: None,
        contact_id: None,
        ordered_at: now(),
        currency: "CNY".into(),
        notes: None,
        lines: vec![],
    };
    apply(tx, ctx, input, &mut f, known).await?;
    known
        .customers
        .check_write(
            &mut *tx,
            ctx,
            "orders",
            Action::Create,
            f.account_id,
            f.contact_id,
        )
        .await?;
    // A number the caller did not give is ours to choose: one already taken (32 random bits a
    // day collide about twice in 140,000 orders — the soak found it) is drawn again, never
    // reported as the caller's mistake.
    let generated = f.number.is_empty() && f.external_id.is_none();
    if f.number.is_empty() {
        f.number = f.external_id.clone().unwrap_or_else(&mut *next_number);
    }
    // Both were read by the checks above (a contact brings its account, which the scope reads).
    let account_name = f.account_id.and_then(|a| known.customers.account_name(a));
    let contact_name = f.contact_id.and_then(|c| known.customers.contact_name(c));
    Ok(NewOrder {
        id: new_id(),
        f,
        generated,
        account_name,
        contact_name,
    })
}

impl NewOrder {
    /// The order as stored at `t` (what [`load`] would read back: tested against it).
    fn stored(&self, t: DateTime<Utc>) -> Order {
        let f = &self.f;
        Order {
            id: self.id,
            number: f.number.clone(),
            channel: f.channel.clone(),
            external_id: f.external_id.clone(),
            status: f.status.clone(),
            account_id: f.account_id,
            account_name: self.account_name.clone(),
            contact_id: f.contact_id,
            contact_name: self.contact_name.clone(),
            ordered_at: f.ordered_at,
            currency: f.currency.clone(),
            total: f.total(),
            notes: f.notes.clone(),
            lines: f.lines.clone(),
            created_at: t,
            updated_at: t,
            deleted_at: None,
            version: 1,
        }
    }
}

/// The columns of an order's row, in [`ORDER_COLUMNS`]' order.
fn order_values(ctx: &Ctx, id: Uuid, f: &Fields, t: DateTime<Utc>) -> [Val; 18] {
    [
        ctx.tenant_id.into(),
        id.into(),
        f.number.as_str().into(),
        f.channel.as_str().into(),
        f.external_id.clone().into(),
        f.status.as_str().into(),
        f.account_id.into(),
        f.contact_id.into(),
        f.ordered_at.into(),
        f.currency.as_str().into(),
        f.total().into(),
        f.notes.clone().into(),
        t.into(),
        t.into(),
        ctx.user_id.into(),
        ctx.user_id.into(),
        serde_json::json!({}).into(),
        Val::I64(Some(1)),
    ]
}

const ORDER_COLUMNS: &str =
    "INSERT INTO orders (tenant_id, id, number, channel, external_id, status,
    account_id, contact_id, ordered_at, currency, total, notes, created_at, updated_at, created_by,
    updated_by, custom, version) VALUES ";

async fn insert_in(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &OrderInput,
    next_number: &mut (dyn FnMut() -> String + Send),
) -> Result<Order> {
    let mut new = prepare_numbered(tx, ctx, input, &mut Known::default(), next_number).await?;
    let mut attempt = 0;
    loop {
        if new.generated {
            tx.execute("SAVEPOINT order_number", vec![]).await?;
        }
        match create_many(tx, ctx, std::slice::from_ref(&new)).await {
            Err(Error::Conflict(_)) if new.generated && attempt < 5 => {
                tx.execute("ROLLBACK TO SAVEPOINT order_number", vec![])
                    .await?;
                attempt += 1;
                new.f.number = next_number();
            }
            Err(Error::Conflict(_)) => return Err(Error::field("number", "taken")),
            Err(e) => return Err(e),
            Ok(stored) => {
                if new.generated {
                    tx.execute("RELEASE SAVEPOINT order_number", vec![]).await?;
                }
                return stored.into_iter().next().ok_or(Error::NotFound);
            }
        }
    }
}

/// Writes prepared orders — the order, its lines and a `create` audit event with the stored
/// order — many rows to a statement, and returns them as stored. A number taken meanwhile fails
/// the whole call as a conflict (the caller rolls back, and may write them one at a time).
pub async fn create_many(tx: &mut Tx, ctx: &Ctx, orders: &[NewOrder]) -> Result<Vec<Order>> {
    let t = now();
    for chunk in orders.chunks(40) {
        let mut q = Sql::new(ORDER_COLUMNS);
        for (i, o) in chunk.iter().enumerate() {
            q.push(if i == 0 { "" } else { ", " })
                .bind_list(order_values(ctx, o.id, &o.f, t));
        }
        tx.execute(&q.sql, q.args).await?;
    }
    let lines = orders
        .iter()
        .flat_map(|o| o.f.lines.iter().map(move |l| (o.id, l)));
    let lines: Vec<(Uuid, &OrderLine)> = lines.collect();
    for chunk in lines.chunks(60) {
        let mut q = Sql::new(LINE_COLUMNS);
        for (i, (id, l)) in chunk.iter().enumerate() {
            q.push(if i == 0 { "" } else { ", " })
                .bind_list(line_values(ctx, *id, l));
        }
        tx.execute(&q.sql, q.args).await?;
    }
    // The audit events carry the stored orders: what was written, not read back (reading a
    // batch's orders and lines again cost a third of an import on SQLite).
    let stored: Vec<Order> = orders.iter().map(|o| o.stored(t)).collect();
    let events: Vec<(Uuid, Option<&Order>, Option<&Order>)> =
        stored.iter().map(|o| (o.id, None, Some(o))).collect();
    audit::record_many(tx, ctx, "create", "orders", &events).await?;
    Ok(stored)
}

pub async fn create(db: &Db, ctx: &Ctx, input: OrderInput) -> Result<Order> {
    insert(db, ctx, &input, &mut generated_number).await
}

/// [`create`] with the numbers to draw from when the input names none (the test of a number
/// drawn twice).
pub async fn create_numbered(
    db: &Db,
    ctx: &Ctx,
    input: OrderInput,
    next_number: &mut (dyn FnMut() -> String + Send),
) -> Result<Order> {
    insert(db, ctx, &input, next_number).await
}

/// Applies `input` to an existing order. `expected` is the version the caller read; `None`
/// (the external push) takes whatever is stored. Returns the order and whether it changed.
async fn change(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    expected: Option<i64>,
    input: &OrderInput,
) -> Result<(Order, bool)> {
    let mut tx = db.begin().await?;
    let r = change_in(&mut tx, ctx, id, expected, input).await?;
    tx.commit().await?;
    Ok(r)
}

/// [`change`] inside the caller's transaction.
async fn change_in(
    tx: &mut Tx,
    ctx: &Ctx,
    id: Uuid,
    expected: Option<i64>,
    input: &OrderInput,
) -> Result<(Order, bool)> {
    let before = load(tx, ctx.tenant_id, id).await?;
    if before.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    crate::dependents::customer_scope(&mut *tx, ctx, before.account_id, before.contact_id).await?;
    check_write(
        &mut *tx,
        ctx,
        Action::Update,
        before.account_id,
        before.contact_id,
    )
    .await?;
    let mut f = Fields::of(&before);
    apply(tx, ctx, input, &mut f, &mut Known::default()).await?;
    if f.account_id != before.account_id || f.contact_id != before.contact_id {
        check_write(&mut *tx, ctx, Action::Update, f.account_id, f.contact_id).await?;
    }
    if let Some(v) = expected {
        version::check(v, before.version)?;
    }
    if f == Fields::of(&before) {
        return Ok((before, false));
    }
    version::update(
        &mut *tx,
        version::Row { table: "orders", tenant_id: ctx.tenant_id, id },
        before.version,
        "number = $1, channel = $2, external_id = $3, status = $4, account_id = $5,
                 contact_id = $6, ordered_at = $7, currency = $8, total = $9, notes = $10, updated_at = $11,
                 updated_by = $12",
        args![
            f.number.as_str(), f.channel.as_str(), f.external_id.clone(), f.status.as_str(), f.account_id,
            f.contact_id, f.ordered_at, f.currency.as_str(), f.total(), f.notes.clone(), now(),
            ctx.user_id
        ],
    )
    .await
    .map_err(|e| match e {
        Error::Conflict(_) => Error::field("number", "taken"),
        e => e,
    })?;
    if f.lines != before.lines {
        write_lines(tx, ctx, id, &f.lines).await?;
    }
    let after = load(tx, ctx.tenant_id, id).await?;
    audit::record(
        tx,
        ctx,
        "update",
        "orders",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok((after, true))
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: OrderInput,
) -> Result<Order> {
    let expected = version::expected(if_match, input.version)?;
    change(db, ctx, id, Some(expected), &input)
        .await
        .map(|(o, _)| o)
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Created,
    Updated,
    Unchanged,
}

/// Stores an order pushed by a shop or ERP under `(channel, external_id)`: created the first
/// time, a new version when its content changed, nothing when it is the same again. Safe to
/// retry and to run concurrently (the unique key decides; the loser re-reads).
pub async fn push(
    db: &Db,
    ctx: &Ctx,
    channel: &str,
    external_id: &str,
    input: OrderInput,
) -> Result<(Order, Pushed)> {
    let mut tx = db.begin().await?;
    let r = push_in(&mut tx, ctx, channel, external_id, input).await?;
    tx.commit().await?;
    Ok(r)
}

/// [`push`] inside the caller's transaction (an import writes its orders in batches).
pub async fn push_in(
    tx: &mut Tx,
    ctx: &Ctx,
    channel: &str,
    external_id: &str,
    input: OrderInput,
) -> Result<(Order, Pushed)> {
    let input = pushed_input(channel, external_id, input)?;
    for attempt in 0..2 {
        let existing: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM orders WHERE tenant_id = $1 AND channel = $2 AND external_id = $3",
                args![ctx.tenant_id, channel, external_id],
            )
            .await?;
        if let Some((id,)) = existing {
            let (o, changed) = change_in(tx, ctx, id, None, &input).await?;
            let pushed = if changed {
                Pushed::Updated
            } else {
                Pushed::Unchanged
            };
            return Ok((o, pushed));
        }
        tx.execute("SAVEPOINT push", vec![]).await?;
        match insert_in(tx, ctx, &input, &mut generated_number).await {
            Ok(o) => {
                tx.execute("RELEASE SAVEPOINT push", vec![]).await?;
                return Ok((o, Pushed::Created));
            }
            // Someone else stored it between our read and write (their commit ended our
            // wait on the unique key): read again and take theirs.
            Err(Error::Validation(v))
                if attempt == 0 && v.iter().any(|e| e.field == "number" && e.code == "taken") =>
            {
                tx.execute("ROLLBACK TO SAVEPOINT push", vec![]).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(
        "the order was changed concurrently; retry".into(),
    ))
}

/// A pushed order's input: stored under its channel and external id, whatever version.
pub fn pushed_input(channel: &str, external_id: &str, mut input: OrderInput) -> Result<OrderInput> {
    if !CHANNELS.contains(&channel) {
        return Err(Error::field("channel", "invalid"));
    }
    input.channel = Some(channel.to_owned());
    input.external_id = Some(external_id.to_owned());
    input.version = None;
    Ok(input)
}

/// Moves an order to the trash.
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    let before = get(db, ctx, id).await?;
    check_write(
        db,
        ctx,
        Action::Delete,
        before.account_id,
        before.contact_id,
    )
    .await?;
    let mut tx = db.begin().await?;
    let t = now();
    tx.execute(
        "UPDATE orders SET deleted_at = $1, updated_at = $1, updated_by = $2, version = version + 1
         WHERE tenant_id = $3 AND id = $4",
        args![t, ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "orders",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}

/// A customer's purchase totals (cancelled and returned orders excluded), per currency.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = OrderTotals)]
pub struct Totals {
    pub currency: String,
    pub orders: i64,
    /// Minor units.
    pub total: i64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
}

pub async fn totals(
    db: &Db,
    ctx: &Ctx,
    account_id: Option<Uuid>,
    contact_id: Option<Uuid>,
) -> Result<Vec<Totals>> {
    ctx.require("orders", Action::Read)?;
    crate::dependents::customer_scope(db, ctx, account_id, contact_id).await?;
    let (column, id) = match (account_id, contact_id) {
        (Some(a), _) => ("account_id", a),
        (None, Some(c)) => ("contact_id", c),
        (None, None) => return Err(Error::NotFound),
    };
    db.fetch_all(
        &format!(
            "SELECT currency, COUNT(*) AS orders, CAST(COALESCE(SUM(total), 0) AS BIGINT) AS total,
                 MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at
             FROM orders WHERE tenant_id = $1 AND {column} = $2 AND deleted_at IS NULL
                 AND status NOT IN ('cancelled', 'returned')
             GROUP BY currency ORDER BY currency"
        ),
        args![ctx.tenant_id, id],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn line_amounts() {
        assert_eq!(line_amount(3, 1999, 0), Ok(5997));
        assert_eq!(line_amount(3, 1999, 997), Ok(5000));
        assert_eq!(line_amount(1, 100, 101), Err("discount_too_large"));
        assert_eq!(line_amount(0, 100, 0), Err("out_of_range"));
        assert_eq!(line_amount(i64::MAX, 2, 0), Err("out_of_range"));
    }

    proptest! {
        /// A valid line's amount is exactly quantity × price − discount and never negative.
        #[test]
        fn amount_is_exact(q in 1i64..1_000_000, p in 0i64..100_000_000, d in 0i64..1_000_000_000) {
            match line_amount(q, p, d) {
                Ok(a) => {
                    prop_assert_eq!(a as i128, q as i128 * p as i128 - d as i128);
                    prop_assert!(a >= 0);
                }
                Err(code) => prop_assert!(d as i128 > q as i128 * p as i128 && code == "discount_too_large"),
            }
        }
    }
}
