//! Dashboards over HTTP: `/api/v1/dashboards` (the built-in and saved ones; `/{id}/data`
//! opens one narrowed by period, team, region and "only mine"; `/{id}/home` puts it on the
//! caller's home page) and the pages `/dashboards` (the list, a new or copied dashboard) and
//! `/dashboards/{id}` (its tiles drawn as SVG under a filter bar; `?edit=1` its tiles for the
//! owner). The home page draws the caller's home dashboard under their day.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use guanxi_analytics::dashboards::{
    self, Dashboard, DashboardData, DashboardFilters, DashboardInput, PeriodPreset, Tile,
    TileContent, TileData,
};
use guanxi_platform::perms::Action;
use guanxi_platform::Ctx;
use minijinja::context;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::pages::{forbidden_csrf, Signed};
use crate::problem::Problem;
use crate::reports::{chart_of, column_label};
use crate::state::AppState;

/// A built-in dashboard's name and tile titles in the reader's language.
fn localized(mut d: Dashboard, locale: &str) -> Dashboard {
    if d.builtin {
        d.name = crate::i18n::t(locale, &d.name);
        for tile in &mut d.tiles.0 {
            tile.title = crate::i18n::t(locale, &tile.title);
        }
    }
    d
}

fn localized_data(mut data: DashboardData, locale: &str) -> DashboardData {
    if data.dashboard.builtin {
        for tile in &mut data.tiles {
            tile.title = crate::i18n::t(locale, &tile.title);
        }
    }
    data.dashboard = localized(data.dashboard, locale);
    data
}

#[derive(serde::Serialize, ToSchema)]
pub struct DashboardList {
    pub items: Vec<Dashboard>,
}

/// The dashboards the caller sees: the built-in management dashboard and "My numbers", then
/// their own, their team's and the company's.
#[utoipa::path(get, path = "/api/v1/dashboards", tag = "dashboards", responses(
    (status = 200, body = DashboardList), (status = 403, body = Problem)))]
pub async fn list_dashboards(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<DashboardList>> {
    let items = dashboards::list(&s.db, &ctx).await.l(&ctx)?;
    Ok(Json(DashboardList {
        items: items
            .into_iter()
            .map(|d| localized(d, &ctx.locale))
            .collect(),
    }))
}

/// Saves a dashboard (every report tile is run once first; sharing with the team or the
/// company takes `analytics` create).
#[utoipa::path(post, path = "/api/v1/dashboards", tag = "dashboards", request_body = DashboardInput, responses(
    (status = 201, body = Dashboard), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_dashboard(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<DashboardInput>,
) -> ApiResult<Response> {
    let d = dashboards::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &d, d.version))
}

#[utoipa::path(get, path = "/api/v1/dashboards/{id}", tag = "dashboards", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Dashboard), (status = 404, body = Problem)))]
pub async fn get_dashboard(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let d = dashboards::get(&s.db, &ctx, id).await.l(&ctx)?;
    let v = d.version;
    Ok(versioned(StatusCode::OK, &localized(d, &ctx.locale), v))
}

/// Changes a dashboard of the caller's (version-checked; a built-in one is read-only).
#[utoipa::path(put, path = "/api/v1/dashboards/{id}", tag = "dashboards", params(("id" = Uuid, Path)), request_body = DashboardInput, responses(
    (status = 200, body = Dashboard), (status = 403, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_dashboard(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    // An id the caller cannot see is a 404 whatever the body says.
    dashboards::get(&s.db, &ctx, id).await.l(&ctx)?;
    let b: DashboardInput = serde_json::from_value(body)
        .map_err(|e| guanxi_platform::Error::BadRequest(format!("body: {e}")))
        .l(&ctx)?;
    let d = dashboards::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &d, d.version))
}

#[utoipa::path(delete, path = "/api/v1/dashboards/{id}", tag = "dashboards", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_dashboard(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    dashboards::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opens a dashboard in the caller's record scope, narrowed by the given filters over its
/// saved ones; each tile says which narrowings it could not take.
#[utoipa::path(get, path = "/api/v1/dashboards/{id}/data", tag = "dashboards", params(("id" = Uuid, Path), DashboardFilters), responses(
    (status = 200, body = DashboardData), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn dashboard_data(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<DashboardFilters>,
) -> ApiResult<Json<DashboardData>> {
    let data = dashboards::open(&s.db, &ctx, id, &f).await.l(&ctx)?;
    Ok(Json(localized_data(data, &ctx.locale)))
}

/// Puts a dashboard the caller sees on their home page.
#[utoipa::path(put, path = "/api/v1/dashboards/{id}/home", tag = "dashboards", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Dashboard), (status = 404, body = Problem)))]
pub async fn set_home(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Dashboard>> {
    let d = dashboards::set_home(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(Json(localized(d, &ctx.locale)))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboards", get(list_page).post(create_form))
        .route("/dashboards/{id}", get(dashboard_page).post(edit_form))
        .route("/dashboards/{id}/home", post(home_form))
        .route("/dashboards/{id}/panel", get(panel_page))
        .route("/dashboards/{id}/delete", post(delete_form))
}

async fn list_page(State(s): State<AppState>, p: Signed, RawQuery(raw): RawQuery) -> Response {
    let error = p.refusal_from_url(error_of(raw.as_deref()).as_deref());
    match dashboards::list(&s.db, &p.ctx).await {
        Ok(items) => {
            let items: Vec<Dashboard> = items
                .into_iter()
                .map(|d| localized(d, &p.ctx.locale))
                .collect();
            p.page(
                &s,
                "dashboards/list.html",
                "dashboards",
                context! { items, error, can_share => p.ctx.can("analytics", Action::Create).is_some() },
            )
        }
        Err(e) => p.error(&s, e),
    }
}

fn error_of(raw: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or("")).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v)
}

fn form_value(form: &[(String, String)], k: &str) -> Option<String> {
    form.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.trim().to_owned())
}

/// `POST /dashboards`: a new dashboard — empty, or a copy of one the caller sees (a built-in
/// one's titles in the caller's language).
async fn create_form(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| form_value(&form, k);
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let copy = match get("copy_of").and_then(|v| v.parse::<Uuid>().ok()) {
        Some(id) => match dashboards::get(&s.db, &p.ctx, id).await {
            Ok(d) => Some(localized(d, &p.ctx.locale)),
            Err(e) => return p.error(&s, e),
        },
        None => None,
    };
    let input = DashboardInput {
        name: get("name").unwrap_or_default(),
        sharing: get("sharing"),
        tiles: copy.as_ref().map(|d| d.tiles.0.clone()).unwrap_or_default(),
        filters: copy.map(|d| d.filters.0).unwrap_or_default(),
        version: None,
    };
    match dashboards::create(&s.db, &p.ctx, input).await {
        Ok(d) => Redirect::to(&format!("/dashboards/{}?edit=1", d.id)).into_response(),
        Err(e @ guanxi_platform::Error::Validation(_)) => {
            p.refused_to("/dashboards", e, Some("dashboard."))
        }
        Err(e) => p.error(&s, e),
    }
}

/// The filter bar's query: empty fields are none; `period=custom` takes the days.
fn filters_of(pairs: &[(String, String)]) -> DashboardFilters {
    let one = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let period =
        one("period").and_then(|v| serde_json::from_value::<PeriodPreset>(Value::String(v)).ok());
    let days = |k: &str| one(k).and_then(|v| v.parse().ok());
    let custom = one("period").as_deref() == Some("custom");
    DashboardFilters {
        period,
        from: if custom { days("from") } else { None },
        to: if custom { days("to") } else { None },
        team_id: one("team_id").and_then(|v| v.parse().ok()),
        province: one("province").filter(|v| v.chars().count() <= 100),
        mine: one("mine").map(|v| v == "true"),
    }
}

/// Each tile as the page draws it: its chart (or table), matrix or forecast, or why not.
fn tile_views(locale: &str, data: &DashboardData) -> Vec<minijinja::Value> {
    let t = |k: &str| crate::i18n::t(locale, k);
    data.tiles
        .iter()
        .map(|tile| {
            let unapplied: Vec<String> = tile
                .unapplied
                .iter()
                .map(|u| t(&format!("dashboard.filter.{u}")))
                .collect();
            let base = context! { title => &tile.title, wide => tile.wide, unapplied };
            let body = match &tile.data {
                TileData::Report {
                    entity,
                    chart,
                    report_id,
                    result,
                } => {
                    let result = crate::reports::shown(locale, entity, result);
                    let labels: Vec<String> = result
                        .columns
                        .iter()
                        .map(|c| column_label(locale, &c.key))
                        .collect();
                    context! { kind => "report", chart => chart_of(locale, *chart, &result),
                    result, labels, report_id }
                }
                TileData::GradeMigration {
                    run_id,
                    as_of,
                    moves,
                } => context! { kind => "grades", run_id, as_of,
                matrix => crate::grading::matrix(moves), grades => guanxi_analytics::grading::GRADES },
                TileData::Forecast {
                    period,
                    currency,
                    row,
                } => context! { kind => "forecast", period, currency, row },
                TileData::Error { code, field } => {
                    let why = match code.as_str() {
                        "forbidden" => t("dashboard.tile_forbidden"),
                        "not_found" => t("dashboard.tile_missing"),
                        _ => t("dashboard.tile_broken").replace(
                            "{field}",
                            field.as_deref().unwrap_or_default(),
                        ),
                    };
                    context! { kind => "error", why }
                }
            };
            context! { ..body, ..base }
        })
        .collect()
}

/// A dashboard opened in the reader's language, with its tiles' views.
async fn opened(
    s: &AppState,
    ctx: &Ctx,
    id: Uuid,
    given: &DashboardFilters,
) -> Result<(DashboardData, Vec<minijinja::Value>), guanxi_platform::Error> {
    let data = localized_data(dashboards::open(&s.db, ctx, id, given).await?, &ctx.locale);
    let tiles = tile_views(&ctx.locale, &data);
    Ok((data, tiles))
}

/// The home page's dashboard (its tiles load after the page, from `/dashboards/{id}/panel`),
/// or nothing for a user without analytics.
pub(crate) async fn home_panel(
    s: &AppState,
    ctx: &Ctx,
) -> Result<Option<Dashboard>, guanxi_platform::Error> {
    if ctx.can("analytics", Action::Read).is_none() {
        return Ok(None);
    }
    let d = dashboards::home(&s.db, ctx).await?;
    Ok(Some(localized(d, &ctx.locale)))
}

/// `/dashboards/{id}/panel`: the tiles alone as it opens (the home page fetches them, so a
/// large tenant's counting never holds up the page).
async fn panel_page(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    match opened(&s, &p.ctx, id, &DashboardFilters::default()).await {
        Ok((data, tiles)) => p.page(
            &s,
            "dashboards/panel.html",
            "home",
            context! { data, tiles },
        ),
        Err(e) => p.error(&s, e),
    }
}

/// `/dashboards/{id}`: the tiles under a filter bar; `?edit=1` the owner's tile editor.
async fn dashboard_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let given = filters_of(&pairs);
    let error = p.refusal_from_url(error_of(raw.as_deref()).as_deref());
    // The dashboard as opened (already read and localised there), not read again.
    let (data, tiles) = match opened(&s, &p.ctx, id, &given).await {
        Ok(v) => v,
        Err(e) => return p.error(&s, e),
    };
    let d = data.dashboard.clone();
    let mine = !d.builtin && d.owner_id == p.ctx.user_id;
    let editing = mine && pairs.iter().any(|(k, _)| k == "edit");
    let teams = if p.ctx.can("teams", Action::Read).is_some() {
        match guanxi_platform::teams::list(&s.db, &p.ctx, Some(200), None, None).await {
            Ok(page) => page.items,
            Err(e) => return p.error(&s, e),
        }
    } else {
        vec![]
    };
    let reports = if editing {
        match guanxi_analytics::reports::list(&s.db, &p.ctx).await {
            Ok(r) => r,
            Err(e) => return p.error(&s, e),
        }
    } else {
        vec![]
    };
    let period = pairs
        .iter()
        .find(|(k, _)| k == "period")
        .map(|(_, v)| v.clone());
    p.page(
        &s,
        "dashboards/dashboard.html",
        "dashboards",
        context! { data, tiles, dashboard => &d, mine, editing, teams, reports, error, period,
        presets => PeriodPreset::ALL.map(|x| serde_json::to_value(x).unwrap_or_default()),
        can_share => p.ctx.can("analytics", Action::Create).is_some() },
    )
}

/// `POST /dashboards/{id}`: the editor's one form — name, sharing, each tile's title, width,
/// place and removal, and a tile to add (a saved report, the grade migration or the forecast).
async fn edit_form(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| form_value(&form, k);
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let back = format!("/dashboards/{id}?edit=1");
    let d = match dashboards::get(&s.db, &p.ctx, id).await {
        Ok(d) => d,
        Err(e) => return p.error(&s, e),
    };
    // Tiles kept, in the places given (ties in their old order).
    let mut tiles: Vec<(i64, usize, Tile)> = d
        .tiles
        .0
        .iter()
        .enumerate()
        .filter(|(i, _)| get(&format!("tile.{i}.remove")).is_none())
        .map(|(i, tile)| {
            let place = get(&format!("tile.{i}.place"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(i as i64 + 1);
            let mut tile = tile.clone();
            if let Some(title) = get(&format!("tile.{i}.title")) {
                tile.title = title;
            }
            tile.wide = get(&format!("tile.{i}.wide")).is_some();
            (place, i, tile)
        })
        .collect();
    tiles.sort_by_key(|(place, i, _)| (*place, *i));
    let mut tiles: Vec<Tile> = tiles.into_iter().map(|(_, _, t)| t).collect();
    let add = get("add").unwrap_or_default();
    let content = match add.as_str() {
        "grade_migration" => Some(TileContent::GradeMigration),
        "forecast" => Some(TileContent::Forecast),
        other => other
            .strip_prefix("report:")
            .and_then(|r| r.parse().ok())
            .map(|report_id| TileContent::SavedReport { report_id }),
    };
    if let Some(content) = content {
        let title = get("add_title")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| {
                let t = |k: &str| crate::i18n::t(&p.ctx.locale, k);
                match &content {
                    TileContent::GradeMigration => t("dashboard.builtin.grade_migration"),
                    TileContent::Forecast => t("dashboard.builtin.forecast"),
                    _ => get("add_report_name").unwrap_or_default(),
                }
            });
        tiles.push(Tile {
            title,
            wide: false,
            content,
        });
    }
    let input = DashboardInput {
        name: get("name").unwrap_or_else(|| d.name.clone()),
        sharing: get("sharing"),
        tiles,
        filters: d.filters.0.clone(),
        version: get("version").and_then(|v| v.parse().ok()),
    };
    match dashboards::update(&s.db, &p.ctx, id, None, input).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(
            e @ (guanxi_platform::Error::Validation(_)
            | guanxi_platform::Error::PreconditionFailed { .. }),
        ) => p.refused_to(&back, e, Some("dashboard.")),
        Err(e) => p.error(&s, e),
    }
}

async fn home_form(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if !p.csrf_ok(&form_value(&form, "_csrf")) {
        return forbidden_csrf();
    }
    match dashboards::set_home(&s.db, &p.ctx, id).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) => p.error(&s, e),
    }
}

async fn delete_form(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if !p.csrf_ok(&form_value(&form, "_csrf")) {
        return forbidden_csrf();
    }
    match dashboards::delete(&s.db, &p.ctx, id).await {
        Ok(()) => Redirect::to("/dashboards").into_response(),
        Err(e) => p.error(&s, e),
    }
}
