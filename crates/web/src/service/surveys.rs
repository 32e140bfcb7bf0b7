//! CSAT and NPS: `/api/v1/surveys` (responses, newest first; an answer given on the phone
//! recorded by an agent; `/summary`), and the customer's page an emailed survey link opens
//! (`/s/{token}`: the score chosen in the mail preselected, a comment, one button — a GET only
//! shows, so a mail scanner following links scores nothing).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Json, Router};
use guanxi_platform::page::Page;
use guanxi_platform::Error;
use guanxi_service::surveys::{self, ResponseInput, Summary, SurveyFilter, SurveyResponse};
use minijinja::{context, Value};

use crate::api::{ApiResult, Localize};
use crate::extract::{ApiJson, Auth};
use crate::pages::{forbidden_csrf, public_csrf_ok, public_page};
use crate::problem::Problem;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/s/{token}", get(page).post(answer))
}

#[utoipa::path(get, path = "/api/v1/surveys", tag = "tickets", params(SurveyFilter), responses(
    (status = 200, body = Page<SurveyResponse>), (status = 422, body = Problem)))]
pub async fn list_responses(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<SurveyFilter>,
) -> ApiResult<Json<Page<SurveyResponse>>> {
    Ok(Json(surveys::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

/// Records an answer a customer gave an agent (CSAT 1–5 or NPS 0–10), about a ticket or from
/// a contact. Answers are never overwritten: a later one is another response.
#[utoipa::path(post, path = "/api/v1/surveys", tag = "tickets", request_body = ResponseInput, responses(
    (status = 201, body = SurveyResponse), (status = 422, body = Problem)))]
pub async fn record_response(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ResponseInput>,
) -> ApiResult<(StatusCode, Json<SurveyResponse>)> {
    let r = surveys::record(&s.db, &ctx, b).await.l(&ctx)?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// CSAT (share of 4s and 5s, average) and NPS (promoters minus detractors) over each ticket's
/// latest answer, with the same filters as the list.
#[utoipa::path(get, path = "/api/v1/surveys/summary", tag = "tickets", params(SurveyFilter), responses(
    (status = 200, body = Summary), (status = 422, body = Problem)))]
pub async fn summary(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<SurveyFilter>,
) -> ApiResult<Json<Summary>> {
    Ok(Json(surveys::summary(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[derive(serde::Deserialize)]
struct PageQuery {
    score: Option<i64>,
}

async fn view(
    s: &AppState,
    headers: &HeaderMap,
    token: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    match surveys::open(&s.db, token).await {
        Ok(i) => {
            let scores: Vec<i64> = surveys::range(&i.kind).collect();
            public_page(
                s,
                headers,
                status,
                "service/survey.html",
                context! { i => i, scores => scores, token => token, ..extra },
            )
        }
        Err(Error::NotFound) => public_page(
            s,
            headers,
            StatusCode::NOT_FOUND,
            "service/survey.html",
            context! { gone => true },
        ),
        Err(e) => {
            tracing::error!(error = %e, "survey link");
            public_page(
                s,
                headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                "service/survey.html",
                context! { gone => true },
            )
        }
    }
}

async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    view(
        &s,
        &headers,
        &token,
        StatusCode::OK,
        context! { chosen => q.score },
    )
    .await
}

#[derive(serde::Deserialize)]
struct AnswerForm {
    _csrf: Option<String>,
    score: Option<String>,
    comment: Option<String>,
}

async fn answer(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<AnswerForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let score = f
        .score
        .as_deref()
        .and_then(|v| v.trim().parse::<i64>().ok());
    let comment = f.comment.filter(|c| !c.trim().is_empty());
    match surveys::answer(&s.db, &token, score, comment.as_deref()).await {
        Ok(_) => {
            view(
                &s,
                &headers,
                &token,
                StatusCode::OK,
                context! { done => true },
            )
            .await
        }
        Err(Error::Validation(errs)) => {
            view(
                &s,
                &headers,
                &token,
                StatusCode::UNPROCESSABLE_ENTITY,
                context! { errors => errs, chosen => score },
            )
            .await
        }
        Err(Error::Conflict(_)) => {
            view(
                &s,
                &headers,
                &token,
                StatusCode::CONFLICT,
                context! { full => true },
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "survey answer");
            view(
                &s,
                &headers,
                &token,
                StatusCode::INTERNAL_SERVER_ERROR,
                context! {},
            )
            .await
        }
    }
}
