//! Dashboards: a page of tiles — a report defined in place, a saved report, the grade
//! migration of the latest 4V evaluation, the quarter's pipeline and forecast — narrowed
//! together by a period, a team, a region (province) and "only mine". Every tile runs in the
//! viewer's own record scope (a rep's dashboard never counts what the rep cannot read), and a
//! tile that cannot be shown to this viewer says why instead of failing the page.
//!
//! Two dashboards are built in (code, not rows, read-only — copy one to change it): the
//! management dashboard (revenue by month, grade, region, industry and rep; grade migration;
//! forecast; open pipeline) and "My numbers", the home page's default. Saved dashboards
//! (`dashboards`, migration 5006) are shared like reports; each user picks the dashboard their
//! home page shows (`dashboard_homes`).

use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::{Errors, FieldError, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, version, Ctx, Error};
use guanxi_sales::forecast::{self, ForecastQuery, ForecastRow};

use crate::grading_runs::GradeMove;
use crate::reports::{self, Agg, Chart, Filter, Group, Op, ReportMeasure, ReportResult, Spec};

/// At most this many tiles on a dashboard.
pub const MAX_TILES: usize = 12;

/// The built-in management dashboard.
pub const MANAGEMENT: Uuid = Uuid::from_u128(0xd1);
/// The built-in "My numbers", every user's home until they pick another.
pub const MY_NUMBERS: Uuid = Uuid::from_u128(0xd2);
/// The built-in service desk dashboard: backlog, service-level outcomes, reopenings, channels.
pub const SERVICE: Uuid = Uuid::from_u128(0xd3);

/// What a tile shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TileContent {
    /// A report defined on the tile.
    Report { spec: Spec },
    /// A saved report (as it is when the dashboard is opened; one the viewer cannot see is
    /// shown as not found).
    SavedReport { report_id: Uuid },
    /// Accounts by grade in the latest 4V evaluation up to the period's end, against their
    /// grade before it.
    GradeMigration,
    /// Open pipeline by forecast category, weighted, won and the target for the quarter the
    /// period ends in.
    Forecast,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tile {
    /// Up to 100 characters.
    pub title: String,
    /// Across the whole width (else half of it).
    #[serde(default)]
    pub wide: bool,
    pub content: TileContent,
}

/// A period on the tenant's calendar, relative to today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodPreset {
    ThisMonth,
    LastMonth,
    ThisQuarter,
    LastQuarter,
    ThisYear,
    #[serde(rename = "last_12_months")]
    Last12Months,
    /// No period.
    All,
}

impl PeriodPreset {
    pub const ALL: [PeriodPreset; 7] = [
        PeriodPreset::ThisMonth,
        PeriodPreset::LastMonth,
        PeriodPreset::ThisQuarter,
        PeriodPreset::LastQuarter,
        PeriodPreset::ThisYear,
        PeriodPreset::Last12Months,
        PeriodPreset::All,
    ];

    /// The first and last day of the period around `today`.
    pub fn days(self, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let month = today.with_day(1)?;
        let quarter = NaiveDate::from_ymd_opt(today.year(), (today.month() - 1) / 3 * 3 + 1, 1)?;
        let last = |start: NaiveDate, months: u32| {
            Some((
                start,
                start.checked_add_months(Months::new(months))?.pred_opt()?,
            ))
        };
        match self {
            PeriodPreset::ThisMonth => last(month, 1),
            PeriodPreset::LastMonth => last(month.checked_sub_months(Months::new(1))?, 1),
            PeriodPreset::ThisQuarter => last(quarter, 3),
            PeriodPreset::LastQuarter => last(quarter.checked_sub_months(Months::new(3))?, 3),
            PeriodPreset::ThisYear => last(today.with_month(1)?.with_day(1)?, 12),
            PeriodPreset::Last12Months => Some((
                today
                    .checked_sub_months(Months::new(12))?
                    .checked_add_days(Days::new(1))?,
                today,
            )),
            PeriodPreset::All => None,
        }
    }
}

/// How a dashboard is narrowed: saved with it as how it opens, and given when it is opened
/// (each given one replaces the saved one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardFilters {
    /// A period relative to today; `from`/`to` set one instead.
    pub period: Option<PeriodPreset>,
    /// First day (`YYYY-MM-DD`, the tenant's calendar).
    pub from: Option<NaiveDate>,
    /// Last day.
    pub to: Option<NaiveDate>,
    pub team_id: Option<Uuid>,
    /// A province (the region).
    pub province: Option<String>,
    /// Only the viewer's own records.
    pub mine: Option<bool>,
}

impl DashboardFilters {
    /// `given` over `self`: a given period (preset or days) replaces the saved period whole.
    pub fn overlaid(&self, given: &DashboardFilters) -> DashboardFilters {
        let dated = given.period.is_some() || given.from.is_some() || given.to.is_some();
        let (period, from, to) = if dated {
            (given.period, given.from, given.to)
        } else {
            (self.period, self.from, self.to)
        };
        DashboardFilters {
            period,
            from,
            to,
            team_id: given.team_id.or(self.team_id),
            province: given.province.clone().or_else(|| self.province.clone()),
            mine: given.mine.or(self.mine),
        }
    }

    fn check(&self, at: &str, errs: &mut Errors) {
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if t < f {
                errs.add(&format!("{at}to"), "before_from");
            }
        }
        if self.period.is_some() && (self.from.is_some() || self.to.is_some()) {
            errs.add(&format!("{at}period"), "with_days");
        }
        if let Some(p) = &self.province {
            if p.trim().is_empty() || p.chars().count() > 100 {
                errs.add(&format!("{at}province"), "invalid");
            }
        }
    }
}

/// A dashboard (built-in ones have no owner and version 0).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Dashboard {
    pub id: Uuid,
    /// A built-in dashboard's name and titles are message keys (`dashboard.builtin.…`),
    /// shown in the reader's language.
    pub name: String,
    /// Built in: read-only, copy it to change it.
    #[sqlx(skip)]
    pub builtin: bool,
    pub owner_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// `private`, `team` (the owner's) or `company`.
    pub sharing: String,
    #[schema(value_type = Vec<Tile>)]
    pub tiles: sqlx::types::Json<Vec<Tile>>,
    /// How it opens.
    #[schema(value_type = DashboardFilters)]
    pub filters: sqlx::types::Json<DashboardFilters>,
    pub updated_at: Option<chrono::DateTime<Utc>>,
    pub version: i64,
    /// The caller's home page shows it.
    #[sqlx(skip)]
    pub home: bool,
}

const COLUMNS: &str = "id, name, owner_id, team_id, sharing, tiles, filters, updated_at, version";

fn counted_orders() -> Filter {
    Filter {
        field: "status".into(),
        op: Op::In,
        value: json!(["confirmed", "paid", "shipped", "completed"]),
    }
}

fn report(title: &str, wide: bool, spec: Spec) -> Tile {
    Tile {
        title: format!("dashboard.builtin.{title}"),
        wide,
        content: TileContent::Report { spec },
    }
}

fn by(
    entity: &str,
    filters: Vec<Filter>,
    group: &str,
    bucket: Option<reports::DateBucket>,
    measures: &[(Agg, Option<&str>)],
    chart: Chart,
) -> Spec {
    Spec {
        entity: entity.into(),
        filters,
        group_by: vec![Group {
            field: group.into(),
            bucket,
        }],
        measures: measures
            .iter()
            .map(|(agg, field)| ReportMeasure {
                agg: *agg,
                field: field.map(str::to_owned),
            })
            .collect(),
        chart,
    }
}

fn revenue_by(group: &str, chart: Chart) -> Spec {
    let bucket = (group == "ordered_at").then_some(reports::DateBucket::Month);
    by(
        "orders",
        vec![counted_orders()],
        group,
        bucket,
        &[(Agg::Sum, Some("total")), (Agg::Count, None)],
        chart,
    )
}

fn open_deals() -> Spec {
    by(
        "opportunities",
        vec![Filter {
            field: "status".into(),
            op: Op::Eq,
            value: json!("open"),
        }],
        "stage",
        None,
        &[(Agg::Sum, Some("amount")), (Agg::Count, None)],
        Chart::Funnel,
    )
}

fn builtin(id: Uuid) -> Option<Dashboard> {
    let (name, tiles, filters) = if id == MANAGEMENT {
        (
            "management",
            vec![
                report(
                    "revenue_by_month",
                    true,
                    revenue_by("ordered_at", Chart::Line),
                ),
                report("revenue_by_grade", false, revenue_by("grade", Chart::Bar)),
                report(
                    "revenue_by_region",
                    false,
                    revenue_by("province", Chart::Bar),
                ),
                report(
                    "revenue_by_industry",
                    false,
                    revenue_by("industry", Chart::Pie),
                ),
                report("revenue_by_rep", false, revenue_by("owner", Chart::Bar)),
                Tile {
                    title: "dashboard.builtin.grade_migration".into(),
                    wide: false,
                    content: TileContent::GradeMigration,
                },
                Tile {
                    title: "dashboard.builtin.forecast".into(),
                    wide: false,
                    content: TileContent::Forecast,
                },
                report("open_pipeline", true, open_deals()),
            ],
            DashboardFilters {
                period: Some(PeriodPreset::ThisQuarter),
                ..Default::default()
            },
        )
    } else if id == SERVICE {
        let open = || Filter {
            field: "status".into(),
            op: Op::In,
            value: json!(["new", "open", "waiting_customer", "waiting_third_party"]),
        };
        let count = &[(Agg::Count, None)];
        (
            "service",
            vec![
                report(
                    "tickets_by_month",
                    true,
                    by(
                        "tickets",
                        vec![],
                        "created_at",
                        Some(reports::DateBucket::Month),
                        count,
                        Chart::Line,
                    ),
                ),
                report(
                    "backlog_by_status",
                    false,
                    by("tickets", vec![open()], "status", None, count, Chart::Bar),
                ),
                report(
                    "backlog_by_agent",
                    false,
                    by("tickets", vec![open()], "owner", None, count, Chart::Bar),
                ),
                report(
                    "sla_outcomes",
                    false,
                    by(
                        "ticket_targets",
                        vec![Filter {
                            field: "state".into(),
                            op: Op::In,
                            value: json!(["met", "missed"]),
                        }],
                        "state",
                        None,
                        count,
                        Chart::Pie,
                    ),
                ),
                report(
                    "sla_missed_by_target",
                    false,
                    by(
                        "ticket_targets",
                        vec![Filter {
                            field: "state".into(),
                            op: Op::Eq,
                            value: json!("missed"),
                        }],
                        "target",
                        None,
                        count,
                        Chart::Bar,
                    ),
                ),
                report(
                    "tickets_by_grade",
                    false,
                    by("tickets", vec![], "grade", None, count, Chart::Bar),
                ),
                report(
                    "reopened_by_agent",
                    false,
                    by(
                        "tickets",
                        vec![],
                        "owner",
                        None,
                        &[(Agg::Sum, Some("reopened")), (Agg::Count, None)],
                        Chart::Bar,
                    ),
                ),
                report(
                    "tickets_by_channel",
                    false,
                    by("tickets", vec![], "channel", None, count, Chart::Pie),
                ),
                report(
                    "csat_by_agent",
                    false,
                    by(
                        "survey_responses",
                        vec![Filter {
                            field: "survey_kind".into(),
                            op: Op::Eq,
                            value: json!("csat"),
                        }],
                        "owner",
                        None,
                        &[(Agg::Avg, Some("score")), (Agg::Count, None)],
                        Chart::Bar,
                    ),
                ),
                report(
                    "csat_by_team",
                    false,
                    by(
                        "survey_responses",
                        vec![Filter {
                            field: "survey_kind".into(),
                            op: Op::Eq,
                            value: json!("csat"),
                        }],
                        "team",
                        None,
                        &[(Agg::Avg, Some("score")), (Agg::Count, None)],
                        Chart::Bar,
                    ),
                ),
                report(
                    "deflection",
                    false,
                    by("help_questions", vec![], "outcome", None, count, Chart::Pie),
                ),
            ],
            DashboardFilters {
                period: Some(PeriodPreset::ThisQuarter),
                ..Default::default()
            },
        )
    } else if id == MY_NUMBERS {
        (
            "my_numbers",
            vec![
                report("my_revenue", true, revenue_by("ordered_at", Chart::Line)),
                report("my_pipeline", false, open_deals()),
                Tile {
                    title: "dashboard.builtin.my_forecast".into(),
                    wide: false,
                    content: TileContent::Forecast,
                },
                report(
                    "my_activities",
                    false,
                    by(
                        "activities",
                        vec![],
                        "kind",
                        None,
                        &[(Agg::Count, None)],
                        Chart::Bar,
                    ),
                ),
                report(
                    "my_leads",
                    false,
                    by(
                        "leads",
                        vec![],
                        "status",
                        None,
                        &[(Agg::Count, None)],
                        Chart::Pie,
                    ),
                ),
            ],
            DashboardFilters {
                period: Some(PeriodPreset::ThisQuarter),
                mine: Some(true),
                ..Default::default()
            },
        )
    } else {
        return None;
    };
    Some(Dashboard {
        id,
        name: format!("dashboard.builtin.{name}"),
        builtin: true,
        owner_id: None,
        team_id: None,
        sharing: "company".into(),
        tiles: sqlx::types::Json(tiles),
        filters: sqlx::types::Json(filters),
        updated_at: None,
        version: 0,
        home: false,
    })
}

async fn home_of(db: &Db, ctx: &Ctx) -> Result<Uuid> {
    let row: Option<(Uuid,)> = db
        .fetch_optional(
            "SELECT dashboard_id FROM dashboard_homes WHERE tenant_id = $1 AND user_id = $2",
            args![ctx.tenant_id, ctx.user_id],
        )
        .await?;
    Ok(row.map_or(MY_NUMBERS, |r| r.0))
}

/// The dashboards the caller sees: the built-in ones, then their own, their team's shared and
/// the company's by name.
pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Dashboard>> {
    ctx.require("analytics", Action::Read)?;
    let mut q = Sql::new(&format!(
        "SELECT {COLUMNS} FROM dashboards WHERE tenant_id = "
    ));
    q.bind(ctx.tenant_id);
    reports::visible(ctx, &mut q);
    q.push(" ORDER BY name, id LIMIT 500");
    let saved: Vec<Dashboard> = db.fetch_sql(q).await?;
    let home = home_of(db, ctx).await?;
    let mut all: Vec<Dashboard> = [MANAGEMENT, MY_NUMBERS, SERVICE]
        .into_iter()
        .filter_map(builtin)
        .chain(saved)
        .collect();
    for d in &mut all {
        d.home = d.id == home;
    }
    Ok(all)
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Dashboard> {
    ctx.require("analytics", Action::Read)?;
    let mut d = match builtin(id) {
        Some(d) => d,
        None => {
            let mut q = Sql::new(&format!(
                "SELECT {COLUMNS} FROM dashboards WHERE tenant_id = "
            ));
            q.bind(ctx.tenant_id).push(" AND id = ").bind(id);
            reports::visible(ctx, &mut q);
            db.fetch_sql::<Dashboard>(q)
                .await?
                .into_iter()
                .next()
                .ok_or(Error::NotFound)?
        }
    };
    d.home = home_of(db, ctx).await? == id;
    Ok(d)
}

/// The dashboard the caller's home page shows.
pub async fn home(db: &Db, ctx: &Ctx) -> Result<Dashboard> {
    let id = home_of(db, ctx).await?;
    match get(db, ctx, id).await {
        // One since deleted or unshared: the default again.
        Err(Error::NotFound) => get(db, ctx, MY_NUMBERS).await,
        other => other,
    }
}

/// Makes a dashboard the caller can see their home page's.
pub async fn set_home(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Dashboard> {
    get(db, ctx, id).await?;
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO dashboard_homes (tenant_id, user_id, dashboard_id) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET dashboard_id = excluded.dashboard_id",
        args![ctx.tenant_id, user, id],
    )
    .await?;
    tx.commit().await?;
    get(db, ctx, id).await
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardInput {
    /// Up to 200 characters.
    pub name: String,
    /// `private` (default), `team` or `company` (sharing takes `analytics` create).
    pub sharing: Option<String>,
    /// Up to 12.
    pub tiles: Vec<Tile>,
    /// How it opens (none: this quarter, everyone's records in the viewer's scope).
    #[serde(default)]
    pub filters: DashboardFilters,
    /// For an update: the version read (or `If-Match`).
    pub version: Option<i64>,
}

/// Checks a dashboard: its name, sharing, opening filters and every tile — a report must run
/// for the caller, a saved report must be one they see — errors named `tiles[i].…`.
async fn check(db: &Db, ctx: &Ctx, input: &DashboardInput) -> Result<(String, String)> {
    let mut errs = Errors::default();
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        errs.add("name", "required");
    } else if name.chars().count() > 200 {
        errs.add("name", "too_long");
    }
    let sharing = reports::check_sharing(input.sharing.as_deref(), &mut errs);
    input.filters.check("filters.", &mut errs);
    if input.tiles.len() > MAX_TILES {
        errs.add("tiles", "too_many");
    }
    for (i, tile) in input.tiles.iter().take(MAX_TILES).enumerate() {
        let title = tile.title.trim();
        if title.is_empty() {
            errs.add(&format!("tiles[{i}].title"), "required");
        } else if title.chars().count() > 100 {
            errs.add(&format!("tiles[{i}].title"), "too_long");
        }
        match &tile.content {
            TileContent::Report { spec } => match reports::run(db, ctx, spec).await {
                Ok(_) => {}
                Err(Error::Validation(list)) => {
                    for e in list {
                        errs.add(&format!("tiles[{i}].content.spec.{}", e.field), &e.code);
                    }
                }
                Err(Error::Forbidden) => {
                    errs.add(&format!("tiles[{i}].content.spec.entity"), "forbidden")
                }
                Err(e) => return Err(e),
            },
            TileContent::SavedReport { report_id } => {
                if let Err(Error::NotFound) = reports::get(db, ctx, *report_id).await {
                    errs.add(&format!("tiles[{i}].content.report_id"), "unknown");
                }
            }
            TileContent::GradeMigration | TileContent::Forecast => {}
        }
    }
    errs.finish()?;
    reports::may_share(ctx, &sharing)?;
    Ok((name, sharing))
}

fn json_of<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(v).map_err(anyhow::Error::from)?)
}

pub async fn create(db: &Db, ctx: &Ctx, input: DashboardInput) -> Result<Dashboard> {
    ctx.require("analytics", Action::Read)?;
    let owner = ctx.user_id.ok_or(Error::Forbidden)?;
    let (name, sharing) = check(db, ctx, &input).await?;
    let id = new_id();
    let t = now();
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO dashboards (tenant_id, id, name, owner_id, team_id, sharing, tiles, filters, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)",
        args![ctx.tenant_id, id, name, owner, ctx.team_id, sharing,
              json_of(&input.tiles)?, json_of(&input.filters)?, t, t],
    )
    .await?;
    let new: Dashboard = tx
        .fetch_one(
            &format!("SELECT {COLUMNS} FROM dashboards WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "dashboard",
        Some(id),
        None,
        Some(&new),
    )
    .await?;
    tx.commit().await?;
    Ok(new)
}

/// The caller's own saved dashboard (a built-in or someone else's cannot be changed).
async fn own(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Dashboard> {
    let d = get(db, ctx, id).await?;
    if d.builtin || d.owner_id != ctx.user_id {
        return Err(Error::Forbidden);
    }
    Ok(d)
}

/// Changes a dashboard of the caller's, checked against the version read.
pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    header: Option<i64>,
    input: DashboardInput,
) -> Result<Dashboard> {
    let old = own(db, ctx, id).await?;
    let expected = version::expected(header, input.version)?;
    version::check(expected, old.version)?;
    let (name, sharing) = check(db, ctx, &input).await?;
    let mut tx = db.begin().await?;
    version::update(
        &mut tx,
        version::Row {
            table: "dashboards",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, sharing = $2, tiles = $3, filters = $4, updated_at = $5",
        args![
            name,
            sharing,
            json_of(&input.tiles)?,
            json_of(&input.filters)?,
            now()
        ],
    )
    .await?;
    let new: Dashboard = tx
        .fetch_one(
            &format!("SELECT {COLUMNS} FROM dashboards WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "dashboard",
        Some(id),
        Some(&old),
        Some(&new),
    )
    .await?;
    tx.commit().await?;
    get(db, ctx, id).await
}

/// Deletes a dashboard of the caller's (anyone whose home it was gets the default again).
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    let old = own(db, ctx, id).await?;
    let mut tx = db.begin().await?;
    tx.execute(
        "DELETE FROM dashboard_homes WHERE tenant_id = $1 AND dashboard_id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    tx.execute(
        "DELETE FROM dashboards WHERE tenant_id = $1 AND id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "dashboard",
        Some(id),
        Some(&old),
        None,
    )
    .await?;
    tx.commit().await
}

/// A tile as the viewer sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TileResult {
    pub title: String,
    pub wide: bool,
    pub data: TileData,
    /// Narrowings the tile could not take (`period`, `region`, `team`, `mine`): its entity
    /// has no such field, or the field reads a module the viewer may not.
    pub unapplied: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TileData {
    Report {
        /// What it counts (`orders`…).
        entity: String,
        chart: Chart,
        /// The saved report shown, if it is one.
        report_id: Option<Uuid>,
        result: ReportResult,
    },
    GradeMigration {
        /// The evaluation compared with the one before (none yet: no moves).
        run_id: Option<Uuid>,
        as_of: Option<String>,
        /// Accounts by grade before (`null`: not graded before) and after.
        moves: Vec<GradeMove>,
    },
    Forecast {
        /// The quarter (`2026-Q4`).
        period: String,
        currency: String,
        /// The viewer's own row with "only mine", the team's with a team, else the total.
        row: Box<ForecastRow>,
    },
    /// Cannot be shown to this viewer: `forbidden`, `not_found` (a saved report deleted or no
    /// longer shared), or a field of the report that no longer runs (`field`).
    Error { code: String, field: Option<String> },
}

/// A dashboard opened: the narrowing applied and every tile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DashboardData {
    pub dashboard: Dashboard,
    /// The narrowing applied (the saved one with the given over it) and its days.
    pub filters: DashboardFilters,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub tiles: Vec<TileResult>,
}

/// How many of a dashboard's tiles are counted at once. Each holds a pooled connection while
/// its statement runs — at a million customers for tens of seconds — and eight at once took
/// every reader of a SQLite server (five), so the tiles waiting behind them and every other
/// request timed out on the pool.
const TILES_AT_ONCE: usize = 2;

/// Opens a dashboard narrowed by `given` over its saved filters.
pub async fn open(db: &Db, ctx: &Ctx, id: Uuid, given: &DashboardFilters) -> Result<DashboardData> {
    let dashboard = get(db, ctx, id).await?;
    let mut errs = Errors::default();
    given.check("", &mut errs);
    errs.finish()?;
    let filters = dashboard.filters.0.overlaid(given);
    let (_, tz) = crate::facts::tenant_facts(db, ctx.tenant_id).await?;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let (from, to) = match filters.period {
        Some(p) => p.days(today).unzip(),
        None => (filters.from, filters.to),
    };
    let within = reports::Within {
        from,
        to,
        team_id: filters.team_id,
        province: filters.province.clone(),
        mine: filters.mine.unwrap_or(false),
    };
    // The tiles counted side by side, TILES_AT_ONCE at a time (each takes a connection of its
    // own only while its statement runs).
    let mut running = tokio::task::JoinSet::new();
    let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(TILES_AT_ONCE));
    for (i, tile) in dashboard.tiles.0.iter().enumerate() {
        let (db, ctx, content, within, turns) = (
            db.clone(),
            ctx.clone(),
            tile.content.clone(),
            within.clone(),
            turns.clone(),
        );
        running.spawn(async move {
            let _turn = turns.acquire_owned().await;
            (i, tile_data(&db, &ctx, &content, &within, today).await)
        });
    }
    let mut counted: Vec<Option<Result<(TileData, reports::Unapplied)>>> =
        dashboard.tiles.0.iter().map(|_| None).collect();
    while let Some(done) = running.join_next().await {
        let (i, r) = done.map_err(anyhow::Error::from)?;
        counted[i] = Some(r);
    }
    let mut tiles = Vec::new();
    for (tile, r) in dashboard.tiles.0.iter().zip(counted) {
        let r = r.ok_or_else(|| anyhow::anyhow!("a tile was not counted"))?;
        let (data, unapplied) = match r {
            Ok(x) => x,
            Err(Error::Forbidden) => (error("forbidden", None), vec![]),
            Err(Error::NotFound) => (error("not_found", None), vec![]),
            Err(Error::Validation(list)) => {
                let first = list
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| FieldError::new("", "invalid"));
                (error(&first.code, Some(first.field)), vec![])
            }
            Err(e) => return Err(e),
        };
        tiles.push(TileResult {
            title: tile.title.clone(),
            wide: tile.wide,
            data,
            unapplied: unapplied.into_iter().map(str::to_owned).collect(),
        });
    }
    Ok(DashboardData {
        dashboard,
        filters,
        from,
        to,
        tiles,
    })
}

fn error(code: &str, field: Option<String>) -> TileData {
    TileData::Error {
        code: code.into(),
        field,
    }
}

async fn tile_data(
    db: &Db,
    ctx: &Ctx,
    content: &TileContent,
    within: &reports::Within,
    today: NaiveDate,
) -> Result<(TileData, reports::Unapplied)> {
    match content {
        TileContent::Report { spec } => {
            let (result, unapplied) = reports::run_within(db, ctx, spec, within).await?;
            Ok((
                TileData::Report {
                    entity: spec.entity.clone(),
                    chart: spec.chart,
                    report_id: None,
                    result,
                },
                unapplied,
            ))
        }
        TileContent::SavedReport { report_id } => {
            let r = reports::get(db, ctx, *report_id).await?;
            let (result, unapplied) = reports::run_within(db, ctx, &r.spec.0, within).await?;
            Ok((
                TileData::Report {
                    entity: r.spec.0.entity.clone(),
                    chart: r.spec.0.chart,
                    report_id: Some(r.id),
                    result,
                },
                unapplied,
            ))
        }
        TileContent::GradeMigration => grade_migration(db, ctx, within).await,
        TileContent::Forecast => {
            let day = within.to.unwrap_or(today);
            let period = forecast::Period::quarter_of(day);
            let f = forecast::forecast(
                db,
                ctx,
                &ForecastQuery {
                    period: Some(period.clone()),
                    team_id: within.team_id,
                },
            )
            .await?;
            let row = if within.mine {
                f.reps
                    .into_iter()
                    .find(|r| r.owner_id.is_some() && r.owner_id == ctx.user_id)
                    .unwrap_or_default()
            } else if within.team_id.is_some() {
                f.teams
                    .into_iter()
                    .find(|r| r.team_id == within.team_id)
                    .unwrap_or(f.total)
            } else {
                f.total
            };
            let unapplied = if within.province.is_some() {
                vec!["region"]
            } else {
                vec![]
            };
            Ok((
                TileData::Forecast {
                    period,
                    currency: f.currency,
                    row: Box::new(row),
                },
                unapplied,
            ))
        }
    }
}

/// The latest finished evaluation of accounts up to the period's end, its accounts the viewer
/// reads (narrowed by team, region and owner) counted by grade before and after.
async fn grade_migration(
    db: &Db,
    ctx: &Ctx,
    within: &reports::Within,
) -> Result<(TileData, reports::Unapplied)> {
    let scope = ctx.require("accounts", Action::Read)?;
    let mut q = Sql::new("SELECT id, as_of FROM grading_runs WHERE tenant_id = ");
    q.bind(ctx.tenant_id)
        .push(" AND party = 'accounts' AND status = 'done'");
    if let Some(to) = within.to {
        q.push(" AND as_of <= ").bind(to.to_string());
    }
    q.push(" ORDER BY as_of DESC LIMIT 1");
    let run: Option<(Uuid, String)> = db.fetch_sql(q).await?.into_iter().next();
    let Some((run_id, as_of)) = run else {
        return Ok((
            TileData::GradeMigration {
                run_id: None,
                as_of: None,
                moves: vec![],
            },
            vec![],
        ));
    };
    let mut q = Sql::new(
        "SELECT s.previous AS \"from\", s.grade AS \"to\", COUNT(*) AS customers FROM grading_scores s
         JOIN accounts a ON a.tenant_id = s.tenant_id AND a.id = s.customer_id AND a.deleted_at IS NULL
         WHERE s.tenant_id = ",
    );
    q.bind(ctx.tenant_id).push(" AND s.run_id = ").bind(run_id);
    guanxi_records::shares::scope_sql(ctx, &mut q, scope, guanxi_customers::accounts::ENTITY, "a");
    if let Some(team) = within.team_id {
        q.push(" AND a.team_id = ").bind(team);
    }
    if let Some(p) = &within.province {
        q.push(" AND a.province = ").bind(p.clone());
    }
    if within.mine {
        q.push(" AND a.owner_id = ")
            .bind(ctx.user_id.unwrap_or_else(Uuid::nil));
    }
    q.push(" GROUP BY s.previous, s.grade ORDER BY s.previous, s.grade");
    let moves: Vec<GradeMove> = db.fetch_sql(q).await?;
    Ok((
        TileData::GradeMigration {
            run_id: Some(run_id),
            as_of: Some(as_of),
            moves,
        },
        vec![],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_cover_their_calendar_periods() -> Result<(), String> {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).ok_or("a day");
        let today = day(2026, 12, 5)?;
        let days = |p: PeriodPreset| p.days(today).ok_or(format!("{p:?}"));
        assert_eq!(
            days(PeriodPreset::ThisMonth)?,
            (day(2026, 12, 1)?, day(2026, 12, 31)?)
        );
        assert_eq!(
            days(PeriodPreset::LastMonth)?,
            (day(2026, 11, 1)?, day(2026, 11, 30)?)
        );
        assert_eq!(
            days(PeriodPreset::ThisQuarter)?,
            (day(2026, 10, 1)?, day(2026, 12, 31)?)
        );
        assert_eq!(
            days(PeriodPreset::LastQuarter)?,
            (day(2026, 7, 1)?, day(2026, 9, 30)?)
        );
        assert_eq!(
            days(PeriodPreset::ThisYear)?,
            (day(2026, 1, 1)?, day(2026, 12, 31)?)
        );
        assert_eq!(
            days(PeriodPreset::Last12Months)?,
            (day(2025, 12, 6)?, today)
        );
        assert_eq!(PeriodPreset::All.days(today), None);
        // Every preset but "all", on every day of a leap year, is a non-empty run of days
        // that holds today (last month and last quarter end just before this one starts).
        let mut d = day(2028, 1, 1)?;
        while d.year() == 2028 {
            for p in PeriodPreset::ALL {
                let Some((from, to)) = p.days(d) else {
                    assert_eq!(p, PeriodPreset::All);
                    continue;
                };
                assert!(from <= to, "{p:?} on {d}");
                match p {
                    PeriodPreset::LastMonth | PeriodPreset::LastQuarter => {
                        assert!(
                            to < d && to.succ_opt().is_some_and(|n| n.day() == 1),
                            "{p:?} on {d}"
                        )
                    }
                    _ => assert!(from <= d && d <= to, "{p:?} on {d}"),
                }
            }
            d = d.succ_opt().ok_or("next day")?;
        }
        Ok(())
    }

    #[test]
    fn given_filters_replace_the_saved_ones() {
        let saved = DashboardFilters {
            period: Some(PeriodPreset::ThisQuarter),
            province: Some("广东".into()),
            mine: Some(true),
            ..Default::default()
        };
        let given = DashboardFilters {
            from: NaiveDate::from_ymd_opt(2026, 1, 1),
            mine: Some(false),
            ..Default::default()
        };
        let o = saved.overlaid(&given);
        assert_eq!(o.period, None, "days given replace the preset");
        assert_eq!(o.from, NaiveDate::from_ymd_opt(2026, 1, 1));
        assert_eq!(o.province.as_deref(), Some("广东"));
        assert_eq!(o.mine, Some(false));
        assert_eq!(saved.overlaid(&DashboardFilters::default()), saved);
    }
}
