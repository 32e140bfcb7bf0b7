//! Approvals over HTTP: `/api/v1/approval-processes` and `/api/v1/approvals` (requests, with
//! approve, reject, send back, recall and 加签), the `/approvals` inbox and a request's page,
//! and `/admin/approval-processes` where an administrator shapes the processes.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use guanxi_platform::approvals::{
    self, AddApprover, Approver, Condition, DecisionInput, Process, ProcessInput, Request,
    RequestFilter, Rule, Step, APPROVABLE, OPS,
};
use guanxi_platform::error::FieldError;
use guanxi_platform::perms::Action;
use guanxi_platform::{users, Error};
use minijinja::{context, Value};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::pages::{forbidden_csrf, public_csrf_ok, public_page, Signed};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProcessList {
    pub items: Vec<Process>,
}

#[utoipa::path(get, path = "/api/v1/approval-processes", tag = "approvals", responses((status = 200, body = ProcessList)))]
pub async fn list_processes(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<ProcessList>> {
    Ok(Json(ProcessList {
        items: approvals::processes(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A new process: entry conditions on the record's facts (quotes: `discount_bp`, `total`,
/// `net`), ordered steps (approvers: `user`, `manager`, `team_manager`, `role`; `rule`: `all`
/// 会签 or `any` 或签; `when_empty`; `skip_submitter`).
#[utoipa::path(post, path = "/api/v1/approval-processes", tag = "approvals", request_body = ProcessInput, responses(
    (status = 201, body = Process), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_process(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ProcessInput>,
) -> ApiResult<Response> {
    let p = approvals::create_process(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &p, p.version))
}

#[utoipa::path(get, path = "/api/v1/approval-processes/{id}", tag = "approvals", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Process), (status = 404, body = Problem)))]
pub async fn get_process(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let p = approvals::process(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

/// Changes a process; requests already running keep the steps they started with.
#[utoipa::path(patch, path = "/api/v1/approval-processes/{id}", tag = "approvals", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = ProcessInput, responses((status = 200, body = Process), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_process(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<ProcessInput>,
) -> ApiResult<Response> {
    let p = approvals::update_process(&s.db, &ctx, id, v, b)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RequestList {
    pub items: Vec<Request>,
}

/// Requests for approval: `box=inbox` (waiting for my decision), `sent` (mine) or `all`.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(RequestFilter), responses(
    (status = 200, body = RequestList), (status = 422, body = Problem)))]
pub async fn list_requests(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<RequestFilter>,
) -> ApiResult<Json<RequestList>> {
    Ok(Json(RequestList {
        items: approvals::list(&s.db, &ctx, &f).await.l(&ctx)?,
    }))
}

/// A request with its steps, who is asked in each and how they answered, and its log.
#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "approvals", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Request), (status = 404, body = Problem)))]
pub async fn get_request(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let r = approvals::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

async fn vote(
    s: &AppState,
    ctx: &guanxi_platform::Ctx,
    id: Uuid,
    v: &str,
    b: DecisionInput,
) -> ApiResult<Response> {
    let r = approvals::decide(&s.db, ctx, id, v, b).await.l(ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

/// Approves as a pending approver of the current step (403 for anyone else; 409 once decided
/// or recalled).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", params(("id" = Uuid, Path)), request_body = DecisionInput,
    responses((status = 200, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem)))]
pub async fn approve(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<DecisionInput>,
) -> ApiResult<Response> {
    vote(&s, &ctx, id, "approve", b).await
}

/// Rejects: the request ends, the record stays as it was.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", params(("id" = Uuid, Path)), request_body = DecisionInput,
    responses((status = 200, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem)))]
pub async fn reject(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<DecisionInput>,
) -> ApiResult<Response> {
    vote(&s, &ctx, id, "reject", b).await
}

/// Sends the request back to the submitter for changes (with the comment saying what).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/send-back", tag = "approvals", params(("id" = Uuid, Path)), request_body = DecisionInput,
    responses((status = 200, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem)))]
pub async fn send_back(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<DecisionInput>,
) -> ApiResult<Response> {
    vote(&s, &ctx, id, "send_back", b).await
}

/// The submitter takes back a pending request (the record unlocks).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/recall", tag = "approvals", params(("id" = Uuid, Path)), request_body = DecisionInput,
    responses((status = 200, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem)))]
pub async fn recall(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<DecisionInput>,
) -> ApiResult<Response> {
    let r = approvals::recall(&s.db, &ctx, id, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

/// A pending approver asks one more person in the current step (加签).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approvers", tag = "approvals", params(("id" = Uuid, Path)), request_body = AddApprover,
    responses((status = 200, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn add_approver(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<AddApprover>,
) -> ApiResult<Response> {
    let r = approvals::add_approver(&s.db, &ctx, id, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

// ---- pages ----------------------------------------------------------------------------------

/// Active users to choose an approver from (none when the caller may not list users).
async fn people(s: &AppState, p: &Signed) -> Vec<Value> {
    users::list(
        &s.db,
        &p.ctx,
        &users::UserFilter {
            active: Some(true),
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .map(|pg| {
        pg.items
            .iter()
            .map(|u| context! { id => u.id, name => u.name })
            .collect()
    })
    .unwrap_or_default()
}

/// Blank rows the process form offers for new conditions and steps.
const NEW_ROWS: usize = 2;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(inbox))
        .route("/approvals/{id}", get(show).post(act))
        .route(
            "/approvals/by-link/{token}",
            get(link_page).post(link_decide),
        )
        .route(
            "/admin/approval-processes",
            get(processes_page).post(create_page),
        )
        .route(
            "/admin/approval-processes/{id}",
            get(edit_page).post(update_page),
        )
}

#[derive(serde::Deserialize, Default)]
struct BoxQuery {
    #[serde(rename = "box")]
    r#box: Option<String>,
}

async fn inbox(State(s): State<AppState>, p: Signed, Query(q): Query<BoxQuery>) -> Response {
    let f = RequestFilter {
        r#box: q.r#box.clone(),
        ..Default::default()
    };
    match approvals::list(&s.db, &p.ctx, &f).await {
        Ok(items) => p.page(
            &s,
            "approvals.html",
            "approvals",
            context! { requests => items, tab => q.r#box.unwrap_or_else(|| "inbox".into()),
            can_all => p.ctx.can("approval_processes", Action::Read).is_some() },
        ),
        Err(e) => p.error(&s, e),
    }
}

#[derive(serde::Deserialize, Default)]
struct ShowQuery {
    error: Option<String>,
}

async fn show(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let r = match approvals::get(&s.db, &p.ctx, id).await {
        Ok(r) => r,
        Err(e) => return p.error(&s, e),
    };
    let me = p.ctx.user_id;
    let mine = approvals::asks(&r, me);
    let users = people(&s, &p).await;
    p.page(
        &s,
        "approval.html",
        "approvals",
        context! { r => r, mine => mine, users => users,
        can_recall => r.status == "pending" && me == Some(r.submitted_by),
        error => p.refusal_from_url(q.error.as_deref()) },
    )
}

/// `POST /approvals/{id}`: `do=approve|reject|send_back|recall|add` with a comment (and the
/// user to add).
async fn act(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let input = DecisionInput {
        version: form.get("version").and_then(|v| v.parse().ok()),
        comment: form
            .get("comment")
            .cloned()
            .filter(|c| !c.trim().is_empty()),
    };
    let r = match form.get("do").map(String::as_str) {
        Some(v @ ("approve" | "reject" | "send_back")) => {
            approvals::decide(&s.db, &p.ctx, id, v, input).await
        }
        Some("recall") => approvals::recall(&s.db, &p.ctx, id, input).await,
        Some("add") => {
            let add = AddApprover {
                version: None,
                user_id: form.get("user_id").and_then(|u| u.parse().ok()),
                comment: input.comment,
            };
            approvals::add_approver(&s.db, &p.ctx, id, add).await
        }
        _ => Err(Error::field("do", "invalid")),
    };
    match r {
        Ok(_) => Redirect::to(&format!("/approvals/{id}")).into_response(),
        Err(e) => p.refused_to(&format!("/approvals/{id}"), e, Some("approval.")),
    }
}

async fn processes_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    editing: Option<Process>,
    errors: Vec<FieldError>,
) -> Response {
    let all = match approvals::processes(&s.db, &p.ctx).await {
        Ok(a) => a,
        Err(e) => return p.error(s, e),
    };
    let users = people(s, p).await;
    let teams = guanxi_platform::teams::list(&s.db, &p.ctx, Some(200), None, None)
        .await
        .map(|pg| pg.items)
        .unwrap_or_default();
    let roles = guanxi_platform::roles::list(&s.db, &p.ctx, Some(200), None)
        .await
        .map(|pg| pg.items)
        .unwrap_or_default();
    // Each step as the form shows it: its approvers grouped by kind.
    let steps: Vec<Value> = editing
        .as_ref()
        .map(|e| e.steps.0.clone())
        .unwrap_or_default()
        .iter()
        .map(|st| {
            let users: Vec<String> = st
                .approvers
                .iter()
                .filter_map(|a| match a {
                    Approver::User { user_id } => Some(user_id.to_string()),
                    _ => None,
                })
                .collect();
            let manager = st.approvers.contains(&Approver::Manager);
            let team = st.approvers.iter().find_map(|a| match a {
                Approver::TeamManager { team_id } => Some(team_id.to_string()),
                _ => None,
            });
            let role = st.approvers.iter().find_map(|a| match a {
                Approver::Role { role } => Some(role.clone()),
                _ => None,
            });
            context! { name => st.name, users => users, manager => manager, team => team, role => role,
            rule => st.rule, when_empty => st.when_empty.map(|u| u.to_string()), skip_submitter => st.skip_submitter }
        })
        .chain((0..NEW_ROWS).map(|_| context! { skip_submitter => true, rule => "all" }))
        .collect();
    let conditions: Vec<Value> = editing
        .as_ref()
        .map(|e| e.conditions.0.clone())
        .unwrap_or_default()
        .iter()
        .map(|c| context! { field => c.field, op => c.op, value => c.value })
        .chain((0..NEW_ROWS).map(|_| context! {}))
        .collect();
    let facts: Vec<&str> = APPROVABLE
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    p.page_status(
        s,
        status,
        "approval_processes.html",
        "approval_processes",
        context! { processes => all, editing => editing, errors => errors, steps => steps,
        conditions => conditions, facts => facts, ops => OPS, users => users, teams => teams,
        roles => roles, can_edit => p.ctx.can("approval_processes", Action::Update).is_some() },
    )
}

async fn processes_page(State(s): State<AppState>, p: Signed) -> Response {
    processes_view(&s, &p, StatusCode::OK, None, vec![]).await
}

async fn edit_page(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    match approvals::process(&s.db, &p.ctx, id).await {
        Ok(pr) => processes_view(&s, &p, StatusCode::OK, Some(pr), vec![]).await,
        Err(e) => p.error(&s, e),
    }
}

/// The posted form as the API's input: `c<i>.*` condition rows (blank value skipped) and
/// `s<i>.*` step rows (blank name skipped); a step's approvers are its chosen users, its
/// submitter's manager, a team's managers and a role, as ticked.
fn process_input(form: &axum::body::Bytes) -> Result<ProcessInput, Vec<FieldError>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(form).unwrap_or_default();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(n, v)| n == k && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    let rows = |prefix: char| {
        pairs
            .iter()
            .filter_map(|(k, _)| {
                k.strip_prefix(prefix)?
                    .split_once('.')?
                    .0
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(0, |m| m + 1)
    };
    let mut errs = Vec::new();
    let mut conditions = Vec::new();
    for i in 0..rows('c') {
        let Some(raw) = get(&format!("c{i}.value")) else {
            continue;
        };
        let Some(value) = crate::money::parse(&raw) else {
            errs.push(FieldError::new(
                &format!("conditions[{}].value", conditions.len()),
                "invalid",
            ));
            continue;
        };
        // Money facts are typed in yuan, a discount in percent: both are hundredths.
        conditions.push(Condition {
            field: get(&format!("c{i}.field")).unwrap_or_default(),
            op: get(&format!("c{i}.op")).unwrap_or_default(),
            value,
        });
    }
    let mut steps = Vec::new();
    for i in 0..rows('s') {
        let g = |k: &str| get(&format!("s{i}.{k}"));
        let Some(name) = g("name") else { continue };
        let mut approvers: Vec<Approver> = all(&format!("s{i}.users"))
            .iter()
            .filter_map(|u| u.parse().ok())
            .map(|user_id| Approver::User { user_id })
            .collect();
        if g("manager").is_some() {
            approvers.push(Approver::Manager);
        }
        if let Some(team_id) = g("team").and_then(|t| t.parse().ok()) {
            approvers.push(Approver::TeamManager { team_id });
        }
        if let Some(role) = g("role") {
            approvers.push(Approver::Role { role });
        }
        steps.push(Step {
            name,
            approvers,
            rule: if g("rule").as_deref() == Some("any") {
                Rule::Any
            } else {
                Rule::All
            },
            when_empty: g("when_empty").and_then(|u| u.parse().ok()),
            skip_submitter: g("skip_submitter").is_some(),
        });
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ProcessInput {
        version: get("version").and_then(|v| v.parse().ok()),
        name: Some(get("name").unwrap_or_default()),
        entity: Some(get("entity").unwrap_or_else(|| "quotes".into())),
        position: get("position").and_then(|v| v.parse().ok()),
        conditions: Some(conditions),
        steps: Some(steps),
        active: Some(get("active").is_some()),
    })
}

async fn save_process(
    s: &AppState,
    p: &Signed,
    id: Option<Uuid>,
    body: axum::body::Bytes,
) -> Response {
    let csrf: Option<String> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v);
    if !p.csrf_ok(&csrf) {
        return forbidden_csrf();
    }
    let result = match process_input(&body) {
        Ok(mut input) => match id {
            Some(id) => {
                input.entity = None;
                approvals::update_process(&s.db, &p.ctx, id, None, input).await
            }
            None => approvals::create_process(&s.db, &p.ctx, input).await,
        }
        .map_err(|e| p.field_errors(e)),
        Err(errs) => Err(Ok(crate::problem::localize(errs, &p.ctx.locale))),
    };
    match result {
        Ok(pr) => Redirect::to(&format!("/admin/approval-processes/{}", pr.id)).into_response(),
        Err(Ok(errors)) => {
            let errors = crate::problem::with_row_labels(
                errors,
                &p.ctx.locale,
                &[
                    ("steps", "approval.step_n"),
                    ("conditions", "approval.condition_n"),
                ],
            );
            let editing = match id {
                Some(id) => approvals::process(&s.db, &p.ctx, id).await.ok(),
                None => None,
            };
            processes_view(s, p, StatusCode::UNPROCESSABLE_ENTITY, editing, errors).await
        }
        Err(Err(Error::PreconditionFailed { .. })) => Redirect::to(&format!(
            "/admin/approval-processes/{}",
            id.unwrap_or_default()
        ))
        .into_response(),
        Err(Err(e)) => p.error(s, e),
    }
}

async fn create_page(State(s): State<AppState>, p: Signed, body: axum::body::Bytes) -> Response {
    save_process(&s, &p, None, body).await
}

async fn update_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Response {
    save_process(&s, &p, Some(id), body).await
}

// ---- decision links (from the approval email) ------------------------------------------------

#[derive(serde::Deserialize, Default)]
struct LinkQuery {
    decision: Option<String>,
}

/// The page a decision link in an approval email opens, without signing in: what is asked
/// and one button for the decision the link named (a GET decides nothing, so a mail
/// scanner opening the link changes nothing).
async fn link_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Response {
    let decision = match q.decision.as_deref() {
        Some("reject") => "reject",
        _ => "approve",
    };
    link_view(&s, &headers, &token, StatusCode::OK, context! { decision }).await
}

/// The link's page with the request as it stands (or "this link no longer works").
async fn link_view(
    s: &AppState,
    headers: &HeaderMap,
    token: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    match approvals::open_link(&s.db, token).await {
        Ok(target) => public_page(
            s,
            headers,
            status,
            "approval_link.html",
            context! { r => target.request, live => target.live, token, ..extra },
        ),
        Err(Error::NotFound) => public_page(
            s,
            headers,
            StatusCode::NOT_FOUND,
            "approval_link.html",
            context! { gone => true },
        ),
        Err(e) => {
            tracing::error!(error = %e, "approval link");
            public_page(
                s,
                headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                "approval_link.html",
                context! { gone => true },
            )
        }
    }
}

#[derive(serde::Deserialize)]
struct LinkForm {
    _csrf: Option<String>,
    decision: String,
    comment: Option<String>,
}

/// `POST /approvals/by-link/{token}`: the decision, as the approver (once).
async fn link_decide(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<LinkForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let comment = f.comment.filter(|c| !c.trim().is_empty());
    match approvals::decide_by_link(&s.db, &token, &f.decision, comment).await {
        Ok(_) => link_view(
            &s,
            &headers,
            &token,
            StatusCode::OK,
            context! { done => f.decision },
        ),
        Err(Error::Validation(errs)) => link_view(
            &s,
            &headers,
            &token,
            StatusCode::UNPROCESSABLE_ENTITY,
            context! { decision => f.decision, errors => errs },
        ),
        Err(Error::Conflict(_) | Error::Forbidden) => link_view(
            &s,
            &headers,
            &token,
            StatusCode::CONFLICT,
            context! { decision => f.decision },
        ),
        Err(e) => {
            tracing::error!(error = %e, "approval link decision");
            link_view(
                &s,
                &headers,
                &token,
                StatusCode::INTERNAL_SERVER_ERROR,
                context! {},
            )
        }
    }
    .await
}
