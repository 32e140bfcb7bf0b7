//! `/api/v1/pipelines` and `/api/v1/opportunities`: the sales processes, the deals moving
//! through them (list, create, read, edit and move, trash, restore, bulk actions, history,
//! timeline) and a pipeline's kanban board.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use guanxi_customers::activities::{Subject, TimelineEntry, TimelineFilter};
use guanxi_platform::page::Page;
use guanxi_records::bulk::{self, BulkInput, BulkResult};
use guanxi_records::shares::{self, Shares, SharesInput};
use guanxi_sales::opportunities::{
    self, Board, BoardFilter, History, Opportunity, OpportunityFilter, OpportunityInput,
};
use guanxi_sales::parties::{self, Parties, PartiesInput};
use guanxi_sales::pipelines::{self, Pipeline, PipelineInput};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch, ListQuery};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PipelineList {
    pub items: Vec<Pipeline>,
}

/// Every pipeline with its stages, the default first.
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "opportunities", responses((status = 200, body = PipelineList)))]
pub async fn list_pipelines(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<PipelineList>> {
    Ok(Json(PipelineList {
        items: pipelines::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A new pipeline with its stages (at least one open, one won and one lost); the first one is
/// the default.
#[utoipa::path(post, path = "/api/v1/pipelines", tag = "opportunities", request_body = PipelineInput, responses(
    (status = 201, body = Pipeline), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_pipeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PipelineInput>,
) -> ApiResult<Response> {
    let p = pipelines::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &p, p.version))
}

#[utoipa::path(get, path = "/api/v1/pipelines/{id}", tag = "opportunities", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Pipeline), (status = 404, body = Problem)))]
pub async fn get_pipeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let p = pipelines::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

/// Renames, reorders, adds or removes stages: a removed stage still holding deals needs
/// `remap` to a kept stage of the same kind, which moves them (in their history).
#[utoipa::path(patch, path = "/api/v1/pipelines/{id}", tag = "opportunities", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = PipelineInput, responses((status = 200, body = Pipeline), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_pipeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<PipelineInput>,
) -> ApiResult<Response> {
    let p = pipelines::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

/// The kanban: one column per stage with its count, amount and weighted amount, and its first
/// cards in order; with `stage_id` (and `cursor`) one column's next cards.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/board", tag = "opportunities", params(("id" = Uuid, Path), BoardFilter), responses(
    (status = 200, body = Board), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn pipeline_board(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<BoardFilter>,
) -> ApiResult<Json<Board>> {
    Ok(Json(
        opportunities::board(&s.db, &ctx, id, &f).await.l(&ctx)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/opportunities", tag = "opportunities", params(OpportunityFilter), responses(
    (status = 200, body = Page<Opportunity>), (status = 422, body = Problem)))]
pub async fn list_opportunities(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<OpportunityFilter>,
) -> ApiResult<Json<Page<Opportunity>>> {
    Ok(Json(opportunities::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

/// A new deal for an account, in the default pipeline's first stage unless told otherwise
/// (the stage's required fields asked).
#[utoipa::path(post, path = "/api/v1/opportunities", tag = "opportunities", request_body = OpportunityInput, responses(
    (status = 201, body = Opportunity), (status = 422, body = Problem)))]
pub async fn create_opportunity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<OpportunityInput>,
) -> ApiResult<Response> {
    let d = opportunities::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &d, d.version))
}

#[utoipa::path(get, path = "/api/v1/opportunities/{id}", tag = "opportunities", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Opportunity), (status = 404, body = Problem)))]
pub async fn get_opportunity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let d = opportunities::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &d, d.version))
}

/// Edits a deal; a new `stage_id` moves it (by the pipeline's rules; the stage's required
/// fields named when missing, 422). A deal changed since it was read is refused (412).
#[utoipa::path(patch, path = "/api/v1/opportunities/{id}", tag = "opportunities", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = OpportunityInput, responses((status = 200, body = Opportunity), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "In the trash"), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_opportunity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<OpportunityInput>,
) -> ApiResult<Response> {
    let d = opportunities::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &d, d.version))
}

#[utoipa::path(delete, path = "/api/v1/opportunities/{id}", tag = "opportunities", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash"), (status = 404, body = Problem)))]
pub async fn delete_opportunity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    opportunities::set_deleted(&s.db, &ctx, id, true)
        .await
        .l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/opportunities/{id}/restore", tag = "opportunities", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Opportunity), (status = 404, body = Problem)))]
pub async fn restore_opportunity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let d = opportunities::set_deleted(&s.db, &ctx, id, false)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &d, d.version))
}

/// Assigns, tags, untags or trashes up to 500 deals, each as a single edit would.
#[utoipa::path(post, path = "/api/v1/opportunities/bulk", tag = "opportunities", request_body = BulkInput, responses(
    (status = 200, body = BulkResult), (status = 422, body = Problem)))]
pub async fn bulk_opportunities(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<BulkInput>,
) -> ApiResult<Json<BulkResult>> {
    Ok(Json(
        bulk::run::<Opportunity>(&s.db, &ctx, b).await.l(&ctx)?,
    ))
}

/// The deal's append-only history of stage, amount, probability and close-date changes, with
/// time in each stage and how often the close date slipped.
#[utoipa::path(get, path = "/api/v1/opportunities/{id}/history", tag = "opportunities", params(("id" = Uuid, Path)), responses(
    (status = 200, body = History), (status = 404, body = Problem)))]
pub async fn opportunity_history(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<History>> {
    Ok(Json(
        opportunities::history_of(&s.db, &ctx, id).await.l(&ctx)?,
    ))
}

/// Everything that happened to the deal, newest first.
#[utoipa::path(get, path = "/api/v1/opportunities/{id}/timeline", tag = "opportunities", params(("id" = Uuid, Path), TimelineFilter), responses(
    (status = 200, body = Page<TimelineEntry>), (status = 404, body = Problem)))]
pub async fn opportunity_timeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<TimelineFilter>,
) -> ApiResult<Json<Page<TimelineEntry>>> {
    let subject = Subject::Record(opportunities::ENTITY, id);
    Ok(Json(
        guanxi_customers::activities::timeline(&s.db, &ctx, subject, &f)
            .await
            .l(&ctx)?,
    ))
}

/// Who is on the deal: the customer's people with their role in the decision, and the
/// competitors in the running.
#[utoipa::path(get, path = "/api/v1/opportunities/{id}/parties", tag = "opportunities", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Parties), (status = 404, body = Problem)))]
pub async fn get_parties(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let p = parties::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

/// Replaces the deal's contacts with roles and/or its competitors (a list left out stays), at
/// the deal's version (`If-Match` or `version`), which it advances: a deal changed meanwhile
/// is refused with 412.
#[utoipa::path(put, path = "/api/v1/opportunities/{id}/parties", tag = "opportunities", params(("id" = Uuid, Path)), request_body = PartiesInput, responses(
    (status = 200, body = Parties), (status = 404, body = Problem), (status = 412, body = Problem),
    (status = 422, body = Problem)))]
pub async fn put_parties(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<PartiesInput>,
) -> ApiResult<Response> {
    let p = parties::set(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

/// The deal's collaborators: colleagues it is shared with beyond their role's scope, to read
/// (`read`) or to read and edit (`edit`) — never to delete it, hand it over or share it on.
#[utoipa::path(get, path = "/api/v1/opportunities/{id}/collaborators", tag = "opportunities", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Shares), (status = 404, body = Problem)))]
pub async fn get_collaborators(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let d = opportunities::get(&s.db, &ctx, id).await.l(&ctx)?;
    let c = shares::of(&s.db, &ctx, opportunities::ENTITY, id, d.version)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

/// Replaces the deal's collaborators (at most 50, not the owner) at the deal's version
/// (`If-Match` or `version`), which it advances: a deal changed meanwhile is refused with 412.
/// Only a caller whose own scope covers the deal may (its owner, their manager); each colleague
/// added is notified.
#[utoipa::path(put, path = "/api/v1/opportunities/{id}/collaborators", tag = "opportunities", params(("id" = Uuid, Path)), request_body = SharesInput, responses(
    (status = 200, body = Shares), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn put_collaborators(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<SharesInput>,
) -> ApiResult<Response> {
    let c = shares::set(&s.db, &ctx, id, v, b, |d: &Opportunity| d.name.clone())
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}
