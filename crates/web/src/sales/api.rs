//! `/api/v1/leads`: list, intake (create or match), read, edit, trash, restore, bulk actions,
//! the timeline and conversion.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use guanxi_customers::activities::{Activity, ActivityInput, TimelineEntry, TimelineFilter};
use guanxi_platform::page::Page;
use guanxi_records::bulk::{self, BulkInput, BulkResult};
use guanxi_sales::assignment::{self, AssignmentRule, AssignmentRuleInput, Rep, RepInput};
use guanxi_sales::convert::{self, Conversion, ConvertInput};
use guanxi_sales::import::{self, LeadImportOptions, LeadImportReport};
use guanxi_sales::intake::{self, Arrival, IntakeResult, Outcome};
use guanxi_sales::leads::{self, Lead, LeadFilter, LeadInput};
use guanxi_sales::learned::{self, ModelList, TrainInput};
use guanxi_sales::pools::{self, Pool, PoolAction, PoolInput, PoolResult};
use guanxi_sales::scoring::{self, ScoringRule, ScoringRuleInput};
use guanxi_sales::sla::{self, ResponsePolicies};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch, ListQuery};
use crate::problem::Problem;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/leads", tag = "leads", params(LeadFilter), responses(
    (status = 200, body = Page<Lead>), (status = 422, body = Problem)))]
pub async fn list_leads(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<LeadFilter>,
) -> ApiResult<Json<Page<Lead>>> {
    Ok(Json(leads::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

/// A person arriving through the API: a new lead (201), or — when the person is already a
/// lead or a contact (phone, email, name at the company) — the arrival recorded on that record
/// as a touch (200, `outcome: matched`); the same post again within ten minutes changes
/// nothing (200, `outcome: repeated`). `source` defaults to `api`.
#[utoipa::path(post, path = "/api/v1/leads", tag = "leads", request_body = LeadInput, responses(
    (status = 201, body = IntakeResult, description = "A new lead"),
    (status = 200, body = IntakeResult, description = "A known person (matched or repeated)"),
    (status = 422, body = Problem)))]
pub async fn create_lead(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(mut b): ApiJson<LeadInput>,
) -> ApiResult<Response> {
    let arrival = Arrival {
        source: b.source.take().unwrap_or_else(|| "api".into()),
        detail: b.source_detail.take().flatten(),
        extra: serde_json::Value::Null,
        fallback_owner: None,
    };
    let r = intake::intake(&s.db, &ctx, b, arrival).await.l(&ctx)?;
    let status = if r.outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r)).into_response())
}

#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = "leads", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Lead), (status = 404, body = Problem)))]
pub async fn get_lead(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let l = leads::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &l, l.version))
}

#[utoipa::path(patch, path = "/api/v1/leads/{id}", tag = "leads", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = LeadInput, responses((status = 200, body = Lead), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "In the trash, or converted"), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_lead(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<LeadInput>,
) -> ApiResult<Response> {
    let l = leads::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &l, l.version))
}

#[utoipa::path(delete, path = "/api/v1/leads/{id}", tag = "leads", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash"), (status = 404, body = Problem)))]
pub async fn delete_lead(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    leads::set_deleted(&s.db, &ctx, id, true).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/leads/{id}/restore", tag = "leads", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Lead), (status = 404, body = Problem)))]
pub async fn restore_lead(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let l = leads::set_deleted(&s.db, &ctx, id, false).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &l, l.version))
}

/// Assigns, tags, untags or trashes up to 500 leads, each as a single edit would.
#[utoipa::path(post, path = "/api/v1/leads/bulk", tag = "leads", request_body = BulkInput, responses(
    (status = 200, body = BulkResult), (status = 422, body = Problem)))]
pub async fn bulk_leads(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<BulkInput>,
) -> ApiResult<Json<BulkResult>> {
    Ok(Json(bulk::run::<Lead>(&s.db, &ctx, b).await.l(&ctx)?))
}

/// Everything that happened to the lead, newest first: the calls, visits, notes and tasks
/// logged on it, each touch (what the person sent, and from where), changes, hand-overs, pool
/// moves, conversion.
#[utoipa::path(get, path = "/api/v1/leads/{id}/timeline", tag = "leads", params(("id" = Uuid, Path), TimelineFilter), responses(
    (status = 200, body = Page<TimelineEntry>), (status = 404, body = Problem)))]
pub async fn lead_timeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<TimelineFilter>,
) -> ApiResult<Json<Page<TimelineEntry>>> {
    Ok(Json(leads::timeline(&s.db, &ctx, id, &f).await.l(&ctx)?))
}

/// Logs a call, email, meeting, visit, note or task on the lead (`account_id` and `contact_id`
/// are not given). A call, email, meeting or visit answers the lead — its first-response clock
/// stops — and counts toward its score (`logged`). Converting the lead takes its activities to
/// the contact and account.
#[utoipa::path(post, path = "/api/v1/leads/{id}/activities", tag = "leads", params(("id" = Uuid, Path)),
    request_body = ActivityInput, responses((status = 201, body = Activity), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
pub async fn log_lead_activity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<ActivityInput>,
) -> ApiResult<Response> {
    let a = leads::log_activity(&s.db, &ctx, id, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(versioned(StatusCode::CREATED, &a, a.version))
}

/// Converts the lead into an account (for its company) and a contact, linking existing ones
/// (the account asked for or named alike; the contact asked for, or with the same phone or
/// email) instead of creating copies. Converting again answers the first conversion.
#[utoipa::path(post, path = "/api/v1/leads/{id}/convert", tag = "leads", params(("id" = Uuid, Path)),
    request_body = ConvertInput, responses((status = 200, body = Conversion), (status = 404, body = Problem),
    (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn convert_lead(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<ConvertInput>,
) -> ApiResult<Json<Conversion>> {
    Ok(Json(convert::convert(&s.db, &ctx, id, b).await.l(&ctx)?))
}

// ---- assignment and scoring rules ----------------------------------------------------------

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AssignmentRuleList {
    pub items: Vec<AssignmentRule>,
}

/// The rules deciding who gets a new lead, in the order they are tried.
#[utoipa::path(get, path = "/api/v1/assignment-rules", tag = "leads", responses((status = 200, body = AssignmentRuleList)))]
pub async fn list_assignment_rules(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<AssignmentRuleList>> {
    Ok(Json(AssignmentRuleList {
        items: assignment::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

#[utoipa::path(post, path = "/api/v1/assignment-rules", tag = "leads", request_body = AssignmentRuleInput, responses(
    (status = 201, body = AssignmentRule), (status = 422, body = Problem)))]
pub async fn create_assignment_rule(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<AssignmentRuleInput>,
) -> ApiResult<Response> {
    let r = assignment::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &r, r.version))
}

#[utoipa::path(patch, path = "/api/v1/assignment-rules/{id}", tag = "leads", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = AssignmentRuleInput, responses((status = 200, body = AssignmentRule), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_assignment_rule(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<AssignmentRuleInput>,
) -> ApiResult<Response> {
    let r = assignment::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

#[utoipa::path(delete, path = "/api/v1/assignment-rules/{id}", tag = "leads", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"), (status = 404, body = Problem)))]
pub async fn delete_assignment_rule(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    assignment::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RepList {
    pub items: Vec<Rep>,
}

/// Every active user with their capacity (库容), leave and current load.
#[utoipa::path(get, path = "/api/v1/assignment-rules/reps", tag = "leads", responses((status = 200, body = RepList)))]
pub async fn list_reps(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Json<RepList>> {
    Ok(Json(RepList {
        items: assignment::reps(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// Sets a rep's capacity (`null`: no limit) or leave.
#[utoipa::path(put, path = "/api/v1/assignment-rules/reps/{id}", tag = "leads", params(("id" = Uuid, Path)),
    request_body = RepInput, responses((status = 200, body = Rep), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_rep(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RepInput>,
) -> ApiResult<Json<Rep>> {
    Ok(Json(assignment::set_rep(&s.db, &ctx, id, b).await.l(&ctx)?))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ScoringRuleList {
    pub items: Vec<ScoringRule>,
}

#[utoipa::path(get, path = "/api/v1/scoring-rules", tag = "leads", responses((status = 200, body = ScoringRuleList)))]
pub async fn list_scoring_rules(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<ScoringRuleList>> {
    Ok(Json(ScoringRuleList {
        items: scoring::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A scoring rule; every lead is re-scored in the background.
#[utoipa::path(post, path = "/api/v1/scoring-rules", tag = "leads", request_body = ScoringRuleInput, responses(
    (status = 201, body = ScoringRule), (status = 422, body = Problem)))]
pub async fn create_scoring_rule(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ScoringRuleInput>,
) -> ApiResult<Response> {
    let r = scoring::create(&s.db, &ctx, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(versioned(StatusCode::CREATED, &r, r.version))
}

#[utoipa::path(patch, path = "/api/v1/scoring-rules/{id}", tag = "leads", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = ScoringRuleInput, responses((status = 200, body = ScoringRule), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_scoring_rule(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<ScoringRuleInput>,
) -> ApiResult<Response> {
    let r = scoring::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(versioned(StatusCode::OK, &r, r.version))
}

/// The learned scoring models: the company's, and each team's with enough outcomes of its own
/// (none until trained).
#[utoipa::path(get, path = "/api/v1/scoring-rules/model", tag = "leads", responses((status = 200, body = ModelList)))]
pub async fn get_scoring_model(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<ModelList>> {
    Ok(Json(learned::list(&s.db, &ctx).await.l(&ctx)?))
}

/// Trains the naive-Bayes model on the won (converted) and lost (disqualified) leads — the
/// company's, and each team's with at least 10 of each — replacing the last; every lead is
/// re-scored in the background with `weight × P(win)` points and the reasons (each field's
/// lift). Refused with `outcomes: not_enough` under 10 won or 10 lost.
#[utoipa::path(post, path = "/api/v1/scoring-rules/model", tag = "leads", request_body = TrainInput, responses(
    (status = 200, body = ModelList), (status = 422, body = Problem)))]
pub async fn train_scoring_model(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<TrainInput>,
) -> ApiResult<Json<ModelList>> {
    let r = learned::train(&s.db, &ctx, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(Json(r))
}

/// Removes the learned models; every lead is re-scored by the rules alone.
#[utoipa::path(delete, path = "/api/v1/scoring-rules/model", tag = "leads", responses((status = 204)))]
pub async fn forget_scoring_model(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<StatusCode> {
    learned::forget(&s.db, &ctx).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

// ---- pools (公海) ---------------------------------------------------------------------------

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PoolList {
    pub items: Vec<Pool>,
}

#[utoipa::path(get, path = "/api/v1/pools", tag = "pools", responses((status = 200, body = PoolList)))]
pub async fn list_pools(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Json<PoolList>> {
    Ok(Json(PoolList {
        items: pools::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A pool for a team (or, without `team_id`, the company's): its claim limits and return rules.
#[utoipa::path(post, path = "/api/v1/pools", tag = "pools", request_body = PoolInput, responses(
    (status = 201, body = Pool), (status = 422, body = Problem)))]
pub async fn create_pool(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PoolInput>,
) -> ApiResult<Response> {
    let p = pools::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &p, p.version))
}

#[utoipa::path(get, path = "/api/v1/pools/{id}", tag = "pools", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Pool), (status = 404, body = Problem)))]
pub async fn get_pool(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let p = pools::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

#[utoipa::path(patch, path = "/api/v1/pools/{id}", tag = "pools", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = PoolInput, responses((status = 200, body = Pool), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_pool(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<PoolInput>,
) -> ApiResult<Response> {
    let p = pools::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PoolLeadsQuery {
    /// The last id of the previous page.
    pub after: Option<Uuid>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PoolLeads {
    pub items: Vec<Lead>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PoolAccounts {
    pub items: Vec<guanxi_customers::accounts::Account>,
}

/// The accounts (customers) waiting in a customer pool, 200 at a time by id; a lead pool is
/// 404 here.
#[utoipa::path(get, path = "/api/v1/pools/{id}/accounts", tag = "pools", params(("id" = Uuid, Path), PoolLeadsQuery), responses(
    (status = 200, body = PoolAccounts), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn pool_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<PoolLeadsQuery>,
) -> ApiResult<Json<PoolAccounts>> {
    Ok(Json(PoolAccounts {
        items: pools::accounts_in(&s.db, &ctx, id, q.after).await.l(&ctx)?,
    }))
}

/// The leads waiting in a lead pool, 200 at a time by id; a customer pool is 404 here.
#[utoipa::path(get, path = "/api/v1/pools/{id}/leads", tag = "pools", params(("id" = Uuid, Path), PoolLeadsQuery), responses(
    (status = 200, body = PoolLeads), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn pool_leads(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<PoolLeadsQuery>,
) -> ApiResult<Json<PoolLeads>> {
    Ok(Json(PoolLeads {
        items: pools::leads_in(&s.db, &ctx, id, q.after).await.l(&ctx)?,
    }))
}

/// Claims leads or accounts (as the pool holds) from the pool for the caller; each refused one says which limit refused it.
#[utoipa::path(post, path = "/api/v1/pools/{id}/claim", tag = "pools", params(("id" = Uuid, Path)), request_body = PoolAction,
    responses((status = 200, body = PoolResult), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn claim_from_pool(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<PoolAction>,
) -> ApiResult<Json<PoolResult>> {
    Ok(Json(pools::claim(&s.db, &ctx, id, b).await.l(&ctx)?))
}

/// Puts leads or accounts (as the pool holds) back into the pool (`reason` required).
#[utoipa::path(post, path = "/api/v1/pools/{id}/release", tag = "pools", params(("id" = Uuid, Path)), request_body = PoolAction,
    responses((status = 200, body = PoolResult), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn release_to_pool(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<PoolAction>,
) -> ApiResult<Json<PoolResult>> {
    Ok(Json(pools::release(&s.db, &ctx, id, b).await.l(&ctx)?))
}

/// A manager gives leads or accounts waiting in the pool to `owner_id`.
#[utoipa::path(post, path = "/api/v1/pools/{id}/assign", tag = "pools", params(("id" = Uuid, Path)), request_body = PoolAction,
    responses((status = 200, body = PoolResult), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn assign_from_pool(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<PoolAction>,
) -> ApiResult<Json<PoolResult>> {
    let r = pools::assign(&s.db, &ctx, id, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(Json(r))
}

// ---- first-response SLA --------------------------------------------------------------------

/// The first-response policies: per source (or `*`), business minutes to answer a new lead,
/// the warning before, and what a breach does.
#[utoipa::path(get, path = "/api/v1/lead-sla", tag = "leads", responses((status = 200, body = ResponsePolicies)))]
pub async fn get_lead_sla(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<ResponsePolicies>> {
    Ok(Json(ResponsePolicies {
        items: sla::policies(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// Replaces the first-response policies (new leads get deadlines by them).
#[utoipa::path(put, path = "/api/v1/lead-sla", tag = "leads", request_body = ResponsePolicies, responses(
    (status = 200, body = ResponsePolicies), (status = 422, body = Problem)))]
pub async fn put_lead_sla(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ResponsePolicies>,
) -> ApiResult<Json<ResponsePolicies>> {
    Ok(Json(ResponsePolicies {
        items: sla::set_policies(&s.db, &ctx, b.items).await.l(&ctx)?,
    }))
}

/// A list of people (a trade show's cards): CSV (UTF-8 or GBK, Chinese or English headers) or
/// XLSX as the request body. Each row goes through the intake — known people are matched, not
/// entered again — new leads get the campaign tag and the assignment rules; each rep who got
/// leads is told once. Row errors are listed by row number.
#[utoipa::path(post, path = "/api/v1/leads/import", tag = "leads", params(LeadImportOptions),
    request_body(content = String, content_type = "text/csv", description = "CSV (UTF-8 or GBK) or XLSX (`format=xlsx`)"),
    responses((status = 200, body = LeadImportReport), (status = 422, body = Problem, description = "Unreadable, or no name column")))]
pub async fn import_leads(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(o): Query<LeadImportOptions>,
    body: axum::body::Bytes,
) -> ApiResult<Json<LeadImportReport>> {
    let format = match o.format.as_deref() {
        None | Some("csv") => guanxi_records::tables::Format::Csv,
        Some("xlsx") => guanxi_records::tables::Format::Xlsx,
        Some(_) => return Err(guanxi_platform::Error::field("format", "invalid")).l(&ctx),
    };
    let table = guanxi_records::tables::open(format, std::io::Cursor::new(body)).l(&ctx)?;
    let r = import::run(&s.db, &ctx, table, &o).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(Json(r))
}

fn lead_page(f: &LeadFilter, cursor: Option<String>, limit: i64) -> LeadFilter {
    LeadFilter {
        cursor,
        limit: Some(limit),
        ..f.clone()
    }
}

fn lead_export_record(f: &LeadFilter) -> serde_json::Value {
    serde_json::json!({"q": f.q, "status": f.status, "source": f.source, "owner_id": f.owner_id,
        "tag": f.tag, "grade": f.grade, "sla": f.sla, "deleted": f.deleted})
}

/// Every matching lead as CSV (UTF-8 with BOM, headers in the reader's language, custom fields
/// included; reads back through the lead import).
#[utoipa::path(get, path = "/api/v1/leads/export.csv", tag = "leads", params(LeadFilter), responses(
    (status = 200, description = "CSV (UTF-8 with BOM), every matching lead", content_type = "text/csv")))]
pub async fn export_leads(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<LeadFilter>,
) -> ApiResult<Response> {
    let what = lead_export_record(&f);
    crate::records::export::export_csv::<Lead>(&s, &ctx, f, lead_page, what)
        .await
        .l(&ctx)
}

#[utoipa::path(get, path = "/api/v1/leads/export.xlsx", tag = "leads", params(LeadFilter), responses(
    (status = 200, description = "XLSX, every matching lead", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn export_leads_xlsx(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<LeadFilter>,
) -> ApiResult<Response> {
    let what = lead_export_record(&f);
    crate::records::export::export_xlsx_of::<Lead>(&s, &ctx, f, lead_page, what)
        .await
        .l(&ctx)
}

/// Leads among the search box's results, everything best match first (as customers::search
/// orders its own).
/// The one search box over every kind: accounts and contacts (`q` as given), then leads,
/// deals and quotes (by number) merged in, best first.
pub async fn search_everything(
    db: &guanxi_platform::db::Db,
    ctx: &guanxi_platform::Ctx,
    q: &guanxi_customers::search::SearchQuery,
) -> guanxi_platform::error::Result<guanxi_customers::search::SearchResults> {
    let mut r = guanxi_customers::search::search(db, ctx, q).await?;
    let typed = q.q.as_deref().unwrap_or("");
    let limit = q.limit.unwrap_or(10);
    let leads = guanxi_sales::leads::search_hits(db, ctx, typed, limit).await?;
    merge_hits(&mut r.items, leads);
    let deals = guanxi_sales::opportunities::search_hits(db, ctx, typed, limit).await?;
    merge_hits(&mut r.items, deals);
    let quotes = guanxi_sales::quotes::search_hits(db, ctx, typed, limit).await?;
    merge_hits(&mut r.items, quotes);
    Ok(r)
}

pub fn merge_hits(
    items: &mut Vec<guanxi_records::search::SearchHit>,
    leads: Vec<guanxi_records::search::SearchHit>,
) {
    items.extend(leads);
    items.sort_by(|a, b| {
        (a.rank, a.name.chars().count(), &a.name).cmp(&(b.rank, b.name.chars().count(), &b.name))
    });
}
