//! The forecast over HTTP: `/api/v1/forecasts`, `/api/v1/targets`, and the `/forecast` page
//! (each rep's pipeline, best case, commit, weighted and won against their target for a month
//! or a quarter; a manager sets targets on it).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use guanxi_platform::perms::Action;
use guanxi_sales::forecast::{self, Forecast, ForecastQuery, Performance, Target, TargetInput};
use minijinja::context;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::{ApiResult, Localize};
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

/// Rep performance in a month or a quarter: deals won and lost, win rate, average won size
/// and cycle, activities logged, quotes sent and accepted — for choosing who takes a big deal.
#[utoipa::path(get, path = "/api/v1/performance", tag = "opportunities", params(ForecastQuery), responses(
    (status = 200, body = Performance), (status = 422, body = Problem)))]
pub async fn get_performance(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<ForecastQuery>,
) -> ApiResult<Json<Performance>> {
    Ok(Json(forecast::performance(&s.db, &ctx, &q).await.l(&ctx)?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TargetQuery {
    /// `2026-12` or `2026-Q4`.
    pub period: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
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
    Router::new().route("/forecast", get(page).post(save_target))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    period: Option<String>,
    error: Option<String>,
}

async fn page(State(s): State<AppState>, p: Signed, Query(q): Query<PageQuery>) -> Response {
    let f = ForecastQuery {
        period: q.period.clone(),
        team_id: None,
    };
    let result = match forecast::forecast(&s.db, &p.ctx, &f).await {
        Ok(fc) => forecast::performance(&s.db, &p.ctx, &f)
            .await
            .map(|pf| (fc, pf)),
        Err(e) => Err(e),
    };
    match result {
        Ok((fc, pf)) => p.page(
            &s,
            "sales/forecast.html",
            "forecast",
            context! { f => fc, perf => pf.reps, error => p.refusal_from_url(q.error.as_deref()),
            can_set => p.ctx.can("targets", Action::Update).is_some() },
        ),
        Err(e) => p.error(&s, e),
    }
}

/// `POST /forecast`: a target typed in yuan for a rep (`user_id`) or a team (`team_id`).
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
    let result = match amount {
        Some(Some(amount)) => {
            let input = TargetInput {
                period: period.clone(),
                user_id: id("user_id"),
                team_id: id("team_id"),
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
