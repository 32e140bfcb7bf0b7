//! Lifetime value from the tenant's own orders: BG/NBD and Gamma-Gamma ([`crate::models`])
//! fitted on a calibration period, checked on a holdout period when one is given, and each
//! customer's probability of still being a customer, purchases expected and value expected
//! over the next months (discounted) kept with the model.
//!
//! Purchases are counted by day on the tenant's calendar (two orders on one day are one
//! purchase of their sum, as in the papers), time in weeks, money in major units (yuan) for
//! the spend model. A customer with no repeat purchase in the calibration period has no spend
//! of their own to go on: their value is "insufficient data", never an invented number.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Val};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, Ctx, Error};

use crate::facts::{company_scope, Party, Purchases, Window};
use crate::models::{self, BgNbd, Summary};

/// Fewest customers, and repeat buyers, a model is fitted on.
pub const MIN_CUSTOMERS: usize = 20;
pub const MIN_REPEAT_BUYERS: usize = 5;

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelInput {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// The calibration period's first and last days (tenant's calendar).
    pub calibration_from: NaiveDate,
    pub calibration_to: NaiveDate,
    /// The holdout period's last day (it starts the day after `calibration_to`): predicted
    /// against actual purchases per frequency.
    pub holdout_to: Option<NaiveDate>,
    /// Months of value to predict (1–60, default 12).
    pub months: Option<u32>,
    /// Yearly discount rate in basis points (0–10000, default 1000 = 10%).
    pub annual_discount_bp: Option<i64>,
}

/// Predicted against actual purchases in the holdout period, for the customers who made
/// `purchases` repeat purchases in the calibration period (7 stands for 7 or more).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Bucket {
    pub purchases: i64,
    pub customers: i64,
    /// Mean repeat purchases in the holdout period.
    pub actual: f64,
    pub predicted: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = ClvModel)]
pub struct Model {
    pub id: Uuid,
    pub party: String,
    pub calibration_from: String,
    pub calibration_to: String,
    pub holdout_to: Option<String>,
    pub months: i64,
    pub annual_discount_bp: i64,
    /// `fitted`, or `failed` (see `failure`; the latest fitted model stays in use).
    pub status: String,
    pub failure: Option<String>,
    /// Customers with a purchase in the calibration period.
    pub customers: i64,
    /// Of them, those with a repeat purchase.
    pub repeat_buyers: i64,
    /// BG/NBD: purchase rates Gamma(r, α) per week, dropout Beta(a, b).
    pub r: Option<f64>,
    pub alpha: Option<f64>,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// Gamma-Gamma spend per purchase (γ in major units).
    pub p: Option<f64>,
    pub q: Option<f64>,
    pub gamma: Option<f64>,
    /// BG/NBD's maximised log-likelihood.
    pub log_likelihood: Option<f64>,
    pub gamma_gamma_log_likelihood: Option<f64>,
    pub iterations: i64,
    pub fit_ms: i64,
    #[schema(value_type = Option<Vec<Bucket>>)]
    pub holdout: Option<sqlx::types::Json<Vec<Bucket>>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
}

const MODEL_COLUMNS: &str = "id, party, calibration_from, calibration_to, holdout_to, months,
    annual_discount_bp, status, failure, customers, repeat_buyers, r, alpha, a, b, p, q, gamma,
    log_likelihood, gamma_gamma_log_likelihood, iterations, fit_ms, holdout, created_at, created_by";

/// A customer's summary in the calibration period and repeat purchases in the holdout.
struct Customer {
    id: Uuid,
    summary: Summary,
    holdout: i64,
}

/// Each customer's purchase days in the calibration period (and the holdout's), from every
/// purchase in both.
fn summarise(
    purchases: &[(Uuid, DateTime<Utc>, i64)],
    w: &Window,
    calibration_to: NaiveDate,
) -> Vec<Customer> {
    let mut days: HashMap<Uuid, BTreeMap<NaiveDate, i64>> = HashMap::new();
    for (id, at, total) in purchases {
        let day = at.with_timezone(&w.tz).date_naive();
        *days.entry(*id).or_default().entry(day).or_default() += total;
    }
    let mut out: Vec<Customer> = days
        .into_iter()
        .filter_map(|(id, d)| {
            let (&first, _) = d.iter().next()?;
            if first > calibration_to {
                return None;
            }
            let cal: Vec<(&NaiveDate, &i64)> = d.range(..=calibration_to).collect();
            let last = *cal.last()?.0;
            let repeat: Vec<i64> = cal.iter().skip(1).map(|(_, v)| **v).collect();
            let weeks = |a: NaiveDate, b: NaiveDate| (b - a).num_days() as f64 / 7.0;
            let mean = if repeat.is_empty() {
                0.0
            } else {
                repeat.iter().sum::<i64>() as f64 / 100.0 / repeat.len() as f64
            };
            Some(Customer {
                id,
                summary: Summary {
                    x: repeat.len() as f64,
                    t_x: weeks(first, last),
                    t: weeks(first, calibration_to),
                    mean,
                },
                holdout: d.range(calibration_to.succ_opt()?..).count() as i64,
            })
        })
        .collect();
    out.sort_by_key(|c| c.id);
    out
}

/// Mean predicted and actual holdout purchases by calibration frequency (0 … 6, 7+).
fn holdout_check(model: &BgNbd, customers: &[Customer], weeks: f64) -> Vec<Bucket> {
    let mut sums = [(0i64, 0.0f64, 0.0f64); 8];
    for c in customers {
        let k = (c.summary.x as usize).min(7);
        sums[k].0 += 1;
        sums[k].1 += c.holdout as f64;
        sums[k].2 += model.expected(&c.summary, weeks);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(k, (n, actual, predicted))| Bucket {
            purchases: k as i64,
            customers: *n,
            actual: actual / *n as f64,
            predicted: predicted / *n as f64,
        })
        .collect()
}

/// What a fit made: the model row and each customer's prediction.
struct Fit {
    model: Model,
    predictions: Vec<Vec<Val>>,
}

fn fit(
    input: &ModelInput,
    party: Party,
    customers: &[Customer],
    weeks_holdout: Option<f64>,
) -> Fit {
    let started = std::time::Instant::now();
    let data: Vec<Summary> = customers.iter().map(|c| c.summary).collect();
    let repeaters = data.iter().filter(|s| s.x > 0.0).count();
    let months = input.months.unwrap_or(12);
    let discount = input.annual_discount_bp.unwrap_or(1000);
    let mut model = Model {
        id: new_id(),
        party: party.as_str().to_owned(),
        calibration_from: input.calibration_from.to_string(),
        calibration_to: input.calibration_to.to_string(),
        holdout_to: input.holdout_to.map(|d| d.to_string()),
        months: months as i64,
        annual_discount_bp: discount,
        status: "failed".into(),
        failure: None,
        customers: data.len() as i64,
        repeat_buyers: repeaters as i64,
        r: None,
        alpha: None,
        a: None,
        b: None,
        p: None,
        q: None,
        gamma: None,
        log_likelihood: None,
        gamma_gamma_log_likelihood: None,
        iterations: 0,
        fit_ms: 0,
        holdout: None,
        created_at: now(),
        created_by: None,
    };
    let (bg, ll, m1) = models::fit_bgnbd(&data);
    let (gg, gll, m2) = models::fit_gamma_gamma(&data);
    model.iterations = (m1.iterations + m2.iterations) as i64;
    let finite = [bg.r, bg.alpha, bg.a, bg.b, gg.p, gg.q, gg.gamma, ll, gll]
        .iter()
        .all(|v| v.is_finite() && *v != 0.0);
    let mut predictions = Vec::new();
    if !m1.converged || !m2.converged || !finite {
        // Reported with the data that caused it; no prediction is kept.
        let max_x = data.iter().map(|s| s.x).fold(0.0, f64::max);
        model.failure = Some(format!(
            "{} did not converge after {} iterations (customers {}, repeat buyers {}, most repeat purchases {}, log-likelihood {:.2})",
            if !m1.converged || !bg.r.is_finite() { "BG/NBD" } else { "Gamma-Gamma" },
            model.iterations,
            data.len(),
            repeaters,
            max_x,
            if m1.converged { gll } else { ll },
        ));
    } else {
        model.status = "fitted".into();
        (model.r, model.alpha, model.a, model.b) =
            (Some(bg.r), Some(bg.alpha), Some(bg.a), Some(bg.b));
        (model.p, model.q, model.gamma) = (Some(gg.p), Some(gg.q), Some(gg.gamma));
        model.log_likelihood = Some(ll);
        model.gamma_gamma_log_likelihood = Some(gll);
        model.holdout = weeks_holdout.map(|w| sqlx::types::Json(holdout_check(&bg, customers, w)));
        let monthly = (1.0 + discount as f64 / 10_000.0).powf(1.0 / 12.0) - 1.0;
        let horizon = 365.25 / 7.0 / 12.0 * months as f64;
        for c in customers {
            let s = &c.summary;
            let value = gg
                .expected_spend(s)
                .map(|spend| models::lifetime_value(&bg, s, spend, months, monthly) * 100.0)
                .filter(|v| v.is_finite())
                .map(|v| v.round().clamp(0.0, 1e15) as i64);
            predictions.push(vec![
                Val::from(c.id),
                (s.x as i64).into(),
                s.t_x.into(),
                s.t.into(),
                s.mean.into(),
                bg.p_alive(s).into(),
                bg.expected(s, horizon).into(),
                value.into(),
            ]);
        }
    }
    model.fit_ms = started.elapsed().as_millis() as i64;
    Fit { model, predictions }
}

/// Fits a model on the calibration period over every customer of the party (a company
/// model: `analytics` create and reading every customer). A fit that does not converge is
/// kept as `failed` with the data that caused it; the latest fitted model stays in use.
pub async fn create(db: &Db, ctx: &Ctx, input: ModelInput) -> Result<Model> {
    let party = input.party.unwrap_or_default();
    company_scope(ctx, party, Action::Create)?;
    let mut errs = Errors::default();
    if input.calibration_from >= input.calibration_to {
        errs.add("calibration_from", "after_to");
    }
    if input.holdout_to.is_some_and(|h| h <= input.calibration_to) {
        errs.add("holdout_to", "out_of_range");
    }
    if input.months.is_some_and(|m| !(1..=60).contains(&m)) {
        errs.add("months", "out_of_range");
    }
    if input
        .annual_discount_bp
        .is_some_and(|d| !(0..=10_000).contains(&d))
    {
        errs.add("annual_discount_bp", "out_of_range");
    }
    errs.finish()?;
    let started = std::time::Instant::now();
    let end = input.holdout_to.unwrap_or(input.calibration_to);
    let p = Purchases::of(
        db,
        ctx,
        party,
        (Some(input.calibration_from), Some(end)),
        None,
    )
    .await?
    .of_everyone();
    let rows = p.each(db).await?;
    let read = started.elapsed();
    let customers = summarise(&rows, &p.window, input.calibration_to);
    drop(rows);
    let summarised = started.elapsed();
    let repeaters = customers.iter().filter(|c| c.summary.x > 0.0).count();
    if customers.len() < MIN_CUSTOMERS || repeaters < MIN_REPEAT_BUYERS {
        return Err(Error::field("calibration_from", "insufficient_data"));
    }
    let weeks_holdout = input
        .holdout_to
        .map(|h| (h - input.calibration_to).num_days() as f64 / 7.0);
    // The fit is CPU work: off the request threads.
    let input2 = input.clone();
    let Fit {
        mut model,
        predictions,
    } = tokio::task::spawn_blocking(move || fit(&input2, party, &customers, weeks_holdout))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    model.created_by = ctx.user_id;
    let fitted = started.elapsed();
    let mut tx = db.begin().await?;
    let holdout = match &model.holdout {
        Some(h) => Some(serde_json::to_value(&h.0).map_err(anyhow::Error::from)?),
        None => None,
    };
    tx.execute(
        &format!(
            "INSERT INTO clv_models ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)",
            format_args!("tenant_id, {MODEL_COLUMNS}")
        ),
        args![
            ctx.tenant_id, model.id, model.party.clone(), model.calibration_from.clone(),
            model.calibration_to.clone(), model.holdout_to.clone(), model.months,
            model.annual_discount_bp, model.status.clone(), model.failure.clone(), model.customers,
            model.repeat_buyers, model.r, model.alpha, model.a, model.b, model.p, model.q,
            model.gamma, model.log_likelihood, model.gamma_gamma_log_likelihood,
            model.iterations, model.fit_ms, holdout, model.created_at, model.created_by
        ],
    )
    .await?;
    let rows: Vec<Vec<Val>> = predictions
        .into_iter()
        .map(|mut r| {
            r.insert(0, model.id.into());
            r.insert(0, ctx.tenant_id.into());
            r
        })
        .collect();
    tx.insert_rows(
        "clv_predictions",
        &[
            "tenant_id",
            "model_id",
            "customer_id",
            "purchases",
            "weeks_to_last",
            "weeks_observed",
            "mean_value",
            "p_alive",
            "expected_purchases",
            "expected_value",
        ],
        rows,
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "clv_model",
        Some(model.id),
        None,
        Some(&model),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(model = %model.id, customers = model.customers, read_ms = read.as_millis() as u64,
        summarised_ms = (summarised - read).as_millis() as u64,
        fitted_ms = (fitted - summarised).as_millis() as u64,
        written_ms = (started.elapsed() - fitted).as_millis() as u64, "lifetime-value model");
    Ok(model)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModelsQuery {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
}

/// The models of a party, latest first (the last 100).
pub async fn list(db: &Db, ctx: &Ctx, q: &ModelsQuery) -> Result<Vec<Model>> {
    ctx.require("analytics", Action::Read)?;
    let party = q.party.unwrap_or_default();
    db.fetch_all(
        &format!(
            "SELECT {MODEL_COLUMNS} FROM clv_models WHERE tenant_id = $1 AND party = $2
             ORDER BY created_at DESC, id DESC LIMIT 100"
        ),
        args![ctx.tenant_id, party.as_str()],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Model> {
    ctx.require("analytics", Action::Read)?;
    db.fetch_optional(
        &format!("SELECT {MODEL_COLUMNS} FROM clv_models WHERE tenant_id = $1 AND id = $2"),
        args![ctx.tenant_id, id],
    )
    .await?
    .ok_or(Error::NotFound)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PredictionsQuery {
    /// `value` (default: expected value, largest first, insufficient data last) or `p_alive`
    /// (least likely to still be a customer first).
    pub sort: Option<String>,
    pub offset: Option<u32>,
    /// At most 500, default 50.
    pub limit: Option<u32>,
}

/// One customer's prediction.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Prediction {
    pub customer_id: Uuid,
    pub name: Option<String>,
    /// Repeat purchases in the calibration period.
    pub purchases: i64,
    pub weeks_to_last: f64,
    pub weeks_observed: f64,
    /// Mean repeat purchase, major units.
    pub mean_value: f64,
    pub p_alive: f64,
    /// Purchases expected over the model's months.
    pub expected_purchases: f64,
    /// Minor units, discounted; `null`: insufficient data (no repeat purchase to know the
    /// customer's spend by).
    pub expected_value: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PredictionPage {
    pub items: Vec<Prediction>,
    pub next_offset: Option<u32>,
}

/// A fitted model's predictions for the customers the caller may read.
pub async fn predictions(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    q: &PredictionsQuery,
) -> Result<PredictionPage> {
    let model = get(db, ctx, id).await?;
    let party = Party::parse(&model.party).unwrap_or_default();
    let scope = ctx.require(party.as_str(), Action::Read)?;
    let order = match q.sort.as_deref().unwrap_or("value") {
        "value" => "CASE WHEN v.expected_value IS NULL THEN 1 ELSE 0 END, v.expected_value DESC, v.customer_id",
        "p_alive" => "v.p_alive, v.customer_id",
        _ => return Err(Error::field("sort", "invalid")),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::field("limit", "out_of_range"));
    }
    let offset = q.offset.unwrap_or(0);
    let mut sql = Sql::new(&format!(
        "SELECT v.customer_id, k.name, v.purchases, v.weeks_to_last, v.weeks_observed, v.mean_value,
             v.p_alive, v.expected_purchases, v.expected_value
         FROM clv_predictions v JOIN {} k ON k.tenant_id = v.tenant_id AND k.id = v.customer_id
         WHERE v.tenant_id = ",
        party.as_str()
    ));
    sql.bind(ctx.tenant_id).push(" AND v.model_id = ").bind(id);
    sql.push(" AND k.deleted_at IS NULL");
    ctx.scope_sql(&mut sql, scope, "k.owner_id", "k.team_id");
    sql.push(&format!(" ORDER BY {order} LIMIT "))
        .bind(limit as i64 + 1);
    sql.push(" OFFSET ").bind(offset as i64);
    let mut items: Vec<Prediction> = db.fetch_sql(sql).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok(PredictionPage {
        next_offset: more.then_some(offset + limit),
        items,
    })
}

/// A customer's prediction in the latest fitted model of their party, with that model, when
/// the caller may see analyses.
pub async fn latest_for(
    db: &Db,
    ctx: &Ctx,
    party: Party,
    customer: Uuid,
) -> Result<Option<(Model, Prediction)>> {
    if ctx.can("analytics", Action::Read).is_none() {
        return Ok(None);
    }
    let model: Option<Model> = db
        .fetch_optional(
            &format!(
                "SELECT {MODEL_COLUMNS} FROM clv_models WHERE tenant_id = $1 AND party = $2
                 AND status = 'fitted' ORDER BY created_at DESC, id DESC LIMIT 1"
            ),
            args![ctx.tenant_id, party.as_str()],
        )
        .await?;
    let Some(model) = model else {
        return Ok(None);
    };
    let p: Option<Prediction> = db
        .fetch_optional(
            "SELECT customer_id, NULL AS name, purchases, weeks_to_last, weeks_observed, mean_value,
                 p_alive, expected_purchases, expected_value
             FROM clv_predictions WHERE tenant_id = $1 AND model_id = $2 AND customer_id = $3",
            args![ctx.tenant_id, model.id, customer],
        )
        .await?;
    Ok(p.map(|p| (model, p)))
}
