//! The forecast over HTTP: `/api/v1/forecasts` (with `/calls`), `/api/v1/targets`,
//! `/api/v1/performance`, `/api/v1/pipelines/{id}/funnel`, and two pages: `/forecast` (each
//! rep's pipeline, best case, commit, weighted and won against their target for a month or a
//! quarter, their calls and a manager's adjustments, drawn against the targets) and
//! `/performance` (results by rep, industry, grade or product, win rates drawn; a pipeline's
//! funnel with stage-to-stage conversion).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use guanxi_platform::perms::Action;
use guanxi_sales::forecast::{
    self, By, Call, CallInput, CallList, Forecast, ForecastQuery, Performance, PerformanceQuery,
    Target, TargetInput,
};
use guanxi_sales::funnel::{self, Funnel, FunnelQuery};
use guanxi_sales::pipelines;
use minijinja::context;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::{ApiResult, Localize};
use crate::charts::{self, Bar};
use crate::extract::{ApiJson, Auth};
use crate::pages::{forbidden_csrf, Signed};
use crate::problem::Problem;
use crate::state::AppState;

/// The forecast of a month (`2026-12`) or a quarter (`2026-Q4`, the default: this one) for the
/// deals the caller may read: per rep and team, open deals expected to close in it by forecast
/// category, the weighted pipeline, what was won, and the targets.
#[utoipa::path(get, path = "/api/v1/forecasts", tag = "opportunities", params(ForecastQuery), responses(
    (status = 200, body = Forecast), (status = 422, body = Problem)))]
pub async fn get_forecast(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<ForecastQuery>,
) -> ApiResult<Json<Forecast>> {
    Ok(Json(forecast::forecast(&s.db, &ctx, &q).await.l(&ctx)?))
}

/// Performance in a month or a quarter by rep, industry, grade or product: deals won and
/// lost, win rate, average won size and cycle; by rep also activities logged and quotes sent
/// and accepted — for choosing who takes a big deal.
#[utoipa::path(get, path = "/api/v1/performance", tag = "opportunities", params(PerformanceQuery), responses(
    (status = 200, body = Performance), (status = 422, body = Problem)))]
pub async fn get_performance(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PerformanceQuery>,
) -> ApiResult<Json<Performance>> {
    Ok(Json(forecast::performance(&s.db, &ctx, &q).await.l(&ctx)?))
}

/// A call for a period: a rep's own number, or a manager's adjustment of a rep's or a team's
/// (with the right to set targets), with a note. Every call is kept with what the forecast
/// showed when it was made; the latest is the rep's or team's number.
#[utoipa::path(post, path = "/api/v1/forecasts/calls", tag = "opportunities", request_body = CallInput, responses(
    (status = 201, body = Call), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn post_call(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<CallInput>,
) -> ApiResult<Response> {
    let c = forecast::make_call(&s.db, &ctx, b).await.l(&ctx)?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

/// Every call of a period for the reps and teams the caller may read, newest first, each with
/// what has been won in the period since — a quarter's calls against its outcome.
#[utoipa::path(get, path = "/api/v1/forecasts/calls", tag = "opportunities", params(ForecastQuery), responses(
    (status = 200, body = CallList), (status = 422, body = Problem)))]
pub async fn list_calls(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<ForecastQuery>,
) -> ApiResult<Json<CallList>> {
    Ok(Json(forecast::calls(&s.db, &ctx, &q).await.l(&ctx)?))
}

/// A pipeline's funnel for the deals created in a month or a quarter: how many reached each
/// stage (a deal counts up to the furthest it reached), their amounts, and the conversion
/// from each stage to the next.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/funnel", tag = "opportunities", params(("id" = Uuid, Path), FunnelQuery), responses(
    (status = 200, body = Funnel), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn get_funnel(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<FunnelQuery>,
) -> ApiResult<Json<Funnel>> {
    Ok(Json(funnel::funnel(&s.db, &ctx, id, &q).await.l(&ctx)?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TargetQuery {
    /// `2026-12` or `2026-Q4`.
    pub period: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ForecastTargetList)]
pub struct TargetList {
    pub items: Vec<Target>,
}

#[utoipa::path(get, path = "/api/v1/targets", tag = "opportunities", params(TargetQuery), responses(
    (status = 200, body = TargetList), (status = 422, body = Problem)))]
pub async fn list_targets(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<TargetQuery>,
) -> ApiResult<Json<TargetList>> {
    Ok(Json(TargetList {
        items: forecast::targets(&s.db, &ctx, &q.period).await.l(&ctx)?,
    }))
}

/// Sets a rep's or a team's target for a period (managers); it replaces the one before.
#[utoipa::path(put, path = "/api/v1/targets", tag = "opportunities", request_body = TargetInput, responses(
    (status = 200, body = Target), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_target(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<TargetInput>,
) -> ApiResult<Json<Target>> {
    Ok(Json(forecast::set_target(&s.db, &ctx, b).await.l(&ctx)?))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/forecast", get(page).post(save_target))
        .route("/performance", get(performance_page))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    period: Option<String>,
    error: Option<String>,
}

/// The forecast against targets: won, commit and best case stacked, the target a mark.
fn forecast_chart(title: &str, f: &Forecast) -> minijinja::Value {
    let bars: Vec<Bar> = f
        .reps
        .iter()
        .map(|r| Bar {
            label: r.owner_name.clone().unwrap_or_default(),
            parts: vec![(r.won, "won"), (r.commit, "commit"), (r.best_case, "best")],
            marker: r.target,
            text: crate::money::format(r.won + r.commit + r.best_case, &f.currency),
        })
        .collect();
    charts::bars(title, &bars)
}

async fn page(State(s): State<AppState>, p: Signed, Query(q): Query<PageQuery>) -> Response {
    let f = ForecastQuery {
        period: q.period.clone(),
        team_id: None,
    };
    let result = match forecast::forecast(&s.db, &p.ctx, &f).await {
        Ok(fc) => forecast::calls_in(&s.db, &p.ctx, &fc)
            .await
            .map(|c| (fc, c)),
        Err(e) => Err(e),
    };
    match result {
        Ok((fc, calls)) => {
            let chart = forecast_chart(&crate::i18n::t(&p.ctx.locale, "forecast.chart"), &fc);
            p.page(
                &s,
                "sales/forecast.html",
                "forecast",
                context! { f => fc, calls => calls.items, chart,
                error => p.refusal_from_url(q.error.as_deref()),
                can_set => p.ctx.can("targets", Action::Update).is_some() },
            )
        }
        Err(e) => p.error(&s, e),
    }
}

#[derive(Deserialize, Default)]
struct PerformanceParams {
    period: Option<String>,
    by: Option<String>,
    pipeline: Option<Uuid>,
}

async fn performance_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<PerformanceParams>,
) -> Response {
    // The API's names for the grouping; an unknown one shows the default on the page.
    let by = q
        .by
        .as_deref()
        .and_then(|b| {
            By::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(b))
                .ok()
        })
        .unwrap_or_default();
    let pq = PerformanceQuery {
        period: q.period.clone(),
        team_id: None,
        by: Some(by),
    };
    let perf = match forecast::performance(&s.db, &p.ctx, &pq).await {
        Ok(perf) => perf,
        Err(e) => return p.error(&s, e),
    };
    let lines = match pipelines::list(&s.db, &p.ctx).await {
        Ok(l) => l,
        Err(e) => return p.error(&s, e),
    };
    let chosen = q
        .pipeline
        .filter(|id| lines.iter().any(|l| l.id == *id))
        .or_else(|| lines.iter().find(|l| l.is_default).map(|l| l.id))
        .or_else(|| lines.first().map(|l| l.id));
    let fq = FunnelQuery {
        period: q.period.clone(),
        team_id: None,
    };
    let fun = match chosen {
        Some(id) => match funnel::funnel(&s.db, &p.ctx, id, &fq).await {
            Ok(f) => Some(f),
            Err(e) => return p.error(&s, e),
        },
        None => None,
    };
    let win_chart = charts::bars(
        &crate::i18n::t(&p.ctx.locale, "perf.chart"),
        &perf
            .rows
            .iter()
            .filter(|r| r.won + r.lost > 0)
            .map(|r| Bar {
                label: r.label.clone().unwrap_or_else(|| "—".into()),
                parts: vec![
                    (r.win_rate_bp.unwrap_or(0), "won"),
                    (10_000 - r.win_rate_bp.unwrap_or(0), "rest"),
                ],
                marker: None,
                text: format!(
                    "{:.1}% ({}/{})",
                    r.win_rate_bp.unwrap_or(0) as f64 / 100.0,
                    r.won,
                    r.won + r.lost
                ),
            })
            .collect::<Vec<_>>(),
    );
    let funnel_chart = fun.as_ref().map(|f| {
        let steps: Vec<(String, i64, String)> = f
            .steps
            .iter()
            .map(|st| {
                let conv = st
                    .conversion_bp
                    .map(|c| format!(" · {:.0}%", c as f64 / 100.0))
                    .unwrap_or_default();
                (st.name.clone(), st.deals, format!("{}{conv}", st.deals))
            })
            .collect();
        charts::funnel(&crate::i18n::t(&p.ctx.locale, "funnel.title"), &steps)
    });
    p.page(
        &s,
        "sales/performance.html",
        "forecast",
        context! { by => perf.by, currency => perf.currency.clone(), perf, win_chart,
        funnel => fun, funnel_chart, pipelines => lines },
    )
}

/// `POST /forecast`: typed in yuan for a rep (`user_id`) or a team (`team_id`), a target, or
/// with `what=call` a call (a rep's own, or a manager's adjustment) with a note.
async fn save_target(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let period = form.get("period").cloned().unwrap_or_default();
    let back = format!(
        "/forecast?{}",
        serde_urlencoded::to_string([("period", period.as_str())]).unwrap_or_default()
    );
    let id = |k: &str| form.get(k).and_then(|v| v.parse::<Uuid>().ok());
    let amount = form.get("amount").map(|a| crate::money::parse(a.trim()));
    let (user_id, team_id) = (id("user_id"), id("team_id"));
    let result = match (amount, form.get("what").map(String::as_str)) {
        (Some(Some(amount)), Some("call")) => {
            let input = CallInput {
                period: period.clone(),
                user_id,
                team_id,
                amount,
                note: form.get("note").cloned(),
            };
            forecast::make_call(&s.db, &p.ctx, input).await.map(|_| ())
        }
        (Some(Some(amount)), _) => {
            let input = TargetInput {
                period: period.clone(),
                user_id,
                team_id,
                amount,
            };
            forecast::set_target(&s.db, &p.ctx, input).await.map(|_| ())
        }
        _ => Err(guanxi_platform::Error::field("amount", "invalid")),
    };
    match result {
        Ok(()) => Redirect::to(&back).into_response(),
        Err(e) if matches!(e, guanxi_platform::Error::Validation(_)) => {
            p.refused_to(&back, e, Some("forecast."))
        }
        Err(e) => p.error(&s, e),
    }
    .into_response()
}
