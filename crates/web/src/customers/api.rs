//! `/api/v1/accounts`, `/api/v1/contacts`, `/api/v1/search`, `/api/v1/activities`, the
//! timelines and `/api/v1/tasks`.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use guanxi_customers::accounts::{self, Account, AccountFilter, AccountInput};
use guanxi_customers::activities::{
    self, Activity, ActivityInput, Subject, TaskFilter, TaskList, TimelineEntry, TimelineFilter,
};
use guanxi_customers::assets::{self, Asset, AssetFilter, AssetInput};
use guanxi_customers::contacts::{self, Contact, ContactFilter, ContactInput};
use guanxi_customers::duplicates::{Candidates, DuplicateProbe, Pairs};
use guanxi_customers::import::{DuplicatePolicy, ImportOptions, ImportReport, Target};
use guanxi_customers::merge::MergeInput;
use guanxi_customers::orders::{self, Order, OrderFilter, OrderInput, Pushed, Totals};
use guanxi_customers::products::{self, Product, ProductFilter, ProductInput};
use guanxi_customers::search::{SearchQuery, SearchResults};
use guanxi_customers::transfer::{TransferInput, TransferResult};
use guanxi_platform::page::Page;
use guanxi_platform::Error;
use guanxi_records::bulk::{self, BulkInput, BulkResult};
use guanxi_records::custom_fields::{self, CustomField, CustomFieldFilter, CustomFieldInput};
use guanxi_records::tables::{self, Format};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch, ListQuery};
use crate::problem::Problem;
use crate::state::AppState;

// ---- accounts ------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(AccountFilter), responses(
    (status = 200, body = Page<Account>), (status = 422, body = Problem)))]
pub async fn list_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<AccountFilter>,
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
    ListQuery(f): ListQuery<ContactFilter>,
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

/// The one search box: accounts, contacts, leads and deals matching `q` (quotes by number),
/// best match first, then shortest names. Per kind the
/// candidates are the newest 200 matches, the records named exactly `q`, and (contacts) those
/// of the newest 200 matching companies — a frequent term costs what a rare one does.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchQuery), responses(
    (status = 200, body = SearchResults), (status = 422, body = Problem)))]
pub async fn search(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let r = crate::sales::api::search_everything(&s.db, &ctx, &q)
        .await
        .l(&ctx)?;
    Ok(Json(r))
}

// ---- timeline and tasks --------------------------------------------------------------------

#[utoipa::path(post, path = "/api/v1/activities", tag = "activities", request_body = ActivityInput, responses(
    (status = 201, body = Activity), (status = 422, body = Problem)))]
pub async fn create_activity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ActivityInput>,
) -> ApiResult<Response> {
    let a = activities::create(&s.db, &ctx, b).await.l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(versioned(StatusCode::CREATED, &a, a.version))
}

#[utoipa::path(get, path = "/api/v1/activities/{id}", tag = "activities", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Activity), (status = 404, body = Problem)))]
pub async fn get_activity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let a = activities::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(patch, path = "/api/v1/activities/{id}", tag = "activities", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = ActivityInput, responses((status = 200, body = Activity), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_activity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<ActivityInput>,
) -> ApiResult<Response> {
    let a = activities::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(delete, path = "/api/v1/activities/{id}", tag = "activities", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"), (status = 404, body = Problem)))]
pub async fn delete_activity(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    activities::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}/timeline", tag = "activities", params(("id" = Uuid, Path), TimelineFilter), responses(
    (status = 200, body = Page<TimelineEntry>), (status = 404, body = Problem)))]
pub async fn account_timeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<TimelineFilter>,
) -> ApiResult<Json<Page<TimelineEntry>>> {
    Ok(Json(
        activities::timeline(&s.db, &ctx, Subject::Account(id), &f)
            .await
            .l(&ctx)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", tag = "activities", params(("id" = Uuid, Path), TimelineFilter), responses(
    (status = 200, body = Page<TimelineEntry>), (status = 404, body = Problem)))]
pub async fn contact_timeline(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<TimelineFilter>,
) -> ApiResult<Json<Page<TimelineEntry>>> {
    Ok(Json(
        activities::timeline(&s.db, &ctx, Subject::Contact(id), &f)
            .await
            .l(&ctx)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "activities", params(TaskFilter), responses(
    (status = 200, body = TaskList), (status = 422, body = Problem)))]
pub async fn list_tasks(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<TaskFilter>,
) -> ApiResult<Json<TaskList>> {
    Ok(Json(
        activities::tasks(&s.db, &ctx, crate::ENTITIES, &f)
            .await
            .l(&ctx)?,
    ))
}

// ---- products and orders -------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/products", tag = "orders", params(ProductFilter), responses(
    (status = 200, body = Page<Product>)))]
pub async fn list_products(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<ProductFilter>,
) -> ApiResult<Json<Page<Product>>> {
    Ok(Json(products::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/products", tag = "orders", request_body = ProductInput, responses(
    (status = 201, body = Product), (status = 422, body = Problem)))]
pub async fn create_product(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ProductInput>,
) -> ApiResult<Response> {
    let p = products::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &p, p.version))
}

#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Product), (status = 404, body = Problem)))]
pub async fn get_product(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let p = products::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "orders", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = ProductInput, responses((status = 200, body = Product), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_product(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<ProductInput>,
) -> ApiResult<Response> {
    let p = products::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &p, p.version))
}

#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Removed from the catalogue"), (status = 404, body = Problem)))]
pub async fn delete_product(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    products::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderFilter), responses(
    (status = 200, body = Page<Order>), (status = 422, body = Problem)))]
pub async fn list_orders(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<OrderFilter>,
) -> ApiResult<Json<Page<Order>>> {
    Ok(Json(orders::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = OrderInput, responses(
    (status = 201, body = Order), (status = 422, body = Problem)))]
pub async fn create_order(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<OrderInput>,
) -> ApiResult<Response> {
    let o = orders::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &o, o.version))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Order), (status = 404, body = Problem)))]
pub async fn get_order(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let o = orders::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &o, o.version))
}

#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = OrderInput, responses((status = 200, body = Order), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_order(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<OrderInput>,
) -> ApiResult<Response> {
    let o = orders::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &o, o.version))
}

#[utoipa::path(delete, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash"), (status = 404, body = Problem)))]
pub async fn delete_order(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    orders::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// For shops and ERPs: store the order they know as `external_id` on `channel`. Sending the
/// same order again changes nothing (200, `Guanxi-Push: unchanged`); a changed order becomes a
/// new version (200, `updated`); a new one is created (201, `created`).
#[utoipa::path(put, path = "/api/v1/orders/external/{channel}/{external_id}", tag = "orders",
    params(("channel" = String, Path, description = "store, online, erp or sales"), ("external_id" = String, Path)),
    request_body = OrderInput, responses(
    (status = 201, body = Order, description = "Created"), (status = 200, body = Order, description = "Updated or unchanged"),
    (status = 422, body = Problem)))]
pub async fn push_order(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((channel, external_id)): Path<(String, String)>,
    ApiJson(b): ApiJson<OrderInput>,
) -> ApiResult<Response> {
    let (o, what) = orders::push(&s.db, &ctx, &channel, &external_id, b)
        .await
        .l(&ctx)?;
    let (status, label) = match what {
        Pushed::Created => (StatusCode::CREATED, "created"),
        Pushed::Updated => (StatusCode::OK, "updated"),
        Pushed::Unchanged => (StatusCode::OK, "unchanged"),
    };
    let mut r = versioned(status, &o, o.version);
    r.headers_mut()
        .insert("guanxi-push", axum::http::HeaderValue::from_static(label));
    Ok(r)
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}/order-totals", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Vec<Totals>), (status = 404, body = Problem)))]
pub async fn account_order_totals(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<Totals>>> {
    Ok(Json(
        orders::totals(&s.db, &ctx, Some(id), None).await.l(&ctx)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}/order-totals", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Vec<Totals>), (status = 404, body = Problem)))]
pub async fn contact_order_totals(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<Totals>>> {
    Ok(Json(
        orders::totals(&s.db, &ctx, None, Some(id)).await.l(&ctx)?,
    ))
}

/// Hands all of a user's accounts, contacts and open tasks to one or several colleagues.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "accounts", request_body = TransferInput, responses(
    (status = 200, body = TransferResult), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn transfer(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<TransferInput>,
) -> ApiResult<Json<TransferResult>> {
    let r = guanxi_customers::transfer::transfer(&s.db, &ctx, b)
        .await
        .l(&ctx)?;
    s.jobs_wake.notify_one();
    Ok(Json(r))
}

/// Likely duplicates of a customer about to be saved (call before creating, or while editing
/// with `exclude_id`).
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "accounts", params(DuplicateProbe), responses(
    (status = 200, body = Candidates), (status = 422, body = Problem)))]
pub async fn duplicates(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<DuplicateProbe>,
) -> ApiResult<Json<Candidates>> {
    Ok(Json(
        guanxi_customers::duplicates::find(&s.db, &ctx, &q)
            .await
            .l(&ctx)?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Check every row and count what would happen, without saving.
    #[serde(default)]
    pub dry_run: bool,
    /// `skip` (default), `update` or `create` (contacts and accounts).
    #[serde(default)]
    pub duplicates: DuplicatePolicy,
    /// `csv` (default), `xlsx` or `vcard` (contacts).
    #[serde(default)]
    pub format: Format,
    // Also `map.<column header>=<field>` (or empty to ignore the column): overrides the
    // guessed mapping.
}

/// The UI's field labels in every language, so a file exported from Guanxi imports back.
pub fn import_labels() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for field in [
        "name",
        "phone",
        "email",
        "wechat",
        "title",
        "department",
        "province",
        "city",
        "district",
        "address",
        "gender",
        "birthday",
        "notes",
        "family_name",
        "given_name",
        "tags",
        "credit_code",
        "industry",
        "website",
        "postal_code",
        "source",
        "description",
        "number",
        "channel",
        "ordered_at",
        "currency",
        "sku",
        "quantity",
        "unit_price",
        "discount",
    ] {
        for locale in ["en", "zh-CN", "zh-TW"] {
            out.push((
                crate::i18n::t(locale, &format!("field.{field}")),
                field.to_owned(),
            ));
        }
    }
    for locale in ["en", "zh-CN", "zh-TW"] {
        out.push((
            crate::i18n::t(locale, "field.account_id"),
            "account".to_owned(),
        ));
    }
    out
}

/// Imports contacts from a CSV file (UTF-8 or GBK/GB18030) sent as the request body. Up to
/// 10 MB per request; for larger files use `guanxi import contacts FILE`.
#[utoipa::path(post, path = "/api/v1/imports/contacts", tag = "contacts", params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "CSV (UTF-8 or GBK), XLSX or vCard: see `format`"), responses(
    (status = 200, body = ImportReport), (status = 422, body = Problem, description = "Not UTF-8 or GBK, no name column, or a bad mapping")))]
pub async fn import_contacts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Json<ImportReport>> {
    import(s, ctx, Target::Contacts, q, body).await
}

#[utoipa::path(post, path = "/api/v1/imports/accounts", tag = "accounts", params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "CSV (UTF-8 or GBK) or XLSX: see `format`"), responses(
    (status = 200, body = ImportReport), (status = 422, body = Problem, description = "Not UTF-8 or GBK, no name column, or a bad mapping")))]
pub async fn import_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Json<ImportReport>> {
    import(s, ctx, Target::Accounts, q, body).await
}

/// One row per order line, the lines of one order on consecutive rows; each order is pushed
/// by its number under its channel (default `erp`), so re-running a file doubles nothing and a
/// corrected file updates the orders it changes.
#[utoipa::path(post, path = "/api/v1/imports/orders", tag = "orders", params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "CSV (UTF-8 or GBK) or XLSX: see `format`"), responses(
    (status = 200, body = ImportReport), (status = 422, body = Problem, description = "Not UTF-8 or GBK, no number column, or a bad mapping")))]
pub async fn import_orders(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Json<ImportReport>> {
    import(s, ctx, Target::Orders, q, body).await
}

/// The import parameters of a query string: the typed ones, and `map.<header>=<field>`
/// overrides of the guessed mapping.
pub fn import_options(raw: Option<&str>) -> Result<(ImportOptions, Format), Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let (maps, rest): (Vec<_>, Vec<_>) =
        pairs.into_iter().partition(|(k, _)| k.starts_with("map."));
    let rest = serde_urlencoded::to_string(&rest).unwrap_or_default();
    let p: ImportParams = serde_urlencoded::from_str(&rest)
        .map_err(|e| Error::BadRequest(format!("Failed to deserialize query string: {e}")))?;
    let mapping = maps
        .into_iter()
        .map(|(k, v)| (k["map.".len()..].to_owned(), v))
        .collect();
    Ok((
        ImportOptions {
            dry_run: p.dry_run,
            duplicates: p.duplicates,
            labels: import_labels(),
            mapping,
        },
        p.format,
    ))
}

async fn import(
    s: AppState,
    ctx: guanxi_platform::Ctx,
    target: Target,
    q: Option<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ImportReport>> {
    let (opts, format) = import_options(q.as_deref()).l(&ctx)?;
    let table = tables::open(format, std::io::Cursor::new(body)).l(&ctx)?;
    let report = guanxi_customers::import::run(&s.db, &ctx, target, table, &opts, |_| {})
        .await
        .l(&ctx)?;
    Ok(Json(report))
}

/// Merges other contacts into this one (the survivor): chosen field values, all their
/// activities and orders move here; they go to the trash marked as merged.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/merge", tag = "contacts", params(("id" = Uuid, Path)),
    request_body = MergeInput, responses((status = 200, body = Contact), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn merge_contacts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<MergeInput>,
) -> ApiResult<Response> {
    let c = guanxi_customers::merge::merge_contacts(&s.db, &ctx, id, b)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

/// Undoes the merge that retired this contact: it returns with its activities and orders.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/unmerge", tag = "contacts", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Contact), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unmerge_contact(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let c = guanxi_customers::merge::unmerge_contact(&s.db, &ctx, id)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &c, c.version))
}

/// Candidate pairs of duplicate contacts (same phone, email, or name at the same account).
#[utoipa::path(get, path = "/api/v1/duplicates/contacts", tag = "contacts", responses(
    (status = 200, body = Pairs)))]
pub async fn duplicate_contact_pairs(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<Pairs>> {
    Ok(Json(
        guanxi_customers::duplicates::contact_pairs(&s.db, &ctx)
            .await
            .l(&ctx)?,
    ))
}

// ---- custom fields -------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/custom-fields", tag = "custom fields", params(CustomFieldFilter), responses(
    (status = 200, body = Vec<CustomField>)))]
pub async fn list_custom_fields(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<CustomFieldFilter>,
) -> ApiResult<Json<Vec<CustomField>>> {
    Ok(Json(custom_fields::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/custom-fields", tag = "custom fields", request_body = CustomFieldInput, responses(
    (status = 201, body = CustomField), (status = 422, body = Problem)))]
pub async fn create_custom_field(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<CustomFieldInput>,
) -> ApiResult<Response> {
    let f = custom_fields::create(&s.db, &ctx, crate::ENTITIES, b)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &f, f.version))
}

#[utoipa::path(get, path = "/api/v1/custom-fields/{id}", tag = "custom fields", params(("id" = Uuid, Path)), responses(
    (status = 200, body = CustomField), (status = 404, body = Problem)))]
pub async fn get_custom_field(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let f = custom_fields::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &f, f.version))
}

/// Changes a field's label, options, rules, section or position, or archives it
/// (`archived: true`): archived fields are hidden and read-only, their values kept.
#[utoipa::path(patch, path = "/api/v1/custom-fields/{id}", tag = "custom fields", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = CustomFieldInput, responses((status = 200, body = CustomField), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem, description = "Invalid, or existing values are not unique")))]
pub async fn update_custom_field(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<CustomFieldInput>,
) -> ApiResult<Response> {
    let f = custom_fields::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &f, f.version))
}

// ---- bulk actions --------------------------------------------------------------------------

/// Assigns, tags, untags or trashes up to 500 accounts, each as a single edit would (same
/// permissions, validation and audit); those that cannot be changed are listed with the reason.
#[utoipa::path(post, path = "/api/v1/accounts/bulk", tag = "accounts", request_body = BulkInput, responses(
    (status = 200, body = BulkResult), (status = 422, body = Problem)))]
pub async fn bulk_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<BulkInput>,
) -> ApiResult<Json<BulkResult>> {
    Ok(Json(
        bulk::run::<guanxi_customers::accounts::Account>(&s.db, &ctx, b)
            .await
            .l(&ctx)?,
    ))
}

/// Assigns, tags, untags or trashes up to 500 contacts, each as a single edit would (same
/// permissions, validation and audit); those that cannot be changed are listed with the reason.
#[utoipa::path(post, path = "/api/v1/contacts/bulk", tag = "contacts", request_body = BulkInput, responses(
    (status = 200, body = BulkResult), (status = 422, body = Problem)))]
pub async fn bulk_contacts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<BulkInput>,
) -> ApiResult<Json<BulkResult>> {
    Ok(Json(
        bulk::run::<guanxi_customers::contacts::Contact>(&s.db, &ctx, b)
            .await
            .l(&ctx)?,
    ))
}

// ---- assets --------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/assets", tag = "assets", params(AssetFilter), responses(
    (status = 200, body = Page<Asset>), (status = 422, body = Problem)))]
pub async fn list_assets(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(f): Query<AssetFilter>,
) -> ApiResult<Json<Page<Asset>>> {
    Ok(Json(assets::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

#[utoipa::path(post, path = "/api/v1/assets", tag = "assets", request_body = AssetInput, responses(
    (status = 201, body = Asset), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_asset(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<AssetInput>,
) -> ApiResult<Response> {
    let a = assets::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &a, a.version))
}

#[utoipa::path(get, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Asset), (status = 404, body = Problem)))]
pub async fn get_asset(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let a = assets::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(patch, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = AssetInput, responses((status = 200, body = Asset), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_asset(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<AssetInput>,
) -> ApiResult<Response> {
    let a = assets::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(delete, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Removed"), (status = 404, body = Problem)))]
pub async fn delete_asset(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    assets::delete(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Merges duplicate accounts into `{id}`: their contacts, child accounts, activities, orders
/// and assets move to it; `take` picks, per field, whose value it keeps.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/merge", tag = "accounts", params(("id" = Uuid, Path)),
    request_body = MergeInput, responses((status = 200, body = Account), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn merge_accounts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<MergeInput>,
) -> ApiResult<Response> {
    let a = guanxi_customers::merge::merge_accounts(&s.db, &ctx, id, b)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(post, path = "/api/v1/accounts/{id}/unmerge", tag = "accounts", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Account), (status = 404, body = Problem), (status = 409, body = Problem),
    (status = 422, body = Problem, description = "Its credit code is held by a live account")))]
pub async fn unmerge_account(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let a = guanxi_customers::merge::unmerge_account(&s.db, &ctx, id)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}
