//! The forecast: for a month or a quarter, each rep's open deals expected to close in it by
//! forecast category (pipeline, best case, commit — their stages' categories), the weighted
//! pipeline, and what was won in it, against the rep's and the team's targets (migration
//! 2012). Amounts are the tenant's currency, minor units; deals in other currencies are left
//! out (and counted as such). Managers set targets; everyone reads the forecast of the deals
//! they may read.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Backend, Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, Ctx, Error};

/// A month (`2026-12`) or a quarter (`2026-Q4`): its first day and the day after its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl Period {
    pub fn parse(raw: &str) -> std::result::Result<Period, &'static str> {
        let raw = raw.trim();
        let (y, rest) = raw.split_once('-').ok_or("invalid")?;
        let year: i32 = y.parse().map_err(|_| "invalid")?;
        if !(2000..=2100).contains(&year) || y.len() != 4 {
            return Err("invalid");
        }
        let (first, months) = match rest.strip_prefix('Q') {
            Some(q) => match q.parse::<u32>() {
                Ok(n @ 1..=4) if q.len() == 1 => ((n - 1) * 3 + 1, 3),
                _ => return Err("invalid"),
            },
            None => match rest.parse::<u32>() {
                Ok(m @ 1..=12) if rest.len() == 2 => (m, 1),
                _ => return Err("invalid"),
            },
        };
        let from = NaiveDate::from_ymd_opt(year, first, 1).ok_or("invalid")?;
        let next = first + months;
        let until = if next > 12 {
            NaiveDate::from_ymd_opt(year + 1, next - 12, 1)
        } else {
            NaiveDate::from_ymd_opt(year, next, 1)
        }
        .ok_or("invalid")?;
        Ok(Period { from, until })
    }

    /// The period `day` falls in, as a quarter (`2026-Q4`).
    pub fn quarter_of(day: NaiveDate) -> String {
        format!("{}-Q{}", day.year(), (day.month() - 1) / 3 + 1)
    }
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ForecastRow {
    /// The rep; `null` on a team's row and the total.
    pub owner_id: Option<Uuid>,
    pub owner_name: Option<String>,
    pub team_id: Option<Uuid>,
    pub team_name: Option<String>,
    /// Open deals expected to close in the period, by their stage's forecast category.
    pub pipeline: i64,
    pub best_case: i64,
    pub commit: i64,
    /// Σ amount × probability of those open deals.
    pub weighted: i64,
    /// Deals won (closed) in the period.
    pub won: i64,
    /// The target set for the rep (or team), if any.
    pub target: Option<i64>,
    /// The latest call for the rep (or team) in the period: their own, or a manager's
    /// adjustment.
    pub call: Option<Call>,
}

/// A forecast call: the number a rep commits to for a period, or a manager's adjustment of a
/// rep's or the team's number, with what the forecast showed when it was made.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Call {
    pub id: Uuid,
    pub period: String,
    /// The rep, or `team_id`.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// The number called (minor units).
    pub amount: i64,
    pub currency: String,
    pub note: Option<String>,
    /// The forecast when the call was made.
    pub pipeline: i64,
    pub best_case: i64,
    #[serde(rename = "commit")]
    pub commit_amount: i64,
    pub weighted: i64,
    pub won: i64,
    pub made_by: Uuid,
    pub made_by_name: Option<String>,
    pub made_at: DateTime<Utc>,
    /// Made by someone other than the rep: a manager's adjustment (a team's call is always
    /// a manager's).
    #[sqlx(skip)]
    pub adjusted: bool,
    /// What has been won in the period since (the outcome, once it is over).
    #[sqlx(skip)]
    pub won_now: i64,
}

/// A call for a period: for yourself (any rep), or — with the right to set targets — for a
/// rep or a team you manage.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallInput {
    pub period: String,
    /// The rep, or `team_id`.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Minor units, 0 … 10^15.
    pub amount: i64,
    /// Up to 2,000 characters.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallList {
    /// Newest first.
    pub items: Vec<Call>,
}

const CALL_COLUMNS: &str = "c.id, c.period, c.user_id, c.team_id, c.amount, c.currency, c.note,
    c.pipeline, c.best_case, c.commit_amount, c.weighted, c.won, c.made_by,
    m.name AS made_by_name, c.made_at";

/// Every call of a period in the tenant, newest first.
async fn calls_of(db: &Db, tenant: Uuid, period: &str) -> Result<Vec<Call>> {
    let mut calls: Vec<Call> = db
        .fetch_all(
            &format!(
                "SELECT {CALL_COLUMNS} FROM forecast_calls c
                 LEFT JOIN users m ON m.tenant_id = c.tenant_id AND m.id = c.made_by
                 WHERE c.tenant_id = $1 AND c.period = $2 ORDER BY c.made_at DESC, c.id"
            ),
            args![tenant, period],
        )
        .await?;
    for c in &mut calls {
        c.adjusted = c.user_id != Some(c.made_by);
    }
    Ok(calls)
}

/// Makes a call (append-only: the latest is the rep's or team's number; all are kept).
pub async fn make_call(db: &Db, ctx: &Ctx, input: CallInput) -> Result<Call> {
    ctx.require("opportunities", Action::Read)?;
    let mut errs = Errors::default();
    if let Err(c) = Period::parse(&input.period) {
        errs.add("period", c);
    }
    if input.user_id.is_some() == input.team_id.is_some() {
        errs.add("user_id", "user_or_team");
    }
    if !(0..=crate::opportunities::MAX_AMOUNT).contains(&input.amount) {
        errs.add("amount", "out_of_range");
    }
    let note = match input.note.as_deref().map(|n| validate::text(n, 2_000)) {
        Some(Err(c)) => {
            errs.add("note", c);
            None
        }
        Some(Ok(n)) => n,
        None => None,
    };
    errs.finish()?;
    let me = ctx.user_id.ok_or(Error::Forbidden)?;
    if input.user_id != Some(me) {
        // Someone else's number: a manager's, over the reps and teams they manage.
        let scope = ctx.require("targets", Action::Update)?;
        let team = match input.user_id {
            Some(u) => {
                db.fetch_optional::<(Option<Uuid>,)>(
                    "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2",
                    args![ctx.tenant_id, u],
                )
                .await?
                .ok_or_else(|| Error::field("user_id", "unknown"))?
                .0
            }
            None => input.team_id,
        };
        if !ctx.covers(scope, input.user_id, team) {
            return Err(Error::Forbidden);
        }
    }
    let q = ForecastQuery {
        period: Some(input.period.clone()),
        team_id: None,
    };
    let f = forecast(db, ctx, &q).await?;
    let row = match (input.user_id, input.team_id) {
        (Some(u), _) => f.reps.iter().find(|r| r.owner_id == Some(u)),
        (None, Some(t)) => f.teams.iter().find(|r| r.team_id == Some(t)),
        (None, None) => None,
    };
    if let (None, Some(_)) = (row, input.team_id) {
        let known: i64 = db
            .scalar(
                "SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND id = $2",
                args![ctx.tenant_id, input.team_id],
            )
            .await?;
        if known == 0 {
            return Err(Error::field("team_id", "unknown"));
        }
    }
    let now_row = row.cloned().unwrap_or_default();
    let id = new_id();
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO forecast_calls (tenant_id, id, period, user_id, team_id, amount, currency,
             note, pipeline, best_case, commit_amount, weighted, won, made_by, made_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        args![
            ctx.tenant_id,
            id,
            f.period.as_str(),
            input.user_id,
            input.team_id,
            input.amount,
            f.currency.as_str(),
            note,
            now_row.pipeline,
            now_row.best_case,
            now_row.commit,
            now_row.weighted,
            now_row.won,
            me,
            now()
        ],
    )
    .await?;
    let mut call: Call = tx
        .fetch_one(
            &format!(
                "SELECT {CALL_COLUMNS} FROM forecast_calls c
                 LEFT JOIN users m ON m.tenant_id = c.tenant_id AND m.id = c.made_by
                 WHERE c.tenant_id = $1 AND c.id = $2"
            ),
            args![ctx.tenant_id, id],
        )
        .await?;
    call.adjusted = call.user_id != Some(call.made_by);
    call.won_now = now_row.won;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "forecast_calls",
        Some(id),
        None::<&Call>,
        Some(&call),
    )
    .await?;
    tx.commit().await?;
    Ok(call)
}

/// The calls of a period for the reps and teams in the caller's forecast, newest first, each
/// with what has been won since (the outcome).
pub async fn calls(db: &Db, ctx: &Ctx, q: &ForecastQuery) -> Result<CallList> {
    let f = forecast(db, ctx, q).await?;
    calls_in(db, ctx, &f).await
}

/// [`calls`] for a forecast already read (a page showing both reads it once).
pub async fn calls_in(db: &Db, ctx: &Ctx, f: &Forecast) -> Result<CallList> {
    let mut items = calls_of(db, ctx.tenant_id, &f.period).await?;
    items.retain_mut(|c| {
        let row = match (c.user_id, c.team_id) {
            (Some(u), _) => f.reps.iter().find(|r| r.owner_id == Some(u)),
            (None, Some(t)) => f.teams.iter().find(|r| r.team_id == Some(t)),
            (None, None) => None,
        };
        match row {
            Some(r) => {
                c.won_now = r.won;
                true
            }
            None => false,
        }
    });
    Ok(CallList { items })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Forecast {
    pub period: String,
    /// First day, and the day after the last.
    pub from: String,
    pub until: String,
    pub currency: String,
    /// One row per rep with deals or a target, by name.
    pub reps: Vec<ForecastRow>,
    /// One row per team with reps listed, and its target.
    pub teams: Vec<ForecastRow>,
    pub total: ForecastRow,
    /// Deals in another currency (open and expected in the period, or won in it) that the
    /// caller may read, left out of the sums.
    pub other_currency: i64,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// `2026-12` or `2026-Q4`; default this quarter.
    pub period: Option<String>,
    pub team_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct Sum {
    owner_id: Uuid,
    owner_name: Option<String>,
    team_id: Option<Uuid>,
    category: String,
    currency: String,
    deals: i64,
    amount: i64,
    weighted: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = ForecastTarget)]
pub struct Target {
    pub id: Uuid,
    pub period: String,
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// A rep's or a team's target for a period (set again, it replaces the one before).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    pub period: String,
    /// The rep, or `team_id`.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Minor units, 0 … 10^15.
    pub amount: i64,
}

pub(crate) async fn tenant_facts(db: &Db, tenant: Uuid) -> Result<(String, chrono_tz::Tz)> {
    let (currency, tz): (String, String) = db
        .fetch_one(
            "SELECT currency, time_zone FROM tenants WHERE id = $1",
            args![tenant],
        )
        .await?;
    Ok((currency, tz.parse().unwrap_or(chrono_tz::Asia::Shanghai)))
}

pub(crate) fn period_of(raw: Option<&str>, tz: chrono_tz::Tz) -> Result<(String, Period)> {
    let raw = match raw.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => r.to_owned(),
        None => Period::quarter_of(now().with_timezone(&tz).date_naive()),
    };
    let p = Period::parse(&raw).map_err(|c| Error::field("period", c))?;
    Ok((raw, p))
}

pub async fn targets(db: &Db, ctx: &Ctx, period: &str) -> Result<Vec<Target>> {
    ctx.require("targets", Action::Read)?;
    Period::parse(period).map_err(|c| Error::field("period", c))?;
    db.fetch_all(
        "SELECT id, period, user_id, team_id, amount, currency, updated_at, version
         FROM sales_targets WHERE tenant_id = $1 AND period = $2",
        args![ctx.tenant_id, period.trim()],
    )
    .await
}

/// Sets a target (managers): one per rep or team and period.
pub async fn set_target(db: &Db, ctx: &Ctx, input: TargetInput) -> Result<Target> {
    ctx.require("targets", Action::Update)?;
    let mut errs = Errors::default();
    if let Err(c) = Period::parse(&input.period) {
        errs.add("period", c);
    }
    if input.user_id.is_some() == input.team_id.is_some() {
        errs.add("user_id", "user_or_team");
    }
    if !(0..=crate::opportunities::MAX_AMOUNT).contains(&input.amount) {
        errs.add("amount", "out_of_range");
    }
    errs.finish()?;
    let period = input.period.trim();
    let (currency, _) = tenant_facts(db, ctx.tenant_id).await?;
    let mut tx = db.begin().await?;
    let (col, who) = match (input.user_id, input.team_id) {
        (Some(u), _) => ("user_id", u),
        (None, Some(t)) => ("team_id", t),
        (None, None) => return Err(Error::field("user_id", "user_or_team")),
    };
    let table = if col == "user_id" { "users" } else { "teams" };
    let known: i64 = tx
        .scalar(
            &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
            args![ctx.tenant_id, who],
        )
        .await?;
    if known == 0 {
        return Err(Error::field(col, "unknown"));
    }
    let before: Option<Target> = tx
        .fetch_optional(
            &format!(
                "SELECT id, period, user_id, team_id, amount, currency, updated_at, version
                 FROM sales_targets WHERE tenant_id = $1 AND period = $2 AND {col} = $3"
            ),
            args![ctx.tenant_id, period, who],
        )
        .await?;
    let t = now();
    let id = match &before {
        Some(b) => {
            tx.execute(
                "UPDATE sales_targets SET amount = $1, currency = $2, updated_at = $3, updated_by = $4,
                     version = version + 1 WHERE tenant_id = $5 AND id = $6",
                args![input.amount, currency.as_str(), t, ctx.user_id, ctx.tenant_id, b.id],
            )
            .await?;
            b.id
        }
        None => {
            let id = new_id();
            tx.execute(
                "INSERT INTO sales_targets (tenant_id, id, period, user_id, team_id, amount, currency,
                     created_at, updated_at, updated_by, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)",
                args![
                    ctx.tenant_id, id, period, input.user_id, input.team_id, input.amount,
                    currency.as_str(), t, t, ctx.user_id
                ],
            )
            .await?;
            id
        }
    };
    let after: Target = tx
        .fetch_one(
            "SELECT id, period, user_id, team_id, amount, currency, updated_at, version
             FROM sales_targets WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "sales_targets",
        Some(id),
        before.as_ref(),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The first instant of a day in the tenant's time zone.
pub(crate) fn instant(tz: chrono_tz::Tz, d: NaiveDate) -> DateTime<Utc> {
    tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| d.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// Adds a category's sum to a row.
fn add(row: &mut ForecastRow, category: &str, amount: i64, weighted: i64) {
    match category {
        "pipeline" => row.pipeline += amount,
        "best_case" => row.best_case += amount,
        "commit" => row.commit += amount,
        "won" => row.won += amount,
        _ => return,
    }
    if category != "won" {
        row.weighted += weighted;
    }
}

/// Adds a rep's sums to a team's row or the total.
fn absorb(into: &mut ForecastRow, r: &ForecastRow) {
    into.pipeline += r.pipeline;
    into.best_case += r.best_case;
    into.commit += r.commit;
    into.weighted += r.weighted;
    into.won += r.won;
}

/// The forecast of the period for the deals the caller may read (one grouped query).
pub async fn forecast(db: &Db, ctx: &Ctx, q: &ForecastQuery) -> Result<Forecast> {
    let scope = ctx.require("opportunities", Action::Read)?;
    let (currency, tz) = tenant_facts(db, ctx.tenant_id).await?;
    let (name, p) = period_of(q.period.as_deref(), tz)?;
    let instant = |d: NaiveDate| instant(tz, d);
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    // The deals grouped by owner, stage and currency first; stage categories and names joined
    // to the groups.
    let mut sql = Sql::new(
        "SELECT g.owner_id, u.name AS owner_name, u.team_id, s.category, g.currency,
             CAST(SUM(g.deals) AS BIGINT) AS deals, CAST(SUM(g.amount) AS BIGINT) AS amount,
             CAST(SUM(g.weighted) AS BIGINT) AS weighted
         FROM (SELECT d.owner_id, d.stage_id, d.currency, COUNT(*) AS deals,
                 SUM(d.amount) AS amount, SUM(d.amount * d.probability / 100) AS weighted
             FROM opportunities d WHERE d.tenant_id = ",
    );
    sql.bind(ctx.tenant_id);
    sql.push(" AND d.deleted_at IS NULL AND ((d.status = 'open' AND d.expected_close >= ")
        .bind(day(p.from));
    sql.push(" AND d.expected_close < ").bind(day(p.until));
    sql.push(") OR (d.status = 'won' AND d.closed_at >= ")
        .bind(instant(p.from));
    sql.push(" AND d.closed_at < ").bind(instant(p.until));
    sql.push("))");
    ctx.scope_sql(&mut sql, scope, "d.owner_id", "d.team_id");
    if let Some(t) = q.team_id {
        sql.push(" AND d.owner_id IN (SELECT id FROM users WHERE tenant_id = ")
            .bind(ctx.tenant_id);
        sql.push(" AND team_id = ").bind(t);
        sql.push(")");
    }
    sql.push(
        " GROUP BY d.owner_id, d.stage_id, d.currency) g JOIN pipeline_stages s ON s.tenant_id = ",
    )
    .bind(ctx.tenant_id);
    sql.push(" AND s.id = g.stage_id LEFT JOIN users u ON u.tenant_id = ")
        .bind(ctx.tenant_id);
    sql.push(
        " AND u.id = g.owner_id GROUP BY g.owner_id, u.name, u.team_id, s.category, g.currency",
    );
    // One read: the tenant's currency is summed, deals in another are only counted.
    let (sums, others): (Vec<Sum>, Vec<Sum>) = db
        .fetch_sql::<Sum>(sql)
        .await?
        .into_iter()
        .partition(|s| s.currency == currency);
    let other_currency: i64 = others.iter().map(|s| s.deals).sum();
    let targets = if ctx.can("targets", Action::Read).is_some() {
        targets(db, ctx, &name).await?
    } else {
        vec![]
    };
    let mut reps: Vec<ForecastRow> = Vec::new();
    for s in &sums {
        let i = match reps.iter().position(|r| r.owner_id == Some(s.owner_id)) {
            Some(i) => i,
            None => {
                reps.push(ForecastRow {
                    owner_id: Some(s.owner_id),
                    owner_name: s.owner_name.clone(),
                    team_id: s.team_id,
                    ..Default::default()
                });
                reps.len() - 1
            }
        };
        add(&mut reps[i], &s.category, s.amount, s.weighted);
    }
    // Reps with a target and no deals yet are in the forecast too (when visible to the caller).
    let team_names: Vec<(Uuid, String)> = db
        .fetch_all(
            "SELECT id, name FROM teams WHERE tenant_id = $1",
            args![ctx.tenant_id],
        )
        .await?;
    let names: Vec<(Uuid, String, Option<Uuid>)> = db
        .fetch_all(
            "SELECT id, name, team_id FROM users WHERE tenant_id = $1",
            args![ctx.tenant_id],
        )
        .await?;
    let calls = calls_of(db, ctx.tenant_id, &name).await?;
    let mut people: Vec<Uuid> = targets.iter().filter_map(|t| t.user_id).collect();
    people.extend(calls.iter().filter_map(|c| c.user_id));
    for u in people {
        let team = names.iter().find(|n| n.0 == u).and_then(|n| n.2);
        let visible =
            ctx.covers(scope, Some(u), team) && q.team_id.is_none_or(|tm| Some(tm) == team);
        if visible && !reps.iter().any(|r| r.owner_id == Some(u)) {
            reps.push(ForecastRow {
                owner_id: Some(u),
                owner_name: names.iter().find(|n| n.0 == u).map(|n| n.1.clone()),
                team_id: team,
                ..Default::default()
            });
        }
    }
    for r in &mut reps {
        r.target = targets
            .iter()
            .find(|t| t.user_id.is_some() && t.user_id == r.owner_id)
            .map(|t| t.amount);
        r.call = calls
            .iter()
            .find(|c| c.user_id.is_some() && c.user_id == r.owner_id)
            .cloned()
            .map(|mut c| {
                c.won_now = r.won;
                c
            });
    }
    reps.sort_by(|a, b| a.owner_name.cmp(&b.owner_name));
    let mut teams: Vec<ForecastRow> = Vec::new();
    let mut total = ForecastRow::default();
    for r in &reps {
        absorb(&mut total, r);
        if let Some(team) = r.team_id {
            let i = match teams.iter().position(|t| t.team_id == Some(team)) {
                Some(i) => i,
                None => {
                    teams.push(ForecastRow {
                        team_id: Some(team),
                        team_name: team_names.iter().find(|n| n.0 == team).map(|n| n.1.clone()),
                        target: targets
                            .iter()
                            .find(|t| t.team_id == Some(team))
                            .map(|t| t.amount),
                        ..Default::default()
                    });
                    teams.len() - 1
                }
            };
            absorb(&mut teams[i], r);
        }
    }
    for t in &mut teams {
        t.call = calls
            .iter()
            .find(|c| c.team_id.is_some() && c.team_id == t.team_id)
            .cloned()
            .map(|mut c| {
                c.won_now = t.won;
                c
            });
    }
    let rep_targets: i64 = reps.iter().filter_map(|r| r.target).sum();
    total.target = (rep_targets > 0).then_some(rep_targets);
    Ok(Forecast {
        period: name,
        from: day(p.from),
        until: day(p.until),
        currency,
        reps,
        teams,
        total,
        other_currency,
    })
}

/// What performance is grouped by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// The deal's owner (the default).
    #[default]
    Owner,
    /// The account's industry.
    Industry,
    /// The account's grade (A–E).
    Grade,
    /// The products on the deal's quote (a deal counts once per product, with that product's
    /// net amount; deals without a quote are left out).
    Product,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PerformanceQuery {
    /// `2026-12` or `2026-Q4`; default this quarter.
    pub period: Option<String>,
    pub team_id: Option<Uuid>,
    /// `owner` (default), `industry`, `grade` or `product`.
    pub by: Option<By>,
}

/// Results in a period for one rep (or industry, grade, product), for choosing who takes a
/// big deal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct PerformanceRow {
    /// The rep's id, the industry, the grade or the product's id (a line's name when it has
    /// no product); `null` for deals without one.
    pub key: Option<String>,
    /// The rep's name, the industry, the grade or the product's name.
    pub label: Option<String>,
    /// Set when grouped by owner.
    pub owner_id: Option<Uuid>,
    pub owner_name: Option<String>,
    /// Deals closed in the period, won and lost.
    pub won: i64,
    pub lost: i64,
    /// `won ÷ (won + lost)` in basis points; `null` with nothing closed.
    pub win_rate_bp: Option<i64>,
    /// Σ and mean amount of the deals won (minor units).
    pub won_amount: i64,
    pub average_won: Option<i64>,
    /// Mean days from a won deal's creation to its close.
    pub average_cycle_days: Option<i64>,
    /// Calls, visits, meetings… logged in the period (tasks not counted); by owner only.
    pub activities: Option<i64>,
    /// Quote versions sent in the period, and quotes accepted in it; by owner only.
    pub quotes_sent: Option<i64>,
    pub quotes_accepted: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Performance {
    pub period: String,
    /// The tenant's currency (amounts are minor units of it).
    pub currency: String,
    pub by: By,
    /// Largest won amount first.
    pub rows: Vec<PerformanceRow>,
}

/// Deals closed in the period with one status and one value of the grouping, summed in SQL
/// (only the grouping's columns are read).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Closed {
    #[sqlx(default)]
    pub owner_id: Option<Uuid>,
    #[sqlx(default)]
    pub owner_name: Option<String>,
    /// The industry, the grade, or the quote line's name.
    #[sqlx(default)]
    pub key: Option<String>,
    #[sqlx(default)]
    pub product_id: Option<Uuid>,
    pub status: String,
    pub deals: i64,
    pub amount: i64,
    /// Σ whole days from each won deal's creation to its close.
    pub cycle_days: i64,
}

impl Closed {
    /// The row it belongs to: key and label.
    fn group(&self, by: By) -> (Option<String>, Option<String>) {
        match by {
            By::Owner => (
                self.owner_id.map(|o| o.to_string()),
                self.owner_name.clone(),
            ),
            By::Industry | By::Grade => (self.key.clone(), self.key.clone()),
            By::Product => (
                self.product_id
                    .map(|p| p.to_string())
                    .or_else(|| self.key.clone()),
                self.key.clone(),
            ),
        }
    }
}

/// Won, lost, win rate, sizes and cycle per group of closed deals (pure; means rounded down
/// to the unit), in order of first appearance.
pub fn performance_of(closed: &[Closed], by: By) -> Vec<PerformanceRow> {
    let mut rows: Vec<PerformanceRow> = Vec::new();
    let mut cycles: Vec<i64> = Vec::new();
    for c in closed {
        let (key, label) = c.group(by);
        let i = match rows.iter().position(|r| r.key == key) {
            Some(i) => i,
            None => {
                rows.push(PerformanceRow {
                    key,
                    label,
                    owner_id: c.owner_id.filter(|_| by == By::Owner),
                    owner_name: c.owner_name.clone().filter(|_| by == By::Owner),
                    ..Default::default()
                });
                cycles.push(0);
                rows.len() - 1
            }
        };
        let r = &mut rows[i];
        match c.status.as_str() {
            "won" => {
                r.won += c.deals;
                r.won_amount = r.won_amount.saturating_add(c.amount);
                cycles[i] = cycles[i].saturating_add(c.cycle_days);
            }
            "lost" => r.lost += c.deals,
            _ => {}
        }
    }
    for (r, days) in rows.iter_mut().zip(&cycles) {
        let closed = r.won + r.lost;
        r.win_rate_bp = (closed > 0).then(|| r.won * 10_000 / closed);
        r.average_won = (r.won > 0).then(|| r.won_amount / r.won);
        r.average_cycle_days = (r.won > 0).then(|| days / r.won);
    }
    rows
}

/// Performance in the period for the deals (and their quotes) the caller may read, by rep,
/// industry, grade or product: one grouped query, whatever the number of deals.
pub async fn performance(db: &Db, ctx: &Ctx, q: &PerformanceQuery) -> Result<Performance> {
    let scope = ctx.require("opportunities", Action::Read)?;
    let by = q.by.unwrap_or_default();
    let (currency, tz) = tenant_facts(db, ctx.tenant_id).await?;
    let (name, p) = period_of(q.period.as_deref(), tz)?;
    let (from, until) = (instant(tz, p.from), instant(tz, p.until));
    // Whole days from creation to close (truncated, as `num_days`).
    let days = match db.backend() {
        Backend::Sqlite => "CAST(julianday(d.closed_at) - julianday(d.created_at) AS INTEGER)",
        Backend::Postgres => {
            "CAST(FLOOR(EXTRACT(EPOCH FROM (d.closed_at - d.created_at)) / 86400) AS BIGINT)"
        }
    };
    let cycle =
        format!("CASE WHEN d.status = 'won' AND d.closed_at > d.created_at THEN {days} ELSE 0 END");
    // The deals grouped first (by deal and product for `product`: its lines' net summed),
    // names joined to the groups after; accounts read only for their industry or grade.
    let (key, joins) = match by {
        By::Owner => ("d.owner_id", ""),
        By::Industry => (
            "a.industry",
            " JOIN accounts a ON a.tenant_id = d.tenant_id AND a.id = d.account_id",
        ),
        By::Grade => (
            "a.grade",
            " JOIN accounts a ON a.tenant_id = d.tenant_id AND a.id = d.account_id",
        ),
        By::Product => (
            "l.product_id, l.name",
            " JOIN quotes qt ON qt.tenant_id = d.tenant_id AND qt.opportunity_id = d.id
              JOIN quote_lines l ON l.tenant_id = qt.tenant_id AND l.quote_id = qt.id",
        ),
    };
    let mut sql = match by {
        By::Owner => Sql::new(
            "SELECT g.owner_id, u.name AS owner_name, g.status, g.deals, g.amount, g.cycle_days FROM (",
        ),
        By::Industry | By::Grade => Sql::new(
            "SELECT g.k AS key, g.status, g.deals, g.amount, g.cycle_days FROM (",
        ),
        By::Product => Sql::new(
            "SELECT g.product_id, g.name AS key, g.status, COUNT(*) AS deals,
                 CAST(COALESCE(SUM(g.amount), 0) AS BIGINT) AS amount,
                 CAST(COALESCE(SUM(g.cycle), 0) AS BIGINT) AS cycle_days FROM (",
        ),
    };
    let inner = match by {
        By::Product => format!(
            "SELECT {key}, d.status, SUM(l.net) AS amount, {cycle} AS cycle
             FROM opportunities d{joins} WHERE d.tenant_id = "
        ),
        _ => format!(
            "SELECT {key}{alias}, d.status, COUNT(*) AS deals,
                 CAST(COALESCE(SUM(d.amount), 0) AS BIGINT) AS amount,
                 CAST(COALESCE(SUM({cycle}), 0) AS BIGINT) AS cycle_days
             FROM opportunities d{joins} WHERE d.tenant_id = ",
            alias = if by == By::Owner { "" } else { " AS k" },
        ),
    };
    sql.push(&inner).bind(ctx.tenant_id);
    sql.push(" AND d.deleted_at IS NULL AND d.status IN ('won', 'lost') AND d.closed_at >= ")
        .bind(from);
    sql.push(" AND d.closed_at < ").bind(until);
    ctx.scope_sql(&mut sql, scope, "d.owner_id", "d.team_id");
    if let Some(t) = q.team_id {
        sql.push(" AND d.owner_id IN (SELECT id FROM users WHERE tenant_id = ")
            .bind(ctx.tenant_id);
        sql.push(" AND team_id = ").bind(t);
        sql.push(")");
    }
    match by {
        By::Owner => {
            sql.push(" GROUP BY d.owner_id, d.status) g LEFT JOIN users u ON u.tenant_id = ")
                .bind(ctx.tenant_id);
            sql.push(" AND u.id = g.owner_id");
        }
        By::Industry | By::Grade => {
            sql.push(&format!(" GROUP BY {key}, d.status) g"));
        }
        By::Product => {
            sql.push(&format!(
                " GROUP BY d.id, d.status, d.created_at, d.closed_at, {key}) g
                 GROUP BY g.product_id, g.name, g.status"
            ));
        }
    }
    let closed: Vec<Closed> = db.fetch_sql(sql).await?;
    let mut rows = performance_of(&closed, by);
    if by == By::Owner {
        counts_per_rep(db, ctx, (from, until), &mut rows).await?;
    }
    rows.sort_by(|a, b| b.won_amount.cmp(&a.won_amount).then(a.label.cmp(&b.label)));
    Ok(Performance {
        period: name,
        currency,
        by,
        rows,
    })
}

/// Each rep's activities logged, quote versions sent and quotes accepted in the period.
async fn counts_per_rep(
    db: &Db,
    ctx: &Ctx,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    rows: &mut [PerformanceRow],
) -> Result<()> {
    let counts = |table_sql: &str| {
        let mut q = Sql::new(table_sql);
        q.bind(ctx.tenant_id);
        q
    };
    let mut acts = counts(
        "SELECT owner_id, COUNT(*) FROM activities WHERE kind <> 'task' AND deleted_at IS NULL AND tenant_id = ",
    );
    acts.push(" AND occurred_at >= ").bind(from);
    acts.push(" AND occurred_at < ").bind(until);
    acts.push(" GROUP BY owner_id");
    let mut sent = counts(
        "SELECT q.owner_id, COUNT(*) FROM quote_versions v JOIN quotes q ON q.tenant_id = v.tenant_id
             AND q.id = v.quote_id WHERE v.tenant_id = ",
    );
    sent.push(" AND v.sent_at >= ").bind(from);
    sent.push(" AND v.sent_at < ").bind(until);
    sent.push(" GROUP BY q.owner_id");
    let mut accepted = counts(
        "SELECT q.owner_id, COUNT(*) FROM quote_versions v JOIN quotes q ON q.tenant_id = v.tenant_id
             AND q.id = v.quote_id WHERE v.status = 'accepted' AND v.tenant_id = ",
    );
    accepted.push(" AND v.decided_at >= ").bind(from);
    accepted.push(" AND v.decided_at < ").bind(until);
    accepted.push(" GROUP BY q.owner_id");
    let acts: Vec<(Uuid, i64)> = db.fetch_sql(acts).await?;
    let sent: Vec<(Uuid, i64)> = db.fetch_sql(sent).await?;
    let accepted: Vec<(Uuid, i64)> = db.fetch_sql(accepted).await?;
    let find = |v: &[(Uuid, i64)], u: Option<Uuid>| {
        Some(v.iter().find(|(o, _)| Some(*o) == u).map_or(0, |x| x.1))
    };
    for r in rows {
        r.activities = find(&acts, r.owner_id);
        r.quotes_sent = find(&sent, r.owner_id);
        r.quotes_accepted = find(&accepted, r.owner_id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn performance_is_won_over_closed_with_sizes_and_cycles() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let at = |day: u32| {
            NaiveDate::from_ymd_opt(2026, 10, day)
                .unwrap_or_default()
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
        };
        let c = |owner, status: &str, amount, created: u32, closed: u32| Closed {
            owner_id: Some(owner),
            owner_name: None,
            key: Some(if owner == a { "A" } else { "B" }.into()),
            product_id: None,
            status: status.into(),
            deals: 1,
            amount,
            cycle_days: if status == "won" {
                (at(closed) - at(created)).num_days()
            } else {
                0
            },
        };
        let closed = [
            c(a, "won", 1_000, 1, 11),
            c(a, "won", 2_001, 1, 21),
            c(a, "lost", 9_999, 1, 2),
            c(b, "lost", 5, 1, 3),
        ];
        let reps = performance_of(&closed, By::Owner);
        assert_eq!(reps[0].owner_id, Some(a));
        let grades = performance_of(&closed, By::Grade);
        assert_eq!(grades[0].label.as_deref(), Some("A"));
        assert_eq!(grades[0].win_rate_bp, reps[0].win_rate_bp);
        // Groups summed in SQL add up: three won deals, 30 days in all.
        let summed = performance_of(
            &[Closed {
                key: Some("制造".into()),
                status: "won".into(),
                deals: 3,
                amount: 301,
                cycle_days: 30,
                ..Default::default()
            }],
            By::Industry,
        );
        assert_eq!(
            (
                summed[0].won,
                summed[0].average_won,
                summed[0].average_cycle_days
            ),
            (3, Some(100), Some(10))
        );
        let ra = &reps[0];
        assert_eq!((ra.won, ra.lost, ra.won_amount), (2, 1, 3_001));
        assert_eq!(ra.win_rate_bp, Some(6_666));
        assert_eq!(ra.average_won, Some(1_500));
        assert_eq!(ra.average_cycle_days, Some(15));
        let rb = &reps[1];
        assert_eq!(
            (rb.win_rate_bp, rb.average_won, rb.average_cycle_days),
            (Some(0), None, None)
        );
    }

    #[test]
    fn periods_are_months_or_quarters() {
        for (raw, from, until) in [
            ("2026-12", d(2026, 12, 1), d(2027, 1, 1)),
            ("2026-Q4", d(2026, 10, 1), d(2027, 1, 1)),
            ("2027-Q1", d(2027, 1, 1), d(2027, 4, 1)),
            ("2026-02", d(2026, 2, 1), d(2026, 3, 1)),
        ] {
            assert_eq!(Period::parse(raw), Ok(Period { from, until }), "{raw}");
        }
        for bad in [
            "2026", "2026-13", "2026-Q5", "2026-Q0", "26-01", "2026-1", "x-Q1", "",
        ] {
            assert_eq!(Period::parse(bad), Err("invalid"), "{bad}");
        }
        assert_eq!(Period::quarter_of(d(2026, 12, 4)), "2026-Q4");
        assert_eq!(Period::quarter_of(d(2026, 1, 1)), "2026-Q1");
    }
}
