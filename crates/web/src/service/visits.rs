//! Field service on the web: `/api/v1/visits` (book, move, finish, cancel, who could go) and
//! the pages — the engineer's agenda `/visits` (works on a phone: the day's visits, the report
//! written on site), a visit's page, and the ticket page's *Visits* card that books one.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::Error;
use guanxi_service::visits::{self, DoneInput, Engineer, Visit, VisitFilter, VisitInput};
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::pages::{forbidden_csrf, Signed};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct VisitList {
    pub items: Vec<Visit>,
}

/// Visits by start time: every one for a reader of all tickets, else those the caller goes
/// on or booked.
#[utoipa::path(get, path = "/api/v1/visits", tag = "visits", params(VisitFilter), responses(
    (status = 200, body = VisitList), (status = 422, body = Problem)))]
pub async fn list_visits(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<VisitFilter>,
) -> ApiResult<Json<VisitList>> {
    Ok(Json(VisitList {
        items: visits::list(&s.db, &ctx, &f).await.l(&ctx)?,
    }))
}

/// Books a visit: for a ticket (its customer taken from it) or a customer; the engineer named
/// (who must have the `skill` asked), else the best free one with it, else the caller. A time
/// the engineer already has a visit in is refused (`starts_at: engineer_busy`).
#[utoipa::path(post, path = "/api/v1/visits", tag = "visits", request_body = VisitInput, responses(
    (status = 201, body = Visit), (status = 422, body = Problem)))]
pub async fn create_visit(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<VisitInput>,
) -> ApiResult<Response> {
    let v = visits::schedule(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &v, v.version))
}

#[utoipa::path(get, path = "/api/v1/visits/{id}", tag = "visits", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Visit), (status = 404, body = Problem)))]
pub async fn get_visit(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let v = visits::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &v, v.version))
}

/// Moves a scheduled visit (`starts_at`, `minutes`, `engineer_id`, `address`) at the version
/// read (412 when stale).
#[utoipa::path(patch, path = "/api/v1/visits/{id}", tag = "visits", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = VisitInput, responses((status = 200, body = Visit), (status = 404, body = Problem),
    (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_visit(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<VisitInput>,
) -> ApiResult<Response> {
    let v = visits::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &v, v.version))
}

/// Finishes a visit with its report and outcome: the report goes on the customer's timeline
/// and the ticket's log.
#[utoipa::path(post, path = "/api/v1/visits/{id}/finish", tag = "visits", params(("id" = Uuid, Path)),
    request_body = DoneInput, responses((status = 200, body = Visit), (status = 404, body = Problem),
    (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn finish_visit(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<DoneInput>,
) -> ApiResult<Json<Visit>> {
    Ok(Json(visits::finish(&s.db, &ctx, id, b).await.l(&ctx)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    pub version: Option<i64>,
}

/// Cancels a scheduled visit.
#[utoipa::path(post, path = "/api/v1/visits/{id}/cancel", tag = "visits", params(("id" = Uuid, Path)),
    request_body = CancelInput, responses((status = 200, body = Visit), (status = 404, body = Problem),
    (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn cancel_visit(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<CancelInput>,
) -> ApiResult<Json<Visit>> {
    Ok(Json(
        visits::cancel(&s.db, &ctx, id, b.version).await.l(&ctx)?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EngineerQuery {
    /// Only colleagues with this skill.
    pub skill: Option<String>,
    /// Required.
    pub starts_at: Option<DateTime<Utc>>,
    /// Default 60.
    pub minutes: Option<i64>,
    /// The service station (team) whose members go first — the ticket's team.
    pub team_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct EngineerList {
    pub items: Vec<Engineer>,
}

/// Who could go at that time: the free ones first, then the station's (`team_id`), then by their
/// level in the skill, then the lightest day.
#[utoipa::path(get, path = "/api/v1/visits/engineers", tag = "visits", params(EngineerQuery), responses(
    (status = 200, body = EngineerList), (status = 422, body = Problem)))]
pub async fn visit_engineers(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<EngineerQuery>,
) -> ApiResult<Json<EngineerList>> {
    let at = q
        .starts_at
        .ok_or_else(|| Error::field("starts_at", "required"))
        .l(&ctx)?;
    let minutes = q.minutes.unwrap_or(60);
    if !(15..=1440).contains(&minutes) {
        return Err(Error::field("minutes", "out_of_range")).l(&ctx);
    }
    Ok(Json(EngineerList {
        items: visits::engineers(&s.db, &ctx, q.skill.as_deref(), q.team_id, at, minutes)
            .await
            .l(&ctx)?,
    }))
}

// ---- pages ------------------------------------------------------------------------------

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/visits", get(agenda))
        .route("/visits/{id}", get(visit_page))
        .route("/visits/{id}/finish", post(finish_page))
        .route("/visits/{id}/cancel", post(cancel_page))
        .route("/tickets/{id}/visits", post(book_page))
}

#[derive(Deserialize)]
struct AgendaQuery {
    /// `all`: every engineer's (for whoever may see them).
    who: Option<String>,
    error: Option<String>,
}

/// `/visits`: the caller's visits from today on (with the last week's done ones), or
/// everyone's.
async fn agenda(State(s): State<AppState>, p: Signed, Query(q): Query<AgendaQuery>) -> Response {
    let all =
        q.who.as_deref() == Some("all") && p.ctx.can("tickets", Action::Read) == Some(Scope::All);
    let today = Utc::now() - chrono::Duration::days(7);
    let f = VisitFilter {
        engineer_id: if all { None } else { p.ctx.user_id },
        from: Some(today),
        limit: Some(500),
        ..Default::default()
    };
    let items = match visits::list(&s.db, &p.ctx, &f).await {
        Ok(v) => v,
        Err(e) => return p.error(&s, e),
    };
    let (upcoming, past): (Vec<Visit>, Vec<Visit>) =
        items.into_iter().partition(|v| v.status == "scheduled");
    p.page(
        &s,
        "service/visits.html",
        "visits",
        context! { upcoming => upcoming, past => past, all => all,
        can_all => p.ctx.can("tickets", Action::Read) == Some(Scope::All),
        error => p.refusal_from_url(q.error.as_deref()) },
    )
}

#[derive(Deserialize)]
struct ShowQuery {
    error: Option<String>,
}

async fn visit_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Response {
    match visits::get(&s.db, &p.ctx, id).await {
        Ok(v) => {
            let outcomes = if v.kind == "follow_up" {
                visits::FOLLOW_UP_OUTCOMES
            } else {
                visits::ONSITE_OUTCOMES
            };
            p.page(
                &s,
                "service/visit.html",
                "visits",
                context! { v => v, outcomes => outcomes,
                can_edit => p.ctx.can("tickets", Action::Update).is_some(),
                error => p.refusal_from_url(q.error.as_deref()) },
            )
        }
        Err(e) => p.error(&s, e),
    }
}

type Posted = BTreeMap<String, String>;

fn field<'a>(f: &'a Posted, k: &str) -> Option<&'a str> {
    f.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// `POST /visits/{id}/finish`: the report and outcome written on site.
async fn finish_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<Posted>,
) -> Response {
    if !p.csrf_ok(&f.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let input = DoneInput {
        version: field(&f, "version").and_then(|v| v.parse().ok()),
        report: field(&f, "report").map(str::to_owned),
        outcome: field(&f, "outcome").map(str::to_owned),
    };
    let page = format!("/visits/{id}");
    match visits::finish(&s.db, &p.ctx, id, input).await {
        Ok(_) => Redirect::to(&page).into_response(),
        Err(e) => p.refused_to(&page, e, Some("visit.field.")),
    }
}

async fn cancel_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<Posted>,
) -> Response {
    if !p.csrf_ok(&f.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let page = format!("/visits/{id}");
    let version = field(&f, "version").and_then(|v| v.parse().ok());
    match visits::cancel(&s.db, &p.ctx, id, version).await {
        Ok(_) => Redirect::to(&page).into_response(),
        Err(e) => p.refused_to(&page, e, Some("visit.field.")),
    }
}

/// A `datetime-local` value in the tenant's time zone.
fn local_time(p: &Signed, v: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").ok()?;
    p.time_zone
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// `POST /tickets/{id}/visits`: the ticket page's booking form.
async fn book_page(
    State(s): State<AppState>,
    p: Signed,
    Path(ticket): Path<Uuid>,
    Form(f): Form<Posted>,
) -> Response {
    if !p.csrf_ok(&f.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let back = format!("/tickets/{ticket}");
    let starts_at = match field(&f, "starts_at").map(|v| local_time(&p, v)) {
        Some(Some(t)) => Some(t),
        Some(None) => {
            return p.refused_to(
                &back,
                Error::field("starts_at", "invalid"),
                Some("visit.field."),
            )
        }
        None => None,
    };
    let input = VisitInput {
        kind: field(&f, "kind").map(str::to_owned),
        ticket_id: Some(ticket),
        engineer_id: field(&f, "engineer_id").and_then(|v| v.parse().ok()),
        skill: field(&f, "skill").map(str::to_owned),
        starts_at,
        minutes: field(&f, "minutes").and_then(|v| v.parse().ok()),
        address: field(&f, "address").map(str::to_owned),
        ..Default::default()
    };
    match visits::schedule(&s.db, &p.ctx, input).await {
        Ok(v) => Redirect::to(&format!("/visits/{}", v.id)).into_response(),
        Err(e) => p.refused_to(&back, e, Some("visit.field.")),
    }
}
