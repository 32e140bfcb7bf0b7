//! Business calendars over HTTP: `/api/v1/calendars` and the admin pages
//! (`/admin/calendars`), both thin over `guanxi_platform::calendars`.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use guanxi_platform::calendar::{DayKind, WEEKDAYS};
use guanxi_platform::calendars::{
    self, Calendar, CalendarInput, DayInput, IcalImport, ImportKind, Trial, WeekInput,
};
use guanxi_platform::error::FieldError;
use guanxi_platform::page::Page;
use guanxi_platform::perms::Action;
use guanxi_platform::{teams, Error};
use minijinja::context;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize, PageParams};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::i18n::t;
use crate::pages::{forbidden_csrf, CsrfForm, Signed};
use crate::problem::Problem;
use crate::state::AppState;

// ---- API -------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/calendars", tag = "calendars", params(PageParams), responses((status = 200, body = Page<Calendar>)))]
pub async fn list_calendars(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Page<Calendar>>> {
    Ok(Json(
        calendars::list(&s.db, &ctx, p.limit, p.cursor)
            .await
            .l(&ctx)?,
    ))
}

#[utoipa::path(post, path = "/api/v1/calendars", tag = "calendars", request_body = CalendarInput, responses(
    (status = 201, body = Calendar), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_calendar(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<CalendarInput>,
) -> ApiResult<Response> {
    let c = calendars::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &c, c.version))
}

#[utoipa::path(get, path = "/api/v1/calendars/{id}", tag = "calendars", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Calendar), (status = 404, body = Problem)))]
pub async fn get_calendar(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let c = calendars::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

#[utoipa::path(patch, path = "/api/v1/calendars/{id}", tag = "calendars", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = CalendarInput, responses((status = 200, body = Calendar), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_calendar(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<CalendarInput>,
) -> ApiResult<Response> {
    let c = calendars::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

#[utoipa::path(delete, path = "/api/v1/calendars/{id}", tag = "calendars", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash; deadlines use the next calendar in line")))]
pub async fn delete_calendar(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    calendars::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IcalParams {
    /// How each event's kind is decided (default `auto`: a title with 班 or "workday" is a
    /// make-up working day, anything else a holiday).
    #[param(inline)]
    pub kind: Option<ImportKind>,
}

/// Merges the whole-day events of an iCal file (the request body, `text/calendar`) into the
/// calendar's holidays and make-up days; dates the file lacks stay as they are.
#[utoipa::path(post, path = "/api/v1/calendars/{id}/ical", tag = "calendars",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header), IcalParams),
    request_body(content = String, content_type = "text/calendar"),
    responses((status = 200, body = IcalImport), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn import_ical(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    Query(q): Query<IcalParams>,
    body: String,
) -> ApiResult<Json<IcalImport>> {
    Ok(Json(
        calendars::import_ical(&s.db, &ctx, id, v, &body, q.kind.unwrap_or_default())
            .await
            .l(&ctx)?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrialParams {
    /// RFC 3339 instant to count from (required).
    pub start: Option<DateTime<Utc>>,
    /// Working minutes to add: the answer's `deadline`.
    pub minutes: Option<i64>,
    /// An instant to count to: the answer's `business_minutes`.
    pub end: Option<DateTime<Utc>>,
}

/// Deadline and business-time arithmetic on a calendar, as SLAs and reminders will use it.
#[utoipa::path(get, path = "/api/v1/calendars/{id}/trial", tag = "calendars", params(("id" = Uuid, Path), TrialParams),
    responses((status = 200, body = Trial), (status = 422, body = Problem)))]
pub async fn trial(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<TrialParams>,
) -> ApiResult<Json<Trial>> {
    Ok(Json(
        calendars::trial(&s.db, &ctx, id, q.start, q.minutes, q.end)
            .await
            .l(&ctx)?,
    ))
}

// ---- pages -----------------------------------------------------------------------------------

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/calendars", get(list_page).post(create_page))
        .route("/admin/calendars/{id}", get(edit_page).post(save_page))
        .route("/admin/calendars/{id}/ical", post(ical_page))
        .route("/admin/calendars/{id}/delete", post(delete_page))
}

/// The zones offered in the time zone field (any IANA name is accepted).
const ZONES: &[&str] = &[
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Macau",
    "Asia/Singapore",
    "Asia/Kuala_Lumpur",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Dubai",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Australia/Sydney",
    "UTC",
];

async fn team_list(s: &AppState, p: &Signed) -> Vec<teams::Team> {
    teams::list(&s.db, &p.ctx, Some(200), None, None)
        .await
        .map(|pg| pg.items)
        .unwrap_or_default()
}

async fn list_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: serde_json::Value,
) -> Response {
    let list = match calendars::list(&s.db, &p.ctx, Some(200), None).await {
        Ok(pg) => pg.items,
        Err(e) => return p.error(s, e),
    };
    let teams = team_list(s, p).await;
    p.page_status(
        s,
        status,
        "calendars.html",
        "calendars",
        context! {
            calendars => list, teams => teams, errors => errors, form => form, zones => ZONES,
            can_create => p.ctx.can("calendars", Action::Create).is_some(),
        },
    )
}

async fn list_page(State(s): State<AppState>, p: Signed) -> Response {
    list_view(&s, &p, StatusCode::OK, vec![], serde_json::json!({})).await
}

/// The calendar form as posted (and as shown again): `name`, `time_zone`, `team_id`,
/// `is_default`, `week.<day>` (periods by commas), `days` (one date a line), `version`.
type CalendarForm = BTreeMap<String, String>;

/// `09:00-12:00, 13:30-18:00` (commas, Chinese commas, semicolons or spaces between).
fn periods_of(s: &str) -> Vec<String> {
    s.split([',', '，', ';', '；', ' ', '、'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A day line: `2026-10-01 休 国庆节` or `2026-10-10 班 09:00-12:00 国庆节调休` (date, kind —
/// 休/班 or holiday/workday — then periods of its own, then the name).
fn day_of(line: &str) -> DayInput {
    let mut words = line.split_whitespace();
    let date = words.next().map(str::to_owned);
    let kind = words.next().map(str::to_owned);
    let (mut periods, mut name) = (Vec::new(), Vec::new());
    for w in words {
        if name.is_empty() && w.contains(':') && w.contains('-') {
            periods.push(w.to_owned());
        } else {
            name.push(w);
        }
    }
    DayInput {
        date,
        kind,
        name: Some(name.join(" ")),
        periods: (!periods.is_empty()).then_some(periods),
    }
}

/// What the form asks for: the name, zone, team and default always; the week and days only
/// on the full edit form (`full`), which shows them.
fn input(f: &CalendarForm, full: bool) -> CalendarInput {
    let week = full.then(|| {
        WeekInput::from_days(WEEKDAYS.map(|d| {
            Some(periods_of(
                f.get(&format!("week.{d}"))
                    .map(String::as_str)
                    .unwrap_or(""),
            ))
        }))
    });
    let days = full.then(|| {
        f.get("days")
            .map(String::as_str)
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(day_of)
            .collect()
    });
    CalendarInput {
        version: f.get("version").and_then(|v| v.parse().ok()),
        name: f.get("name").cloned(),
        time_zone: f.get("time_zone").filter(|z| !z.trim().is_empty()).cloned(),
        team_id: Some(f.get("team_id").and_then(|t| t.parse().ok())),
        is_default: Some(f.contains_key("is_default")),
        week,
        days,
    }
}

/// The stored calendar as the form shows it (days as typed lines, 休/班 in Chinese).
fn form_of(c: &Calendar, locale: &str) -> CalendarForm {
    let zh = locale.starts_with("zh");
    let days = c
        .days
        .0
        .iter()
        .map(|d| {
            let kind = match (d.kind, zh) {
                (DayKind::Holiday, true) => "休",
                (DayKind::Workday, true) => "班",
                (DayKind::Holiday, false) => "holiday",
                (DayKind::Workday, false) => "workday",
            };
            let periods = d.periods.iter().flatten().map(|p| p.to_string());
            [d.date.to_string(), kind.to_owned()]
                .into_iter()
                .chain(periods)
                .chain((!d.name.is_empty()).then(|| d.name.clone()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut f = CalendarForm::from([
        ("version".to_owned(), c.version.to_string()),
        ("name".to_owned(), c.name.clone()),
        ("time_zone".to_owned(), c.time_zone.clone()),
        ("days".to_owned(), days),
    ]);
    if let Some(t) = c.team_id {
        f.insert("team_id".into(), t.to_string());
    }
    if c.is_default {
        f.insert("is_default".into(), "on".into());
    }
    for (d, periods) in WEEKDAYS.iter().zip(c.week.0.days()) {
        let text = periods.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        f.insert(format!("week.{d}"), text.join(", "));
    }
    f
}

/// Day errors (`days.3.date`) are shown at the days box, with the line they are on.
fn day_lines(errors: Vec<FieldError>, locale: &str) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|mut e| {
            if let Some(rest) = e.field.strip_prefix("days.") {
                if let Some(n) = rest.split('.').next().and_then(|n| n.parse::<usize>().ok()) {
                    let line = t(locale, "cal.line").replace("{n}", &(n + 1).to_string());
                    e.message = format!("{line}: {}", e.message);
                    e.field = "days".into();
                }
            }
            e
        })
        .collect()
}

async fn create_page(
    State(s): State<AppState>,
    p: Signed,
    Form(f): Form<CalendarForm>,
) -> Response {
    if !p.csrf_ok(&f.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    match calendars::create(&s.db, &p.ctx, input(&f, false)).await {
        Ok(c) => Redirect::to(&format!("/admin/calendars/{}", c.id)).into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                let form = serde_json::to_value(&f).unwrap_or_default();
                list_view(&s, &p, StatusCode::UNPROCESSABLE_ENTITY, errors, form).await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

#[derive(Deserialize, Default)]
struct EditQuery {
    saved: Option<String>,
    start: Option<String>,
    minutes: Option<String>,
    imported: Option<String>,
}

struct Shown {
    status: StatusCode,
    form: Option<CalendarForm>,
    errors: Vec<FieldError>,
    error: Option<String>,
    import: Option<IcalImport>,
}

async fn edit_view(s: &AppState, p: &Signed, id: Uuid, q: EditQuery, shown: Shown) -> Response {
    let c = match calendars::get(&s.db, &p.ctx, id).await {
        Ok(c) => c,
        Err(e) => return p.error(s, e),
    };
    let form = shown.form.unwrap_or_else(|| form_of(&c, &p.ctx.locale));
    // The trial: a local time in the calendar's zone plus working minutes.
    let sched = c.schedule();
    let tz = sched.time_zone();
    let start = q
        .start
        .as_deref()
        .and_then(|v| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").ok())
        .and_then(|n| tz.from_local_datetime(&n).earliest());
    let minutes = q
        .minutes
        .as_deref()
        .and_then(|m| m.trim().parse::<i64>().ok());
    let trial = match (start, minutes) {
        (Some(st), Some(m)) if (0..=1_000_000).contains(&m) => {
            let fmt = |d: DateTime<Utc>| {
                let l = d.with_timezone(&tz);
                format!(
                    "{} {}",
                    l.format("%Y-%m-%d %H:%M"),
                    t(
                        &p.ctx.locale,
                        &format!(
                            "cal.wd.{}",
                            WEEKDAYS[chrono::Datelike::weekday(&l).num_days_from_monday() as usize]
                        )
                    )
                )
            };
            let st = st.with_timezone(&Utc);
            Some(match sched.deadline(st, m) {
                Some(d) => context! { start => fmt(st), deadline => fmt(d), minutes => m },
                None => context! { start => fmt(st), minutes => m, never => true },
            })
        }
        _ => None,
    };
    let teams = team_list(s, p).await;
    let import = shown.import.map(|i| {
        context! { added => i.added, changed => i.changed, unchanged => i.unchanged, skipped => i.skipped }
    });
    p.page_status(s, shown.status, "calendar.html", "calendars", context! {
        cal => c, form => serde_json::to_value(&form).unwrap_or_default(), teams => teams, zones => ZONES,
        weekdays => WEEKDAYS, errors => day_lines(shown.errors, &p.ctx.locale), error => shown.error,
        saved => q.saved.is_some(), imported => q.imported.is_some(), import => import, trial => trial,
        trial_start => q.start, trial_minutes => q.minutes,
        can_edit => p.ctx.can("calendars", Action::Update).is_some(),
        can_delete => p.ctx.can("calendars", Action::Delete).is_some(),
    })
}

async fn edit_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<EditQuery>,
) -> Response {
    let shown = Shown {
        status: StatusCode::OK,
        form: None,
        errors: vec![],
        error: None,
        import: None,
    };
    edit_view(&s, &p, id, q, shown).await
}

/// A refusal shown on the edit page with what was typed kept.
async fn refused(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    form: Option<CalendarForm>,
    e: Error,
) -> Response {
    let (status, errors, error) = match e {
        e @ Error::PreconditionFailed { .. } => {
            let msg = crate::problem::problem(e, &p.ctx.locale).title;
            (StatusCode::PRECONDITION_FAILED, vec![], Some(msg))
        }
        e => match p.field_errors(e) {
            Ok(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None),
            Err(e) => return p.error(s, e),
        },
    };
    let shown = Shown {
        status,
        form,
        errors,
        error,
        import: None,
    };
    edit_view(s, p, id, EditQuery::default(), shown).await
}

async fn save_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CalendarForm>,
) -> Response {
    if !p.csrf_ok(&f.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    match calendars::update(&s.db, &p.ctx, id, None, input(&f, true)).await {
        Ok(_) => Redirect::to(&format!("/admin/calendars/{id}?saved=1")).into_response(),
        Err(e) => refused(&s, &p, id, Some(f), e).await,
    }
}

/// The iCal upload (multipart: `file`, `kind`, `version`).
async fn ical_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    form: axum::extract::Multipart,
) -> Response {
    let (fields, file) = match crate::extract::Upload::read(form).await {
        Ok(u) => (u.fields, u.file),
        Err((_, code)) => return refused(&s, &p, id, None, Error::field("file", code)).await,
    };
    if !p.csrf_ok(&fields.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let Some(text) = file.and_then(|(_, b)| String::from_utf8(b).ok()) else {
        return refused(&s, &p, id, None, Error::field("file", "invalid_ical")).await;
    };
    let kind = match fields.get("kind").map(String::as_str) {
        Some("holiday") => ImportKind::Holiday,
        Some("workday") => ImportKind::Workday,
        _ => ImportKind::Auto,
    };
    let version = fields.get("version").and_then(|v| v.parse().ok());
    match calendars::import_ical(&s.db, &p.ctx, id, version, &text, kind).await {
        Ok(import) => {
            let shown = Shown {
                status: StatusCode::OK,
                form: None,
                errors: vec![],
                error: None,
                import: Some(import),
            };
            edit_view(&s, &p, id, EditQuery::default(), shown).await
        }
        Err(e) => refused(&s, &p, id, None, e).await,
    }
}

async fn delete_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match calendars::delete(&s.db, &p.ctx, id).await {
        Ok(()) => Redirect::to("/admin/calendars").into_response(),
        Err(e) => p.error(&s, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_lines_read_as_typed() {
        let d = day_of("2026-10-10 班 09:00-12:00 国庆节 调休");
        assert_eq!(d.date.as_deref(), Some("2026-10-10"));
        assert_eq!(d.kind.as_deref(), Some("班"));
        assert_eq!(d.periods, Some(vec!["09:00-12:00".to_owned()]));
        assert_eq!(d.name.as_deref(), Some("国庆节 调休"));
        assert_eq!(
            periods_of("09:00-12:00，13:30-18:00"),
            vec!["09:00-12:00", "13:30-18:00"]
        );
    }
}
