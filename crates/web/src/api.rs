//! `/api/v1`: JSON handlers. Each one parses, calls one platform service function (which checks
//! permissions and writes audit), and shapes the answer. The OpenAPI document is generated from
//! the `#[utoipa::path]` annotations here.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use guanxi_platform::api_tokens::{self, ApiToken, CreatedToken, NewToken};
use guanxi_platform::audit::{self, AuditEvent, AuditFilter};
use guanxi_platform::jobs::{self, Job, JobFilter};
use guanxi_platform::page::Page;
use guanxi_platform::perms::Permissions;
use guanxi_platform::roles::{self, Role, RoleInput};
use guanxi_platform::teams::{self, Team, TeamInput};
use guanxi_platform::tenants::{self, NewTenant, Tenant, TenantPatch};
use guanxi_platform::users::{self, NewUser, User, UserFilter, UserPatch};
use guanxi_platform::views::{self, SavedView, SavedViewFilter, SavedViewInput};
use guanxi_platform::{auth, Ctx, Error};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{request_locale, ApiJson, Auth, ClientIp, IfMatch};
use crate::problem::{ApiError, Problem};
use crate::session;
use crate::state::AppState;

pub type ApiResult<T> = Result<T, ApiError>;

/// Attaches the caller's language to a platform error.
pub trait Localize<T> {
    fn l(self, ctx: &Ctx) -> ApiResult<T>;
}

impl<T> Localize<T> for Result<T, Error> {
    fn l(self, ctx: &Ctx) -> ApiResult<T> {
        self.map_err(|e| ApiError::new(e, &ctx.locale))
    }
}

/// A single record with its version as a strong ETag.
pub fn versioned<T: Serialize>(status: StatusCode, body: &T, version: i64) -> Response {
    let mut r = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SortedPageParams {
    /// Sort field (`name`, `created_at`); prefix `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

// ---- me ------------------------------------------------------------------------------------

/// The signed-in user with their role's permissions.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub tenant: Tenant,
    /// The language answers are given in.
    pub locale: String,
    #[schema(value_type = Object)]
    pub permissions: Permissions,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", responses(
    (status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Json<Me>> {
    let user_id = ctx.user_id.ok_or(Error::Unauthorized).l(&ctx)?;
    let user = users::get_self(&s.db, &ctx, user_id).await.l(&ctx)?;
    let tenant = tenants::get_unchecked(&s.db, ctx.tenant_id).await.l(&ctx)?;
    Ok(Json(Me {
        user,
        tenant,
        locale: ctx.locale.clone(),
        permissions: ctx.perms.clone(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    pub name: Option<String>,
    /// `zh-CN`, `zh-TW`, `en`, or `null` to follow the browser.
    #[serde(default, deserialize_with = "guanxi_platform::validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "me", request_body = MePatch, responses(
    (status = 200, body = User), (status = 422, body = Problem)))]
pub async fn update_me(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(p): ApiJson<MePatch>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        users::update_self(&s.db, &ctx, p.name, p.locale)
            .await
            .l(&ctx)?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = PasswordChange, responses(
    (status = 204, description = "Changed; the user's other sessions ended"), (status = 422, body = Problem)))]
pub async fn change_password(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    headers: HeaderMap,
    ApiJson(p): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let mut errs = guanxi_platform::error::Errors::default();
    let cur = errs
        .required("current_password", &p.current_password)
        .map(str::to_owned);
    let new = errs
        .required("new_password", &p.new_password)
        .map(str::to_owned);
    errs.finish().l(&ctx)?;
    let keep = crate::extract::cookie(&headers, crate::extract::SESSION_COOKIE);
    auth::change_password(
        &s.db,
        &ctx,
        &cur.unwrap_or_default(),
        &new.unwrap_or_default(),
        keep,
    )
    .await
    .l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Options of sign-out-everywhere.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SignOutEverywhere {
    /// Also revoke every API token of this user (default false).
    #[serde(default)]
    pub api_tokens: bool,
}

#[utoipa::path(post, path = "/api/v1/me/sign-out-everywhere", tag = "me", request_body(content = Option<SignOutEverywhere>, description = "Optional; `{\"api_tokens\": true}` also revokes the user's API tokens"), responses(
    (status = 204, description = "Every session of this user ended (and their API tokens, when asked)")))]
pub async fn sign_out_everywhere(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let opts: SignOutEverywhere = if body.iter().all(u8::is_ascii_whitespace) {
        SignOutEverywhere::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::BadRequest(e.to_string()))
            .l(&ctx)?
    };
    auth::sign_out_everywhere(&s.db, &ctx, opts.api_tokens)
        .await
        .l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- sessions, sign-up, password links -----------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionOut {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// Send in `X-CSRF-Token` on cookie-authenticated requests that change something.
    pub csrf_token: String,
}

async fn session_response(
    s: &AppState,
    new: auth::NewSession,
    status: StatusCode,
) -> ApiResult<Response> {
    let csrf = auth::session(&s.db, &new.cookie).await?.csrf;
    let body = SessionOut {
        user_id: new.user_id,
        tenant_id: new.tenant_id,
        csrf_token: csrf,
    };
    let mut r = (status, Json(body)).into_response();
    session::set_cookie(&mut r, &new.cookie);
    Ok(r)
}

#[utoipa::path(post, path = "/api/v1/sessions", tag = "auth", request_body = SignIn, security(()), responses(
    (status = 201, body = SessionOut, description = "Signed in; the session cookie is set"),
    (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn sign_in(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SignIn>,
) -> ApiResult<Response> {
    let locale = request_locale(&headers, "en");
    let mut errs = guanxi_platform::error::Errors::default();
    let email = errs.required("email", &b.email).map(str::to_owned);
    let password = errs.required("password", &b.password).map(str::to_owned);
    errs.finish().map_err(|e| ApiError::new(e, &locale))?;
    let new = auth::sign_in(
        &s.db,
        &s.limiter,
        &email.unwrap_or_default(),
        &password.unwrap_or_default(),
        &ip,
    )
    .await
    .map_err(|e| ApiError::new(e, &locale))?;
    session_response(&s, new, StatusCode::CREATED).await
}

#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "auth", responses(
    (status = 204, description = "Signed out; the cookie is cleared")))]
pub async fn sign_out(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(c) = crate::extract::cookie(&headers, crate::extract::SESSION_COOKIE) {
        auth::sign_out(&s.db, c).await.l(&ctx)?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    session::clear_cookie(&mut r);
    Ok(r)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    pub company: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    /// `zh-CN` (default), `zh-TW` or `en`.
    pub locale: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/signups", tag = "auth", request_body = SignUp, security(()), responses(
    (status = 201, body = SessionOut, description = "A new tenant and its admin; signed in"),
    (status = 403, body = Problem, description = "Sign-up is disabled"), (status = 422, body = Problem)))]
pub async fn sign_up(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SignUp>,
) -> ApiResult<Response> {
    let locale = request_locale(&headers, "zh-CN");
    let new = signup(&s, b, &locale)
        .await
        .map_err(|e| ApiError::new(e, &locale))?;
    session_response(&s, new, StatusCode::CREATED).await
}

/// Creates a tenant from a sign-up and signs its admin in (shared by the API and the page).
pub async fn signup(s: &AppState, b: SignUp, locale: &str) -> Result<auth::NewSession, Error> {
    if !s.config.allow_signup {
        return Err(Error::Forbidden);
    }
    let mut errs = guanxi_platform::error::Errors::default();
    errs.required("company", &b.company);
    errs.required("email", &b.email);
    errs.required("password", &b.password);
    errs.finish()?;
    let (tenant, admin) = tenants::create(
        &s.db,
        NewTenant {
            name: b.company.unwrap_or_default(),
            admin_email: b.email.unwrap_or_default(),
            admin_name: b.name.filter(|n| !n.trim().is_empty()),
            admin_password: b.password.unwrap_or_default(),
            locale: Some(b.locale.unwrap_or_else(|| locale.to_owned())),
        },
    )
    .await
    .map_err(|e| match e {
        // Field names as the sign-up form has them.
        Error::Validation(v) => Error::Validation(
            v.into_iter()
                .map(|mut f| {
                    f.field = match f.field.as_str() {
                        "name" => "company".into(),
                        "admin_email" => "email".into(),
                        "admin_password" => "password".into(),
                        _ => f.field,
                    };
                    f
                })
                .collect(),
        ),
        e => e,
    })?;
    auth::start_session(&s.db, tenant.id, admin.id).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/password-resets", tag = "auth", request_body = ResetRequest, security(()), responses(
    (status = 202, description = "If the address is known, a reset link is emailed")))]
pub async fn request_reset(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ResetRequest>,
) -> ApiResult<StatusCode> {
    let locale = request_locale(&headers, "en");
    let mut errs = guanxi_platform::error::Errors::default();
    let email = errs.required("email", &b.email).map(str::to_owned);
    errs.finish().map_err(|e| ApiError::new(e, &locale))?;
    auth::request_reset(&s.db, &email.unwrap_or_default(), &s.config.base_url)
        .await
        .map_err(|e| ApiError::new(e, &locale))?;
    s.jobs_wake.notify_one();
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UseLink {
    /// The `token` from the emailed invitation or reset link.
    pub token: Option<String>,
    pub password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/password-links", tag = "auth", request_body = UseLink, security(()), responses(
    (status = 201, body = SessionOut, description = "Password set; signed in"), (status = 422, body = Problem)))]
pub async fn use_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<UseLink>,
) -> ApiResult<Response> {
    let locale = request_locale(&headers, "en");
    let mut errs = guanxi_platform::error::Errors::default();
    let token = errs.required("token", &b.token).map(str::to_owned);
    let password = errs.required("password", &b.password).map(str::to_owned);
    errs.finish().map_err(|e| ApiError::new(e, &locale))?;
    let new = auth::use_link(
        &s.db,
        &token.unwrap_or_default(),
        &password.unwrap_or_default(),
    )
    .await
    .map_err(|e| ApiError::new(e, &locale))?;
    session_response(&s, new, StatusCode::CREATED).await
}

// ---- users ---------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserFilter), responses(
    (status = 200, body = Page<User>), (status = 403, body = Problem)))]
pub async fn list_users(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<UserFilter>,
) -> ApiResult<Json<Page<User>>> {
    Ok(Json(users::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, responses(
    (status = 201, body = User, description = "Created; without a password, an invitation is emailed"),
    (status = 422, body = Problem), (status = 403, body = Problem)))]
pub async fn create_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<NewUser>,
) -> ApiResult<Response> {
    let u = users::create(&s.db, &ctx, &s.config.base_url, b)
        .await
        .l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(versioned(StatusCode::CREATED, &u, u.version))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)), responses(
    (status = 200, body = User, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn get_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let u = users::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &u, u.version))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = UserPatch, responses(
    (status = 200, body = User), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<UserPatch>,
) -> ApiResult<Response> {
    let u = users::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &u, u.version))
}

// ---- teams ---------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", params(SortedPageParams), responses((status = 200, body = Page<Team>)))]
pub async fn list_teams(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(p): Query<SortedPageParams>,
) -> ApiResult<Json<Page<Team>>> {
    Ok(Json(
        teams::list(&s.db, &ctx, p.limit, p.cursor, p.sort)
            .await
            .l(&ctx)?,
    ))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamInput, responses(
    (status = 201, body = Team), (status = 422, body = Problem)))]
pub async fn create_team(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<TeamInput>,
) -> ApiResult<Response> {
    let t = teams::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &t, t.version))
}

#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Team), (status = 404, body = Problem)))]
pub async fn get_team(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let t = teams::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = TeamInput, responses((status = 200, body = Team), (status = 412, body = Problem)))]
pub async fn update_team(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<TeamInput>,
) -> ApiResult<Response> {
    let t = teams::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"), (status = 409, body = Problem, description = "The team has members")))]
pub async fn delete_team(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    teams::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- saved views ---------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/saved-views", tag = "saved views", params(SavedViewFilter), responses(
    (status = 200, body = Vec<SavedView>, description = "Your own views and the shared ones")))]
pub async fn list_views(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<SavedViewFilter>,
) -> ApiResult<Json<Vec<SavedView>>> {
    Ok(Json(views::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/saved-views", tag = "saved views", request_body = SavedViewInput, responses(
    (status = 201, body = SavedView), (status = 422, body = Problem)))]
pub async fn create_view(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<SavedViewInput>,
) -> ApiResult<Response> {
    let v = views::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &v, v.version))
}

#[utoipa::path(get, path = "/api/v1/saved-views/{id}", tag = "saved views", params(("id" = Uuid, Path)), responses(
    (status = 200, body = SavedView), (status = 404, body = Problem)))]
pub async fn get_view(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let v = views::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &v, v.version))
}

#[utoipa::path(patch, path = "/api/v1/saved-views/{id}", tag = "saved views", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = SavedViewInput, responses((status = 200, body = SavedView), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_view(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<SavedViewInput>,
) -> ApiResult<Response> {
    let v = views::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &v, v.version))
}

#[utoipa::path(delete, path = "/api/v1/saved-views/{id}", tag = "saved views", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"), (status = 404, body = Problem)))]
pub async fn delete_view(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    views::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- roles ---------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", params(PageParams), responses((status = 200, body = Page<Role>)))]
pub async fn list_roles(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Page<Role>>> {
    Ok(Json(
        roles::list(&s.db, &ctx, p.limit, p.cursor).await.l(&ctx)?,
    ))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = RoleInput, responses(
    (status = 201, body = Role), (status = 422, body = Problem)))]
pub async fn create_role(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<RoleInput>,
) -> ApiResult<Response> {
    let r = roles::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &r, r.version))
}

#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Role), (status = 404, body = Problem)))]
pub async fn get_role(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let r = roles::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = RoleInput, responses((status = 200, body = Role), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn update_role(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<RoleInput>,
) -> ApiResult<Response> {
    let r = roles::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &r, r.version))
}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"), (status = 409, body = Problem)))]
pub async fn delete_role(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    roles::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- API tokens ----------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/api-tokens", tag = "api-tokens", params(PageParams), responses((status = 200, body = Page<ApiToken>)))]
pub async fn list_tokens(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Page<ApiToken>>> {
    Ok(Json(
        api_tokens::list(&s.db, &ctx, p.limit, p.cursor)
            .await
            .l(&ctx)?,
    ))
}

#[utoipa::path(post, path = "/api/v1/api-tokens", tag = "api-tokens", request_body = NewToken, responses(
    (status = 201, body = CreatedToken, description = "The secret is in this response only"), (status = 422, body = Problem)))]
pub async fn create_token(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(api_tokens::create(&s.db, &ctx, b).await.l(&ctx)?),
    ))
}

#[utoipa::path(get, path = "/api/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ApiToken), (status = 404, body = Problem)))]
pub async fn get_token(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ApiToken>> {
    Ok(Json(api_tokens::get(&s.db, &ctx, id).await.l(&ctx)?))
}

#[utoipa::path(delete, path = "/api/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ApiToken, description = "Revoked"), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ApiToken>> {
    Ok(Json(api_tokens::revoke(&s.db, &ctx, id).await.l(&ctx)?))
}

// ---- audit, tenant, jobs -------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit", params(AuditFilter), responses(
    (status = 200, body = Page<AuditEvent>), (status = 403, body = Problem)))]
pub async fn list_audit(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<AuditFilter>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    Ok(Json(audit::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", responses((status = 200, body = Tenant)))]
pub async fn get_tenant(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Response> {
    let t = tenants::get(&s.db, &ctx).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

#[utoipa::path(patch, path = "/api/v1/tenant", tag = "tenant", params(("If-Match" = Option<String>, Header)), request_body = TenantPatch,
    responses((status = 200, body = Tenant), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_tenant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<TenantPatch>,
) -> ApiResult<Response> {
    let t = tenants::update(&s.db, &ctx, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &t, t.version))
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobFilter), responses((status = 200, body = Page<Job>)))]
pub async fn list_jobs(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<JobFilter>,
) -> ApiResult<Json<Page<Job>>> {
    Ok(Json(jobs::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Job), (status = 404, body = Problem)))]
pub async fn get_job(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Job>> {
    Ok(Json(jobs::get(&s.db, &ctx, id).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Job), (status = 409, body = Problem, description = "Not a dead letter")))]
pub async fn retry_job(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Job>> {
    let j = jobs::retry(&s.db, &ctx, id).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(Json(j))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/invitations", tag = "users", params(("id" = Uuid, Path)), responses(
    (status = 202, description = "A new invitation email is queued"), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "The user already has a password or is deactivated")))]
pub async fn resend_invitation(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    users::resend_invitation(&s.db, &ctx, &s.config.base_url, id)
        .await
        .l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(StatusCode::ACCEPTED)
}

/// A password an admin sets for a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// At least 10 characters.
    pub password: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = Uuid, Path)), request_body = SetPassword, responses(
    (status = 204, description = "Password set; the user's sessions ended and older sign-in links stopped working"),
    (status = 404, body = Problem), (status = 409, body = Problem, description = "The user is deactivated"),
    (status = 422, body = Problem)))]
pub async fn set_user_password(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    users::set_password(&s.db, &ctx, id, body.password.as_deref().unwrap_or(""))
        .await
        .l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{id}/sign-in-links", tag = "users", params(("id" = Uuid, Path)), responses(
    (status = 201, body = auth::SignInLink, description = "A one-time link to set a password, shown once, to pass on by hand (no email is sent)"),
    (status = 404, body = Problem), (status = 409, body = Problem, description = "The user is deactivated")))]
pub async fn create_sign_in_link(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<auth::SignInLink>)> {
    let link = users::sign_in_link(&s.db, &ctx, &s.config.base_url, id)
        .await
        .l(&ctx)?;
    Ok((StatusCode::CREATED, Json(link)))
}
