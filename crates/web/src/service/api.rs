//! `/api/v1/tickets` (list, create, read, edit, trash, restore, bulk actions, messages, event
//! log, SLA targets, merge) and `/api/v1/sla-policies`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use guanxi_platform::page::Page;
use guanxi_records::bulk::{self, BulkInput, BulkResult};
use guanxi_service::attachments::{self, Attachment};
use guanxi_service::routing::{self, Agent, AgentInput, Queue, QueueInput};
use guanxi_service::sla::{self, Policy, PolicyInput, TargetRow};
use guanxi_service::tickets::{
    self, FollowInput, Follower, Message, MessageInput, Ticket, TicketEvent, TicketFilter,
    TicketInput,
};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch, ListQuery};
use crate::problem::Problem;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(TicketFilter), responses(
    (status = 200, body = Page<Ticket>), (status = 422, body = Problem)))]
pub async fn list_tickets(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<TicketFilter>,
) -> ApiResult<Json<Page<Ticket>>> {
    Ok(Json(tickets::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

/// A new ticket (numbered from the tenant's pattern), unassigned in its team's queue unless
/// `owner_id` is given; its SLA policy is chosen and its clocks started. Send an
/// `Idempotency-Key` so a retried request opens it once.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", request_body = TicketInput, responses(
    (status = 201, body = Ticket), (status = 422, body = Problem)))]
pub async fn create_ticket(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<TicketInput>,
) -> ApiResult<Response> {
    let t = tickets::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &t, t.version))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Ticket), (status = 404, body = Problem)))]
pub async fn get_ticket(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let t = tickets::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

/// Edits a ticket: status (leaving resolved or closed reopens it), priority, category,
/// customer, assignment (`owner_id: null` puts it back in the queue)… A ticket changed since it
/// was read is refused (412); its clocks follow the change.
#[utoipa::path(patch, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = TicketInput, responses((status = 200, body = Ticket), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "In the trash, or merged"), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_ticket(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<TicketInput>,
) -> ApiResult<Response> {
    let t = tickets::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

#[utoipa::path(delete, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash"), (status = 404, body = Problem)))]
pub async fn delete_ticket(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    tickets::set_deleted(&s.db, &ctx, id, true).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/restore", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Ticket), (status = 404, body = Problem)))]
pub async fn restore_ticket(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let t = tickets::set_deleted(&s.db, &ctx, id, false).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

/// Assigns, tags, untags or trashes up to 500 tickets, each as a single edit would.
#[utoipa::path(post, path = "/api/v1/tickets/bulk", tag = "tickets", request_body = BulkInput, responses(
    (status = 200, body = BulkResult), (status = 422, body = Problem)))]
pub async fn bulk_tickets(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<BulkInput>,
) -> ApiResult<Json<BulkResult>> {
    Ok(Json(bulk::run::<Ticket>(&s.db, &ctx, b).await.l(&ctx)?))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MessageList {
    pub items: Vec<Message>,
}

/// What was said on the ticket, oldest first: public replies, internal notes, the customer's
/// words.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = MessageList), (status = 404, body = Problem)))]
pub async fn list_messages(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<MessageList>> {
    Ok(Json(MessageList {
        items: tickets::messages(&s.db, &ctx, id).await.l(&ctx)?,
    }))
}

/// A public reply, an internal note or the customer's words (logged from a call), with the
/// status it leaves the ticket in; the clocks follow. With `version`, a ticket changed since is
/// refused (412).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "tickets", params(("id" = Uuid, Path)), request_body = MessageInput, responses(
    (status = 201, body = Message), (status = 404, body = Problem), (status = 409, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn add_message(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<MessageInput>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let m = tickets::add_message(&s.db, &ctx, id, b).await.l(&ctx)?;
    Ok((StatusCode::CREATED, Json(m)))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EventList {
    pub items: Vec<TicketEvent>,
}

/// The ticket's append-only event log, oldest first: status and priority changes, replies,
/// assignment, merges and each SLA target's outcome.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/timeline", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = EventList), (status = 404, body = Problem)))]
pub async fn ticket_timeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<EventList>> {
    Ok(Json(EventList {
        items: tickets::events(&s.db, &ctx, id).await.l(&ctx)?,
    }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = SlaTargetList)]
pub struct TargetList {
    pub items: Vec<TargetRow>,
}

/// The ticket's SLA targets as last evaluated: first response, each next-response cycle and
/// resolution, with the business time used, when each runs (or ran) out and its outcome.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/sla", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = TargetList), (status = 404, body = Problem)))]
pub async fn ticket_sla(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<TargetList>> {
    tickets::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(Json(TargetList {
        items: sla::targets_of(&s.db, ctx.tenant_id, id).await.l(&ctx)?,
    }))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TicketMergeInput)]
pub struct MergeInput {
    /// The ticket that stays.
    pub into: Option<Uuid>,
    /// The duplicate's version as read; a duplicate changed since is refused (412).
    pub version: Option<i64>,
}

/// Merges this duplicate into another ticket: it is closed pointing at the survivor.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/merge", tag = "tickets", params(("id" = Uuid, Path)), request_body = MergeInput, responses(
    (status = 200, body = Ticket), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn merge_ticket(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<MergeInput>,
) -> ApiResult<Response> {
    let t = tickets::merge(&s.db, &ctx, id, b.into, b.version)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PolicyList {
    pub items: Vec<Policy>,
}

/// Every SLA policy in the order they are tried: the first active one whose priorities,
/// grades and categories match a ticket applies.
#[utoipa::path(get, path = "/api/v1/sla-policies", tag = "tickets", responses((status = 200, body = PolicyList)))]
pub async fn list_policies(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<PolicyList>> {
    Ok(Json(PolicyList {
        items: sla::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A new policy; every open ticket is re-evaluated against the policies (in the background).
#[utoipa::path(post, path = "/api/v1/sla-policies", tag = "tickets", request_body = PolicyInput, responses(
    (status = 201, body = Policy), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_policy(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PolicyInput>,
) -> ApiResult<Response> {
    let p = sla::create(&s.db, &ctx, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(versioned(StatusCode::CREATED, &p, p.version))
}

#[utoipa::path(get, path = "/api/v1/sla-policies/{id}", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Policy), (status = 404, body = Problem)))]
pub async fn get_policy(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let p = sla::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

/// Changes a policy (targets, conditions, order, active); every open ticket is re-evaluated,
/// so a new target applies to the time already used. A stale version is refused (412).
#[utoipa::path(patch, path = "/api/v1/sla-policies/{id}", tag = "tickets", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = PolicyInput, responses((status = 200, body = Policy), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_policy(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<PolicyInput>,
) -> ApiResult<Response> {
    let p = sla::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(versioned(StatusCode::OK, &p, p.version))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QueueList {
    pub items: Vec<Queue>,
}

/// Every queue in the order they are tried: the first active one whose categories, grades,
/// priorities and channels match a new ticket takes it.
#[utoipa::path(get, path = "/api/v1/queues", tag = "tickets", responses((status = 200, body = QueueList)))]
pub async fn list_queues(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Json<QueueList>> {
    Ok(Json(QueueList {
        items: routing::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A new queue of a team, routed round robin, to the least loaded agent, by the best skill
/// match (`skill`, `min_level`) or by hand (`manual`).
#[utoipa::path(post, path = "/api/v1/queues", tag = "tickets", request_body = QueueInput, responses(
    (status = 201, body = Queue), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_queue(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<QueueInput>,
) -> ApiResult<Response> {
    let q = routing::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &q, q.version))
}

#[utoipa::path(get, path = "/api/v1/queues/{id}", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Queue), (status = 404, body = Problem)))]
pub async fn get_queue(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let q = routing::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &q, q.version))
}

#[utoipa::path(patch, path = "/api/v1/queues/{id}", tag = "tickets", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = QueueInput, responses((status = 200, body = Queue), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_queue(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<QueueInput>,
) -> ApiResult<Response> {
    let q = routing::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &q, q.version))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AgentList {
    pub items: Vec<Agent>,
}

/// Every colleague who may work tickets: skills with levels, capacity, availability, and
/// their open and overdue tickets now (the manager's workload view).
#[utoipa::path(get, path = "/api/v1/skills", tag = "tickets", responses((status = 200, body = AgentList)))]
pub async fn list_agents(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Json<AgentList>> {
    Ok(Json(AgentList {
        items: routing::agents(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// Sets an agent's skills (name → level 1–10), capacity and availability at the version read
/// (0 for a profile never saved): a stale one is refused (412).
#[utoipa::path(put, path = "/api/v1/skills/{id}", tag = "tickets", params(("id" = Uuid, Path, description = "The agent's user id")),
    request_body = AgentInput, responses((status = 200, body = Agent), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn set_agent(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<AgentInput>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(routing::set_agent(&s.db, &ctx, id, b).await.l(&ctx)?))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FollowerList {
    pub items: Vec<Follower>,
}

/// Colleagues following the ticket (told when the customer writes, a reply goes out or its
/// status moves).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/followers", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = FollowerList), (status = 404, body = Problem)))]
pub async fn list_followers(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<FollowerList>> {
    Ok(Json(FollowerList {
        items: tickets::followers(&s.db, &ctx, id).await.l(&ctx)?,
    }))
}

/// Follows the ticket (or stops, `follow: false`) — the caller, or a colleague named by
/// someone who may edit the ticket. Returns the followers.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/followers", tag = "tickets", params(("id" = Uuid, Path)), request_body = FollowInput, responses(
    (status = 200, body = FollowerList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn follow_ticket(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<FollowInput>,
) -> ApiResult<Json<FollowerList>> {
    Ok(Json(FollowerList {
        items: tickets::set_following(&s.db, &ctx, id, b).await.l(&ctx)?,
    }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AttachmentList {
    pub items: Vec<Attachment>,
}

/// The file's name (its extension decides its type).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AttachParams {
    /// The file's name, e.g. `报价单.pdf` (required).
    pub name: Option<String>,
}

/// The ticket's files: what came with the customer's mail or portal request, what agents
/// uploaded (`message_id` none until a reply or note sends it) and what messages sent.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/attachments", tag = "tickets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = AttachmentList), (status = 404, body = Problem)))]
pub async fn list_attachments(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AttachmentList>> {
    Ok(Json(AttachmentList {
        items: attachments::list(&s.db, &ctx, id).await.l(&ctx)?,
    }))
}

/// Uploads a file (the request body, at most 8 MiB) to the ticket, to be sent by a reply or
/// note naming it in `attachment_ids`. The type is decided by the name's extension (images,
/// PDF, text, Office and OpenDocument files, archives, audio and video) and checked against
/// the bytes: anything else is refused (`file: type_not_allowed` / `type_mismatch`).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/attachments", tag = "tickets", params(("id" = Uuid, Path), AttachParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses(
    (status = 201, body = Attachment), (status = 404, body = Problem), (status = 409, body = Problem),
    (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn add_attachment(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<AttachParams>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Attachment>)> {
    let a = attachments::add(&s.db, &ctx, id, q.name.as_deref(), &body)
        .await
        .l(&ctx)?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// The file (images and PDF shown inline, everything else downloaded).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/attachments/{file_id}", tag = "tickets",
    params(("id" = Uuid, Path), ("file_id" = Uuid, Path)), responses(
    (status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = Problem)))]
pub async fn get_attachment(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((id, file)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let (meta, data) = attachments::open(&s.db, &ctx, id, file).await.l(&ctx)?;
    Ok(crate::files::download(&meta, data))
}

/// Removes an upload no message has sent (a sent file, or one from the customer, is kept: 409).
#[utoipa::path(delete, path = "/api/v1/tickets/{id}/attachments/{file_id}", tag = "tickets",
    params(("id" = Uuid, Path), ("file_id" = Uuid, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_attachment(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((id, file)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    attachments::remove(&s.db, &ctx, id, file).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The NPS survey by the scheduler: how often, whom (customers with a ticket or an order
/// within `lookback_days`), and how often one person may be asked.
#[utoipa::path(get, path = "/api/v1/surveys/nps-schedule", tag = "tickets", responses(
    (status = 200, body = guanxi_service::nps::Schedule)))]
pub async fn get_nps_schedule(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<guanxi_service::nps::Schedule>> {
    Ok(Json(
        guanxi_service::nps::schedule(&s.db, &ctx).await.l(&ctx)?,
    ))
}

/// Sets the NPS schedule at the version read (0 before one is saved; stale: 412). Active, its
/// next run is planned for `next_at` once, however often this is saved.
#[utoipa::path(put, path = "/api/v1/surveys/nps-schedule", tag = "tickets",
    request_body = guanxi_service::nps::ScheduleInput, responses(
    (status = 200, body = guanxi_service::nps::Schedule), (status = 412, body = Problem),
    (status = 422, body = Problem)))]
pub async fn set_nps_schedule(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<guanxi_service::nps::ScheduleInput>,
) -> ApiResult<Json<guanxi_service::nps::Schedule>> {
    let r = guanxi_service::nps::set_schedule(&s.db, &ctx, b)
        .await
        .l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(Json(r))
}

/// The warranty follow-up sweep: when on, a daily run books a follow-up visit (回访) for
/// every active asset whose warranty ends within `days_before` days, once per asset and
/// warranty end, for the engineer with `skill` (none: unassigned).
#[utoipa::path(get, path = "/api/v1/visits/warranty-sweep", tag = "visits", responses(
    (status = 200, body = guanxi_service::warranty::Sweep)))]
pub async fn get_warranty_sweep(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<guanxi_service::warranty::Sweep>> {
    Ok(Json(
        guanxi_service::warranty::sweep(&s.db, &ctx).await.l(&ctx)?,
    ))
}

/// Sets the warranty sweep at the version read (0 before one is saved; stale: 412). On, its
/// next run is planned for `next_at` once, however often this is saved.
#[utoipa::path(put, path = "/api/v1/visits/warranty-sweep", tag = "visits",
    request_body = guanxi_service::warranty::SweepInput, responses(
    (status = 200, body = guanxi_service::warranty::Sweep), (status = 412, body = Problem),
    (status = 422, body = Problem)))]
pub async fn set_warranty_sweep(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<guanxi_service::warranty::SweepInput>,
) -> ApiResult<Json<guanxi_service::warranty::Sweep>> {
    let r = guanxi_service::warranty::set_sweep(&s.db, &ctx, b)
        .await
        .l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(Json(r))
}
