//! What the value analyses read: each customer's purchases in a window, in one grouped query
//! over `orders` — whatever the number of customers, one statement, and only ids and numbers
//! held in memory (names are read for the rows shown).
//!
//! A purchase is an order that is not a draft, cancelled or returned, in the tenant's currency
//! (orders in other currencies are counted and reported apart, never added to yuan). A
//! customer is an account (B2B: orders of the account) or a contact (B2C: the contact's own
//! orders, those not placed for an account). Only customers the caller may read are counted,
//! so a rep's analysis is of the rep's own book.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::time::now;
use guanxi_platform::Ctx;

/// Orders that are not purchases.
const NOT_PURCHASES: &str = "('draft', 'cancelled', 'returned')";

/// Whose value is analysed: companies (B2B) or people buying for themselves (B2C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ValueParty)]
pub enum Party {
    #[default]
    Accounts,
    Contacts,
}

impl Party {
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Accounts => "accounts",
            Party::Contacts => "contacts",
        }
    }

    pub fn parse(s: &str) -> Option<Party> {
        match s {
            "accounts" => Some(Party::Accounts),
            "contacts" => Some(Party::Contacts),
            _ => None,
        }
    }

    /// The order column naming the customer, the customer table, and the extra condition on
    /// the order.
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Party::Accounts => ("o.account_id", "accounts", ""),
            Party::Contacts => ("o.contact_id", "contacts", " AND o.account_id IS NULL"),
        }
    }
}

/// A window of days on the tenant's calendar: orders from the start of `from` (or ever) to
/// the end of `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub tz: chrono_tz::Tz,
}

impl Window {
    /// `from`/`to` as given, `to` defaulting to today and `from` to `default_days` before it
    /// (`None`: no lower bound). A window ending before it starts is refused, naming `from`.
    pub fn of(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        default_days: Option<u64>,
        tz: chrono_tz::Tz,
    ) -> Result<Window> {
        let today = now().with_timezone(&tz).date_naive();
        let to = to.unwrap_or(today);
        let from = from.or_else(|| default_days.and_then(|d| to.checked_sub_days(Days::new(d))));
        let mut errs = Errors::default();
        if from.is_some_and(|f| f > to) {
            errs.add("from", "after_to");
        }
        if to.checked_add_days(Days::new(1)).is_none() {
            errs.add("to", "invalid");
        }
        errs.finish()?;
        Ok(Window { from, to, tz })
    }

    fn start_of(&self, d: NaiveDate) -> DateTime<Utc> {
        let local = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&local))
    }

    /// The first instant of `from`, if bounded.
    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.from.map(|d| self.start_of(d))
    }

    /// The first instant after `to`.
    pub fn end(&self) -> DateTime<Utc> {
        let next = self.to.checked_add_days(Days::new(1)).unwrap_or(self.to);
        self.start_of(next)
    }

    /// Whole days from `at` to the end of the window (0 for an order on its last day).
    pub fn days_before_end(&self, at: DateTime<Utc>) -> i64 {
        let day = at.with_timezone(&self.tz).date_naive();
        (self.to - day).num_days().max(0)
    }
}

/// One customer's purchase history ([`Purchases::history`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct History {
    pub id: Uuid,
    pub first_at: DateTime<Utc>,
    /// Orders since the period's start.
    pub orders: i64,
    /// Revenue (minor units) from the period's start to its middle, and from there on.
    pub early: i64,
    pub late: i64,
}

/// One customer's purchases in the window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Fact {
    pub id: Uuid,
    pub orders: i64,
    /// Minor units.
    pub revenue: i64,
    pub last_at: DateTime<Utc>,
}

/// The tenant's currency and time zone.
pub async fn tenant_facts(db: &Db, tenant: Uuid) -> Result<(String, chrono_tz::Tz)> {
    let t = guanxi_platform::tenants::get_unchecked(db, tenant).await?;
    Ok((
        t.currency,
        t.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai),
    ))
}

/// The tenant's time zone, read inside the caller's transaction (a scheduled job's handler
/// holds one and may take no second connection).
pub async fn tenant_zone(tx: &mut guanxi_platform::db::Tx, tenant: Uuid) -> Result<chrono_tz::Tz> {
    let (zone,): (String,) = tx
        .fetch_one(
            "SELECT time_zone FROM tenants WHERE id = $1",
            guanxi_platform::args![tenant],
        )
        .await?;
    Ok(zone.parse().unwrap_or(chrono_tz::Asia::Shanghai))
}

/// A company's model or snapshot (an RFM run, a lifetime-value fit) is of every customer:
/// making and listing them takes `action` on `analytics` and reading every customer of the
/// party.
pub fn company_scope(ctx: &Ctx, party: Party, action: Action) -> Result<()> {
    ctx.require("analytics", action)?;
    match ctx.require(party.as_str(), Action::Read)? {
        Scope::All => Ok(()),
        _ => Err(guanxi_platform::Error::Forbidden),
    }
}

/// The purchases one analysis reads: a party's, in a window, in the tenant's currency, of the
/// customers the caller may read.
pub struct Purchases<'a> {
    pub ctx: &'a Ctx,
    pub party: Party,
    pub window: Window,
    pub currency: String,
    scope: Scope,
}

/// What a query over purchases reads besides the orders.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The orders in the tenant's currency.
    Orders,
    /// Their lines and the lines' products.
    Lines,
    /// The orders in every currency (the select tells them apart).
    AllCurrencies,
}

impl<'a> Purchases<'a> {
    /// The caller's purchases of `party` in the window from `from` to `to` (defaults as
    /// [`Window::of`]): analysing them takes `analytics` read and reading the party, and
    /// counts only the customers in that read scope.
    pub async fn of(
        db: &Db,
        ctx: &'a Ctx,
        party: Party,
        (from, to): (Option<NaiveDate>, Option<NaiveDate>),
        default_days: Option<u64>,
    ) -> Result<Purchases<'a>> {
        ctx.require("analytics", Action::Read)?;
        let scope = ctx.require(party.as_str(), Action::Read)?;
        let (currency, tz) = tenant_facts(db, ctx.tenant_id).await?;
        Ok(Purchases {
            ctx,
            party,
            window: Window::of(from, to, default_days, tz)?,
            currency,
            scope,
        })
    }

    /// The same purchases of every customer of the party, whoever reads them (a company
    /// run).
    pub fn of_everyone(mut self) -> Self {
        self.scope = Scope::All;
        self
    }

    /// `SELECT {select} FROM … WHERE … [GROUP BY the customer]`.
    fn query(&self, select: &str, read: Read, grouped: bool) -> Sql {
        self.query_sql(Sql::new(select), read, grouped)
    }

    /// [`Purchases::query`] with values bound in the select.
    fn query_sql(&self, select: Sql, read: Read, grouped: bool) -> Sql {
        let (col, table, extra) = self.party.sql();
        let lines = if read == Read::Lines {
            " JOIN order_lines l ON l.tenant_id = o.tenant_id AND l.order_id = o.id
              LEFT JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id"
        } else {
            ""
        };
        let mut q = Sql::new("SELECT ");
        q.append(Sql {
            sql: select.sql.replace("{col}", col),
            ..select
        });
        // Every consumer's purchases (a company run, an administrator): the orders alone, less
        // those of the trash (its own small index). Consumers are many with a few orders each,
        // and joining each order to its buyer only to learn the buyer is not trashed doubled
        // the reading (two B-tree descents an order: ABC over 90,000 consumers 650 → 370 ms).
        // Companies are few with many orders each: reading each company's orders from it is the
        // better plan (ABC over 10,000 accounts 37 ms with the join, 223 without), and a scoped
        // reader's purchases need the customer's owner and team.
        let everyone = self.scope == Scope::All && self.party == Party::Contacts;
        let join = if everyone {
            String::new()
        } else {
            format!(" JOIN {table} k ON k.tenant_id = o.tenant_id AND k.id = {col}")
        };
        q.push(&format!(" FROM orders o{join}{lines} WHERE o.tenant_id = "));
        q.bind(self.ctx.tenant_id);
        q.push(&format!(
            " AND o.deleted_at IS NULL AND o.status NOT IN {NOT_PURCHASES}{extra}"
        ));
        if everyone {
            q.push(&format!(
                " AND {col} IS NOT NULL AND {col} NOT IN (SELECT t.id FROM {table} t WHERE t.tenant_id = "
            ));
            q.bind(self.ctx.tenant_id);
            q.push(" AND t.deleted_at IS NOT NULL)");
        } else {
            q.push(" AND k.deleted_at IS NULL");
        }
        if read != Read::AllCurrencies {
            q.push(" AND o.currency = ").bind(self.currency.as_str());
        }
        if let Some(s) = self.window.start() {
            q.push(" AND o.ordered_at >= ").bind(s);
        }
        q.push(" AND o.ordered_at < ").bind(self.window.end());
        if !everyone {
            self.ctx
                .scope_sql(&mut q, self.scope, "k.owner_id", "k.team_id");
        }
        if grouped {
            q.push(&format!(" GROUP BY {col}"));
        }
        q
    }

    /// Every customer's order count, revenue and last order in the window, and how many
    /// orders were in another currency (left out) — one pass over the orders.
    pub async fn facts(&self, db: &Db) -> Result<(Vec<Fact>, i64)> {
        let mut select = Sql::new("{col} AS id, COUNT(CASE WHEN o.currency = ");
        select.bind(self.currency.as_str());
        select.push(" THEN 1 END) AS orders, CAST(COALESCE(SUM(CASE WHEN o.currency = ");
        select.bind(self.currency.as_str());
        select.push(
            " THEN o.total ELSE 0 END), 0) AS BIGINT) AS revenue, MAX(CASE WHEN o.currency = ",
        );
        select.bind(self.currency.as_str());
        select.push(" THEN o.ordered_at END) AS last_at, COUNT(CASE WHEN o.currency <> ");
        select.bind(self.currency.as_str());
        select.push(" THEN 1 END) AS other");
        let q = self.query_sql(select, Read::AllCurrencies, true);
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            orders: i64,
            revenue: i64,
            last_at: Option<DateTime<Utc>>,
            other: i64,
        }
        let rows: Vec<Row> = db.fetch_sql(q).await?;
        let other = rows.iter().map(|r| r.other).sum();
        let facts = rows
            .into_iter()
            .filter_map(|r| {
                Some(Fact {
                    id: r.id,
                    orders: r.orders,
                    revenue: r.revenue,
                    last_at: r.last_at.filter(|_| r.orders > 0)?,
                })
            })
            .collect();
        Ok((facts, other))
    }

    /// Every customer's gross margin in the window: each line's amount less its quantity at
    /// the product's cost; and how many lines had no cost to subtract (counted at full
    /// margin).
    pub async fn margins(&self, db: &Db) -> Result<(HashMap<Uuid, i64>, i64)> {
        let q = self.query(
            "{col} AS id,
             CAST(COALESCE(SUM(l.amount - l.quantity * COALESCE(p.cost, 0)), 0) AS BIGINT) AS margin,
             CAST(SUM(CASE WHEN p.cost IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS uncosted",
            Read::Lines,
            true,
        );
        let rows: Vec<(Uuid, i64, i64)> = db.fetch_sql(q).await?;
        let uncosted = rows.iter().map(|r| r.2).sum();
        Ok((
            rows.into_iter().map(|(id, m, _)| (id, m)).collect(),
            uncosted,
        ))
    }

    /// Every purchase in the window: the customer, when, and the total (minor units).
    pub async fn each(&self, db: &Db) -> Result<Vec<(Uuid, DateTime<Utc>, i64)>> {
        let q = self.query("{col} AS id, o.ordered_at, o.total", Read::Orders, false);
        db.fetch_sql(q).await
    }

    /// Every customer's first purchase in the window.
    pub async fn firsts(&self, db: &Db) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        let q = self.query(
            "{col} AS id, MIN(o.ordered_at) AS first_at",
            Read::Orders,
            true,
        );
        db.fetch_sql(q).await
    }

    /// Every customer's purchase history up to the window's end, in one pass: the first
    /// purchase ever, and from `since` the orders and the revenue before and from `mid`.
    pub async fn history(
        &self,
        db: &Db,
        since: DateTime<Utc>,
        mid: DateTime<Utc>,
    ) -> Result<Vec<History>> {
        let mid = mid.max(since);
        let mut select = Sql::new(
            "{col} AS id, MIN(o.ordered_at) AS first_at, COUNT(CASE WHEN o.ordered_at >= ",
        );
        select.bind(since);
        select.push(" THEN 1 END) AS orders, CAST(COALESCE(SUM(CASE WHEN o.ordered_at >= ");
        select.bind(since);
        select.push(" AND o.ordered_at < ");
        select.bind(mid);
        select.push(
            " THEN o.total ELSE 0 END), 0) AS BIGINT) AS early, CAST(COALESCE(SUM(CASE WHEN o.ordered_at >= ",
        );
        select.bind(mid);
        select.push(" THEN o.total ELSE 0 END), 0) AS BIGINT) AS late");
        db.fetch_sql(self.query_sql(select, Read::Orders, true))
            .await
    }

    /// Every customer's gross margin in the window and how many different products they
    /// bought (lines of no product are not a product), one pass over the lines.
    pub async fn margins_and_breadth(&self, db: &Db) -> Result<Vec<(Uuid, i64, i64)>> {
        let q = self.query(
            "{col} AS id,
             CAST(COALESCE(SUM(l.amount - l.quantity * COALESCE(p.cost, 0)), 0) AS BIGINT) AS margin,
             COUNT(DISTINCT l.product_id) AS breadth",
            Read::Lines,
            true,
        );
        db.fetch_sql(q).await
    }

    /// The order column naming the customer (`o.account_id` or `o.contact_id`).
    pub fn customer_column(&self) -> &'static str {
        self.party.sql().0
    }

    /// Each customer's products once (`c`, `p`): a subquery for counting what is bought
    /// together.
    pub fn customer_products(&self) -> Sql {
        let mut q = self.query("DISTINCT {col} AS c, l.product_id AS p", Read::Lines, false);
        q.push(" AND l.product_id IS NOT NULL");
        q
    }

    /// The names of the customers shown.
    pub async fn names(&self, db: &Db, ids: &[Uuid]) -> Result<HashMap<Uuid, String>> {
        names(db, self.ctx.tenant_id, self.party, ids).await
    }
}

/// The names of the customers `ids` of a party (only the rows shown are read).
pub async fn names(
    db: &Db,
    tenant: Uuid,
    party: Party,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut q = Sql::new(&format!(
        "SELECT id, name FROM {} WHERE tenant_id = ",
        party.as_str()
    ));
    q.bind(tenant)
        .push(" AND id IN ")
        .bind_list(ids.iter().copied());
    let rows: Vec<(Uuid, String)> = db.fetch_sql(q).await?;
    Ok(rows.into_iter().collect())
}

/// A share in basis points (1/100 of a percent), 0 when there is nothing to share.
pub fn bp(part: i128, whole: i128) -> i64 {
    if whole <= 0 {
        0
    } else {
        (part * 10_000 / whole) as i64
    }
}
