//! `/api/v1/accounts`, `/api/v1/contacts` and `/api/v1/search`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use guanxi_customers::accounts::{self, Account, AccountFilter, AccountInput};
use guanxi_customers::contacts::{self, Contact, ContactFilter, ContactInput};
use guanxi_customers::search::{self, SearchQuery, SearchResults};
use guanxi_platform::page::Page;
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::problem::Problem;
use crate::state::AppState;

// ---- accounts ------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(AccountFilter), responses(
    (status = 200, body = Page<Account>), (status = 422, body = Problem)))]
pub async fn list_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<AccountFilter>,
) -> ApiResult<Json<Page<Account>>> {
    Ok(Json(accounts::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = AccountInput, responses(
    (status = 201, body = Account), (status = 422, body = Problem)))]
pub async fn create_account(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<AccountInput>,
) -> ApiResult<Response> {
    let a = accounts::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &a, a.version))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Account), (status = 404, body = Problem)))]
pub async fn get_account(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let a = accounts::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = AccountInput, responses((status = 200, body = Account), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "In the trash"), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_account(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<AccountInput>,
) -> ApiResult<Response> {
    let a = accounts::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash"), (status = 404, body = Problem)))]
pub async fn delete_account(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    accounts::set_deleted(&s.db, &ctx, id, true).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/accounts/{id}/restore", tag = "accounts", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Account), (status = 404, body = Problem), (status = 422, body = Problem, description = "Its credit code is now used by another account")))]
pub async fn restore_account(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let a = accounts::set_deleted(&s.db, &ctx, id, false)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

// ---- contacts ------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ContactFilter), responses(
    (status = 200, body = Page<Contact>), (status = 422, body = Problem)))]
pub async fn list_contacts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<ContactFilter>,
) -> ApiResult<Json<Page<Contact>>> {
    Ok(Json(contacts::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", request_body = ContactInput, responses(
    (status = 201, body = Contact), (status = 422, body = Problem)))]
pub async fn create_contact(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ContactInput>,
) -> ApiResult<Response> {
    let c = contacts::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &c, c.version))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Contact), (status = 404, body = Problem)))]
pub async fn get_contact(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let c = contacts::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = ContactInput, responses((status = 200, body = Contact), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "In the trash"), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_contact(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<ContactInput>,
) -> ApiResult<Response> {
    let c = contacts::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash"), (status = 404, body = Problem)))]
pub async fn delete_contact(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    contacts::set_deleted(&s.db, &ctx, id, true).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/contacts/{id}/restore", tag = "contacts", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Contact), (status = 404, body = Problem)))]
pub async fn restore_contact(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let c = contacts::set_deleted(&s.db, &ctx, id, false)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

// ---- search --------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchQuery), responses(
    (status = 200, body = SearchResults), (status = 422, body = Problem)))]
pub async fn search(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    Ok(Json(search::search(&s.db, &ctx, &q).await.l(&ctx)?))
}
