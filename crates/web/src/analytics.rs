//! Customer value over HTTP: `/api/v1/analytics/abc`, `/api/v1/analytics/rfm` (with
//! `/runs`), and two pages — `/value/abc` (the Pareto chart, the classes and the ranking) and
//! `/value/rfm` (segments, the R × FM grid, the movement since the last stored run, and the
//! customers of a segment).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use guanxi_analytics::abc::{self, Abc, AbcQuery, Class};
use guanxi_analytics::churn::{self, Churn, ChurnQuery, WinBack, WinBackInput};
use guanxi_analytics::clv::{
    self, Model, ModelInput, ModelsQuery, PredictionPage, PredictionsQuery,
};
use guanxi_analytics::cross_sell::{self, RecommendationQuery, Recommendations};
use guanxi_analytics::facts::Party;
use guanxi_analytics::rfm::{self, Rfm, RfmQuery, Run, RunInput, RunsQuery, SEGMENTS};
use guanxi_platform::perms::{Action, Scope};
use minijinja::context;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::api::{ApiResult, Localize};
use crate::charts::{self, Bar};
use crate::extract::{ApiJson, Auth};
use crate::pages::{forbidden_csrf, Signed};
use crate::problem::Problem;
use crate::state::AppState;

/// Customers ranked by revenue, margin or order count in a window and classed A/B/C by the
/// share of the measure ranked above them (A to 70%, B to 90% unless given), with the Pareto
/// curve, each class's share of customers and of the measure, and a page of the ranking.
/// Counts only the customers the caller may read.
#[utoipa::path(get, path = "/api/v1/analytics/abc", tag = "analytics", params(AbcQuery), responses(
    (status = 200, body = Abc), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn get_abc(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<AbcQuery>,
) -> ApiResult<Json<Abc>> {
    Ok(Json(abc::abc(&s.db, &ctx, &q).await.l(&ctx)?))
}

/// Recency, frequency and monetary quintile scores and segments of the customers the caller
/// may read, the R × FM grid, the movement since the latest stored run before the window's
/// end, and a page of the customers (of one segment if asked), largest spend first.
#[utoipa::path(get, path = "/api/v1/analytics/rfm", tag = "analytics", params(RfmQuery), responses(
    (status = 200, body = Rfm), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn get_rfm(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<RfmQuery>,
) -> ApiResult<Json<Rfm>> {
    Ok(Json(rfm::rfm(&s.db, &ctx, &q).await.l(&ctx)?))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RunList {
    pub items: Vec<Run>,
}

/// The company's stored RFM runs of a party, latest first (needs reading every customer).
#[utoipa::path(get, path = "/api/v1/analytics/rfm/runs", tag = "analytics", params(RunsQuery), responses(
    (status = 200, body = RunList), (status = 403, body = Problem)))]
pub async fn list_runs(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<RunList>> {
    Ok(Json(RunList {
        items: rfm::runs(&s.db, &ctx, &q).await.l(&ctx)?,
    }))
}

/// Keeps every customer's RFM scores as of `to` (default today), for later analyses to show
/// who moved. 201 with the new run; 200 with the one already kept for that day (the same
/// snapshot, never a second).
#[utoipa::path(post, path = "/api/v1/analytics/rfm/runs", tag = "analytics", request_body = RunInput, responses(
    (status = 201, body = Run), (status = 200, body = Run), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn post_run(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<RunInput>,
) -> ApiResult<Response> {
    let (run, created) = rfm::store_run(&s.db, &ctx, b).await.l(&ctx)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(run)).into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ClvModelList)]
pub struct ModelList {
    pub items: Vec<Model>,
}

/// Fits BG/NBD (purchases and the probability of being alive) and Gamma-Gamma (spend) by
/// maximum likelihood on the calibration period's orders of every customer of the party,
/// checks them on the holdout period if given, and keeps each customer's expected value over
/// the next months. 201 with the model — `fitted`, or `failed` with why (the latest fitted
/// model stays in use); 422 when there is too little history.
#[utoipa::path(post, path = "/api/v1/clv/models", tag = "analytics", request_body = ModelInput, responses(
    (status = 201, body = Model), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn post_model(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ModelInput>,
) -> ApiResult<Response> {
    let m = clv::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok((StatusCode::CREATED, Json(m)).into_response())
}

/// The lifetime-value models of a party, latest first.
#[utoipa::path(get, path = "/api/v1/clv/models", tag = "analytics", params(ModelsQuery), responses(
    (status = 200, body = ModelList), (status = 403, body = Problem)))]
pub async fn list_models(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<ModelsQuery>,
) -> ApiResult<Json<ModelList>> {
    Ok(Json(ModelList {
        items: clv::list(&s.db, &ctx, &q).await.l(&ctx)?,
    }))
}

/// A model: its parameters, log-likelihoods and the holdout check.
#[utoipa::path(get, path = "/api/v1/clv/models/{id}", tag = "analytics", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Model), (status = 404, body = Problem)))]
pub async fn get_model(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Model>> {
    Ok(Json(clv::get(&s.db, &ctx, id).await.l(&ctx)?))
}

/// A model's predictions for the customers the caller may read: probability of still being
/// a customer, purchases and value expected (`null` value: insufficient data).
#[utoipa::path(get, path = "/api/v1/clv/models/{id}/customers", tag = "analytics", params(("id" = Uuid, Path), PredictionsQuery), responses(
    (status = 200, body = PredictionPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn model_customers(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<PredictionsQuery>,
) -> ApiResult<Json<PredictionPage>> {
    Ok(Json(clv::predictions(&s.db, &ctx, id, &q).await.l(&ctx)?))
}

/// Products to suggest to a customer (an account, or a contact buying for themselves): for
/// each product they have not bought, the strongest rule from one they have — the share of
/// the customers who bought that one who also bought this (confidence) and how much likelier
/// that is than for any customer (lift), from at least `min_customers` customers.
#[utoipa::path(get, path = "/api/v1/recommendations", tag = "analytics", params(RecommendationQuery), responses(
    (status = 200, body = Recommendations), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn get_recommendations(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<RecommendationQuery>,
) -> ApiResult<Json<Recommendations>> {
    Ok(Json(cross_sell::recommend(&s.db, &ctx, &q).await.l(&ctx)?))
}

/// The valuable customers who may be leaving: class A or B by revenue in the latest
/// lifetime-value model's calibration period with a probability of still being a customer
/// below the threshold, or fallen from a good RFM segment to a bad one between the two latest
/// runs; largest revenue first, in the caller's read scope.
#[utoipa::path(get, path = "/api/v1/analytics/churn", tag = "analytics", params(ChurnQuery), responses(
    (status = 200, body = Churn), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn get_churn(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<ChurnQuery>,
) -> ApiResult<Json<Churn>> {
    Ok(Json(churn::at_risk(&s.db, &ctx, &q).await.l(&ctx)?))
}

/// Opens a win-back follow-up task for each customer, assigned to its owner and due in
/// `due_days`, in one transaction; a customer with the same task open is skipped.
#[utoipa::path(post, path = "/api/v1/analytics/churn/win-back", tag = "analytics", request_body = WinBackInput, responses(
    (status = 200, body = WinBack), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn post_win_back(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<WinBackInput>,
) -> ApiResult<Json<WinBack>> {
    Ok(Json(churn::win_back(&s.db, &ctx, b).await.l(&ctx)?))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/value/churn", get(churn_page).post(win_back_form))
        .route("/value/clv", get(clv_page).post(fit_model))
        .route("/value", get(|| async { Redirect::to("/value/abc") }))
        .route("/value/abc", get(abc_page))
        .route("/value/rfm", get(rfm_page))
        .route("/value/rfm/runs", post(store_run))
}

/// A page's filters as the API reads them; the form's empty fields are left out. Filters that
/// do not parse are reported and the defaults shown.
fn filters<T: DeserializeOwned + Default>(raw: Option<String>) -> (T, bool) {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, v)| !v.trim().is_empty() && k != "error")
        .collect();
    let encoded = serde_urlencoded::to_string(&kept).unwrap_or_default();
    match serde_urlencoded::from_str::<T>(&encoded) {
        Ok(q) => (q, false),
        Err(_) => (T::default(), true),
    }
}

fn refusal(p: &Signed, e: guanxi_platform::Error) -> Option<String> {
    let keys = p.refusal_keys(e, Some("value."));
    p.refusal_from_url(Some(&keys))
        .or_else(|| Some(crate::i18n::t(&p.ctx.locale, "value.bad_filter")))
}

fn class_css(c: Class) -> &'static str {
    match c {
        Class::A => "a",
        Class::B => "b",
        Class::C => "c",
    }
}

async fn abc_page(State(s): State<AppState>, p: Signed, RawQuery(raw): RawQuery) -> Response {
    let (q, bad) = filters::<AbcQuery>(raw);
    let mut error = bad.then(|| crate::i18n::t(&p.ctx.locale, "value.bad_filter"));
    let result = match abc::abc(&s.db, &p.ctx, &q).await {
        Err(e @ guanxi_platform::Error::Validation(_)) => {
            error = refusal(&p, e);
            abc::abc(&s.db, &p.ctx, &AbcQuery::default()).await
        }
        r => r,
    };
    let a = match result {
        Ok(a) => a,
        Err(e) => return p.error(&s, e),
    };
    let t = |k: &str| crate::i18n::t(&p.ctx.locale, k);
    let chart = (a.customers > 0).then(|| {
        charts::pareto(
            &t("value.pareto"),
            &a.bins
                .iter()
                .map(|b| (b.measure_bp, class_css(b.class)))
                .collect::<Vec<_>>(),
            &a.curve
                .iter()
                .map(|c| (c.customers_bp, c.measure_bp))
                .collect::<Vec<_>>(),
            &[
                (a.a_percent as i64 * 100, format!("A {}%", a.a_percent)),
                (a.b_percent as i64 * 100, format!("B {}%", a.b_percent)),
            ],
        )
    });
    // The links keep the filters and change one thing.
    let here = |extra: &[(&str, String)]| {
        let mut pairs: Vec<(&str, String)> = vec![
            ("party", a.party.as_str().to_owned()),
            ("measure", measure_name(a.measure).to_owned()),
            ("from", a.from.to_string()),
            ("to", a.to.to_string()),
            ("a_percent", a.a_percent.to_string()),
            ("b_percent", a.b_percent.to_string()),
        ];
        pairs.extend(extra.iter().cloned());
        format!(
            "/value/abc?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let class_links: Vec<(String, String)> = [Class::A, Class::B, Class::C]
        .into_iter()
        .map(|c| (format!("{c:?}"), here(&[("class", format!("{c:?}"))])))
        .collect();
    let next = a.next_offset.map(|o| {
        let mut extra = vec![("offset", o.to_string())];
        if let Some(c) = q.class {
            extra.push(("class", format!("{c:?}")));
        }
        here(&extra)
    });
    p.page(
        &s,
        "analytics/abc.html",
        "value",
        context! { a, chart, error, class_links, next, all_link => here(&[]),
        chosen_class => q.class.map(|c| format!("{c:?}")),
        customer_base => customer_base(a.party) },
    )
}

fn measure_name(m: abc::Measure) -> &'static str {
    match m {
        abc::Measure::Revenue => "revenue",
        abc::Measure::Margin => "margin",
        abc::Measure::Orders => "orders",
    }
}

pub(crate) fn customer_base(party: Party) -> &'static str {
    match party {
        Party::Accounts => "/customers/accounts",
        Party::Contacts => "/customers/contacts",
    }
}

async fn rfm_page(State(s): State<AppState>, p: Signed, RawQuery(raw): RawQuery) -> Response {
    let message = {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
        pairs
            .iter()
            .find(|(k, _)| k == "error")
            .and_then(|(_, v)| p.refusal_from_url(Some(v)))
    };
    let (q, bad) = filters::<RfmQuery>(raw);
    let mut error =
        message.or_else(|| bad.then(|| crate::i18n::t(&p.ctx.locale, "value.bad_filter")));
    let result = match rfm::rfm(&s.db, &p.ctx, &q).await {
        Err(e @ guanxi_platform::Error::Validation(_)) => {
            error = refusal(&p, e);
            rfm::rfm(&s.db, &p.ctx, &RfmQuery::default()).await
        }
        r => r,
    };
    let r = match result {
        Ok(r) => r,
        Err(e) => return p.error(&s, e),
    };
    let party = r.party;
    let every = p.ctx.can(party.as_str(), Action::Read) == Some(Scope::All);
    let runs = if every && p.ctx.can("analytics", Action::Read).is_some() {
        rfm::runs(&s.db, &p.ctx, &RunsQuery { party: Some(party) })
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let t = |k: &str| crate::i18n::t(&p.ctx.locale, k);
    let chart = charts::bars(
        &t("value.segments"),
        &r.segments
            .iter()
            .map(|g| Bar {
                label: t(&format!("value.segment.{}", g.segment.as_str())),
                parts: vec![(g.customers, "won")],
                marker: None,
                text: format!(
                    "{} · {:.1}%",
                    g.customers,
                    g.customer_share_bp as f64 / 100.0
                ),
            })
            .collect::<Vec<_>>(),
    );
    // The movement as a matrix: a row per earlier segment (and "new"), a column per segment.
    let names: Vec<&str> = SEGMENTS.iter().map(|g| g.as_str()).collect();
    let mut matrix: Vec<(String, Vec<i64>)> = Vec::new();
    if r.compared_with.is_some() {
        let mut rows: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for m in &r.moves {
            let row = rows
                .entry(m.from.map_or(-1, |g| g as i32))
                .or_insert_with(|| vec![0; SEGMENTS.len()]);
            row[m.to as usize] += m.customers;
        }
        for (k, counts) in rows {
            let label = match usize::try_from(k).ok().and_then(|i| SEGMENTS.get(i)) {
                Some(g) => g.as_str().to_owned(),
                None => "none".to_owned(),
            };
            matrix.push((label, counts));
        }
    }
    let here = |extra: &[(&str, String)]| {
        let mut pairs: Vec<(&str, String)> = vec![("party", party.as_str().to_owned())];
        if let Some(f) = r.from {
            pairs.push(("from", f.to_string()));
        }
        pairs.push(("to", r.to.to_string()));
        pairs.extend(extra.iter().cloned());
        format!(
            "/value/rfm?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let segment_links: Vec<String> = names
        .iter()
        .map(|n| here(&[("segment", (*n).to_owned())]))
        .collect();
    let next = r.next_offset.map(|o| {
        let mut extra = vec![("offset", o.to_string())];
        if let Some(g) = q.segment {
            extra.push(("segment", g.as_str().to_owned()));
        }
        here(&extra)
    });
    let segment_of: Vec<&str> = (1..=5u8)
        .flat_map(|r| (1..=5u8).map(move |f| rfm::segment(r, f).as_str()))
        .collect();
    p.page(
        &s,
        "analytics/rfm.html",
        "value",
        context! { r, chart, error, matrix, names, segment_links, next, runs, segment_of,
        all_link => here(&[]), chosen => q.segment.map(|g| g.as_str()),
        can_store => every && p.ctx.can("analytics", Action::Create).is_some(),
        customer_base => customer_base(party) },
    )
}

/// `POST /value/rfm/runs`: keeps the run shown (party, from, to) and goes back to it.
async fn store_run(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let date = |k: &str| get(k).and_then(|v| v.parse::<chrono::NaiveDate>().ok());
    let party = get("party").and_then(Party::parse).unwrap_or_default();
    let input = RunInput {
        party: Some(party),
        from: date("from"),
        to: date("to"),
    };
    let mut back = vec![("party", party.as_str().to_owned())];
    if let Some(f) = input.from {
        back.push(("from", f.to_string()));
    }
    if let Some(t) = input.to {
        back.push(("to", t.to_string()));
    }
    let back = format!(
        "/value/rfm?{}",
        serde_urlencoded::to_string(&back).unwrap_or_default()
    );
    match rfm::store_run(&s.db, &p.ctx, input).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e @ guanxi_platform::Error::Validation(_)) => p.refused_to(&back, e, Some("value.")),
        Err(e) => p.error(&s, e),
    }
}

#[derive(serde::Deserialize, Default)]
struct ClvParams {
    party: Option<String>,
    model: Option<Uuid>,
    sort: Option<String>,
    offset: Option<u32>,
    error: Option<String>,
}

/// `/value/clv`: fit a model (calibration and holdout dates), the models kept, and the one
/// chosen (the latest fitted by default): parameters, the holdout check drawn, and its
/// customers by expected value or by risk of having left.
async fn clv_page(State(s): State<AppState>, p: Signed, Query(q): Query<ClvParams>) -> Response {
    let party = q
        .party
        .as_deref()
        .and_then(Party::parse)
        .unwrap_or_default();
    let models = match clv::list(&s.db, &p.ctx, &ModelsQuery { party: Some(party) }).await {
        Ok(m) => m,
        Err(e) => return p.error(&s, e),
    };
    let chosen = q
        .model
        .and_then(|id| models.iter().find(|m| m.id == id))
        .or_else(|| models.iter().find(|m| m.status == "fitted"))
        .cloned();
    let sort = match q.sort.as_deref() {
        Some("p_alive") => "p_alive",
        _ => "value",
    };
    let page = match chosen.as_ref().filter(|m| m.status == "fitted") {
        Some(m) => {
            let pq = PredictionsQuery {
                sort: Some(sort.into()),
                offset: q.offset,
                limit: Some(50),
            };
            match clv::predictions(&s.db, &p.ctx, m.id, &pq).await {
                Ok(pg) => Some(pg),
                Err(e) => return p.error(&s, e),
            }
        }
        None => None,
    };
    let t = |k: &str| crate::i18n::t(&p.ctx.locale, k);
    let chart = chosen.as_ref().and_then(|m| m.holdout.as_ref()).map(|h| {
        let bars: Vec<Bar> =
            h.0.iter()
                .flat_map(|b| {
                    let label = if b.purchases >= 7 {
                        "7+".to_owned()
                    } else {
                        b.purchases.to_string()
                    };
                    [
                        Bar {
                            label: format!("{label} · {}", t("clv.actual")),
                            parts: vec![((b.actual * 1000.0) as i64, "won")],
                            marker: None,
                            text: format!("{:.2}", b.actual),
                        },
                        Bar {
                            label: format!("{label} · {}", t("clv.predicted")),
                            parts: vec![((b.predicted * 1000.0) as i64, "best")],
                            marker: None,
                            text: format!("{:.2}", b.predicted),
                        },
                    ]
                })
                .collect();
        charts::bars(&t("clv.holdout"), &bars)
    });
    let next = page.as_ref().and_then(|pg| pg.next_offset).map(|o| {
        format!(
            "/value/clv?{}",
            serde_urlencoded::to_string([
                ("party", party.as_str().to_owned()),
                (
                    "model",
                    chosen
                        .as_ref()
                        .map(|m| m.id.to_string())
                        .unwrap_or_default()
                ),
                ("sort", sort.to_owned()),
                ("offset", o.to_string()),
            ])
            .unwrap_or_default()
        )
    });
    let every = p.ctx.can(party.as_str(), Action::Read) == Some(Scope::All);
    let currency = match guanxi_analytics::facts::tenant_facts(&s.db, p.ctx.tenant_id).await {
        Ok((c, _)) => c,
        Err(e) => return p.error(&s, e),
    };
    p.page(
        &s,
        "analytics/clv.html",
        "value",
        context! { party, models, chosen, page, chart, sort, next, currency,
        error => p.refusal_from_url(q.error.as_deref()),
        can_fit => every && p.ctx.can("analytics", Action::Create).is_some(),
        customer_base => customer_base(party) },
    )
}

/// `POST /value/clv`: fits a model from the form and shows it.
async fn fit_model(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let party = get("party").and_then(Party::parse).unwrap_or_default();
    let back = format!("/value/clv?party={}", party.as_str());
    let mut errs = guanxi_platform::error::Errors::default();
    let mut date = |k: &str, required: bool| match get(k).map(|v| v.parse::<chrono::NaiveDate>()) {
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            errs.add(k, "invalid");
            None
        }
        None => {
            if required {
                errs.add(k, "required");
            }
            None
        }
    };
    let (from, to, holdout) = (
        date("calibration_from", true),
        date("calibration_to", true),
        date("holdout_to", false),
    );
    let months = get("months").map(|m| m.parse::<u32>().unwrap_or(0));
    let discount =
        get("annual_discount").map(|d| d.parse::<f64>().map_or(-1, |v| (v * 100.0).round() as i64));
    if let Err(e) = errs.finish() {
        return p.refused_to(&back, e, Some("clv."));
    }
    let (Some(calibration_from), Some(calibration_to)) = (from, to) else {
        return Redirect::to(&back).into_response();
    };
    let input = ModelInput {
        party: Some(party),
        calibration_from,
        calibration_to,
        holdout_to: holdout,
        months,
        annual_discount_bp: discount,
    };
    match clv::create(&s.db, &p.ctx, input).await {
        Ok(m) => Redirect::to(&format!("{back}&model={}", m.id)).into_response(),
        Err(e @ guanxi_platform::Error::Validation(_)) => p.refused_to(&back, e, Some("clv.")),
        Err(e) => p.error(&s, e),
    }
}

#[derive(serde::Deserialize, Default)]
struct ChurnParams {
    party: Option<String>,
    threshold: Option<String>,
    offset: Option<u32>,
    error: Option<String>,
    opened: Option<i64>,
    skipped: Option<i64>,
}

/// `/value/churn`: the customers who may be leaving, to tick and open win-back tasks for.
async fn churn_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<ChurnParams>,
) -> Response {
    let party = q
        .party
        .as_deref()
        .and_then(Party::parse)
        .unwrap_or_default();
    let threshold = q
        .threshold
        .as_deref()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .map(|pct| (pct * 100.0).round() as i64);
    let cq = ChurnQuery {
        party: Some(party),
        threshold_bp: threshold,
        offset: q.offset,
        limit: Some(100),
    };
    let mut error = p.refusal_from_url(q.error.as_deref());
    let c = match churn::at_risk(&s.db, &p.ctx, &cq).await {
        Ok(c) => c,
        Err(e @ guanxi_platform::Error::Validation(_)) => {
            error = refusal(&p, e);
            match churn::at_risk(
                &s.db,
                &p.ctx,
                &ChurnQuery {
                    party: Some(party),
                    ..Default::default()
                },
            )
            .await
            {
                Ok(c) => c,
                Err(e) => return p.error(&s, e),
            }
        }
        Err(e) => return p.error(&s, e),
    };
    let next = c.next_offset.map(|o| {
        format!(
            "/value/churn?{}",
            serde_urlencoded::to_string([
                ("party", party.as_str().to_owned()),
                ("threshold", q.threshold.clone().unwrap_or_default()),
                ("offset", o.to_string()),
            ])
            .unwrap_or_default()
        )
    });
    let currency = match guanxi_analytics::facts::tenant_facts(&s.db, p.ctx.tenant_id).await {
        Ok((c, _)) => c,
        Err(e) => return p.error(&s, e),
    };
    p.page(
        &s,
        "analytics/churn.html",
        "value",
        context! { c, party, next, error, currency, opened => q.opened, skipped => q.skipped,
        threshold => threshold.unwrap_or(5000) as f64 / 100.0,
        can_task => p.ctx.can("activities", Action::Create).is_some(),
        customer_base => customer_base(party) },
    )
}

/// `POST /value/churn`: win-back tasks for the ticked customers.
async fn win_back_form(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let party = get("party")
        .as_deref()
        .and_then(Party::parse)
        .unwrap_or_default();
    let back = format!("/value/churn?party={}", party.as_str());
    let ids: Vec<Uuid> = form
        .iter()
        .filter(|(n, _)| n == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let input = WinBackInput {
        party: Some(party),
        customer_ids: ids,
        subject: get("subject").unwrap_or_default(),
        due_days: get("due_days").and_then(|d| d.parse().ok()),
    };
    match churn::win_back(&s.db, &p.ctx, input).await {
        Ok(w) => Redirect::to(&format!(
            "{back}&opened={}&skipped={}",
            w.created, w.already_open
        ))
        .into_response(),
        Err(e @ guanxi_platform::Error::Validation(_)) => p.refused_to(&back, e, Some("churn.")),
        Err(e) => p.error(&s, e),
    }
}
