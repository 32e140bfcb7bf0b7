//! 4V evaluations: a party's scheme as the admin saved it, the runs that grade every customer
//! with it as of a day, and each run's snapshot.
//!
//! A run is asked for (the API, the page, or the scheduler at a quarter's end) and queued; the
//! grader ([`work`], a background task beside the job worker) claims it, reads every measure
//! the scheme names in one grouped query each, scores and ranks in memory, and writes the
//! snapshot in batches, each its own transaction that also records the progress — so the API
//! is never blocked and the page shows how far it is. The claim is an attempt number: a grader
//! that dies leaves a run whose progress stops; after [`STALE_SECONDS`] another grader claims
//! it again, clears the partial snapshot and starts over, and the stalled one — should it wake
//! — finds its attempt superseded and stops. The last transaction marks the run done and, when
//! it is the party's latest evaluation, gives accounts their new grade (so price books keyed
//! on grade follow), writes a `grade` event on each changed customer's timeline and tells
//! each owner how many of theirs moved. One run per party and day: asking again returns it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Tx, Val};
use guanxi_platform::error::Result;
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use guanxi_platform::notifications::{self, Notice};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, version, Ctx, Error};

use crate::facts::{company_scope, tenant_facts, Party, Purchases, Window};
use crate::grading::{
    assign, beat_scores, weighted, FieldInfo, Measure, RankKey, Scheme, Source, DIMENSIONS, FULL,
    GRADES,
};

/// The scheduler's job: a quarter's evaluation, as of its last day.
pub const JOB: &str = "grading_quarter";
/// A running evaluation whose progress has not moved for this long is claimed again.
pub const STALE_SECONDS: i64 = 300;
/// Customers written per transaction.
const BATCH: usize = 2000;

/// A party's scheme and its version (0: never saved, the default in use).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchemeView {
    pub party: Party,
    pub scheme: Scheme,
    pub version: i64,
    /// The custom fields that can be inputs (`custom.<key>`): number, money, yes/no, select.
    pub fields: Vec<ScorableField>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScorableField {
    pub key: String,
    pub label: String,
    pub kind: String,
    pub options: Vec<String>,
}

async fn fields_of(db: &Db, tenant: Uuid, party: Party) -> Result<Vec<ScorableField>> {
    let entity = match party {
        Party::Accounts => guanxi_customers::accounts::ENTITY,
        Party::Contacts => guanxi_customers::contacts::ENTITY,
    };
    Ok(guanxi_records::custom_fields::active_in(db, tenant, entity)
        .await?
        .into_iter()
        .map(|f| ScorableField {
            key: f.key,
            label: f.label,
            kind: f.kind.as_str().to_owned(),
            options: f.options,
        })
        .collect())
}

/// The fields that can be inputs: numbers, money, yes/no and selects.
fn scorable(fields: Vec<ScorableField>) -> Vec<ScorableField> {
    fields
        .into_iter()
        .filter(|f| ["number", "money", "boolean", "select"].contains(&f.kind.as_str()))
        .collect()
}

fn infos(fields: &[ScorableField]) -> Vec<FieldInfo> {
    fields
        .iter()
        .map(|f| FieldInfo {
            key: f.key.clone(),
            kind: f.kind.clone(),
            options: f.options.clone(),
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct SchemeRow {
    id: Uuid,
    scheme: sqlx::types::Json<Scheme>,
    version: i64,
}

async fn stored(db: &Db, tenant: Uuid, party: Party) -> Result<Option<SchemeRow>> {
    db.fetch_optional(
        "SELECT id, scheme, version FROM grading_schemes WHERE tenant_id = $1 AND party = $2",
        args![tenant, party.as_str()],
    )
    .await
}

/// The party's scheme (the default until one is saved). Needs `analytics` read.
pub async fn scheme(db: &Db, ctx: &Ctx, party: Party) -> Result<SchemeView> {
    ctx.require("analytics", Action::Read)?;
    let row = stored(db, ctx.tenant_id, party).await?;
    Ok(SchemeView {
        party,
        version: row.as_ref().map_or(0, |r| r.version),
        scheme: row.map_or_else(|| Scheme::default_for(party), |r| r.scheme.0),
        fields: scorable(fields_of(db, ctx.tenant_id, party).await?),
    })
}

/// The last day of `d`'s quarter.
pub fn quarter_end(d: NaiveDate) -> NaiveDate {
    let first_next = match d.month0() / 3 {
        3 => NaiveDate::from_ymd_opt(d.year() + 1, 1, 1),
        q => NaiveDate::from_ymd_opt(d.year(), q * 3 + 4, 1),
    };
    first_next.and_then(|n| n.pred_opt()).unwrap_or(d)
}

/// `2026Q4`.
pub fn quarter_label(d: NaiveDate) -> String {
    format!("{}Q{}", d.year(), d.month0() / 3 + 1)
}

/// Plans the evaluation as of `as_of` (a quarter's last day) for the start of the next day.
async fn plan_quarter(tx: &mut Tx, tenant: Uuid, party: Party, as_of: NaiveDate) -> Result<()> {
    let tz = crate::facts::tenant_zone(tx, tenant).await?;
    let run_at = Window {
        from: None,
        to: as_of,
        tz,
    }
    .end();
    jobs::schedule(
        tx,
        tenant,
        JOB,
        &format!("{}:{as_of}", party.as_str()),
        &json!({ "party": party.as_str(), "as_of": as_of }),
        run_at,
    )
    .await?;
    Ok(())
}

/// Saves the party's scheme, checked against the version read (0 for the default): weights
/// that make no sense are refused naming each field. Switching `quarterly` on plans this
/// quarter's evaluation; off cancels it.
pub async fn save_scheme(
    db: &Db,
    ctx: &Ctx,
    party: Party,
    scheme: Scheme,
    expected: i64,
) -> Result<SchemeView> {
    company_scope(ctx, party, Action::Create)?;
    let fields = fields_of(db, ctx.tenant_id, party).await?;
    scheme.check(party, &infos(&fields))?;
    let old = stored(db, ctx.tenant_id, party).await?;
    version::check(expected, old.as_ref().map_or(0, |r| r.version))?;
    let body = serde_json::to_value(&scheme).map_err(anyhow::Error::from)?;
    // Read before the transaction: no second connection while one is held.
    let (_, tz) = tenant_facts(db, ctx.tenant_id).await?;
    let mut tx = db.begin().await?;
    let version = match &old {
        None => {
            let n = tx
                .execute(
                    "INSERT INTO grading_schemes (tenant_id, id, party, scheme, version, updated_at, updated_by)
                     VALUES ($1, $2, $3, $4, 1, $5, $6) ON CONFLICT (tenant_id, party) DO NOTHING",
                    args![ctx.tenant_id, new_id(), party.as_str(), body, now(), ctx.user_id],
                )
                .await?;
            if n == 0 {
                return Err(Error::PreconditionFailed { current: 1 });
            }
            1
        }
        Some(row) => {
            version::update(
                &mut tx,
                version::Row {
                    table: "grading_schemes",
                    tenant_id: ctx.tenant_id,
                    id: row.id,
                },
                expected,
                "scheme = $1, updated_at = $2, updated_by = $3",
                args![body, now(), ctx.user_id],
            )
            .await?
        }
    };
    let end = quarter_end(now().with_timezone(&tz).date_naive());
    if scheme.quarterly {
        plan_quarter(&mut tx, ctx.tenant_id, party, end).await?;
    } else {
        jobs::unschedule(
            &mut tx,
            ctx.tenant_id,
            JOB,
            &format!("{}:{end}", party.as_str()),
        )
        .await?;
    }
    audit::record(
        &mut tx,
        ctx,
        "update",
        "grading_scheme",
        old.as_ref().map(|r| r.id),
        old.as_ref().map(|r| &r.scheme.0),
        Some(&scheme),
    )
    .await?;
    tx.commit().await?;
    Ok(SchemeView {
        party,
        scheme,
        version,
        fields: scorable(fields),
    })
}

/// An evaluation.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct GradingRun {
    pub id: Uuid,
    pub party: String,
    /// The day it is as of (`YYYY-MM-DD`); the period's measures end here.
    pub as_of: String,
    /// The period's first day.
    pub period_from: String,
    /// The scheme it used, as it was.
    #[schema(value_type = Scheme)]
    pub scheme: sqlx::types::Json<Scheme>,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Customers written so far, of `total`.
    pub done: i64,
    pub total: i64,
    /// Customers per grade, A to E.
    #[schema(value_type = Vec<i64>)]
    pub counts: sqlx::types::Json<Vec<i64>>,
    /// Customers whose grade changed.
    pub changed: i64,
    /// Whether its grades were given to the customers (the party's latest evaluation).
    pub applied: bool,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    #[schema(ignore)]
    pub attempt: i64,
}

impl GradingRun {
    /// `2026Q4`.
    pub fn quarter(&self) -> String {
        self.as_of.parse().map(quarter_label).unwrap_or_default()
    }
}

const RUN_COLUMNS: &str = "id, party, as_of, period_from, scheme, status, done, total, counts, changed, applied, error, created_at, created_by, updated_at, finished_at, attempt";

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradingRunInput {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// The day it is as of; default today. Not in the future.
    pub as_of: Option<NaiveDate>,
}

async fn run_as_of(db: &Db, tenant: Uuid, party: Party, as_of: &str) -> Result<Option<GradingRun>> {
    db.fetch_optional(
        &format!("SELECT {RUN_COLUMNS} FROM grading_runs WHERE tenant_id = $1 AND party = $2 AND as_of = $3"),
        args![tenant, party.as_str(), as_of],
    )
    .await
}

/// Inserts the queued run as of `as_of` with `scheme`, unless one is kept for that day.
async fn queue(
    tx: &mut Tx,
    tenant: Uuid,
    by: Option<Uuid>,
    party: Party,
    as_of: NaiveDate,
    scheme: &Scheme,
) -> Result<bool> {
    let from = as_of
        .checked_sub_days(Days::new(scheme.period_days.max(1) as u64 - 1))
        .unwrap_or(as_of);
    let t = now();
    let n = tx
        .execute(
            "INSERT INTO grading_runs (tenant_id, id, party, as_of, period_from, scheme, status, attempt, done, total,
                 counts, changed, applied, created_at, created_by, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, 0, 0, $7, 0, $8, $9, $10, $11)
             ON CONFLICT (tenant_id, party, as_of) DO NOTHING",
            args![tenant, new_id(), party.as_str(), as_of.to_string(), from.to_string(),
                  serde_json::to_value(scheme).map_err(anyhow::Error::from)?,
                  json!([0, 0, 0, 0, 0]), false, t, by, t],
        )
        .await?;
    Ok(n == 1)
}

/// Asks for an evaluation as of a day with the party's scheme: queued for the grader, or —
/// asked again for the same day — the run already kept (`false`), never a second one.
pub async fn create(db: &Db, ctx: &Ctx, input: GradingRunInput) -> Result<(GradingRun, bool)> {
    let party = input.party.unwrap_or_default();
    company_scope(ctx, party, Action::Create)?;
    let (_, tz) = tenant_facts(db, ctx.tenant_id).await?;
    let today = now().with_timezone(&tz).date_naive();
    let as_of = input.as_of.unwrap_or(today);
    if as_of > today {
        return Err(Error::field("as_of", "future"));
    }
    if let Some(run) = run_as_of(db, ctx.tenant_id, party, &as_of.to_string()).await? {
        return Ok((run, false));
    }
    let scheme = stored(db, ctx.tenant_id, party)
        .await?
        .map_or_else(|| Scheme::default_for(party), |r| r.scheme.0);
    scheme.check(party, &infos(&fields_of(db, ctx.tenant_id, party).await?))?;
    let mut tx = db.begin().await?;
    let created = queue(&mut tx, ctx.tenant_id, ctx.user_id, party, as_of, &scheme).await?;
    tx.commit().await?;
    let run = run_as_of(db, ctx.tenant_id, party, &as_of.to_string())
        .await?
        .ok_or(Error::NotFound)?;
    if created {
        let mut tx = db.begin().await?;
        audit::record(
            &mut tx,
            ctx,
            "create",
            "grading_run",
            Some(run.id),
            None,
            Some(&run),
        )
        .await?;
        tx.commit().await?;
    }
    Ok((run, created))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
}

/// The party's evaluations, latest day first.
pub async fn runs(db: &Db, ctx: &Ctx, q: &RunsQuery) -> Result<Vec<GradingRun>> {
    let party = q.party.unwrap_or_default();
    company_scope(ctx, party, Action::Read)?;
    db.fetch_all(
        &format!("SELECT {RUN_COLUMNS} FROM grading_runs WHERE tenant_id = $1 AND party = $2 ORDER BY as_of DESC LIMIT 200"),
        args![ctx.tenant_id, party.as_str()],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<GradingRun> {
    let run: GradingRun = db
        .fetch_optional(
            &format!("SELECT {RUN_COLUMNS} FROM grading_runs WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?
        .ok_or(Error::NotFound)?;
    company_scope(
        ctx,
        Party::parse(&run.party).unwrap_or_default(),
        Action::Read,
    )?;
    Ok(run)
}

/// One input of a customer's score: what was measured and what it scored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InputScore {
    pub dimension: String,
    pub metric: String,
    /// The value measured (minor units, days or a count; the option or yes/no of a field):
    /// any JSON value.
    pub value: Value,
    /// Its score, 0–10000 (hundredths of a point).
    pub score: i64,
    pub weight: i64,
}

/// A customer's line in an evaluation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Score {
    pub customer_id: Uuid,
    /// 1 is the best.
    pub rank: i64,
    pub grade: String,
    /// The grade before this evaluation.
    pub previous: Option<String>,
    /// Its total equals that of a customer in another grade: the stated rule placed it.
    pub tied: bool,
    /// Hundredths of a point, 0–10000.
    pub total: i64,
    pub economic: i64,
    pub relational: i64,
    pub functional: i64,
    pub development: i64,
    pub inputs: Vec<InputScore>,
    pub name: Option<String>,
}

/// An input as kept in a snapshot: the value shown and the score, in the order of the run's
/// scheme, which names the dimension, the metric and the weight (kept once, in the run — a
/// million customers' rows would otherwise repeat them a million times).
type Kept = (Value, i64);

/// A score row as stored.
#[derive(sqlx::FromRow)]
struct ScoreRow {
    customer_id: Uuid,
    rank: i64,
    grade: String,
    previous: Option<String>,
    tied: bool,
    total: i64,
    economic: i64,
    relational: i64,
    functional: i64,
    development: i64,
    inputs: sqlx::types::Json<Vec<Kept>>,
}

impl ScoreRow {
    /// The row with its inputs named by the run's scheme.
    fn shown(self, scheme: &Scheme) -> Score {
        let inputs = DIMENSIONS
            .iter()
            .flat_map(|d| scheme.part(*d).inputs.iter().map(move |i| (d, i)))
            .zip(self.inputs.0)
            .map(|((d, input), (value, score))| InputScore {
                dimension: d.as_str().into(),
                metric: input.metric.clone(),
                value,
                score,
                weight: input.weight,
            })
            .collect();
        Score {
            customer_id: self.customer_id,
            rank: self.rank,
            grade: self.grade,
            previous: self.previous,
            tied: self.tied,
            total: self.total,
            economic: self.economic,
            relational: self.relational,
            functional: self.functional,
            development: self.development,
            inputs,
            name: None,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScoresQuery {
    /// Only this grade (`A`–`E`).
    pub grade: Option<String>,
    /// Only customers whose grade changed.
    pub changed: Option<bool>,
    pub offset: Option<u32>,
    /// Default 50, at most 500.
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScorePage {
    pub items: Vec<Score>,
    pub next_offset: Option<u32>,
}

const SCORE_COLUMNS: &str =
    "customer_id, rank, grade, previous, tied, total, economic, relational, functional, development, inputs";

/// A page of an evaluation's customers, by rank.
pub async fn scores(db: &Db, ctx: &Ctx, id: Uuid, q: &ScoresQuery) -> Result<ScorePage> {
    let run = get(db, ctx, id).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::field("limit", "out_of_range"));
    }
    let mut sql = Sql::new(&format!(
        "SELECT {SCORE_COLUMNS} FROM grading_scores WHERE tenant_id = "
    ));
    sql.bind(ctx.tenant_id).push(" AND run_id = ").bind(id);
    if let Some(g) = &q.grade {
        if !GRADES.contains(&g.as_str()) {
            return Err(Error::field("grade", "invalid"));
        }
        sql.push(" AND grade = ").bind(g.as_str());
    }
    if q.changed == Some(true) {
        sql.push(" AND (previous IS NULL OR previous <> grade)");
    }
    let offset = q.offset.unwrap_or(0);
    sql.push(" ORDER BY rank LIMIT ")
        .bind(i64::from(limit) + 1)
        .push(" OFFSET ")
        .bind(i64::from(offset));
    let mut rows: Vec<ScoreRow> = db.fetch_sql(sql).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let mut items: Vec<Score> = rows.into_iter().map(|r| r.shown(&run.scheme)).collect();
    let party = Party::parse(&run.party).unwrap_or_default();
    let ids: Vec<Uuid> = items.iter().map(|s| s.customer_id).collect();
    let names = crate::facts::names(db, ctx.tenant_id, party, &ids).await?;
    for s in &mut items {
        s.name = names.get(&s.customer_id).cloned();
    }
    Ok(ScorePage {
        next_offset: more.then_some(offset + limit),
        items,
    })
}

/// How many customers went from one grade (none: not graded before) to another.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct GradeMove {
    pub from: Option<String>,
    pub to: String,
    pub customers: i64,
}

/// The grade migration of an evaluation: customers by grade before and after.
pub async fn moves(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Vec<GradeMove>> {
    get(db, ctx, id).await?;
    db.fetch_all(
        "SELECT previous AS \"from\", grade AS \"to\", COUNT(*) AS customers FROM grading_scores
         WHERE tenant_id = $1 AND run_id = $2 GROUP BY previous, grade ORDER BY previous, grade",
        args![ctx.tenant_id, id],
    )
    .await
}

/// A customer's grade in one evaluation (newest first in [`history_for`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Graded {
    pub run_id: Uuid,
    pub as_of: String,
    /// `2026Q4`.
    pub quarter: String,
    #[serde(flatten)]
    pub score: Score,
}

/// The customer's grades, latest evaluation of each quarter first, when the caller may see
/// analyses (the caller has read the customer).
pub async fn history_for(db: &Db, ctx: &Ctx, party: Party, customer: Uuid) -> Result<Vec<Graded>> {
    if ctx.can("analytics", Action::Read).is_none() {
        return Ok(vec![]);
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        run_id: Uuid,
        as_of: String,
        scheme: sqlx::types::Json<Scheme>,
        #[sqlx(flatten)]
        score: ScoreRow,
    }
    let rows: Vec<Row> = db
        .fetch_all(
            &format!(
                "SELECT r.id AS run_id, r.as_of, r.scheme, {} FROM grading_runs r
                 JOIN grading_scores s ON s.tenant_id = r.tenant_id AND s.run_id = r.id AND s.customer_id = $3
                 WHERE r.tenant_id = $1 AND r.party = $2 AND r.status = 'done' ORDER BY r.as_of DESC LIMIT 40",
                SCORE_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
            ),
            args![ctx.tenant_id, party.as_str(), customer],
        )
        .await?;
    let mut seen = std::collections::HashSet::new();
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let quarter = r.as_of.parse().map(quarter_label).unwrap_or_default();
            seen.insert(quarter.clone()).then_some(Graded {
                run_id: r.run_id,
                as_of: r.as_of,
                quarter,
                score: r.score.shown(&r.scheme),
            })
        })
        .collect())
}

/// The quarterly job: queue the quarter's evaluation with the scheme as saved (unless
/// quarterly grading was switched off) and plan the next quarter's.
pub fn quarter_handler() -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync
{
    |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        Box::pin(async move {
            let party = due
                .payload
                .get("party")
                .and_then(Value::as_str)
                .and_then(Party::parse)
                .unwrap_or_default();
            let Some(as_of) = due
                .payload
                .get("as_of")
                .and_then(Value::as_str)
                .and_then(|d| d.parse::<NaiveDate>().ok())
            else {
                return Ok(());
            };
            let row: Option<(sqlx::types::Json<Scheme>,)> = tx
                .fetch_optional(
                    "SELECT scheme FROM grading_schemes WHERE tenant_id = $1 AND party = $2",
                    args![due.tenant_id, party.as_str()],
                )
                .await?;
            let Some((scheme,)) = row.filter(|r| r.0.quarterly) else {
                return Ok(());
            };
            queue(tx, due.tenant_id, None, party, as_of, &scheme.0).await?;
            let next = quarter_end(as_of.checked_add_days(Days::new(1)).unwrap_or(as_of));
            plan_quarter(tx, due.tenant_id, party, next).await
        })
    }
}

/// A claimed run.
struct Claim {
    tenant: Uuid,
    id: Uuid,
    attempt: i64,
    party: Party,
    as_of: NaiveDate,
    from: NaiveDate,
    scheme: Scheme,
}

/// Runs every waiting evaluation (queued, or running with no progress for
/// [`STALE_SECONDS`]); returns how many this call finished.
pub async fn work(db: &Db) -> Result<u32> {
    let mut finished = 0;
    while let Some(claim) = claim(db).await? {
        let (tenant, id, attempt) = (claim.tenant, claim.id, claim.attempt);
        match evaluate(db, claim).await {
            Ok(()) => finished += 1,
            Err(Error::Conflict(_)) => {} // overtaken by another grader
            Err(e) => {
                tracing::warn!(run = %id, error = %e, "grading run failed");
                db.execute(
                    "UPDATE grading_runs SET status = 'failed', error = $1, updated_at = $2, finished_at = $2
                     WHERE tenant_id = $3 AND id = $4 AND attempt = $5 AND status = 'running'",
                    args![e.to_string(), now(), tenant, id, attempt],
                )
                .await?;
            }
        }
    }
    Ok(finished)
}

async fn claim(db: &Db) -> Result<Option<Claim>> {
    let stale = now() - chrono::Duration::seconds(STALE_SECONDS);
    loop {
        #[derive(sqlx::FromRow)]
        struct Waiting {
            tenant_id: Uuid,
            id: Uuid,
            attempt: i64,
            party: String,
            as_of: String,
            period_from: String,
            scheme: sqlx::types::Json<Scheme>,
        }
        let Some(w): Option<Waiting> = db
            .fetch_optional(
                "SELECT tenant_id, id, attempt, party, as_of, period_from, scheme FROM grading_runs
                 WHERE status = 'queued' OR (status = 'running' AND updated_at < $1)
                 ORDER BY created_at LIMIT 1",
                args![stale],
            )
            .await?
        else {
            return Ok(None);
        };
        let mut tx = db.begin().await?;
        let n = tx
            .execute(
                "UPDATE grading_runs SET status = 'running', attempt = attempt + 1, done = 0, updated_at = $1
                 WHERE tenant_id = $2 AND id = $3 AND attempt = $4 AND (status = 'queued' OR (status = 'running' AND updated_at < $5))",
                args![now(), w.tenant_id, w.id, w.attempt, stale],
            )
            .await?;
        if n == 0 {
            continue; // another grader took it
        }
        // A crashed attempt's partial snapshot goes.
        tx.execute(
            "DELETE FROM grading_scores WHERE tenant_id = $1 AND run_id = $2",
            args![w.tenant_id, w.id],
        )
        .await?;
        tx.commit().await?;
        let (Ok(as_of), Ok(from), Some(party)) = (
            w.as_of.parse(),
            w.period_from.parse(),
            Party::parse(&w.party),
        ) else {
            return Err(anyhow::anyhow!("grading run {} has unreadable dates", w.id).into());
        };
        return Ok(Some(Claim {
            tenant: w.tenant_id,
            id: w.id,
            attempt: w.attempt + 1,
            party,
            as_of,
            from,
            scheme: w.scheme.0,
        }));
    }
}

/// Records progress (and that this grader still holds the run); overtaken → `Conflict`.
async fn heartbeat(tx: &mut Tx, c: &Claim, done: i64, total: i64) -> Result<()> {
    let n = tx
        .execute(
            "UPDATE grading_runs SET done = $1, total = $2, updated_at = $3
             WHERE tenant_id = $4 AND id = $5 AND attempt = $6 AND status = 'running'",
            args![done, total, now(), c.tenant, c.id, c.attempt],
        )
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(Error::Conflict("grading run".into()))
    }
}

/// One customer being graded.
struct Customer {
    id: Uuid,
    owner: Option<Uuid>,
    previous: Option<String>,
}

/// Each source's value per customer (NaN: none), by the customers' positions.
type Columns = BTreeMap<Source, Vec<f64>>;

async fn population(db: &Db, c: &Claim) -> Result<Vec<Customer>> {
    let rows: Vec<(Uuid, Option<Uuid>, Option<String>)> = match c.party {
        Party::Accounts => {
            db.fetch_all(
                "SELECT id, owner_id, grade FROM accounts WHERE tenant_id = $1 AND deleted_at IS NULL",
                args![c.tenant],
            )
            .await?
        }
        Party::Contacts => {
            // A person's grade lives in the evaluations: the previous is the last one's.
            db.fetch_all(
                "SELECT k.id, k.owner_id, s.grade FROM contacts k
                 LEFT JOIN grading_scores s ON s.tenant_id = k.tenant_id AND s.customer_id = k.id
                     AND s.run_id = (SELECT r.id FROM grading_runs r WHERE r.tenant_id = $1 AND r.party = 'contacts'
                         AND r.status = 'done' AND r.as_of < $2 ORDER BY r.as_of DESC LIMIT 1)
                 WHERE k.tenant_id = $1 AND k.deleted_at IS NULL AND k.account_id IS NULL",
                args![c.tenant, c.as_of.to_string()],
            )
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(id, owner, previous)| Customer {
            id,
            owner,
            previous,
        })
        .collect())
}

/// Reads every source the scheme names, one grouped query each.
async fn measure(db: &Db, c: &Claim, people: &[Customer]) -> Result<Columns> {
    let ctx = Ctx::system(c.tenant);
    let at: HashMap<Uuid, usize> = people.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let n = people.len();
    let mut cols = Columns::new();
    let purchases = |from: Option<NaiveDate>, to: NaiveDate| {
        let ctx = &ctx;
        async move {
            Ok::<_, Error>(
                Purchases::of(db, ctx, c.party, (from, Some(to)), None)
                    .await?
                    .of_everyone(),
            )
        }
    };
    let started = std::time::Instant::now();
    let period = purchases(Some(c.from), c.as_of).await?;
    let fill = |rows: Vec<(Uuid, f64)>, missing: f64| {
        let mut v = vec![missing; n];
        for (id, x) in rows {
            if let Some(i) = at.get(&id) {
                v[*i] = x;
            }
        }
        v
    };
    let sources = c.scheme.sources();
    let needs = |m: Measure| sources.contains(&Source::Measure(m));
    // One pass over every purchase to the day: tenure (read whatever the scheme — ties go to
    // the earlier first purchase), and over the period revenue, orders and growth (the
    // second half's revenue less the first's).
    {
        let ever = purchases(None, c.as_of).await?;
        let half = ((c.as_of - c.from).num_days() + 1) / 2;
        let mid = c
            .from
            .checked_add_days(Days::new(half.max(0) as u64))
            .unwrap_or(c.from);
        let mid_start = Window {
            from: Some(mid),
            ..period.window
        }
        .start()
        .unwrap_or(period.window.end());
        let since = period.window.start().unwrap_or(mid_start);
        let rows = ever.history(db, since, mid_start).await?;
        let column = |f: &dyn Fn(&crate::facts::History) -> f64| {
            fill(rows.iter().map(|h| (h.id, f(h))).collect(), 0.0)
        };
        cols.insert(
            Source::Measure(Measure::Tenure),
            column(&|h| ever.window.days_before_end(h.first_at) as f64),
        );
        if needs(Measure::Revenue) {
            cols.insert(
                Source::Measure(Measure::Revenue),
                column(&|h| (h.early + h.late) as f64),
            );
        }
        if needs(Measure::Orders) {
            cols.insert(
                Source::Measure(Measure::Orders),
                column(&|h| h.orders as f64),
            );
        }
        if needs(Measure::Growth) {
            cols.insert(
                Source::Measure(Measure::Growth),
                column(&|h| (h.late - h.early) as f64),
            );
        }
    }
    let history_ms = started.elapsed().as_millis() as u64;
    // One pass over the period's lines: margin and breadth.
    if needs(Measure::Margin) || needs(Measure::Breadth) {
        let rows = period.margins_and_breadth(db).await?;
        if needs(Measure::Margin) {
            let margin = rows.iter().map(|(id, m, _)| (*id, *m as f64)).collect();
            cols.insert(Source::Measure(Measure::Margin), fill(margin, 0.0));
        }
        if needs(Measure::Breadth) {
            let breadth = rows.iter().map(|(id, _, b)| (*id, *b as f64)).collect();
            cols.insert(Source::Measure(Measure::Breadth), fill(breadth, 0.0));
        }
    }
    let lines_ms = started.elapsed().as_millis() as u64 - history_ms;
    let window = period.window;
    let counted = |sql: String, extra: Vec<Val>| {
        let mut a = args![c.tenant];
        a.extend(extra);
        async move {
            let rows: Vec<(Option<Uuid>, i64)> = db.fetch_all(&sql, a).await?;
            Ok::<_, Error>(
                rows.into_iter()
                    .filter_map(|(id, k)| Some((id?, k as f64)))
                    .collect::<Vec<_>>(),
            )
        }
    };
    // The other measures: one grouped count or sum each, keyed by customer.
    let col = match c.party {
        Party::Accounts => "account_id",
        Party::Contacts => "contact_id",
    };
    let grouped: [(Measure, String, Vec<Val>); 4] = [
        (
            Measure::Touches,
            format!(
                "SELECT {col}, COUNT(*) FROM activities WHERE tenant_id = $1 AND deleted_at IS NULL
                 AND kind IN ('call', 'email', 'meeting', 'visit') AND {col} IS NOT NULL
                 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY {col}"
            ),
            args![window.start().unwrap_or(window.end()), window.end()],
        ),
        (
            Measure::Contacts,
            "SELECT account_id, COUNT(*) FROM contacts WHERE tenant_id = $1 AND deleted_at IS NULL
             AND account_id IS NOT NULL GROUP BY account_id"
                .into(),
            vec![],
        ),
        (
            Measure::Related,
            "SELECT parent_id, COUNT(*) FROM accounts WHERE tenant_id = $1 AND deleted_at IS NULL
             AND parent_id IS NOT NULL GROUP BY parent_id"
                .into(),
            vec![],
        ),
        (
            Measure::Pipeline,
            "SELECT account_id, CAST(SUM(amount) AS BIGINT) FROM opportunities WHERE tenant_id = $1
             AND deleted_at IS NULL AND status = 'open' AND currency = $2 GROUP BY account_id"
                .into(),
            args![period.currency.as_str()],
        ),
    ];
    for (m, sql, extra) in grouped {
        if needs(m) {
            let rows = counted(sql, extra).await?;
            cols.insert(Source::Measure(m), fill(rows, 0.0));
        }
    }
    let custom: Vec<String> = sources
        .iter()
        .filter_map(|s| match s {
            Source::Custom(k) => Some(k.clone()),
            Source::Measure(_) => None,
        })
        .collect();
    if !custom.is_empty() {
        let rows: Vec<(Uuid, Option<sqlx::types::Json<Value>>)> = db
            .fetch_all(
                &format!(
                    "SELECT id, custom FROM {} WHERE tenant_id = $1 AND deleted_at IS NULL",
                    c.party.as_str()
                ),
                args![c.tenant],
            )
            .await?;
        let fields = fields_of(db, c.tenant, c.party).await?;
        let mut by_key: BTreeMap<String, Vec<f64>> = custom
            .iter()
            .map(|k| (k.clone(), vec![f64::NAN; n]))
            .collect();
        // Select fields are scored by option: their column holds the option's score.
        let option_scores: HashMap<&str, &BTreeMap<String, i64>> = DIMENSIONS
            .iter()
            .flat_map(|d| c.scheme.part(*d).inputs.iter())
            .filter_map(|i| Some((i.metric.strip_prefix("custom.")?, &i.scores)))
            .collect();
        for (id, custom_values) in rows {
            let (Some(i), Some(obj)) = (at.get(&id), custom_values) else {
                continue;
            };
            for (key, col) in &mut by_key {
                let Some(f) = fields.iter().find(|f| &f.key == key) else {
                    continue;
                };
                let v = obj.0.get(key);
                col[*i] = match (f.kind.as_str(), v) {
                    ("boolean", Some(Value::Bool(b))) => f64::from(u8::from(*b)),
                    ("select", Some(Value::String(s))) => option_scores
                        .get(key.as_str())
                        .and_then(|m| m.get(s))
                        .map_or(0.0, |x| *x as f64),
                    (_, Some(Value::Number(x))) => x.as_f64().unwrap_or(f64::NAN),
                    (_, Some(Value::String(s))) => s.parse().unwrap_or(f64::NAN),
                    _ => f64::NAN,
                };
            }
        }
        for (key, col) in by_key {
            cols.insert(Source::Custom(key), col);
        }
    }
    tracing::info!(run = %c.id, history_ms, lines_ms,
        others_ms = started.elapsed().as_millis() as u64 - history_ms - lines_ms, "grading run measured");
    Ok(cols)
}

/// What the ranking gives each customer.
struct Graded1 {
    rank: usize,
    grade: usize,
    tied: bool,
    dims: [i64; 4],
    total: i64,
    /// Each input's score, in the scheme's order.
    inputs: Vec<i64>,
}

/// Scores, ranks and grades (pure; run off the async threads).
fn grade(scheme: &Scheme, cols: &Columns, fields: &[ScorableField], ids: &[Uuid]) -> Vec<Graded1> {
    let n = ids.len();
    let tenure = cols.get(&Source::Measure(Measure::Tenure));
    // Each source's score per customer.
    let mut source_scores: BTreeMap<&Source, Vec<i64>> = BTreeMap::new();
    for (source, col) in cols {
        let kind = match source {
            Source::Custom(k) => fields.iter().find(|f| &f.key == k).map(|f| f.kind.as_str()),
            Source::Measure(_) => None,
        };
        let scores = match kind {
            // Yes scores full marks; a select its option's points (0–100).
            Some("boolean") => col
                .iter()
                .map(|x| if *x == 1.0 { FULL } else { 0 })
                .collect(),
            Some("select") => col
                .iter()
                .map(|x| {
                    if x.is_nan() {
                        0
                    } else {
                        (*x * 100.0).round() as i64
                    }
                })
                .collect(),
            _ => {
                let v: Vec<Option<f64>> = col.iter().map(|x| (!x.is_nan()).then_some(*x)).collect();
                beat_scores(&v)
            }
        };
        source_scores.insert(source, scores);
    }
    // Each dimension's inputs: their scores (none: scored 0) and weights, parsed once.
    type Weighed<'a> = (Option<&'a Vec<i64>>, i64);
    let parts: Vec<Vec<Weighed>> = DIMENSIONS
        .iter()
        .map(|dim| {
            scheme
                .part(*dim)
                .inputs
                .iter()
                .map(|input| {
                    let scores = Source::parse(&input.metric).and_then(|s| source_scores.get(&s));
                    (scores, input.weight)
                })
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    for (i, id) in ids.iter().enumerate() {
        let mut dims = [0i64; 4];
        let mut inputs = Vec::new();
        for (d, part) in parts.iter().enumerate() {
            dims[d] = weighted(part.iter().map(|(scores, weight)| {
                let s = scores.map_or(0, |v| v[i]);
                inputs.push(s);
                (s, *weight)
            }));
        }
        let total = weighted(
            DIMENSIONS
                .iter()
                .enumerate()
                .map(|(d, dim)| (dims[d], scheme.part(*dim).weight)),
        );
        keys.push(RankKey {
            total: std::cmp::Reverse(total),
            economic: std::cmp::Reverse(dims[0]),
            tenure: std::cmp::Reverse(tenure.map_or(0, |t| t[i] as i64)),
            id: *id,
        });
        out.push(Graded1 {
            rank: 0,
            grade: 0,
            tied: false,
            dims,
            total,
            inputs,
        });
    }
    for (g, (rank, grade, tied)) in out.iter_mut().zip(assign(&keys)) {
        g.rank = rank;
        g.grade = grade;
        g.tied = tied;
    }
    out
}

/// A value as the page shows it.
fn shown(
    source: Option<&Source>,
    raw: f64,
    fields: &[ScorableField],
    input: &crate::grading::Input,
) -> Value {
    if raw.is_nan() {
        return Value::Null;
    }
    match source {
        Some(Source::Custom(k)) => {
            match fields.iter().find(|f| &f.key == k).map(|f| f.kind.as_str()) {
                Some("boolean") => Value::Bool(raw == 1.0),
                Some("select") => input
                    .scores
                    .iter()
                    .find(|(_, s)| **s as f64 == raw)
                    .map_or(Value::Null, |(o, _)| Value::String(o.clone())),
                _ => json!(raw),
            }
        }
        _ => json!(raw as i64),
    }
}

async fn evaluate(db: &Db, c: Claim) -> Result<()> {
    let started = std::time::Instant::now();
    let people = population(db, &c).await?;
    let total = people.len() as i64;
    {
        let mut tx = db.begin().await?;
        heartbeat(&mut tx, &c, 0, total).await?;
        tx.commit().await?;
    }
    let cols = measure(db, &c, &people).await?;
    let measured = started.elapsed();
    let fields = fields_of(db, c.tenant, c.party).await?;
    let ids: Vec<Uuid> = people.iter().map(|p| p.id).collect();
    let (scheme, fields2) = (c.scheme.clone(), fields.clone());
    let (graded, cols) = tokio::task::spawn_blocking(move || {
        let g = grade(&scheme, &cols, &fields2, &ids);
        (g, cols)
    })
    .await
    .map_err(anyhow::Error::from)?;
    let ranked = started.elapsed();
    // The snapshot, a batch a transaction.
    let inputs_of: Vec<(Option<Source>, &crate::grading::Input)> = DIMENSIONS
        .iter()
        .flat_map(|dim| c.scheme.part(*dim).inputs.iter())
        .map(|i| (Source::parse(&i.metric), i))
        .collect();
    let mut counts = vec![0i64; 5];
    let mut written = 0i64;
    for start in (0..people.len()).step_by(BATCH) {
        let end = (start + BATCH).min(people.len());
        let mut rows = Vec::with_capacity(end - start);
        for i in start..end {
            let (p, g) = (&people[i], &graded[i]);
            counts[g.grade] += 1;
            let inputs: Vec<Kept> = g
                .inputs
                .iter()
                .zip(&inputs_of)
                .map(|(score, (source, input))| {
                    let raw = source
                        .as_ref()
                        .and_then(|s| cols.get(s))
                        .map_or(f64::NAN, |col| col[i]);
                    (shown(source.as_ref(), raw, &fields, input), *score)
                })
                .collect();
            rows.push(vec![
                Val::from(c.tenant),
                c.id.into(),
                p.id.into(),
                (g.rank as i64 + 1).into(),
                GRADES[g.grade].into(),
                p.previous.clone().into(),
                g.tied.into(),
                g.total.into(),
                g.dims[0].into(),
                g.dims[1].into(),
                g.dims[2].into(),
                g.dims[3].into(),
                Val::from(serde_json::to_value(&inputs).map_err(anyhow::Error::from)?),
            ]);
        }
        written += rows.len() as i64;
        let mut tx = db.begin().await?;
        heartbeat(&mut tx, &c, written, total).await?;
        tx.insert_rows(
            "grading_scores",
            &[
                "tenant_id",
                "run_id",
                "customer_id",
                "rank",
                "grade",
                "previous",
                "tied",
                "total",
                "economic",
                "relational",
                "functional",
                "development",
                "inputs",
            ],
            rows,
        )
        .await?;
        tx.commit().await?;
    }
    let written = started.elapsed();
    finish(db, &c, &people, &graded, counts).await?;
    tracing::info!(run = %c.id, customers = total, measured_ms = measured.as_millis() as u64,
        ranked_ms = ranked.as_millis() as u64, written_ms = written.as_millis() as u64,
        finished_ms = started.elapsed().as_millis() as u64, "grading run done");
    Ok(())
}

/// Marks the run done; as the party's latest evaluation, gives the grades to the customers,
/// with a timeline event each and a word to each owner.
async fn finish(
    db: &Db,
    c: &Claim,
    people: &[Customer],
    graded: &[Graded1],
    counts: Vec<i64>,
) -> Result<()> {
    let ctx = Ctx::system(c.tenant);
    let mut tx = db.begin().await?;
    let later: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM grading_runs WHERE tenant_id = $1 AND party = $2 AND status = 'done' AND as_of > $3",
            args![c.tenant, c.party.as_str(), c.as_of.to_string()],
        )
        .await?;
    let latest = later == 0;
    let changes: Vec<(&Customer, &str)> = people
        .iter()
        .zip(graded)
        .map(|(p, g)| (p, GRADES[g.grade]))
        .filter(|(p, g)| p.previous.as_deref() != Some(*g))
        .collect();
    if latest {
        if c.party == Party::Accounts {
            tx.execute(
                "UPDATE accounts SET grade = s.grade, version = version + 1, updated_at = $1
                 FROM grading_scores s
                 WHERE s.tenant_id = accounts.tenant_id AND s.customer_id = accounts.id AND s.run_id = $2
                   AND accounts.tenant_id = $3 AND accounts.deleted_at IS NULL
                   AND accounts.grade IS DISTINCT FROM s.grade",
                args![now(), c.id, c.tenant],
            )
            .await?;
        }
        let events: Vec<(Uuid, Value, Value)> = changes
            .iter()
            .map(|(p, g)| {
                (
                    p.id,
                    json!({ "grade": p.previous }),
                    json!({ "grade": g, "from": p.previous, "run_id": c.id, "as_of": c.as_of }),
                )
            })
            .collect();
        let refs: Vec<(Uuid, Option<&Value>, Option<&Value>)> = events
            .iter()
            .map(|(id, b, a)| (*id, Some(b), Some(a)))
            .collect();
        audit::record_many(&mut tx, &ctx, "grade", c.party.as_str(), &refs).await?;
        // Each owner hears once: how many of theirs moved up and down.
        let mut by_owner: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
        for (p, g) in &changes {
            if let Some(owner) = p.owner {
                let e = by_owner.entry(owner).or_default();
                if p.previous.as_deref().is_some_and(|was| was < *g) {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
        for (owner, (up, down)) in by_owner {
            notifications::notify(
                &mut tx,
                &ctx,
                owner,
                Notice {
                    kind: "grades_changed",
                    params: json!({ "up": up, "down": down, "as_of": c.as_of, "count": up + down }),
                    link: Some(format!("/value/grades/{}?changed=true", c.id)),
                    entity: Some("grading_run"),
                    entity_id: Some(c.id),
                },
            )
            .await?;
        }
    }
    let n = tx
        .execute(
            "UPDATE grading_runs SET status = 'done', counts = $1, changed = $2, applied = $3, updated_at = $4,
                 finished_at = $4, error = NULL
             WHERE tenant_id = $5 AND id = $6 AND attempt = $7 AND status = 'running'",
            args![json!(counts), changes.len() as i64, latest && c.party == Party::Accounts, now(),
                  c.tenant, c.id, c.attempt],
        )
        .await?;
    if n != 1 {
        return Err(Error::Conflict("grading run".into()));
    }
    tx.commit().await
}
