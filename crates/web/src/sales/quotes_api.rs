//! `/api/v1/price-books`, `/api/v1/prices`, `/api/v1/quotes` and `/api/v1/numbering/{name}`:
//! what products cost whom, the quotes built from them (working copy, frozen versions, the
//! customer's answer), and the tenant's document number patterns.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use guanxi_platform::numbering;
use guanxi_platform::page::Page;
use guanxi_sales::price_books::{self, PriceBook, PriceBookInput, PriceQuery};
use guanxi_sales::pricing::Price;
use guanxi_sales::quotes::{self, Decision, Quote, QuoteFilter, QuoteInput, QuoteVersion};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PriceBookList {
    /// Most specific audience first (without entries; read a book for them).
    pub items: Vec<PriceBook>,
}

#[utoipa::path(get, path = "/api/v1/price-books", tag = "quotes", responses((status = 200, body = PriceBookList)))]
pub async fn list_price_books(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<PriceBookList>> {
    Ok(Json(PriceBookList {
        items: price_books::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A new price book: its audience (`account` with `account_id`; `grade`, `industry` or
/// `channel` with `audience_value`; or `all`), validity and entries (volume tiers by
/// `min_quantity`).
#[utoipa::path(post, path = "/api/v1/price-books", tag = "quotes", request_body = PriceBookInput, responses(
    (status = 201, body = PriceBook), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_price_book(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PriceBookInput>,
) -> ApiResult<Response> {
    let p = price_books::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &p, p.version))
}

#[utoipa::path(get, path = "/api/v1/price-books/{id}", tag = "quotes", params(("id" = Uuid, Path)), responses(
    (status = 200, body = PriceBook), (status = 404, body = Problem)))]
pub async fn get_price_book(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let p = price_books::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

/// Changes a book; `entries` replaces all of them. Quotes already sent keep their prices.
#[utoipa::path(patch, path = "/api/v1/price-books/{id}", tag = "quotes", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = PriceBookInput, responses((status = 200, body = PriceBook), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_price_book(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<PriceBookInput>,
) -> ApiResult<Response> {
    let p = price_books::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

#[utoipa::path(delete, path = "/api/v1/price-books/{id}", tag = "quotes", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 404, body = Problem)))]
pub async fn delete_price_book(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    price_books::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The price a customer gets for a product, quantity and day, and the book it came from: the
/// most specific audience wins (the customer, its grade, its industry, the channel, everyone),
/// then the book valid from the latest day, then the lower price.
#[utoipa::path(get, path = "/api/v1/prices", tag = "quotes", params(PriceQuery), responses(
    (status = 200, body = Price), (status = 422, body = Problem)))]
pub async fn get_price(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PriceQuery>,
) -> ApiResult<Json<Price>> {
    Ok(Json(price_books::price_for(&s.db, &ctx, &q).await.l(&ctx)?))
}

#[utoipa::path(get, path = "/api/v1/quotes", tag = "quotes", params(QuoteFilter), responses(
    (status = 200, body = Page<Quote>), (status = 422, body = Problem)))]
pub async fn list_quotes(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<QuoteFilter>,
) -> ApiResult<Json<Page<Quote>>> {
    Ok(Json(quotes::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

/// Opens a deal's quote (one per deal; a second is `opportunity_id: taken`), numbered by the
/// tenant's pattern, its lines priced for the customer from the price books.
#[utoipa::path(post, path = "/api/v1/quotes", tag = "quotes", request_body = QuoteInput, responses(
    (status = 201, body = Quote), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<QuoteInput>,
) -> ApiResult<Response> {
    let q = quotes::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &q, q.version))
}

#[utoipa::path(get, path = "/api/v1/quotes/{id}", tag = "quotes", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Quote), (status = 404, body = Problem)))]
pub async fn get_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let q = quotes::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &q, q.version))
}

/// Edits the working copy (the customer keeps the version sent until the revision is sent).
/// An accepted quote is final (409).
#[utoipa::path(patch, path = "/api/v1/quotes/{id}", tag = "quotes", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = QuoteInput, responses((status = 200, body = Quote), (status = 404, body = Problem),
    (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<QuoteInput>,
) -> ApiResult<Response> {
    let q = quotes::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &q, q.version))
}

/// Deletes a quote never sent; a sent one stays on record (409).
#[utoipa::path(delete, path = "/api/v1/quotes/{id}", tag = "quotes", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    quotes::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the working copy as the next version (frozen; the one before superseded) and sets
/// the deal's amount to its net total (before VAT). `If-Match` is the quote's version as read.
#[utoipa::path(post, path = "/api/v1/quotes/{id}/send", tag = "quotes", params(("id" = Uuid, Path), ("If-Match" = String, Header)),
    responses((status = 200, body = Quote), (status = 404, body = Problem), (status = 409, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn send_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
) -> ApiResult<Response> {
    let q = quotes::send(&s.db, &ctx, id, v).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &q, q.version))
}

/// The customer accepted the version they hold: it becomes an order in their purchase
/// history. A superseded, decided or expired version is refused (422 on `version_no`).
#[utoipa::path(post, path = "/api/v1/quotes/{id}/accept", tag = "quotes", params(("id" = Uuid, Path)), request_body = Decision,
    responses((status = 200, body = Quote), (status = 404, body = Problem), (status = 409, body = Problem),
    (status = 422, body = Problem)))]
pub async fn accept_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<Decision>,
) -> ApiResult<Response> {
    let q = quotes::accept(&s.db, &ctx, id, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &q, q.version))
}

/// The customer declined the version they hold (with the reason); the quote may be revised.
#[utoipa::path(post, path = "/api/v1/quotes/{id}/decline", tag = "quotes", params(("id" = Uuid, Path)), request_body = Decision,
    responses((status = 200, body = Quote), (status = 404, body = Problem), (status = 409, body = Problem),
    (status = 422, body = Problem)))]
pub async fn decline_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<Decision>,
) -> ApiResult<Response> {
    let q = quotes::decline(&s.db, &ctx, id, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &q, q.version))
}

#[derive(serde::Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SubmitInput {
    /// The quote's version as read (or send `If-Match`).
    pub version: Option<i64>,
    /// A note to the approvers.
    pub comment: Option<String>,
}

/// Submits the quote to the approval process its facts call for (its discount below the
/// book prices, its total): it is locked until decided or recalled, and may be sent once
/// approved at this version. `approval: not_required` (422) when no process applies.
#[utoipa::path(post, path = "/api/v1/quotes/{id}/submit", tag = "quotes", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = SubmitInput, responses((status = 201, body = guanxi_platform::approvals::Request),
    (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
    (status = 422, body = Problem)))]
pub async fn submit_quote(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<SubmitInput>,
) -> ApiResult<Response> {
    let r = quotes::submit(&s.db, &ctx, id, v.or(b.version), b.comment)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &r, r.version))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QuoteVersions {
    /// Newest first.
    pub items: Vec<QuoteVersion>,
}

/// Every version sent, each as the customer received it.
#[utoipa::path(get, path = "/api/v1/quotes/{id}/versions", tag = "quotes", params(("id" = Uuid, Path)), responses(
    (status = 200, body = QuoteVersions), (status = 404, body = Problem)))]
pub async fn quote_versions(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<QuoteVersions>> {
    Ok(Json(QuoteVersions {
        items: quotes::versions(&s.db, &ctx, id).await.l(&ctx)?,
    }))
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberingPattern {
    /// Text and `{YYYY}`, `{YY}`, `{MM}`, `{DD}` and one `{SEQ}` or `{SEQ:n}` (n digits,
    /// zero-padded); the counter restarts when the date part changes.
    pub pattern: String,
}

fn known_numbering(name: &str) -> Result<&'static str, guanxi_platform::Error> {
    match name {
        quotes::NUMBERING => Ok(quotes::DEFAULT_PATTERN),
        _ => Err(guanxi_platform::Error::NotFound),
    }
}

/// The pattern a kind of document (`quotes`) is numbered by.
#[utoipa::path(get, path = "/api/v1/numbering/{name}", tag = "quotes", params(("name" = String, Path)), responses(
    (status = 200, body = NumberingPattern), (status = 404, body = Problem)))]
pub async fn get_numbering(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<NumberingPattern>> {
    let default = known_numbering(&name).l(&ctx)?;
    let pattern = numbering::pattern(&s.db, ctx.tenant_id, &name, default)
        .await
        .l(&ctx)?;
    Ok(Json(NumberingPattern { pattern }))
}

/// Sets the pattern (administrators). Numbers already given keep theirs.
#[utoipa::path(put, path = "/api/v1/numbering/{name}", tag = "quotes", params(("name" = String, Path)), request_body = NumberingPattern,
    responses((status = 200, body = NumberingPattern), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
pub async fn put_numbering(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<NumberingPattern>,
) -> ApiResult<Json<NumberingPattern>> {
    known_numbering(&name).l(&ctx)?;
    let pattern = numbering::set(&s.db, &ctx, &name, &b.pattern)
        .await
        .l(&ctx)?;
    Ok(Json(NumberingPattern { pattern }))
}
