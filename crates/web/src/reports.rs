//! The report builder over HTTP: `/api/v1/reports` (saved reports; `/run` ad hoc, `/fields` of
//! an entity, `/{id}/run`, `/{id}/export?format=csv|xlsx`) and the pages `/reports` (the list),
//! `/reports/new` (the builder: entity, filters, groupings, measures, chart — previewed as you
//! change it, by plain GET) and `/reports/{id}` (the result, drawn, with its exports).

use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use guanxi_analytics::reports::{
    self, Agg, Chart, DateBucket, FieldsQuery, Filter, Group, Op, Report, ReportInput,
    ReportMeasure, ReportResult, Spec, ENTITIES,
};
use guanxi_platform::perms::Action;
use minijinja::context;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::charts::{self, Bar};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::pages::{forbidden_csrf, Signed};
use crate::problem::Problem;
use crate::records::export::{audit_export, csv_bytes, download, XLSX};
use crate::state::AppState;

/// Runs a report without saving it, in the caller's record scope.
#[utoipa::path(post, path = "/api/v1/reports/run", tag = "reports", request_body = Spec, responses(
    (status = 200, body = ReportResult), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn run_adhoc(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(spec): ApiJson<Spec>,
) -> ApiResult<Json<ReportResult>> {
    Ok(Json(reports::run(&s.db, &ctx, &spec).await.l(&ctx)?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct ReportField {
    /// A field name, or `custom.<key>`.
    pub key: String,
    /// `text`, `number`, `money`, `time` or `date`.
    pub kind: String,
    /// A custom field's label.
    pub label: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct ReportFields {
    pub items: Vec<ReportField>,
}

/// The fields a report on an entity can filter, group and measure (those the caller may read).
#[utoipa::path(get, path = "/api/v1/reports/fields", tag = "reports", params(FieldsQuery), responses(
    (status = 200, body = ReportFields), (status = 422, body = Problem)))]
pub async fn get_fields(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<FieldsQuery>,
) -> ApiResult<Json<ReportFields>> {
    let items = reports::fields(&s.db, &ctx, &q.entity)
        .await
        .l(&ctx)?
        .into_iter()
        .map(|(key, kind, label)| ReportField { key, kind, label })
        .collect();
    Ok(Json(ReportFields { items }))
}

#[derive(serde::Serialize, ToSchema)]
pub struct ReportList {
    pub items: Vec<Report>,
}

/// The reports the caller sees: their own, their team's and the company's.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", responses((status = 200, body = ReportList)))]
pub async fn list_reports(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<ReportList>> {
    Ok(Json(ReportList {
        items: reports::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// Saves a report (it is run once first: one that does not run is not saved). Sharing with
/// the team or the company takes `analytics` create.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", request_body = ReportInput, responses(
    (status = 201, body = Report), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_report(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ReportInput>,
) -> ApiResult<Response> {
    let r = reports::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &r, r.version))
}

#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Report), (status = 404, body = Problem)))]
pub async fn get_report(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let r = reports::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

/// Changes a report of the caller's (version-checked).
#[utoipa::path(put, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = Uuid, Path)), request_body = ReportInput, responses(
    (status = 200, body = Report), (status = 403, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_report(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    // An id the caller cannot see is a 404 whatever the body says.
    reports::get(&s.db, &ctx, id).await.l(&ctx)?;
    let b: ReportInput = serde_json::from_value(body)
        .map_err(|e| guanxi_platform::Error::BadRequest(format!("body: {e}")))
        .l(&ctx)?;
    let r = reports::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

#[utoipa::path(delete, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_report(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    reports::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a saved report in the caller's own record scope.
#[utoipa::path(get, path = "/api/v1/reports/{id}/run", tag = "reports", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ReportResult), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn run_report(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ReportResult>> {
    let r = reports::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(Json(reports::run(&s.db, &ctx, &r.spec.0).await.l(&ctx)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
}

/// A saved report's result as a file: CSV (UTF-8 with a byte-order mark, cells neutralised
/// against formulas) or XLSX (numbers as numbers), headed in the reader's language.
#[utoipa::path(get, path = "/api/v1/reports/{id}/export", tag = "reports", params(("id" = Uuid, Path), ExportQuery), responses(
    (status = 200, description = "The file"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn export_report(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    export(&s, &ctx, id, q.format.as_deref()).await.l(&ctx)
}

async fn export(
    s: &AppState,
    ctx: &guanxi_platform::Ctx,
    id: Uuid,
    format: Option<&str>,
) -> Result<Response, guanxi_platform::Error> {
    let r = reports::get(&s.db, ctx, id).await?;
    let result = reports::run(&s.db, ctx, &r.spec.0).await?;
    let format = format.unwrap_or("csv");
    if !["csv", "xlsx"].contains(&format) {
        return Err(guanxi_platform::Error::field("format", "invalid"));
    }
    audit_export(
        s,
        ctx,
        "report",
        &serde_json::json!({ "report_id": id, "format": format }),
    )
    .await?;
    let header: Vec<String> = result
        .columns
        .iter()
        .map(|c| column_label(&ctx.locale, &c.key))
        .collect();
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let name = format!("report-{}.{format}", r.id);
    if format == "csv" {
        let mut body = vec![0xEF, 0xBB, 0xBF];
        body.extend(csv_bytes(std::iter::once(header).chain(
            result.rows.iter().map(|row| row.iter().map(cell).collect()),
        )));
        return Ok(download(&name, "text/csv; charset=utf-8", Body::from(body)));
    }
    let bad = |e: rust_xlsxwriter::XlsxError| {
        guanxi_platform::Error::Internal(anyhow::anyhow!("xlsx: {e}"))
    };
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, h).map_err(bad)?;
    }
    for (i, row) in result.rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (r, c) = (i as u32 + 1, c as u16);
            match v {
                Value::Number(n) => {
                    ws.write_number(r, c, n.as_f64().unwrap_or(0.0))
                        .map_err(bad)?;
                }
                Value::Null => {}
                other => {
                    ws.write_string(
                        r,
                        c,
                        guanxi_records::tables::csv_safe(&cell(other)).as_ref(),
                    )
                    .map_err(bad)?;
                }
            }
        }
    }
    let bytes = book.save_to_buffer().map_err(bad)?;
    Ok(download(&name, XLSX, Body::from(bytes)))
}

/// The message prefix naming an entity's stored codes (`order_status.` for an order's
/// status), for the fields whose values are codes.
fn code_prefix(entity: &str, field: &str) -> Option<&'static str> {
    Some(match (entity, field) {
        ("activities", "kind") => "activity.kind.",
        ("leads" | "opportunities", "status") => "status.",
        ("orders" | "order_lines", "status") => "order_status.",
        ("orders", "channel") => "channel.",
        ("contacts", "gender") => "gender.",
        ("tickets" | "ticket_targets", "status" | "priority" | "channel") => match field {
            "status" => "ticket.status.",
            "priority" => "ticket.priority.",
            _ => "ticket.channel.",
        },
        ("tickets", "breached") => "common.",
        ("ticket_targets", "target") => "sla.target.",
        ("ticket_targets", "state") => "sla.state.",
        ("survey_responses", "survey_kind") => "report.survey.",
        ("survey_responses", "satisfied") => "common.",
        ("survey_responses", "nps_class") => "report.nps.",
        ("survey_responses", "survey_channel") => "ticket.channel.",
        ("help_questions", "outcome") => "report.question.",
        _ => return None,
    })
}

/// A result as a page shows it: groupings whose values are codes (a status, a kind) in the
/// reader's words. The API and the exports keep the codes.
pub(crate) fn shown(locale: &str, entity: &str, result: &ReportResult) -> ReportResult {
    let mut out = result.clone();
    for (i, c) in result.columns.iter().enumerate().filter(|(_, c)| c.group) {
        let Some(prefix) = code_prefix(entity, &c.key) else {
            continue;
        };
        for row in &mut out.rows {
            if let Some(Value::String(code)) = row.get(i) {
                let key = format!("{prefix}{code}");
                let text = crate::i18n::t(locale, &key);
                if text != key {
                    row[i] = Value::String(text);
                }
            }
        }
    }
    out
}

/// A result column's heading: a grouping's field, or a measure (`sum:total` → "Sum of Total").
pub fn column_label(locale: &str, key: &str) -> String {
    let t = |k: &str| crate::i18n::t(locale, k);
    let field = |f: &str| match f.strip_prefix("custom.") {
        Some(k) => k.to_owned(),
        None => t(&format!("report.field.{f}")),
    };
    match key.split_once(':') {
        Some((agg, f)) => t(&format!("report.agg.{agg}")).replace("{field}", &field(f)),
        None if key == "count" => t("report.agg.count"),
        None => field(key),
    }
}

/// A delivered report's mail in its owner's language: the name as the subject, the result as
/// a plain-text table (the first 100 rows) and the link to open it.
pub fn mail(
    base_url: String,
) -> impl Fn(&guanxi_platform::Ctx, &Report, &ReportResult) -> (String, String) + Send + Sync {
    move |ctx, report, result| {
        let l = ctx.locale.as_str();
        let t = |k: &str| crate::i18n::t(l, k);
        let mut text = String::new();
        let head: Vec<String> = result
            .columns
            .iter()
            .map(|c| column_label(l, &c.key))
            .collect();
        text.push_str(&head.join(" | "));
        text.push('\n');
        for row in result.rows.iter().take(100) {
            let cells: Vec<String> = row
                .iter()
                .zip(&result.columns)
                .map(|(v, c)| match v {
                    Value::Null => "—".to_owned(),
                    Value::String(s) => s.clone(),
                    v if c.kind == "money" => crate::money::format(
                        v.as_f64().unwrap_or(0.0).round() as i64,
                        result.currency.as_deref().unwrap_or("CNY"),
                    ),
                    v => v.to_string(),
                })
                .collect();
            text.push_str(&cells.join(" | "));
            text.push('\n');
        }
        if result.rows.len() > 100 || result.truncated {
            text.push_str(&t("report.mail_more"));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&format!(
            "{}/reports/{}",
            base_url.trim_end_matches('/'),
            report.id
        ));
        (
            t("report.mail_subject").replace("{name}", &report.name),
            text,
        )
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports", get(reports_page).post(save_form))
        .route("/reports/new", get(builder_page))
        .route("/reports/{id}", get(report_page))
        .route("/reports/{id}/delete", post(delete_form))
        .route("/reports/{id}/export", get(export_page))
}

async fn reports_page(State(s): State<AppState>, p: Signed) -> Response {
    match reports::list(&s.db, &p.ctx).await {
        Ok(items) => p.page(&s, "reports/list.html", "reports", context! { items }),
        Err(e) => p.error(&s, e),
    }
}

/// The builder's form as a spec: `entity`, `chart`, rows `f.field`/`f.op`/`f.value`,
/// `g.field`/`g.bucket` and `m.agg`/`m.field` (empty rows dropped; `in` takes a comma list).
fn spec_of(pairs: &[(String, String)]) -> Spec {
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    let one = |k: &str| all(k).into_iter().next().unwrap_or_default();
    let (ff, fo, fv) = (all("f.field"), all("f.op"), all("f.value"));
    let filters = ff
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_empty())
        .filter_map(|(i, field)| {
            let op: Op = parse(fo.get(i).map_or("eq", String::as_str))?;
            let raw = fv.get(i).cloned().unwrap_or_default();
            let value = match op {
                Op::In => Value::Array(
                    raw.split([',', '，'])
                        .map(|x| Value::String(x.trim().to_owned()))
                        .filter(|x| x.as_str() != Some(""))
                        .collect(),
                ),
                _ => Value::String(raw),
            };
            Some(Filter {
                field: field.clone(),
                op,
                value,
            })
        })
        .collect();
    let (gf, gb) = (all("g.field"), all("g.bucket"));
    let group_by = gf
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_empty())
        .map(|(i, field)| Group {
            field: field.clone(),
            bucket: gb.get(i).and_then(|b| parse::<DateBucket>(b)),
        })
        .collect();
    let (ma, mf) = (all("m.agg"), all("m.field"));
    let measures = ma
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.is_empty())
        .filter_map(|(i, a)| {
            Some(ReportMeasure {
                agg: parse::<Agg>(a)?,
                field: mf.get(i).filter(|f| !f.is_empty()).cloned(),
            })
        })
        .collect();
    let entity = one("entity");
    Spec {
        entity: if entity.is_empty() {
            "orders".into()
        } else {
            entity
        },
        filters,
        group_by,
        measures,
        chart: parse::<Chart>(&one("chart")).unwrap_or_default(),
    }
}

/// A unit enum from its snake_case name.
fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

/// The spec back as the builder's query string.
fn query_of(spec: &Spec) -> String {
    let mut pairs: Vec<(String, String)> = vec![("entity".into(), spec.entity.clone())];
    let name = |v: &dyn erased::Named| v.name();
    pairs.push(("chart".into(), name(&spec.chart)));
    for f in &spec.filters {
        pairs.push(("f.field".into(), f.field.clone()));
        pairs.push(("f.op".into(), name(&f.op)));
        let v = match &f.value {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(","),
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        pairs.push(("f.value".into(), v));
    }
    for g in &spec.group_by {
        pairs.push(("g.field".into(), g.field.clone()));
        pairs.push((
            "g.bucket".into(),
            g.bucket.map(|b| name(&b)).unwrap_or_default(),
        ));
    }
    for m in &spec.measures {
        pairs.push(("m.agg".into(), name(&m.agg)));
        pairs.push(("m.field".into(), m.field.clone().unwrap_or_default()));
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

mod erased {
    /// A unit enum's snake_case name, as serde writes it.
    pub trait Named {
        fn name(&self) -> String;
    }
    impl<T: serde::Serialize> Named for T {
        fn name(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
    }
}

/// The result drawn as `chart` (a table needs none): bars, line, pie or funnel of the
/// first measure by the groupings' labels.
pub(crate) fn chart_of(
    locale: &str,
    chart: Chart,
    result: &ReportResult,
) -> Option<minijinja::Value> {
    let groups = result.columns.iter().filter(|c| c.group).count();
    if chart == Chart::Table || groups == 0 || result.rows.is_empty() {
        return None;
    }
    let points: Vec<(String, f64)> = result
        .rows
        .iter()
        .map(|row| {
            let label = row[..groups]
                .iter()
                .map(|v| v.as_str().unwrap_or("—").to_owned())
                .collect::<Vec<_>>()
                .join(" · ");
            (
                label,
                row.get(groups).and_then(Value::as_f64).unwrap_or(0.0),
            )
        })
        .collect();
    let title = column_label(locale, &result.columns[groups].key);
    // Money reads as money; other measures as numbers.
    let shown = |v: f64| {
        if result.columns[groups].kind == "money" {
            crate::money::format(
                v.round() as i64,
                result.currency.as_deref().unwrap_or("CNY"),
            )
        } else {
            v.to_string()
        }
    };
    Some(match chart {
        Chart::Line => charts::line(&title, &points),
        Chart::Pie => charts::pie(&title, &points, &crate::i18n::t(locale, "report.other")),
        Chart::Funnel => charts::funnel(
            &title,
            &points
                .iter()
                .map(|(l, v)| (l.clone(), v.round() as i64, shown(*v)))
                .collect::<Vec<_>>(),
        ),
        _ => charts::bars(
            &title,
            &points
                .iter()
                .take(40)
                .map(|(l, v)| Bar {
                    label: l.clone(),
                    parts: vec![(v.round() as i64, "a")],
                    marker: None,
                    text: shown(*v),
                })
                .collect::<Vec<_>>(),
        ),
    })
}

/// `/reports/new`: the builder, previewing the report as the form is changed.
async fn builder_page(State(s): State<AppState>, p: Signed, RawQuery(raw): RawQuery) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let mut spec = spec_of(&pairs);
    if spec.measures.is_empty() {
        spec.measures.push(ReportMeasure {
            agg: Agg::Count,
            field: None,
        });
    }
    let error_param = pairs
        .iter()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.clone());
    builder(&s, &p, spec, error_param.as_deref(), None).await
}

async fn builder(
    s: &AppState,
    p: &Signed,
    spec: Spec,
    error_param: Option<&str>,
    editing: Option<&Report>,
) -> Response {
    if let Err(e) = p.ctx.require("analytics", Action::Read) {
        return p.error(s, e);
    }
    let entity = if ENTITIES.contains(&spec.entity.as_str()) {
        spec.entity.clone()
    } else {
        "orders".into()
    };
    let fields = match reports::fields(&s.db, &p.ctx, &entity).await {
        Ok(f) => f,
        Err(e) => return p.error(s, e),
    };
    let mut error = p.refusal_from_url(error_param);
    let (result, chart) = match reports::run(&s.db, &p.ctx, &spec).await {
        Ok(r) => {
            let r = shown(&p.ctx.locale, &spec.entity, &r);
            let chart = chart_of(&p.ctx.locale, spec.chart, &r);
            (Some(r), chart)
        }
        Err(e @ guanxi_platform::Error::Validation(_)) => {
            error = error.or_else(|| p.refusal_from_url(Some(&p.refusal_keys(e, Some("report.")))));
            (None, None)
        }
        Err(e) => return p.error(s, e),
    };
    let labels: Vec<String> = result
        .as_ref()
        .map(|r| {
            r.columns
                .iter()
                .map(|c| column_label(&p.ctx.locale, &c.key))
                .collect()
        })
        .unwrap_or_default();
    // Rows to fill: what the spec has and one more of each (three filters at least).
    let pad = |n: usize, min: usize| (n + 1).max(min);
    p.page(
        s,
        "reports/builder.html",
        "reports",
        context! { spec => &spec, entity, entities => ENTITIES, fields, result, chart, labels, error,
        filter_rows => pad(spec.filters.len(), 3), group_rows => 2, measure_rows => pad(spec.measures.len(), 2).min(5),
        ops => ["eq", "ne", "in", "contains", "gt", "gte", "lt", "lte", "empty", "not_empty"],
        buckets => ["day", "week", "month", "quarter", "year"], aggs => ["count", "sum", "avg", "min", "max", "distinct"],
        charts => ["table", "bar", "line", "pie", "funnel"], query => query_of(&spec),
        editing, can_share => p.ctx.can("analytics", Action::Create).is_some() },
    )
}

/// `POST /reports`: save (or, with `id`, change) the report the builder shows.
async fn save_form(
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
    let spec = spec_of(&form);
    let back = format!("/reports/new?{}", query_of(&spec));
    let input = ReportInput {
        name: get("name").unwrap_or_default(),
        sharing: get("sharing"),
        spec,
        version: get("version").and_then(|v| v.parse().ok()),
        schedule: get("schedule"),
        recipients: get("recipients").map(|r| {
            r.split([',', '，', ';', ' '])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    };
    let saved = match get("id").and_then(|i| i.parse::<Uuid>().ok()) {
        Some(id) => reports::update(&s.db, &p.ctx, id, None, input).await,
        None => reports::create(&s.db, &p.ctx, input).await,
    };
    match saved {
        Ok(r) => Redirect::to(&format!("/reports/{}", r.id)).into_response(),
        Err(
            e @ (guanxi_platform::Error::Validation(_)
            | guanxi_platform::Error::PreconditionFailed { .. }),
        ) => p.refused_to(&back, e, Some("report.")),
        Err(e) => p.error(&s, e),
    }
}

#[derive(Deserialize, Default)]
struct ReportParams {
    edit: Option<String>,
}

/// `/reports/{id}`: the result in the viewer's scope, drawn, with exports; `?edit` the builder.
async fn report_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ReportParams>,
) -> Response {
    let r = match reports::get(&s.db, &p.ctx, id).await {
        Ok(r) => r,
        Err(e) => return p.error(&s, e),
    };
    if q.edit.is_some() {
        return builder(&s, &p, r.spec.0.clone(), None, Some(&r)).await;
    }
    let (result, error) = match reports::run(&s.db, &p.ctx, &r.spec.0).await {
        Ok(res) => (Some(shown(&p.ctx.locale, &r.spec.0.entity, &res)), None),
        // A field the viewer may not read, or one since removed: said, not a 500.
        Err(e @ guanxi_platform::Error::Validation(_)) => (
            None,
            p.refusal_from_url(Some(&p.refusal_keys(e, Some("report.")))),
        ),
        Err(e) => return p.error(&s, e),
    };
    let chart = result
        .as_ref()
        .and_then(|res| chart_of(&p.ctx.locale, r.spec.0.chart, res));
    let labels: Vec<String> = result
        .as_ref()
        .map(|res| {
            res.columns
                .iter()
                .map(|c| column_label(&p.ctx.locale, &c.key))
                .collect()
        })
        .unwrap_or_default();
    let mine = Some(r.owner_id) == p.ctx.user_id;
    p.page(
        &s,
        "reports/report.html",
        "reports",
        context! { report => &r, result, chart, labels, error, mine },
    )
}

async fn delete_form(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = form
        .iter()
        .find(|(n, _)| n == "_csrf")
        .map(|(_, v)| v.clone());
    if !p.csrf_ok(&csrf) {
        return forbidden_csrf();
    }
    match reports::delete(&s.db, &p.ctx, id).await {
        Ok(()) => Redirect::to("/reports").into_response(),
        Err(e) => p.error(&s, e),
    }
}

async fn export_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ExportQuery>,
) -> Response {
    match export(&s, &p.ctx, id, q.format.as_deref()).await {
        Ok(r) => r,
        Err(e) => p.error(&s, e),
    }
}
