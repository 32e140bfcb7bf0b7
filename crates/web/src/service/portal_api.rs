//! The customer portal's API, `/portal/api/v1` (its own sign-in: a portal session token as
//! `Authorization: Bearer`, or the portal's cookie for its pages), and the colleagues' side:
//! `/api/v1/portal-users` (open the portal to a contact, company-wide access, close it) and
//! `/api/v1/articles/deflection`.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use guanxi_platform::Error;
use guanxi_service::articles::{self, PublicArticle, Reader, Suggestion};
use guanxi_service::attachments::Attachment;
use guanxi_service::portal::{
    self, Customer, Deflection, PortalMessage, PortalTicket, PortalUser, PortalUserInput, Question,
    QuestionInput, ReplyInput, RequestInput, SolvedInput,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{cookie, request_locale, ApiJson, Auth, ClientIp, IfMatch};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The portal's session cookie (its pages; the API takes the same value as a bearer token).
pub const PORTAL_COOKIE: &str = "gx_portal";

/// The signed-in customer, from `Authorization: Bearer` or the portal cookie.
pub struct Portal(pub Customer);

impl FromRequestParts<AppState> for Portal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let locale = request_locale(&parts.headers, "en");
        let Some(token) = portal_token(&parts.headers) else {
            return Err(ApiError::new(Error::Unauthorized, &locale));
        };
        portal::session(&s.db, &token)
            .await
            .map(Portal)
            .map_err(|e| ApiError::new(e, &locale))
    }
}

/// The portal session a request carries: `Authorization: Bearer`, else the portal cookie.
fn portal_token(headers: &HeaderMap) -> Option<String> {
    match headers.get(header::AUTHORIZATION) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().to_owned()),
        None => cookie(headers, PORTAL_COOKIE).map(str::to_owned),
    }
}

fn l<T>(r: Result<T, Error>, c: &Customer) -> ApiResult<T> {
    r.map_err(|e| ApiError::new(e, &c.locale))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalSignIn {
    /// The company whose portal it is.
    pub tenant_id: Option<Uuid>,
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PortalSession {
    /// Send as `Authorization: Bearer <token>` (valid 30 days).
    pub token: String,
    pub customer: Customer,
}

/// Signs a customer in with email and password (wrong ones are rate-limited; the answer never
/// says whether the address is known).
#[utoipa::path(post, path = "/portal/api/v1/sessions", tag = "portal", request_body = PortalSignIn, security(()), responses(
    (status = 201, body = PortalSession), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn portal_sign_in(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(b): ApiJson<PortalSignIn>,
) -> ApiResult<Response> {
    let locale = request_locale(&headers, "en");
    let mut errs = guanxi_platform::error::Errors::default();
    if b.tenant_id.is_none() {
        errs.add("tenant_id", "required");
    }
    let email = errs.required("email", &b.email).map(str::to_owned);
    let password = errs.required("password", &b.password).map(str::to_owned);
    errs.finish().map_err(|e| ApiError::new(e, &locale))?;
    let new = portal::sign_in(
        &s.db,
        &s.limiter,
        b.tenant_id.unwrap_or_default(),
        &email.unwrap_or_default(),
        &password.unwrap_or_default(),
        &ip,
    )
    .await
    .map_err(|e| ApiError::new(e, &locale))?;
    let customer = portal::session(&s.db, &new.token)
        .await
        .map_err(|e| ApiError::new(e, &locale))?;
    Ok((
        StatusCode::CREATED,
        Json(PortalSession {
            token: new.token,
            customer,
        }),
    )
        .into_response())
}

/// Signs this session out.
#[utoipa::path(delete, path = "/portal/api/v1/sessions", tag = "portal", responses(
    (status = 204, description = "Signed out"), (status = 401, body = Problem)))]
pub async fn portal_sign_out(
    State(s): State<AppState>,
    Portal(c): Portal,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let token = portal_token(&headers).unwrap_or_default();
    l(portal::sign_out(&s.db, &token).await, &c)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub tenant_id: Option<Uuid>,
    pub email: Option<String>,
}

/// Emails a one-time sign-in link (valid 2 hours) to a customer with portal access. Always
/// 202, known address or not.
#[utoipa::path(post, path = "/portal/api/v1/sign-in-links", tag = "portal", request_body = LinkRequest, security(()), responses(
    (status = 202, description = "Sent if the address has portal access"), (status = 422, body = Problem)))]
pub async fn portal_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<LinkRequest>,
) -> ApiResult<StatusCode> {
    let locale = request_locale(&headers, "en");
    let mut errs = guanxi_platform::error::Errors::default();
    if b.tenant_id.is_none() {
        errs.add("tenant_id", "required");
    }
    let email = errs.required("email", &b.email).map(str::to_owned);
    errs.finish().map_err(|e| ApiError::new(e, &locale))?;
    portal::request_link(
        &s.db,
        b.tenant_id.unwrap_or_default(),
        &email.unwrap_or_default(),
        &s.config.base_url,
    )
    .await
    .map_err(|e| ApiError::new(e, &locale))?;
    Ok(StatusCode::ACCEPTED)
}

/// Who is signed in.
#[utoipa::path(get, path = "/portal/api/v1/me", tag = "portal", responses(
    (status = 200, body = Customer), (status = 401, body = Problem)))]
pub async fn portal_me(Portal(c): Portal) -> Json<Customer> {
    Json(c)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalTicketQuery {
    /// `company`: every ticket of the customer's company (with company access); default
    /// their own.
    pub scope: Option<String>,
    /// Default 50, at most 200.
    pub limit: Option<i64>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PortalTicketList {
    pub items: Vec<PortalTicket>,
    /// The next page's cursor (absent on the last page).
    pub next_cursor: Option<String>,
}

/// The customer's tickets (or their company's), most recently changed first.
#[utoipa::path(get, path = "/portal/api/v1/tickets", tag = "portal", params(PortalTicketQuery), responses(
    (status = 200, body = PortalTicketList), (status = 401, body = Problem)))]
pub async fn portal_tickets(
    State(s): State<AppState>,
    Portal(c): Portal,
    Query(q): Query<PortalTicketQuery>,
) -> ApiResult<Json<PortalTicketList>> {
    let company = q.scope.as_deref() == Some("company");
    let page = l(
        portal::tickets(&s.db, &c, company, q.limit, q.cursor).await,
        &c,
    )?;
    Ok(Json(PortalTicketList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Opens a ticket (channel `portal`). `question_id` marks the question asked before as
/// submitted anyway.
#[utoipa::path(post, path = "/portal/api/v1/tickets", tag = "portal", request_body = RequestInput, responses(
    (status = 201, body = PortalTicket), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn portal_open_ticket(
    State(s): State<AppState>,
    Portal(c): Portal,
    ApiJson(b): ApiJson<RequestInput>,
) -> ApiResult<(StatusCode, Json<PortalTicket>)> {
    let t = l(portal::open_ticket(&s.db, &c, b, &[]).await, &c)?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[utoipa::path(get, path = "/portal/api/v1/tickets/{id}", tag = "portal", params(("id" = Uuid, Path)), responses(
    (status = 200, body = PortalTicket), (status = 404, body = Problem)))]
pub async fn portal_ticket(
    State(s): State<AppState>,
    Portal(c): Portal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PortalTicket>> {
    Ok(Json(l(portal::ticket(&s.db, &c, id).await, &c)?))
}

#[derive(Serialize, ToSchema)]
pub struct PortalMessageList {
    pub items: Vec<PortalMessage>,
}

/// The desk's replies and the customer's words, oldest first (internal notes never).
#[utoipa::path(get, path = "/portal/api/v1/tickets/{id}/messages", tag = "portal", params(("id" = Uuid, Path)), responses(
    (status = 200, body = PortalMessageList), (status = 404, body = Problem)))]
pub async fn portal_messages(
    State(s): State<AppState>,
    Portal(c): Portal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PortalMessageList>> {
    Ok(Json(PortalMessageList {
        items: l(portal::messages(&s.db, &c, id).await, &c)?,
    }))
}

/// The customer writes on their ticket (a resolved one reopens; a closed one: 409).
#[utoipa::path(post, path = "/portal/api/v1/tickets/{id}/messages", tag = "portal", params(("id" = Uuid, Path)), request_body = ReplyInput, responses(
    (status = 201, body = PortalMessage), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn portal_reply(
    State(s): State<AppState>,
    Portal(c): Portal,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<ReplyInput>,
) -> ApiResult<(StatusCode, Json<PortalMessage>)> {
    let m = l(portal::reply(&s.db, &c, id, b, &[]).await, &c)?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// Uploads a file (the request body, at most 8 MiB; its type decided by the name's extension
/// and checked against the bytes) to the ticket, sent with the next reply naming it in
/// `attachment_ids`.
#[utoipa::path(post, path = "/portal/api/v1/tickets/{id}/attachments", tag = "portal",
    params(("id" = Uuid, Path), crate::service::api::AttachParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses(
    (status = 201, body = Attachment), (status = 404, body = Problem), (status = 413, body = Problem),
    (status = 422, body = Problem)))]
pub async fn portal_attach(
    State(s): State<AppState>,
    Portal(c): Portal,
    Path(id): Path<Uuid>,
    Query(q): Query<crate::service::api::AttachParams>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Attachment>)> {
    let a = l(
        portal::attach(&s.db, &c, id, q.name.as_deref(), &body).await,
        &c,
    )?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// A file of the ticket: what the customer sent and what the desk's replies sent them.
#[utoipa::path(get, path = "/portal/api/v1/tickets/{id}/attachments/{file_id}", tag = "portal",
    params(("id" = Uuid, Path), ("file_id" = Uuid, Path)), responses(
    (status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = Problem)))]
pub async fn portal_attachment(
    State(s): State<AppState>,
    Portal(c): Portal,
    Path((id, file)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let (meta, data) = l(portal::attachment(&s.db, &c, id, file).await, &c)?;
    Ok(crate::files::download(&meta, data))
}

/// Before opening a ticket: the public articles that may answer the question (remembered, to
/// count what the knowledge base spares the desk).
#[utoipa::path(post, path = "/portal/api/v1/questions", tag = "portal", request_body = QuestionInput, responses(
    (status = 201, body = Question), (status = 422, body = Problem)))]
pub async fn portal_ask(
    State(s): State<AppState>,
    Portal(c): Portal,
    ApiJson(b): ApiJson<QuestionInput>,
) -> ApiResult<(StatusCode, Json<Question>)> {
    let q = l(portal::ask(&s.db, &c, b).await, &c)?;
    Ok((StatusCode::CREATED, Json(q)))
}

/// "This article answered it": no ticket needed.
#[utoipa::path(post, path = "/portal/api/v1/questions/{id}/solved", tag = "portal", params(("id" = Uuid, Path)), request_body = SolvedInput, responses(
    (status = 204, description = "Counted as solved by the article"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn portal_solved(
    State(s): State<AppState>,
    Portal(c): Portal,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<SolvedInput>,
) -> ApiResult<StatusCode> {
    l(portal::solved(&s.db, &c, id, b).await, &c)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalArticleQuery {
    /// A question: the best-matching articles instead of all.
    pub q: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PortalArticleList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<PublicArticle>,
    /// With `q`: the matches, best first.
    pub found: Vec<Suggestion>,
}

/// The company's public articles (each once, in the customer's company's language when
/// written in it), or with `q` those answering a question.
#[utoipa::path(get, path = "/portal/api/v1/articles", tag = "portal", params(PortalArticleQuery), responses(
    (status = 200, body = PortalArticleList), (status = 401, body = Problem)))]
pub async fn portal_articles(
    State(s): State<AppState>,
    Portal(c): Portal,
    Query(q): Query<PortalArticleQuery>,
) -> ApiResult<Json<PortalArticleList>> {
    match q.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(text) => Ok(Json(PortalArticleList {
            items: vec![],
            found: l(
                articles::suggest(&s.db, Reader::Public(c.tenant_id), text, &c.locale, 20).await,
                &c,
            )?,
        })),
        None => Ok(Json(PortalArticleList {
            items: l(
                articles::public_index(&s.db, c.tenant_id, &c.locale).await,
                &c,
            )?,
            found: vec![],
        })),
    }
}

/// A public article (counted as viewed).
#[utoipa::path(get, path = "/portal/api/v1/articles/{id}", tag = "portal", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn portal_article(
    State(s): State<AppState>,
    Portal(c): Portal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PublicArticle>> {
    let (a, _) = l(
        articles::public_open(&s.db, c.tenant_id, id, true).await,
        &c,
    )?;
    Ok(Json(a))
}

// ---- Colleagues' side ----

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalUserQuery {
    /// One contact's portal access.
    pub contact_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PortalUserList {
    pub items: Vec<PortalUser>,
}

/// Contacts with portal access (newest first, at most 500), or one contact's.
#[utoipa::path(get, path = "/api/v1/portal-users", tag = "portal", params(PortalUserQuery), responses(
    (status = 200, body = PortalUserList)))]
pub async fn list_portal_users(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PortalUserQuery>,
) -> ApiResult<Json<PortalUserList>> {
    Ok(Json(PortalUserList {
        items: portal::list_users(&s.db, &ctx, q.contact_id)
            .await
            .l(&ctx)?,
    }))
}

/// Opens the portal to a contact (by the email address on the contact) and emails them a
/// sign-in link valid 7 days.
#[utoipa::path(post, path = "/api/v1/portal-users", tag = "portal", request_body = PortalUserInput, responses(
    (status = 201, body = PortalUser), (status = 422, body = Problem)))]
pub async fn invite_portal_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PortalUserInput>,
) -> ApiResult<Response> {
    let u = portal::invite(&s.db, &ctx, b, &s.config.base_url)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &u, u.version))
}

#[utoipa::path(get, path = "/api/v1/portal-users/{id}", tag = "portal", params(("id" = Uuid, Path)), responses(
    (status = 200, body = PortalUser), (status = 404, body = Problem)))]
pub async fn get_portal_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let u = portal::get_user(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &u, u.version))
}

/// Company-wide access, or closing the portal to them (their sessions end).
#[utoipa::path(patch, path = "/api/v1/portal-users/{id}", tag = "portal", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = PortalUserInput, responses((status = 200, body = PortalUser), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_portal_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<PortalUserInput>,
) -> ApiResult<Response> {
    let u = portal::update_user(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &u, u.version))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeflectionQuery {
    /// Questions asked from then (default: the last 30 days).
    pub since: Option<DateTime<Utc>>,
}

/// What the knowledge base spared the desk: the portal's questions answered by a suggested
/// article, left without a ticket, or submitted anyway.
#[utoipa::path(get, path = "/api/v1/articles/deflection", tag = "articles", params(DeflectionQuery), responses(
    (status = 200, body = Deflection)))]
pub async fn deflection(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<DeflectionQuery>,
) -> ApiResult<Json<Deflection>> {
    let since = q
        .since
        .unwrap_or_else(|| guanxi_platform::time::now() - chrono::Duration::days(30));
    Ok(Json(portal::deflection(&s.db, &ctx, since).await.l(&ctx)?))
}
