//! 4V grading over HTTP: the scheme (`/api/v1/grading/scheme`), evaluations
//! (`/api/v1/grading/runs`, each with its customers), a customer's grades over the quarters
//! (`/api/v1/grading/history`), and the pages `/value/grades` (the evaluations and the scheme
//! form) and `/value/grades/{id}` (one evaluation: progress, the split, the ranking and why).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use guanxi_analytics::facts::Party;
use guanxi_analytics::grading::{Input, Measure, Part, Scheme, DIMENSIONS, GRADES, MEASURES};
use guanxi_analytics::grading_runs::{
    self, GradeMove, Graded, GradingRun, GradingRunInput, RunsQuery, SchemeView, ScorePage,
    ScoresQuery,
};
use guanxi_platform::error::Errors;
use guanxi_platform::perms::Action;
use guanxi_platform::version;
use minijinja::context;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::charts::{self, Bar};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::pages::{forbidden_csrf, Signed};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartyQuery {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
}

/// How a party's customers are graded (the default until an admin saves one), and the custom
/// fields that can be inputs.
#[utoipa::path(get, path = "/api/v1/grading/scheme", tag = "analytics", params(PartyQuery), responses(
    (status = 200, body = SchemeView), (status = 403, body = Problem)))]
pub async fn get_scheme(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PartyQuery>,
) -> ApiResult<Response> {
    let v = grading_runs::scheme(&s.db, &ctx, q.party.unwrap_or_default())
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &v, v.version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemeInput {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// The version read (0 for the default); or `If-Match`.
    pub version: Option<i64>,
    pub scheme: Scheme,
}

/// Saves the party's scheme: four dimensions, each a weight and weighted inputs (measures or
/// custom fields), the period, and whether the scheduler evaluates every quarter. Weights that
/// make no sense (negative, all zero) and unknown or unscorable inputs are refused naming the
/// field; a stale version is a 412.
#[utoipa::path(put, path = "/api/v1/grading/scheme", tag = "analytics", request_body = SchemeInput, responses(
    (status = 200, body = SchemeView), (status = 403, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn put_scheme(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<SchemeInput>,
) -> ApiResult<Response> {
    let expected = version::expected(v, b.version).l(&ctx)?;
    let party = b.party.unwrap_or_default();
    let view = grading_runs::save_scheme(&s.db, &ctx, party, b.scheme, expected)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &view, view.version))
}

#[derive(serde::Serialize, ToSchema)]
pub struct GradingRuns {
    pub items: Vec<GradingRun>,
}

/// The party's 4V evaluations, latest day first.
#[utoipa::path(get, path = "/api/v1/grading/runs", tag = "analytics", params(RunsQuery), responses(
    (status = 200, body = GradingRuns), (status = 403, body = Problem)))]
pub async fn list_runs(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<GradingRuns>> {
    Ok(Json(GradingRuns {
        items: grading_runs::runs(&s.db, &ctx, &q).await.l(&ctx)?,
    }))
}

/// Evaluates every customer of the party as of a day with the party's scheme, in the
/// background: 202 with the queued run (follow `status`, `done` of `total`); 200 with the run
/// already kept for that day — the same snapshot, never a second.
#[utoipa::path(post, path = "/api/v1/grading/runs", tag = "analytics", request_body = GradingRunInput, responses(
    (status = 202, body = GradingRun), (status = 200, body = GradingRun), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn post_run(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<GradingRunInput>,
) -> ApiResult<Response> {
    let (run, created) = grading_runs::create(&s.db, &ctx, b).await.l(&ctx)?;
    if created {
        s.grading_wake.notify_one();
    }
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(run)).into_response())
}

/// An evaluation: its status and progress, the scheme it used, the customers per grade.
#[utoipa::path(get, path = "/api/v1/grading/runs/{id}", tag = "analytics", params(("id" = Uuid, Path)), responses(
    (status = 200, body = GradingRun), (status = 404, body = Problem)))]
pub async fn get_run(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<GradingRun>> {
    Ok(Json(grading_runs::get(&s.db, &ctx, id).await.l(&ctx)?))
}

/// An evaluation's customers by rank: grade (and the one before), the four scores, the total
/// and each input's value and score; `tied` when the stated rule placed a customer whose total
/// equals one in another grade.
#[utoipa::path(get, path = "/api/v1/grading/runs/{id}/customers", tag = "analytics", params(("id" = Uuid, Path), ScoresQuery), responses(
    (status = 200, body = ScorePage), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn run_customers(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<ScoresQuery>,
) -> ApiResult<Json<ScorePage>> {
    Ok(Json(
        grading_runs::scores(&s.db, &ctx, id, &q).await.l(&ctx)?,
    ))
}

#[derive(serde::Serialize, ToSchema)]
pub struct GradeMoves {
    pub items: Vec<GradeMove>,
}

/// The grade migration of an evaluation: how many customers went from each grade before it
/// (`null`: not graded before) to each grade.
#[utoipa::path(get, path = "/api/v1/grading/runs/{id}/moves", tag = "analytics", params(("id" = Uuid, Path)), responses(
    (status = 200, body = GradeMoves), (status = 404, body = Problem)))]
pub async fn run_moves(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<GradeMoves>> {
    Ok(Json(GradeMoves {
        items: grading_runs::moves(&s.db, &ctx, id).await.l(&ctx)?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct GradeHistory {
    /// The latest evaluation of each quarter, newest first.
    pub items: Vec<Graded>,
}

/// A customer's grades over the quarters, with the four scores and why, for those who may read
/// the customer.
#[utoipa::path(get, path = "/api/v1/grading/history", tag = "analytics", params(HistoryQuery), responses(
    (status = 200, body = GradeHistory), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn get_history(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<GradeHistory>> {
    let (party, id) = match (q.account_id, q.contact_id) {
        (Some(a), None) => {
            guanxi_customers::accounts::get(&s.db, &ctx, a)
                .await
                .l(&ctx)?;
            (Party::Accounts, a)
        }
        (None, Some(c)) => {
            guanxi_customers::contacts::get(&s.db, &ctx, c)
                .await
                .l(&ctx)?;
            (Party::Contacts, c)
        }
        _ => {
            return Err(guanxi_platform::Error::field("account_id", "required")).l(&ctx);
        }
    };
    Ok(Json(GradeHistory {
        items: grading_runs::history_for(&s.db, &ctx, party, id)
            .await
            .l(&ctx)?,
    }))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/value/grades", get(grades_page))
        .route("/value/grades/scheme", post(save_scheme_form))
        .route("/value/grades/runs", post(run_form))
        .route("/value/grades/{id}", get(run_page))
}

#[derive(Deserialize, Default)]
struct GradesParams {
    party: Option<String>,
    error: Option<String>,
    saved: Option<String>,
}

/// The inputs a scheme row can pick: the measures for the party, then its scorable fields.
fn choices(p: &Signed, v: &SchemeView) -> Vec<(String, String)> {
    let t = |k: &str| crate::i18n::t(&p.ctx.locale, k);
    let mut out: Vec<(String, String)> = MEASURES
        .iter()
        .filter(|m| m.applies_to(v.party))
        .map(|m| {
            (
                m.as_str().to_owned(),
                t(&format!("grading.measure.{}", m.as_str())),
            )
        })
        .collect();
    out.extend(
        v.fields
            .iter()
            .map(|f| (format!("custom.{}", f.key), f.label.clone())),
    );
    out
}

fn party_of(s: Option<&str>) -> Party {
    s.and_then(Party::parse).unwrap_or_default()
}

/// `/value/grades`: the evaluations of a party and, for those who may, the scheme.
async fn grades_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<GradesParams>,
) -> Response {
    let party = party_of(q.party.as_deref());
    let runs = match grading_runs::runs(&s.db, &p.ctx, &RunsQuery { party: Some(party) }).await {
        Ok(r) => r,
        Err(e) => return p.error(&s, e),
    };
    let view = match grading_runs::scheme(&s.db, &p.ctx, party).await {
        Ok(v) => v,
        Err(e) => return p.error(&s, e),
    };
    let rows: Vec<minijinja::Value> = runs
        .iter()
        .map(|r| {
            context! { run => r, quarter => r.quarter(),
            pct => if r.total > 0 { r.done * 100 / r.total } else { 0 } }
        })
        .collect();
    let dims: Vec<minijinja::Value> = DIMENSIONS
        .iter()
        .map(|d| {
            let part = view.scheme.part(*d);
            let mut inputs: Vec<minijinja::Value> = part
                .inputs
                .iter()
                .map(|i| {
                    let scores = i
                        .scores
                        .iter()
                        .map(|(o, s)| format!("{o}={s}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    context! { metric => i.metric, weight => i.weight, scores }
                })
                .collect();
            // Room to add inputs.
            for _ in 0..2 {
                inputs.push(context! { metric => "", weight => "", scores => "" });
            }
            context! { key => d.as_str(), weight => part.weight, inputs }
        })
        .collect();
    let choices = choices(&p, &view);
    let today = chrono::Utc::now().with_timezone(&p.time_zone).date_naive();
    p.page(
        &s,
        "analytics/grades.html",
        "value",
        context! { party, runs => rows, scheme => view.scheme, version => view.version, dims, choices,
        error => p.refusal_from_url(q.error.as_deref()), saved => q.saved.is_some(), today => today.to_string(),
        can_configure => p.ctx.can("analytics", Action::Create).is_some() },
    )
}

/// Reads the scheme form: `period_days`, `quarterly`, and per dimension `<d>.weight` and
/// rows `<d>.metric`, `<d>.iweight`, `<d>.scores` (`option=points, …`); empty rows dropped.
fn scheme_of(form: &[(String, String)]) -> (Scheme, Errors) {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let all = |k: &str| -> Vec<String> {
        form.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    let mut errs = Errors::default();
    let number = |errs: &mut Errors, field: &str, v: &str| -> i64 {
        match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                errs.add(field, if v.is_empty() { "required" } else { "invalid" });
                0
            }
        }
    };
    let period_days = number(&mut errs, "period_days", &get("period_days"));
    let mut parts = Vec::new();
    for d in DIMENSIONS {
        let key = d.as_str();
        let weight = number(
            &mut errs,
            &format!("{key}.weight"),
            &get(&format!("{key}.weight")),
        );
        let (metrics, weights, scores) = (
            all(&format!("{key}.metric")),
            all(&format!("{key}.iweight")),
            all(&format!("{key}.scores")),
        );
        let mut inputs = Vec::new();
        for (i, metric) in metrics.iter().enumerate() {
            if metric.is_empty() {
                continue;
            }
            let at = format!("{key}.inputs[{}]", inputs.len());
            let w = weights.get(i).cloned().unwrap_or_default();
            let weight = number(&mut errs, &format!("{at}.weight"), &w);
            let mut map = BTreeMap::new();
            for pair in scores
                .get(i)
                .map(String::as_str)
                .unwrap_or("")
                .split([',', '，'])
            {
                let pair = pair.trim();
                if pair.is_empty() {
                    continue;
                }
                match pair.split_once(['=', '＝']) {
                    Some((o, s)) => match s.trim().parse::<i64>() {
                        Ok(s) => {
                            map.insert(o.trim().to_owned(), s);
                        }
                        Err(_) => errs.add(&format!("{at}.scores"), "invalid"),
                    },
                    None => errs.add(&format!("{at}.scores"), "invalid"),
                }
            }
            inputs.push(Input {
                metric: metric.clone(),
                weight,
                scores: map,
            });
        }
        parts.push(Part { weight, inputs });
    }
    let mut it = parts.into_iter();
    let mut next = || {
        it.next().unwrap_or(Part {
            weight: 0,
            inputs: vec![],
        })
    };
    let scheme = Scheme {
        period_days,
        quarterly: get("quarterly") == "on",
        economic: next(),
        relational: next(),
        functional: next(),
        development: next(),
    };
    (scheme, errs)
}

/// `POST /value/grades/scheme`.
async fn save_scheme_form(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let party = party_of(get("party").as_deref());
    let back = format!("/value/grades?party={}", party.as_str());
    let (scheme, errs) = scheme_of(&form);
    if let Err(e) = errs.finish() {
        return p.refused_to(&back, e, Some("grading."));
    }
    let expected = get("version").and_then(|v| v.parse().ok()).unwrap_or(0);
    match grading_runs::save_scheme(&s.db, &p.ctx, party, scheme, expected).await {
        Ok(_) => Redirect::to(&format!("{back}&saved=1")).into_response(),
        Err(
            e @ (guanxi_platform::Error::Validation(_)
            | guanxi_platform::Error::PreconditionFailed { .. }),
        ) => p.refused_to(&back, e, Some("grading.")),
        Err(e) => p.error(&s, e),
    }
}

/// `POST /value/grades/runs`: evaluate now (or as of a past day).
async fn run_form(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let party = party_of(form.get("party").map(String::as_str));
    let back = format!("/value/grades?party={}", party.as_str());
    let as_of = match form
        .get("as_of")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => match v.parse() {
            Ok(d) => Some(d),
            Err(_) => {
                return p.refused_to(
                    &back,
                    guanxi_platform::Error::field("as_of", "invalid"),
                    Some("grading."),
                )
            }
        },
    };
    let input = GradingRunInput {
        party: Some(party),
        as_of,
    };
    match grading_runs::create(&s.db, &p.ctx, input).await {
        Ok((run, created)) => {
            if created {
                s.grading_wake.notify_one();
            }
            Redirect::to(&format!("/value/grades/{}", run.id)).into_response()
        }
        Err(e @ guanxi_platform::Error::Validation(_)) => p.refused_to(&back, e, Some("grading.")),
        Err(e) => p.error(&s, e),
    }
}

#[derive(Deserialize, Default)]
struct RunParams {
    grade: Option<String>,
    changed: Option<String>,
    offset: Option<u32>,
}

/// `/value/grades/{id}`: progress while it runs; then the split, and the ranking with why.
async fn run_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<RunParams>,
) -> Response {
    let run = match grading_runs::get(&s.db, &p.ctx, id).await {
        Ok(r) => r,
        Err(e) => return p.error(&s, e),
    };
    let t = |k: &str| crate::i18n::t(&p.ctx.locale, k);
    let grade = q.grade.clone().filter(|g| GRADES.contains(&g.as_str()));
    let changed = q.changed.as_deref() == Some("true");
    let page = if run.status == "done" {
        let sq = ScoresQuery {
            grade: grade.clone(),
            changed: Some(changed),
            offset: q.offset,
            limit: Some(100),
        };
        match grading_runs::scores(&s.db, &p.ctx, id, &sq).await {
            Ok(pg) => Some(pg),
            Err(e) => return p.error(&s, e),
        }
    } else {
        None
    };
    let total: i64 = run.counts.0.iter().sum();
    let chart = (run.status == "done" && total > 0).then(|| {
        let bars: Vec<Bar> = GRADES
            .iter()
            .zip(run.counts.0.iter())
            .map(|(g, c)| Bar {
                label: (*g).to_owned(),
                parts: vec![(*c, "a")],
                marker: None,
                text: format!("{c} ({:.1}%)", *c as f64 * 100.0 / total as f64),
            })
            .collect();
        charts::bars(&t("grading.split"), &bars)
    });
    let party = Party::parse(&run.party).unwrap_or_default();
    let next = page.as_ref().and_then(|pg| pg.next_offset).map(|o| {
        format!(
            "/value/grades/{id}?{}",
            serde_urlencoded::to_string([
                ("grade", grade.clone().unwrap_or_default()),
                ("changed", changed.to_string()),
                ("offset", o.to_string()),
            ])
            .unwrap_or_default()
        )
    });
    let measures: BTreeMap<&str, String> = MEASURES
        .iter()
        .map(|m: &Measure| (m.as_str(), t(&format!("grading.measure.{}", m.as_str()))))
        .collect();
    let running = matches!(run.status.as_str(), "queued" | "running");
    // The migration matrix: rows the grade before (or none), columns the grade now.
    let matrix = if run.status == "done" {
        let moves = match grading_runs::moves(&s.db, &p.ctx, id).await {
            Ok(m) => m,
            Err(e) => return p.error(&s, e),
        };
        matrix(&moves)
    } else {
        vec![]
    };
    p.page(
        &s,
        "analytics/grading_run.html",
        "value",
        context! { run => &run, quarter => run.quarter(), page, chart, grade, changed, next, party,
        measures, running, grades => GRADES, matrix,
        pct => if run.total > 0 { run.done * 100 / run.total } else { 0 },
        customer_base => crate::analytics::customer_base(party) },
    )
}

/// A grade migration as a matrix: rows the grade before (or none: newly graded), columns the
/// grade now; empty rows left out.
pub(crate) fn matrix(moves: &[GradeMove]) -> Vec<minijinja::Value> {
    GRADES
        .iter()
        .map(|g| Some((*g).to_owned()))
        .chain([None])
        .filter_map(|from| {
            let cells: Vec<i64> = GRADES
                .iter()
                .map(|to| {
                    moves
                        .iter()
                        .find(|m| m.from == from && m.to == *to)
                        .map_or(0, |m| m.customers)
                })
                .collect();
            (cells.iter().sum::<i64>() > 0).then(|| context! { from, cells })
        })
        .collect()
}
