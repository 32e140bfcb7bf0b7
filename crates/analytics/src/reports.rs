//! The report builder: a [`Spec`] — an entity, filters, up to two groupings (dates by day,
//! week, month, quarter or year on the tenant's calendar) and up to five measures — becomes one
//! grouped SQL statement over that entity's table, in the viewer's record scope. Fields come
//! from a fixed catalogue per entity (plus the entity's custom fields), so nothing the viewer
//! types reaches the SQL but bound values; a field that reads another module (an order's
//! account, a line's cost) needs read access to that module, else the report is refused
//! naming the field. Money measures without a currency filter or grouping count the tenant's
//! currency only (never yuan plus dollars), and the result says so.
//!
//! Saved reports (`reports`, migration 5004) are private, shared with the owner's team or with
//! the company; whoever opens one runs it in their own scope.

use chrono::{Days, NaiveDate, Offset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Backend, Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, version, Ctx, Error};
use guanxi_records::custom_fields::{self, CustomField};
use guanxi_records::entity::Entity;

use crate::facts::{tenant_facts, Window};

/// At most this many groups are returned (the rest is reported as truncated).
pub const MAX_GROUPS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    /// Minor units.
    Money,
    /// An instant (bucketed on the tenant's calendar).
    Time,
    /// A `YYYY-MM-DD` day.
    Date,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Number => "number",
            Kind::Money => "money",
            Kind::Time => "time",
            Kind::Date => "date",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Kind::Number | Kind::Money)
    }
}

struct Field {
    key: &'static str,
    expr: &'static str,
    kind: Kind,
    /// Modules the viewer must read besides the entity's.
    needs: &'static [&'static str],
}

const fn f(key: &'static str, expr: &'static str, kind: Kind) -> Field {
    Field {
        key,
        expr,
        kind,
        needs: &[],
    }
}

const fn fx(
    key: &'static str,
    expr: &'static str,
    kind: Kind,
    needs: &'static [&'static str],
) -> Field {
    Field {
        key,
        expr,
        kind,
        needs,
    }
}

/// An entity a report can count.
struct Source {
    key: &'static str,
    /// The permission module read, whose scope limits the rows.
    module: &'static str,
    from: &'static str,
    live: &'static str,
    owner: &'static str,
    team: &'static str,
    /// Orders are read through their customer: in the reader's scope of the account, or of the
    /// contact for an order placed for no account (`owner`/`team` unused).
    through_customer: bool,
    /// The currency column, for money measures.
    currency: Option<&'static str>,
    /// The field a dashboard's period narrows (the day a record counts on).
    period: Option<&'static str>,
    /// The field a dashboard's region (a province) narrows.
    region: Option<&'static str>,
    fields: &'static [Field],
}

static SOURCES: &[Source] = &[
    Source {
        key: "accounts",
        module: "accounts",
        from: "accounts t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.owner_id",
        live: "t.deleted_at IS NULL",
        owner: "t.owner_id",
        team: "t.team_id",
        through_customer: false,
        currency: None,
        period: Some("created_at"),
        region: Some("province"),
        fields: &[
            f("name", "t.name", Kind::Text),
            f("industry", "t.industry", Kind::Text),
            f("grade", "t.grade", Kind::Text),
            f("source", "t.source", Kind::Text),
            f("country", "t.country", Kind::Text),
            f("province", "t.province", Kind::Text),
            f("city", "t.city", Kind::Text),
            f("owner", "u.name", Kind::Text),
            f("created_at", "t.created_at", Kind::Time),
        ],
    },
    Source {
        key: "contacts",
        module: "contacts",
        from: "contacts t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.owner_id
            LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id",
        live: "t.deleted_at IS NULL",
        owner: "t.owner_id",
        team: "t.team_id",
        through_customer: false,
        currency: None,
        period: Some("created_at"),
        region: Some("province"),
        fields: &[
            f("name", "t.name", Kind::Text),
            f("gender", "t.gender", Kind::Text),
            f("title", "t.title", Kind::Text),
            f("department", "t.department", Kind::Text),
            f("province", "t.province", Kind::Text),
            f("city", "t.city", Kind::Text),
            fx("account", "a.name", Kind::Text, &["accounts"]),
            f("owner", "u.name", Kind::Text),
            f("created_at", "t.created_at", Kind::Time),
        ],
    },
    Source {
        key: "orders",
        module: "orders",
        from: "orders t LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
            LEFT JOIN contacts c ON c.tenant_id = t.tenant_id AND c.id = t.contact_id
            LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = COALESCE(a.owner_id, c.owner_id)",
        live: "t.deleted_at IS NULL",
        owner: "COALESCE(a.owner_id, c.owner_id)",
        team: "COALESCE(a.team_id, c.team_id)",
        through_customer: true,
        currency: Some("t.currency"),
        period: Some("ordered_at"),
        region: Some("province"),
        fields: &[
            f("number", "t.number", Kind::Text),
            f("status", "t.status", Kind::Text),
            f("channel", "t.channel", Kind::Text),
            f("currency", "t.currency", Kind::Text),
            f("total", "t.total", Kind::Money),
            f("ordered_at", "t.ordered_at", Kind::Time),
            fx("account", "a.name", Kind::Text, &["accounts"]),
            fx("contact", "c.name", Kind::Text, &["contacts"]),
            fx("grade", "a.grade", Kind::Text, &["accounts"]),
            fx("industry", "a.industry", Kind::Text, &["accounts"]),
            f("province", "COALESCE(a.province, c.province)", Kind::Text),
            f("city", "COALESCE(a.city, c.city)", Kind::Text),
            f("owner", "u.name", Kind::Text),
        ],
    },
    Source {
        key: "order_lines",
        module: "orders",
        from: "order_lines l JOIN orders t ON t.tenant_id = l.tenant_id AND t.id = l.order_id
            LEFT JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id
            LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
            LEFT JOIN contacts c ON c.tenant_id = t.tenant_id AND c.id = t.contact_id
            LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = COALESCE(a.owner_id, c.owner_id)",
        live: "t.deleted_at IS NULL",
        owner: "COALESCE(a.owner_id, c.owner_id)",
        team: "COALESCE(a.team_id, c.team_id)",
        through_customer: true,
        currency: Some("t.currency"),
        period: Some("ordered_at"),
        region: Some("province"),
        fields: &[
            f("product", "COALESCE(p.name, l.name)", Kind::Text),
            f("sku", "l.sku", Kind::Text),
            fx("category", "p.category", Kind::Text, &["products"]),
            f("quantity", "l.quantity", Kind::Number),
            f("amount", "l.amount", Kind::Money),
            fx("margin", "(l.amount - l.quantity * COALESCE(p.cost, 0))", Kind::Money, &["products"]),
            f("status", "t.status", Kind::Text),
            f("currency", "t.currency", Kind::Text),
            f("ordered_at", "t.ordered_at", Kind::Time),
            fx("account", "a.name", Kind::Text, &["accounts"]),
            fx("grade", "a.grade", Kind::Text, &["accounts"]),
            fx("industry", "a.industry", Kind::Text, &["accounts"]),
            f("province", "COALESCE(a.province, c.province)", Kind::Text),
            f("owner", "u.name", Kind::Text),
        ],
    },
    Source {
        key: "opportunities",
        module: "opportunities",
        from: "opportunities t LEFT JOIN pipeline_stages s ON s.tenant_id = t.tenant_id AND s.id = t.stage_id
            LEFT JOIN pipelines pl ON pl.tenant_id = t.tenant_id AND pl.id = t.pipeline_id
            LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
            LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.owner_id",
        live: "t.deleted_at IS NULL",
        owner: "t.owner_id",
        team: "t.team_id",
        through_customer: false,
        currency: Some("t.currency"),
        period: Some("expected_close"),
        region: Some("province"),
        fields: &[
            f("name", "t.name", Kind::Text),
            f("status", "t.status", Kind::Text),
            f("stage", "s.name", Kind::Text),
            f("pipeline", "pl.name", Kind::Text),
            f("amount", "t.amount", Kind::Money),
            f("currency", "t.currency", Kind::Text),
            f("probability", "t.probability", Kind::Number),
            f("expected_close", "t.expected_close", Kind::Date),
            f("closed_at", "t.closed_at", Kind::Time),
            f("created_at", "t.created_at", Kind::Time),
            f("close_reason", "t.close_reason", Kind::Text),
            fx("account", "a.name", Kind::Text, &["accounts"]),
            fx("grade", "a.grade", Kind::Text, &["accounts"]),
            fx("industry", "a.industry", Kind::Text, &["accounts"]),
            fx("province", "a.province", Kind::Text, &["accounts"]),
            f("owner", "u.name", Kind::Text),
        ],
    },
    Source {
        key: "activities",
        module: "activities",
        from: "activities t LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
            LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.owner_id",
        live: "t.deleted_at IS NULL",
        owner: "t.owner_id",
        team: "t.team_id",
        through_customer: false,
        currency: None,
        period: Some("occurred_at"),
        region: Some("province"),
        fields: &[
            f("kind", "t.kind", Kind::Text),
            f("occurred_at", "t.occurred_at", Kind::Time),
            f("done", "CASE WHEN t.done_at IS NULL THEN 'no' ELSE 'yes' END", Kind::Text),
            fx("account", "a.name", Kind::Text, &["accounts"]),
            fx("province", "a.province", Kind::Text, &["accounts"]),
            f("owner", "u.name", Kind::Text),
        ],
    },
    Source {
        key: "leads",
        module: "leads",
        from: "leads t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.owner_id",
        live: "t.deleted_at IS NULL",
        owner: "t.owner_id",
        team: "t.team_id",
        through_customer: false,
        currency: None,
        period: Some("created_at"),
        region: Some("province"),
        fields: &[
            f("status", "t.status", Kind::Text),
            f("source", "t.source", Kind::Text),
            f("company", "t.company", Kind::Text),
            f("industry", "t.industry", Kind::Text),
            f("province", "t.province", Kind::Text),
            f("city", "t.city", Kind::Text),
            f("score", "t.score", Kind::Number),
            f("created_at", "t.created_at", Kind::Time),
            f("converted_at", "t.converted_at", Kind::Time),
            f("owner", "u.name", Kind::Text),
        ],
    },
    Source {
        key: "tickets",
        module: "tickets",
        from: "tickets t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.owner_id
            LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id",
        live: "t.deleted_at IS NULL AND t.merged_into_id IS NULL",
        owner: "t.owner_id",
        team: "t.team_id",
        through_customer: false,
        currency: None,
        period: Some("created_at"),
        region: Some("province"),
        fields: &[
            f("number", "t.number", Kind::Text),
            f("status", "t.status", Kind::Text),
            f("priority", "t.priority", Kind::Text),
            f("channel", "t.channel", Kind::Text),
            f("category", "t.category", Kind::Text),
            f("breached", "CASE WHEN t.sla_breached THEN 'yes' ELSE 'no' END", Kind::Text),
            f("reopened", "t.reopened", Kind::Number),
            f("created_at", "t.created_at", Kind::Time),
            f("resolved_at", "t.resolved_at", Kind::Time),
            fx("account", "a.name", Kind::Text, &["accounts"]),
            fx("grade", "a.grade", Kind::Text, &["accounts"]),
            fx("province", "a.province", Kind::Text, &["accounts"]),
            f("owner", "u.name", Kind::Text),
        ],
    },
    // Each SLA target of each ticket as last evaluated: attainment by target, team, agent,
    // grade or month.
    Source {
        key: "ticket_targets",
        module: "tickets",
        from: "ticket_sla s
            JOIN tickets t ON t.tenant_id = s.tenant_id AND t.id = s.ticket_id
            LEFT JOIN sla_policies p ON p.tenant_id = s.tenant_id AND p.id = s.policy_id
            LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.owner_id
            LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id",
        live: "t.deleted_at IS NULL AND t.merged_into_id IS NULL",
        owner: "t.owner_id",
        team: "t.team_id",
        through_customer: false,
        currency: None,
        period: Some("started_at"),
        region: Some("province"),
        fields: &[
            f("target", "s.target", Kind::Text),
            f("state", "s.state", Kind::Text),
            f("policy", "p.name", Kind::Text),
            f("started_at", "s.started_at", Kind::Time),
            f("completed_at", "s.completed_at", Kind::Time),
            f("elapsed_minutes", "s.elapsed_seconds / 60", Kind::Number),
            f("target_minutes", "s.target_minutes", Kind::Number),
            f("priority", "t.priority", Kind::Text),
            f("category", "t.category", Kind::Text),
            fx("grade", "a.grade", Kind::Text, &["accounts"]),
            fx("province", "a.province", Kind::Text, &["accounts"]),
            f("owner", "u.name", Kind::Text),
        ],
    },
    // Every CSAT and NPS answer (answers are kept, never overwritten): satisfaction by agent,
    // team, grade or month, as the ticket stood when answered.
    Source {
        key: "survey_responses",
        module: "tickets",
        from: "survey_responses t
            LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.agent_id
            LEFT JOIN teams m ON m.tenant_id = t.tenant_id AND m.id = t.team_id
            LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id",
        live: "1 = 1",
        owner: "t.agent_id",
        team: "t.team_id",
        through_customer: false,
        currency: None,
        period: Some("answered_at"),
        region: Some("province"),
        fields: &[
            f("survey_kind", "t.kind", Kind::Text),
            f("score", "t.score", Kind::Number),
            f(
                "satisfied",
                "CASE WHEN t.kind = 'csat' AND t.score >= 4 THEN 'yes' WHEN t.kind = 'csat' THEN 'no' END",
                Kind::Text,
            ),
            f(
                "nps_class",
                "CASE WHEN t.kind <> 'nps' THEN NULL WHEN t.score >= 9 THEN 'promoter' WHEN t.score >= 7 THEN 'passive' ELSE 'detractor' END",
                Kind::Text,
            ),
            f("survey_channel", "t.channel", Kind::Text),
            f("answered_at", "t.at", Kind::Time),
            f("team", "m.name", Kind::Text),
            fx("grade", "a.grade", Kind::Text, &["accounts"]),
            fx("province", "a.province", Kind::Text, &["accounts"]),
            f("owner", "u.name", Kind::Text),
        ],
    },
    // What customers asked the portal before opening a ticket: answered by an article, left
    // (no ticket), or submitted anyway — the knowledge base's deflection.
    Source {
        key: "help_questions",
        module: "articles",
        from: "help_deflections t",
        live: "1 = 1",
        owner: "NULL",
        team: "NULL",
        through_customer: false,
        currency: None,
        period: Some("asked_at"),
        region: None,
        fields: &[
            f("outcome", "t.outcome", Kind::Text),
            f("asked_at", "t.created_at", Kind::Time),
        ],
    },
];

/// The entities a report can count.
pub const ENTITIES: [&str; 11] = [
    "accounts",
    "contacts",
    "orders",
    "order_lines",
    "opportunities",
    "activities",
    "leads",
    "tickets",
    "ticket_targets",
    "survey_responses",
    "help_questions",
];

fn source(key: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.key == key)
}

/// The record entity a source counts (alias `t`): its custom fields (`custom.<key>`) and
/// the records shared with the caller.
fn record_entity(key: &str) -> Option<Entity> {
    match key {
        "accounts" => Some(guanxi_customers::accounts::ENTITY),
        "contacts" => Some(guanxi_customers::contacts::ENTITY),
        "opportunities" => Some(guanxi_sales::opportunities::ENTITY),
        "leads" => Some(guanxi_sales::leads::ENTITY),
        "tickets" | "ticket_targets" => Some(guanxi_service::tickets::ENTITY),
        _ => None,
    }
}

/// How an instant or a day is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateBucket {
    Day,
    /// Labelled by its Monday.
    Week,
    Month,
    Quarter,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// Distinct values of the field.
    Distinct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    /// Any of a list (`value` an array).
    In,
    /// Text containing `value`, case-insensitive.
    Contains,
    Gt,
    Gte,
    Lt,
    Lte,
    Empty,
    NotEmpty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    #[default]
    Table,
    Bar,
    Line,
    Pie,
    Funnel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// A field of the entity or `custom.<key>`.
    pub field: String,
    pub op: Op,
    /// Text, number, a day (`YYYY-MM-DD`) for dates and instants, or a list for `in`.
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub field: String,
    /// For dates and instants (default `month`).
    pub bucket: Option<DateBucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportMeasure {
    pub agg: Agg,
    /// The field summed, averaged…; none for `count`.
    pub field: Option<String>,
}

/// What a report counts and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `accounts`, `contacts`, `orders`, `order_lines`, `opportunities`, `activities`, `leads`.
    pub entity: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Up to two.
    #[serde(default)]
    pub group_by: Vec<Group>,
    /// One to five.
    pub measures: Vec<ReportMeasure>,
    #[serde(default)]
    pub chart: Chart,
}

/// A result column.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportColumn {
    /// `group_by[0]`'s field, or `count`, `sum:total`…
    pub key: String,
    /// `text`, `number`, `money`, `time`, `date`.
    pub kind: String,
    /// Whether it is a grouping (else a measure).
    pub group: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportResult {
    pub columns: Vec<ReportColumn>,
    /// One row per group: the groups' labels (null: none), then the measures.
    pub rows: Vec<Vec<Value>>,
    /// More groups than [`MAX_GROUPS`]: the first are shown.
    pub truncated: bool,
    /// Money is counted in this currency only (no currency filter or grouping was given).
    pub currency: Option<String>,
}

/// A field resolved: its SQL expression and kind.
struct Resolved {
    expr: String,
    kind: Kind,
}

struct Resolver<'a> {
    src: &'static Source,
    ctx: &'a Ctx,
    backend: Backend,
    customs: Vec<CustomField>,
}

impl Resolver<'_> {
    fn field(&self, name: &str, at: &str, errs: &mut Errors) -> Option<Resolved> {
        if let Some(key) = name.strip_prefix("custom.") {
            let def = self.customs.iter().find(|d| d.key == key);
            return match def.and_then(|d| custom_fields::value_expr(self.backend, "t", d)) {
                Some((expr, numeric)) => Some(Resolved {
                    expr,
                    kind: if numeric { Kind::Number } else { Kind::Text },
                }),
                None => {
                    errs.add(
                        at,
                        if def.is_some() {
                            "not_reportable"
                        } else {
                            "unknown"
                        },
                    );
                    None
                }
            };
        }
        let Some(field) = self.src.fields.iter().find(|x| x.key == name) else {
            errs.add(at, "unknown");
            return None;
        };
        if field
            .needs
            .iter()
            .any(|m| self.ctx.can(m, Action::Read).is_none())
        {
            errs.add(at, "forbidden_field");
            return None;
        }
        Some(Resolved {
            expr: field.expr.to_owned(),
            kind: field.kind,
        })
    }
}

/// The label of a bucket of `expr` on the tenant's calendar: PostgreSQL converts with the
/// zone's rules (`zone`, a name chrono-tz knows, so safe to inline); SQLite has no zones and
/// adds the zone's offset now (`offset`, `+480 minutes`) — the same for zones without daylight
/// saving, as China's.
fn bucket_sql(
    backend: Backend,
    expr: &str,
    kind: Kind,
    b: DateBucket,
    (zone, offset): (&str, &str),
) -> String {
    match backend {
        Backend::Postgres => {
            let local = if kind == Kind::Time {
                format!("({expr} AT TIME ZONE '{zone}')")
            } else {
                format!("CAST({expr} AS DATE)")
            };
            match b {
                DateBucket::Day => format!("to_char({local}, 'YYYY-MM-DD')"),
                DateBucket::Week => format!("to_char(date_trunc('week', {local}), 'YYYY-MM-DD')"),
                DateBucket::Month => format!("to_char({local}, 'YYYY-MM')"),
                DateBucket::Quarter => {
                    format!("to_char({local}, 'YYYY') || '-Q' || to_char({local}, 'Q')")
                }
                DateBucket::Year => format!("to_char({local}, 'YYYY')"),
            }
        }
        Backend::Sqlite => {
            let m = if kind == Kind::Time {
                format!(", '{offset}'")
            } else {
                String::new()
            };
            match b {
                DateBucket::Day => format!("strftime('%Y-%m-%d', {expr}{m})"),
                DateBucket::Week => format!("date({expr}{m}, '-6 days', 'weekday 1')"),
                DateBucket::Month => format!("strftime('%Y-%m', {expr}{m})"),
                DateBucket::Quarter => format!(
                    "strftime('%Y', {expr}{m}) || '-Q' || ((CAST(strftime('%m', {expr}{m}) AS INTEGER) + 2) / 3)"
                ),
                DateBucket::Year => format!("strftime('%Y', {expr}{m})"),
            }
        }
    }
}

/// Runs `spec` in the caller's scope.
pub async fn run(db: &Db, ctx: &Ctx, spec: &Spec) -> Result<ReportResult> {
    Ok(run_within(db, ctx, spec, &Within::default()).await?.0)
}

/// What a dashboard narrows each of its reports to, beyond the report's own filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Within {
    /// The first and last day (on the tenant's calendar) of the entity's period field.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Records of this team (orders: their customer's).
    pub team_id: Option<Uuid>,
    /// Records in this province (the entity's region field).
    pub province: Option<String>,
    /// Only the caller's own records (orders: their customers').
    pub mine: bool,
}

/// A narrowing a report could not apply: `period` or `region` (the entity has no such field,
/// or it reads a module the viewer may not).
pub type Unapplied = Vec<&'static str>;

/// Runs `spec` in the caller's scope, narrowed by `within`; says which narrowings the entity
/// could not take.
pub async fn run_within(
    db: &Db,
    ctx: &Ctx,
    spec: &Spec,
    within: &Within,
) -> Result<(ReportResult, Unapplied)> {
    ctx.require("analytics", Action::Read)?;
    let mut errs = Errors::default();
    let Some(src) = source(&spec.entity) else {
        return Err(Error::field("entity", "unknown"));
    };
    let scope = ctx.require(src.module, Action::Read)?;
    if spec.filters.len() > 20 {
        errs.add("filters", "too_many");
    }
    if spec.group_by.len() > 2 {
        errs.add("group_by", "too_many");
    }
    if spec.measures.is_empty() || spec.measures.len() > 5 {
        errs.add(
            "measures",
            if spec.measures.is_empty() {
                "required"
            } else {
                "too_many"
            },
        );
    }
    errs.finish()?;
    let backend = db.backend();
    let customs = match record_entity(src.key) {
        Some(e) => custom_fields::active_in(db, ctx.tenant_id, e).await?,
        None => vec![],
    };
    let r = Resolver {
        src,
        ctx,
        backend,
        customs,
    };
    let (currency, tz) = tenant_facts(db, ctx.tenant_id).await?;
    let offset = format!(
        "{:+} minutes",
        Utc::now()
            .with_timezone(&tz)
            .offset()
            .fix()
            .local_minus_utc()
            / 60
    );
    let mut errs = Errors::default();
    let mut columns = Vec::new();
    let mut dims = Vec::new();
    for (i, g) in spec.group_by.iter().enumerate() {
        let Some(f) = r.field(&g.field, &format!("group_by[{i}].field"), &mut errs) else {
            continue;
        };
        let expr = match (f.kind, g.bucket) {
            (Kind::Time | Kind::Date, b) => bucket_sql(
                backend,
                &f.expr,
                f.kind,
                b.unwrap_or(DateBucket::Month),
                (tz.name(), &offset),
            ),
            (_, Some(_)) => {
                errs.add(&format!("group_by[{i}].bucket"), "not_a_date");
                continue;
            }
            (_, None) => format!("CAST({} AS TEXT)", f.expr),
        };
        columns.push(ReportColumn {
            key: g.field.clone(),
            kind: if matches!(f.kind, Kind::Time | Kind::Date) {
                "date".into()
            } else {
                "text".into()
            },
            group: true,
        });
        dims.push((expr, f.kind));
    }
    let mut measures = Vec::new();
    let mut money = false;
    for (i, m) in spec.measures.iter().enumerate() {
        let at = format!("measures[{i}].field");
        let (sql, kind, key) = match (m.agg, &m.field) {
            (Agg::Count, None) => ("COUNT(*)".to_owned(), Kind::Number, "count".to_owned()),
            (Agg::Count, Some(_)) => {
                errs.add(&at, "not_allowed");
                continue;
            }
            (_, None) => {
                errs.add(&at, "required");
                continue;
            }
            (agg, Some(name)) => {
                let Some(f) = r.field(name, &at, &mut errs) else {
                    continue;
                };
                if agg != Agg::Distinct && !f.kind.numeric() {
                    errs.add(&at, "not_numeric");
                    continue;
                }
                money |= f.kind == Kind::Money;
                let (sql, kind) = match agg {
                    Agg::Sum => (format!("SUM({})", f.expr), f.kind),
                    Agg::Avg => (format!("AVG({})", f.expr), Kind::Number),
                    Agg::Min => (format!("MIN({})", f.expr), f.kind),
                    Agg::Max => (format!("MAX({})", f.expr), f.kind),
                    Agg::Distinct | Agg::Count => {
                        (format!("COUNT(DISTINCT {})", f.expr), Kind::Number)
                    }
                };
                let agg_name = serde_json::to_value(agg)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (sql, kind, format!("{agg_name}:{name}"))
            }
        };
        columns.push(ReportColumn {
            key,
            kind: kind.as_str().into(),
            group: false,
        });
        measures.push((sql, kind));
    }
    // The conditions.
    let mut cond = Sql::new("");
    let mut currency_given = spec.group_by.iter().any(|g| g.field == "currency");
    for (i, flt) in spec.filters.iter().enumerate() {
        let at = format!("filters[{i}].value");
        let Some(f) = r.field(&flt.field, &format!("filters[{i}].field"), &mut errs) else {
            continue;
        };
        currency_given |= flt.field == "currency";
        filter_sql(&mut cond, backend, &f, flt, &at, tz, &mut errs);
    }
    errs.finish()?;
    // The SQL: dims padded to two, measures to five, so every row has one shape.
    let mut q = Sql::new("SELECT ");
    let mut select = Vec::new();
    for i in 0..2 {
        select.push(match dims.get(i) {
            Some((e, _)) => format!("{e} AS d{i}"),
            None => format!("CAST(NULL AS TEXT) AS d{i}"),
        });
    }
    for i in 0..5 {
        select.push(match measures.get(i) {
            Some((e, _)) => format!("CAST({e} AS DOUBLE PRECISION) AS m{i}"),
            None => format!("CAST(NULL AS DOUBLE PRECISION) AS m{i}"),
        });
    }
    q.push(&select.join(", "));
    q.push(&format!(" FROM {} WHERE t.tenant_id = ", src.from));
    q.bind(ctx.tenant_id);
    q.push(&format!(" AND {}", src.live));
    if src.through_customer {
        let accounts = ctx.require("accounts", Action::Read);
        let contacts = ctx.require("contacts", Action::Read);
        q.push(" AND ((t.account_id IS NOT NULL AND ");
        match accounts {
            Ok(sc) => ctx.scope_cond(&mut q, sc, "a.owner_id", "a.team_id"),
            Err(_) => {
                q.push("1 = 0");
            }
        }
        q.push(") OR (t.account_id IS NULL AND ");
        match contacts {
            Ok(sc) => ctx.scope_cond(&mut q, sc, "c.owner_id", "c.team_id"),
            Err(_) => {
                q.push("1 = 0");
            }
        }
        q.push("))");
    } else {
        match record_entity(src.key) {
            // Records shared with the caller (a deal's collaborators) count as they read.
            Some(entity) => guanxi_records::shares::scope_sql(ctx, &mut q, scope, entity, "t"),
            None => ctx.scope_sql(&mut q, scope, src.owner, src.team),
        }
    }
    q.append(cond);
    let mut unapplied = Vec::new();
    let readable = |key: &str| {
        src.fields
            .iter()
            .find(|x| x.key == key)
            .filter(|x| x.needs.iter().all(|m| ctx.can(m, Action::Read).is_some()))
    };
    let mut narrow = Vec::new();
    if within.from.is_some() || within.to.is_some() {
        match src.period.and_then(readable) {
            Some(field) => {
                for (op, day) in [(Op::Gte, within.from), (Op::Lte, within.to)] {
                    if let Some(d) = day {
                        narrow.push((field, op, Value::String(d.to_string())));
                    }
                }
            }
            None => unapplied.push("period"),
        }
    }
    if let Some(p) = &within.province {
        match src.region.and_then(readable) {
            Some(field) => narrow.push((field, Op::Eq, Value::String(p.clone()))),
            None => unapplied.push("region"),
        }
    }
    let mut errs = Errors::default();
    for (field, op, value) in narrow {
        let resolved = Resolved {
            expr: field.expr.to_owned(),
            kind: field.kind,
        };
        let flt = Filter {
            field: field.key.to_owned(),
            op,
            value,
        };
        filter_sql(&mut q, backend, &resolved, &flt, field.key, tz, &mut errs);
    }
    errs.finish()?;
    if let Some(team) = within.team_id {
        q.push(&format!(" AND {} = ", src.team)).bind(team);
    }
    if within.mine {
        q.push(&format!(" AND {} = ", src.owner))
            .bind(ctx.user_id.unwrap_or_else(Uuid::nil));
    }
    let shown_currency = match (money && !currency_given, src.currency) {
        (true, Some(col)) => {
            q.push(&format!(" AND {col} = ")).bind(currency.as_str());
            Some(currency)
        }
        _ => None,
    };
    if !dims.is_empty() {
        let by: Vec<String> = (0..dims.len()).map(|i| format!("d{i}")).collect();
        q.push(&format!(" GROUP BY {}", by.join(", ")));
        // Dates in order; otherwise the largest first measure first.
        let dated = matches!(dims[0].1, Kind::Time | Kind::Date);
        if dated {
            q.push(&format!(" ORDER BY {}", by.join(", ")));
        } else {
            q.push(&format!(" ORDER BY m0 DESC, {}", by.join(", ")));
        }
    }
    q.push(&format!(" LIMIT {}", MAX_GROUPS + 1));
    let rest = q.sql.replacen(src.from, "", 1);
    q.sql = q.sql.replacen(src.from, &pruned_from(src.from, &rest), 1);
    type Row = (
        Option<String>,
        Option<String>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    );
    let mut rows: Vec<Row> = db.fetch_sql(q).await?;
    let truncated = rows.len() > MAX_GROUPS;
    rows.truncate(MAX_GROUPS);
    let out = rows
        .into_iter()
        .map(|r| {
            let ms = [r.2, r.3, r.4, r.5, r.6];
            let mut row: Vec<Value> = [r.0, r.1]
                .into_iter()
                .take(dims.len())
                .map(|d| d.map_or(Value::Null, Value::String))
                .collect();
            for (i, (_, kind)) in measures.iter().enumerate() {
                row.push(match ms[i] {
                    None => Value::Null,
                    // Counts and money are whole numbers; averages keep two decimals.
                    Some(v) if *kind != Kind::Number || v.fract() == 0.0 => json!(v.round() as i64),
                    Some(v) => json!((v * 100.0).round() / 100.0),
                });
            }
            row
        })
        .collect();
    Ok((
        ReportResult {
            columns,
            rows: out,
            truncated,
            currency: shown_currency,
        },
        unapplied,
    ))
}

/// `from` less the `LEFT JOIN`s the statement never reads. Each joins at most one row (on its
/// table's key), so leaving out one whose alias nothing names — neither `rest` (the statement
/// without its `FROM`) nor the condition of a join that stays — changes no count or sum.
/// Reading every order's account, contact and owner only to drop them made a revenue-by-month
/// tile ten times its bare aggregate on SQLite.
fn pruned_from(from: &str, rest: &str) -> String {
    let mut parts = from.split("LEFT JOIN ");
    let base = parts.next().unwrap_or_default();
    let joins: Vec<&str> = parts.collect();
    let names = |text: &str, alias: &str| {
        let dotted = format!("{alias}.");
        text.match_indices(&dotted).any(|(at, _)| {
            !text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    let mut keep = vec![false; joins.len()];
    for i in (0..joins.len()).rev() {
        let alias = joins[i].split_whitespace().nth(1).unwrap_or_default();
        keep[i] =
            names(rest, alias) || (i + 1..joins.len()).any(|j| keep[j] && names(joins[j], alias));
    }
    let mut out = base.to_owned();
    for (join, _) in joins.iter().zip(&keep).filter(|(_, k)| **k) {
        out.push_str("LEFT JOIN ");
        out.push_str(join);
    }
    out
}

/// Appends one filter's condition.
fn filter_sql(
    q: &mut Sql,
    backend: Backend,
    f: &Resolved,
    flt: &Filter,
    at: &str,
    tz: chrono_tz::Tz,
    errs: &mut Errors,
) {
    let e = &f.expr;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let day_start = |d: NaiveDate| {
        Window {
            from: Some(d),
            to: d,
            tz,
        }
        .start()
    };
    match flt.op {
        Op::Empty => {
            q.push(&format!(" AND ({e} IS NULL OR CAST({e} AS TEXT) = '')"));
        }
        Op::NotEmpty => {
            q.push(&format!(
                " AND ({e} IS NOT NULL AND CAST({e} AS TEXT) <> '')"
            ));
        }
        Op::In => {
            let Some(list) = flt
                .value
                .as_array()
                .filter(|l| !l.is_empty() && l.len() <= 100)
            else {
                errs.add(at, "invalid");
                return;
            };
            let items: Option<Vec<String>> = list.iter().map(text).collect();
            let Some(items) = items else {
                errs.add(at, "invalid");
                return;
            };
            q.push(&format!(" AND CAST({e} AS TEXT) IN "))
                .bind_list(items);
        }
        Op::Contains => {
            let Some(v) = text(&flt.value).filter(|v| !v.is_empty() && v.chars().count() <= 200)
            else {
                errs.add(at, "invalid");
                return;
            };
            let find = match backend {
                Backend::Sqlite => "instr",
                Backend::Postgres => "strpos",
            };
            q.push(&format!(" AND {find}(LOWER(CAST({e} AS TEXT)), LOWER("))
                .bind(v)
                .push(")) > 0");
        }
        op => {
            let cmp = match op {
                Op::Eq => "=",
                Op::Ne => "<>",
                Op::Gt => ">",
                Op::Gte => ">=",
                Op::Lt => "<",
                _ => "<=",
            };
            match f.kind {
                Kind::Number | Kind::Money => {
                    let Some(v) = flt
                        .value
                        .as_f64()
                        .or_else(|| text(&flt.value)?.parse().ok())
                    else {
                        errs.add(at, "invalid");
                        return;
                    };
                    q.push(&format!(" AND {e} {cmp} ")).bind(v);
                }
                Kind::Time => {
                    // A day on the tenant's calendar: from its first instant to the next day's.
                    let Some(d) = text(&flt.value).and_then(|v| v.parse::<NaiveDate>().ok()) else {
                        errs.add(at, "invalid");
                        return;
                    };
                    let next = d.checked_add_days(Days::new(1)).unwrap_or(d);
                    let (Some(start), Some(end)) = (day_start(d), day_start(next)) else {
                        errs.add(at, "invalid");
                        return;
                    };
                    match op {
                        Op::Eq => {
                            q.push(&format!(" AND {e} >= ")).bind(start);
                            q.push(&format!(" AND {e} < ")).bind(end);
                        }
                        Op::Ne => {
                            q.push(&format!(" AND ({e} < ")).bind(start);
                            q.push(&format!(" OR {e} >= ")).bind(end).push(")");
                        }
                        Op::Gt => {
                            q.push(&format!(" AND {e} >= ")).bind(end);
                        }
                        Op::Gte => {
                            q.push(&format!(" AND {e} >= ")).bind(start);
                        }
                        Op::Lt => {
                            q.push(&format!(" AND {e} < ")).bind(start);
                        }
                        _ => {
                            q.push(&format!(" AND {e} < ")).bind(end);
                        }
                    }
                }
                Kind::Date => {
                    let Some(d) = text(&flt.value).and_then(|v| v.parse::<NaiveDate>().ok()) else {
                        errs.add(at, "invalid");
                        return;
                    };
                    q.push(&format!(" AND {e} {cmp} ")).bind(d.to_string());
                }
                Kind::Text => {
                    let Some(v) = text(&flt.value) else {
                        errs.add(at, "invalid");
                        return;
                    };
                    q.push(&format!(" AND CAST({e} AS TEXT) {cmp} ")).bind(v);
                }
            }
        }
    }
}

/// The fields of an entity a report may use, for the builder: `(key, kind)`, custom fields as
/// `custom.<key>` with their labels.
pub async fn fields(
    db: &Db,
    ctx: &Ctx,
    entity: &str,
) -> Result<Vec<(String, String, Option<String>)>> {
    let Some(src) = source(entity) else {
        return Err(Error::field("entity", "unknown"));
    };
    let mut out: Vec<(String, String, Option<String>)> = src
        .fields
        .iter()
        .filter(|f| f.needs.iter().all(|m| ctx.can(m, Action::Read).is_some()))
        .map(|f| (f.key.to_owned(), f.kind.as_str().to_owned(), None))
        .collect();
    if let Some(e) = record_entity(entity) {
        for d in custom_fields::active_in(db, ctx.tenant_id, e).await? {
            if let Some((_, numeric)) = custom_fields::value_expr(db.backend(), "t", &d) {
                let label = d.label_in(&ctx.locale).to_owned();
                out.push((
                    format!("custom.{}", d.key),
                    if numeric { "number" } else { "text" }.to_owned(),
                    Some(label),
                ));
            }
        }
    }
    Ok(out)
}

/// A saved report.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Report {
    pub id: Uuid,
    pub name: String,
    pub owner_id: Uuid,
    pub team_id: Option<Uuid>,
    /// `private`, `team` (the owner's) or `company`.
    pub sharing: String,
    #[schema(value_type = Spec)]
    pub spec: sqlx::types::Json<Spec>,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
    pub version: i64,
    /// Emailed `never`, `daily`, `weekly` (Mondays) or `monthly` (the 1st), at 08:00.
    pub schedule: String,
    /// Who it is emailed to.
    #[schema(value_type = Vec<String>)]
    pub recipients: sqlx::types::Json<Vec<String>>,
}

const COLUMNS: &str =
    "id, name, owner_id, team_id, sharing, spec, created_at, updated_at, version, schedule, recipients";

/// The schedules a report can be emailed on.
pub const SCHEDULES: [&str; 4] = ["never", "daily", "weekly", "monthly"];
/// The scheduler's job: one due delivery of a report.
pub const DELIVERY_JOB: &str = "report_delivery";

/// The next time after `after` a report on `schedule` is due: 08:00 on the tenant's calendar
/// the next day, the next Monday or the 1st of the next month.
pub fn next_due(
    schedule: &str,
    after: chrono::DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Option<chrono::DateTime<Utc>> {
    use chrono::{Datelike, TimeZone};
    let local = after.with_timezone(&tz).date_naive();
    let mut day = local;
    for _ in 0..40 {
        let at = tz
            .from_local_datetime(&day.and_hms_opt(8, 0, 0)?)
            .earliest()?
            .with_timezone(&Utc);
        let fits = match schedule {
            "daily" => true,
            "weekly" => day.weekday() == chrono::Weekday::Mon,
            "monthly" => day.day() == 1,
            _ => return None,
        };
        if fits && at > after {
            return Some(at);
        }
        day = day.succ_opt()?;
    }
    None
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    pub name: String,
    /// `private` (default), `team` or `company` (sharing takes `analytics` create).
    pub sharing: Option<String>,
    pub spec: Spec,
    /// For an update: the version read (or `If-Match`).
    pub version: Option<i64>,
    /// `never` (default), `daily`, `weekly` or `monthly`: emailed at 08:00 (the caller's copy).
    pub schedule: Option<String>,
    /// Up to 20 addresses; required with a schedule.
    pub recipients: Option<Vec<String>>,
}

/// A sharing (`private` when none is given), or an error on `sharing`.
pub(crate) fn check_sharing(given: Option<&str>, errs: &mut Errors) -> String {
    let sharing = given.unwrap_or("private").to_owned();
    if !["private", "team", "company"].contains(&sharing.as_str()) {
        errs.add("sharing", "invalid");
    }
    sharing
}

/// Sharing with the team or the company takes `analytics` create.
pub(crate) fn may_share(ctx: &Ctx, sharing: &str) -> Result<()> {
    if sharing != "private" {
        ctx.require("analytics", Action::Create)?;
    }
    Ok(())
}

/// What a saved report is, checked.
struct Checked {
    name: String,
    sharing: String,
    schedule: String,
    recipients: Vec<String>,
}

fn check_input(ctx: &Ctx, input: &ReportInput) -> Result<Checked> {
    let mut errs = Errors::default();
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        errs.add("name", "required");
    } else if name.chars().count() > 200 {
        errs.add("name", "too_long");
    }
    let sharing = check_sharing(input.sharing.as_deref(), &mut errs);
    let schedule = input.schedule.clone().unwrap_or_else(|| "never".into());
    if !SCHEDULES.contains(&schedule.as_str()) {
        errs.add("schedule", "invalid");
    }
    let mut recipients = Vec::new();
    let given = input.recipients.clone().unwrap_or_default();
    if given.len() > 20 {
        errs.add("recipients", "too_many");
    }
    for (i, r) in given.iter().take(20).enumerate() {
        match guanxi_platform::validate::email(r) {
            Ok(e) => recipients.push(e),
            Err(code) => errs.add(&format!("recipients[{i}]"), code),
        }
    }
    if schedule != "never" && given.is_empty() {
        errs.add("recipients", "required");
    }
    errs.finish()?;
    may_share(ctx, &sharing)?;
    Ok(Checked {
        name,
        sharing,
        schedule,
        recipients,
    })
}

/// Plans a scheduled report's next delivery (the chain is keyed by the report's version: a
/// later save starts a new chain and the old one stops at its next step).
async fn plan(
    tx: &mut guanxi_platform::db::Tx,
    tenant: Uuid,
    (id, version, schedule): (Uuid, i64, &str),
    after: chrono::DateTime<Utc>,
) -> Result<()> {
    let tz = crate::facts::tenant_zone(tx, tenant).await?;
    if let Some(due) = next_due(schedule, after, tz) {
        guanxi_platform::jobs::schedule(
            tx,
            tenant,
            DELIVERY_JOB,
            &format!("report:{id}:{version}:{}", due.timestamp()),
            &json!({ "report_id": id, "version": version, "due": due }),
            due,
        )
        .await?;
    }
    Ok(())
}

/// The scheduler's step: record the delivery due now (once), plan the next — unless the
/// report was changed (a newer chain runs) or deleted or unscheduled.
pub fn delivery_handler() -> impl for<'a> Fn(
    &'a mut guanxi_platform::db::Tx,
    guanxi_platform::jobs::Due<'a>,
) -> guanxi_platform::jobs::HandlerFuture<'a>
       + Send
       + Sync {
    |tx, due| {
        Box::pin(async move {
            let p = due.payload;
            let (Some(id), Some(version), Some(at)) = (
                p.get("report_id")
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<Uuid>().ok()),
                p.get("version").and_then(Value::as_i64),
                p.get("due")
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<chrono::DateTime<Utc>>().ok()),
            ) else {
                return Ok(());
            };
            let row: Option<(String, i64)> = tx
                .fetch_optional(
                    "SELECT schedule, version FROM reports WHERE tenant_id = $1 AND id = $2",
                    args![due.tenant_id, id],
                )
                .await?;
            let Some((schedule, current)) = row else {
                return Ok(());
            };
            if current != version || schedule == "never" {
                return Ok(());
            }
            let t = now();
            tx.execute(
                "INSERT INTO report_deliveries (tenant_id, id, report_id, due_at, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6) ON CONFLICT (tenant_id, report_id, due_at) DO NOTHING",
                args![due.tenant_id, new_id(), id, at, t, t],
            )
            .await?;
            plan(tx, due.tenant_id, (id, version, &schedule), at).await
        })
    }
}

/// How a delivered report reads: the subject and text of its mail, in the owner's language.
pub type Render = dyn Fn(&Ctx, &Report, &ReportResult) -> (String, String) + Send + Sync;

/// Sends the deliveries due: each report run as its owner (their scope today), the mail queued
/// for every recipient in the transaction that marks the delivery sent — so a crash sends it
/// once, later, never twice. A report that no longer runs (a field since forbidden) is marked
/// failed with why. Returns how many were sent.
pub async fn deliver(db: &Db, render: &Render) -> Result<u32> {
    let mut sent = 0;
    loop {
        let pending: Vec<(Uuid, Uuid, Uuid)> = db
            .fetch_all(
                "SELECT tenant_id, id, report_id FROM report_deliveries WHERE status = 'pending'
                 ORDER BY created_at LIMIT 20",
                vec![],
            )
            .await?;
        if pending.is_empty() {
            return Ok(sent);
        }
        for (tenant, id, report_id) in pending {
            let report: Option<Report> = db
                .fetch_optional(
                    &format!("SELECT {COLUMNS} FROM reports WHERE tenant_id = $1 AND id = $2"),
                    args![tenant, report_id],
                )
                .await?;
            let outcome = match report {
                None => Err("the report was deleted".to_owned()),
                Some(r) => {
                    match guanxi_platform::auth::ctx_for_user(db, tenant, r.owner_id).await {
                        Err(e) => Err(e.to_string()),
                        Ok(ctx) => match run(db, &ctx, &r.spec.0).await {
                            Err(e) => Err(e.to_string()),
                            Ok(result) => Ok((render(&ctx, &r, &result), r.recipients.0.clone())),
                        },
                    }
                }
            };
            let mut tx = db.begin().await?;
            let (status, error) = match &outcome {
                Ok(_) => ("sent", None),
                Err(e) => ("failed", Some(e.clone())),
            };
            let n = tx
                .execute(
                    "UPDATE report_deliveries SET status = $1, error = $2, updated_at = $3
                     WHERE tenant_id = $4 AND id = $5 AND status = 'pending'",
                    args![status, error, now(), tenant, id],
                )
                .await?;
            if n == 0 {
                continue; // sent by another worker
            }
            if let Ok(((subject, text), to)) = outcome {
                for address in to {
                    guanxi_platform::jobs::enqueue(
                        &mut tx,
                        tenant,
                        guanxi_platform::jobs::KIND_EMAIL,
                        &guanxi_platform::jobs::Email {
                            to: address,
                            subject: subject.clone(),
                            text: text.clone(),
                            message_id: None,
                            in_reply_to: None,
                            reply_to: None,
                            then: None,
                            attachments: Vec::new(),
                        },
                    )
                    .await?;
                }
                sent += 1;
            }
            tx.commit().await?;
        }
    }
}

/// Saves a report after running it once (so a saved report always runs).
pub async fn create(db: &Db, ctx: &Ctx, input: ReportInput) -> Result<Report> {
    ctx.require("analytics", Action::Read)?;
    let owner = ctx.user_id.ok_or(Error::Forbidden)?;
    let c = check_input(ctx, &input)?;
    run(db, ctx, &input.spec).await?;
    let t = now();
    let report = Report {
        id: new_id(),
        name: c.name,
        owner_id: owner,
        team_id: ctx.team_id,
        sharing: c.sharing,
        spec: sqlx::types::Json(input.spec),
        created_at: t,
        updated_at: t,
        version: 1,
        schedule: c.schedule,
        recipients: sqlx::types::Json(c.recipients),
    };
    let spec = serde_json::to_value(&report.spec.0).map_err(anyhow::Error::from)?;
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO reports (tenant_id, id, name, owner_id, team_id, sharing, spec, created_at, updated_at, version,
             schedule, recipients)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11)",
        args![ctx.tenant_id, report.id, report.name.clone(), owner, report.team_id,
              report.sharing.clone(), spec, t, t, report.schedule.clone(), json!(report.recipients.0)],
    )
    .await?;
    plan(&mut tx, ctx.tenant_id, (report.id, 1, &report.schedule), t).await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "report",
        Some(report.id),
        None,
        Some(&report),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// What the caller sees of a shared table (`owner_id`, `team_id`, `sharing`): their own rows,
/// their team's shared and the company's.
pub(crate) fn visible(ctx: &Ctx, q: &mut Sql) {
    q.push(" AND (owner_id = ").bind(ctx.user_id);
    q.push(" OR sharing = 'company'");
    if let Some(team) = ctx.team_id {
        q.push(" OR (sharing = 'team' AND team_id = ")
            .bind(team)
            .push(")");
    }
    q.push(")");
}

pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Report>> {
    ctx.require("analytics", Action::Read)?;
    let mut q = Sql::new(&format!("SELECT {COLUMNS} FROM reports WHERE tenant_id = "));
    q.bind(ctx.tenant_id);
    visible(ctx, &mut q);
    q.push(" ORDER BY name, id LIMIT 500");
    db.fetch_sql(q).await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Report> {
    ctx.require("analytics", Action::Read)?;
    let mut q = Sql::new(&format!("SELECT {COLUMNS} FROM reports WHERE tenant_id = "));
    q.bind(ctx.tenant_id).push(" AND id = ").bind(id);
    visible(ctx, &mut q);
    db.fetch_sql(q)
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound)
}

/// Changes a report of the caller's, checked against the version read.
pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    header: Option<i64>,
    input: ReportInput,
) -> Result<Report> {
    let old = get(db, ctx, id).await?;
    if Some(old.owner_id) != ctx.user_id {
        return Err(Error::Forbidden);
    }
    let expected = version::expected(header, input.version)?;
    version::check(expected, old.version)?;
    let c = check_input(ctx, &input)?;
    run(db, ctx, &input.spec).await?;
    let spec = serde_json::to_value(&input.spec).map_err(anyhow::Error::from)?;
    let mut tx = db.begin().await?;
    let new_version = version::update(
        &mut tx,
        version::Row {
            table: "reports",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, sharing = $2, spec = $3, updated_at = $4, schedule = $5, recipients = $6",
        args![
            c.name,
            c.sharing,
            spec,
            now(),
            c.schedule.clone(),
            json!(c.recipients)
        ],
    )
    .await?;
    plan(
        &mut tx,
        ctx.tenant_id,
        (id, new_version, &c.schedule),
        now(),
    )
    .await?;
    tx.commit().await?;
    let new = get(db, ctx, id).await?;
    let mut tx = db.begin().await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "report",
        Some(id),
        Some(&old),
        Some(&new),
    )
    .await?;
    tx.commit().await?;
    Ok(new)
}

/// Deletes a report of the caller's.
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    let old = get(db, ctx, id).await?;
    if Some(old.owner_id) != ctx.user_id {
        return Err(Error::Forbidden);
    }
    let mut tx = db.begin().await?;
    tx.execute(
        "DELETE FROM reports WHERE tenant_id = $1 AND id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    audit::record(&mut tx, ctx, "delete", "report", Some(id), Some(&old), None).await?;
    tx.commit().await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FieldsQuery {
    pub entity: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike};

    #[test]
    fn joins_nothing_reads_are_left_out() {
        let orders = source("orders").map(|s| s.from).unwrap_or_default();
        let joined = |rest: &str| {
            let from = pruned_from(orders, rest);
            ["a", "c", "u"]
                .into_iter()
                .filter(|alias| from.contains(&format!(" {alias} ON ")))
                .collect::<Vec<_>>()
        };
        // By month for the whole company: the orders alone.
        let by_month = "SELECT strftime('%Y-%m', t.ordered_at) AS d0, SUM(t.total) WHERE t.tenant_id = $1 \
            AND ((t.account_id IS NOT NULL AND (1 = 1)) OR (t.account_id IS NULL AND (1 = 1))) GROUP BY d0";
        assert!(joined(by_month).is_empty());
        // By rep: the owner, found through the account or the contact.
        assert_eq!(joined("SELECT u.name AS d0"), ["a", "c", "u"]);
        // By province, or a rep's own scope: the customers, not the owner.
        assert_eq!(
            joined("SELECT COALESCE(a.province, c.province)"),
            ["a", "c"]
        );
        assert_eq!(
            joined("WHERE (a.owner_id = $2) OR (c.owner_id = $2)"),
            ["a", "c"]
        );
        // A name that only ends in an alias is not the alias.
        assert!(joined("SELECT data.x, t.total").is_empty());
    }

    #[test]
    fn next_due_is_eight_in_the_morning_on_the_tenants_calendar() -> Result<(), String> {
        let tz = chrono_tz::Asia::Shanghai;
        let at = |d: u32, h: u32, m: u32| {
            tz.with_ymd_and_hms(2026, 12, d, h, m, 0)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .ok_or("a time")
        };
        let due = |schedule: &str, after| {
            next_due(schedule, after, tz)
                .map(|t| t.with_timezone(&tz))
                .ok_or(format!("{schedule} is due"))
        };
        // Friday 2026-12-04 07:59 in Shanghai.
        let daily = due("daily", at(4, 7, 59)?)?;
        assert_eq!((daily.day(), daily.hour()), (4, 8), "the same morning");
        let at_eight = at(4, 8, 0)?;
        assert_eq!(
            due("daily", at_eight)?.day(),
            5,
            "strictly after: the next day"
        );
        let weekly = due("weekly", at_eight)?;
        assert_eq!((weekly.weekday(), weekly.day()), (chrono::Weekday::Mon, 7));
        let monthly = due("monthly", at_eight)?;
        assert_eq!(
            (monthly.year(), monthly.month(), monthly.day()),
            (2027, 1, 1)
        );
        assert_eq!(next_due("never", at_eight, tz), None);
        // Each step of a chain moves on by exactly its period.
        let mut t = next_due("weekly", at_eight, tz).ok_or("weekly")?;
        for _ in 0..60 {
            let n = next_due("weekly", t, tz).ok_or("weekly")?;
            assert_eq!(n - t, chrono::Duration::days(7));
            t = n;
        }
        Ok(())
    }
}
