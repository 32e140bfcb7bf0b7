//! Quote pages: the list, a quote's page (the customer beside it — grade, what they bought,
//! their other quotes — the working copy's lines with the price each came from, send, the
//! versions sent and the customer's answer), the printable version in Chinese or English, and
//! `/admin/price-books` where managers keep the prices.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_customers::orders;
use guanxi_customers::products::{self, ProductFilter};
use guanxi_platform::approvals;
use guanxi_platform::error::FieldError;
use guanxi_platform::perms::Action;
use guanxi_platform::Error;
use guanxi_sales::price_books::{self, EntryInput, PriceBook, PriceBookInput, GRADES};
use guanxi_sales::pricing::AUDIENCES;
use guanxi_sales::quotes::{self, Decision, LineInput, Quote, QuoteFilter, QuoteInput};
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

/// Blank rows a form offers for new lines or entries.
const NEW_ROWS: usize = 3;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/quotes", get(list))
        .route("/opportunities/{id}/quote", post(open_for_deal))
        .route("/quotes/{id}", get(show).post(save))
        .route("/quotes/{id}/send", post(send))
        .route("/quotes/{id}/submit", post(submit))
        .route("/quotes/{id}/answer", post(answer))
        .route("/quotes/{id}/delete", post(delete))
        .route("/quotes/{id}/versions/{n}", get(print))
        .route("/admin/price-books", get(books).post(create_book))
        .route("/admin/price-books/{id}", get(book).post(update_book))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

async fn list(State(s): State<AppState>, p: Signed, Query(q): Query<ListQuery>) -> Response {
    let f = QuoteFilter {
        status: q.status.clone().filter(|v| !v.is_empty()),
        q: q.q.clone(),
        cursor: q.cursor.clone(),
        limit: Some(50),
        ..Default::default()
    };
    match quotes::list(&s.db, &p.ctx, &f).await {
        Ok(page) => {
            let next = page.next_cursor.as_ref().map(|c| {
                crate::customers::pages::next_link(&[
                    ("status", q.status.as_deref()),
                    ("q", q.q.as_deref()),
                    ("cursor", Some(c)),
                ])
            });
            p.page(
                &s,
                "sales/quotes.html",
                "quotes",
                context! { quotes => page.items, next => next, status => q.status, q => q.q,
                statuses => quotes::STATUSES },
            )
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /opportunities/{id}/quote`: the deal's quote, opened if it has none.
async fn open_for_deal(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    match quotes::of_opportunity(&s.db, &p.ctx, id).await {
        Ok(Some(q)) => return Redirect::to(&format!("/quotes/{}", q.id)).into_response(),
        Ok(None) => {}
        Err(e) => return p.error(&s, e),
    }
    let input = QuoteInput {
        opportunity_id: Some(id),
        ..Default::default()
    };
    match quotes::create(&s.db, &p.ctx, input).await {
        Ok(q) => Redirect::to(&format!("/quotes/{}", q.id)).into_response(),
        Err(e) => p.refused_to(&format!("/opportunities/{id}"), e, Some("quote.")),
    }
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    error: Option<String>,
}

async fn show(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let quote = match quotes::get(&s.db, &p.ctx, id).await {
        Ok(q) => q,
        Err(e) => return p.error(&s, e),
    };
    let error = p.refusal_from_url(q.error.as_deref());
    page(&s, &p, StatusCode::OK, quote, vec![], None, error).await
}

/// The quote's page; `draft` is a refused form as typed (its rows shown instead of the lines).
async fn page(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    quote: Quote,
    errors: Vec<FieldError>,
    draft: Option<BTreeMap<String, String>>,
    error: Option<String>,
) -> Response {
    let versions = quotes::versions(&s.db, &p.ctx, quote.id).await;
    // What the customer has bought, and their other quotes: a rep quotes an old customer
    // knowingly. Either failing leaves its panel out, never the page.
    let bought = orders::totals(&s.db, &p.ctx, Some(quote.account_id), None)
        .await
        .unwrap_or_default();
    let others = quotes::list(
        &s.db,
        &p.ctx,
        &QuoteFilter {
            account_id: Some(quote.account_id),
            limit: Some(6),
            ..Default::default()
        },
    )
    .await
    .map(|pg| {
        pg.items
            .into_iter()
            .filter(|o| o.id != quote.id)
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    let catalogue = products::list(
        &s.db,
        &p.ctx,
        &ProductFilter {
            active: Some(true),
            limit: Some(500),
            ..Default::default()
        },
    )
    .await
    .map(|pg| pg.items)
    .unwrap_or_default();
    let versions = match versions {
        Ok(v) => v,
        Err(e) => return p.error(s, e),
    };
    // Approval: the process the quote's facts call for, and its latest request.
    let process = approvals::applies(&s.db, p.ctx.tenant_id, "quotes", &quotes::facts(&quote))
        .await
        .ok()
        .flatten();
    let request = approvals::latest(&s.db, p.ctx.tenant_id, "quotes", quote.id)
        .await
        .ok()
        .flatten();
    let cleared = request
        .as_ref()
        .is_some_and(|r| r.status == "approved" && r.record_version == quote.version);
    let pending = quote.approval_status.as_deref() == Some("pending");
    let may_change = p
        .ctx
        .can("quotes", Action::Update)
        .is_some_and(|scope| p.ctx.covers(scope, Some(quote.owner_id), quote.team_id))
        && quote.status != "accepted";
    let can_edit = may_change && !pending;
    let rows: Vec<Value> = match &draft {
        Some(form) => (0..row_count(form))
            .map(|i| {
                let g = |k: &str| form.get(&format!("l{i}.{k}")).cloned().unwrap_or_default();
                context! { sku => g("sku"), name => g("name"), quantity => g("quantity"),
                unit_price => g("unit_price"), discount => g("discount"), tax => g("tax") }
            })
            .collect(),
        None => quote
            .lines
            .iter()
            .map(|l| {
                // A field shows only what the rep set: a price that follows the books stays
                // blank (a new quantity picks its tier again), as do no discount and a free
                // line's zero VAT (a SKU typed in later brings the product's rate).
                let price = crate::money::format(l.unit_price, "").trim().replace(',', "");
                context! { sku => l.sku, name => l.name, quantity => l.quantity.to_string(),
                book => crate::money::format(l.book_price, &quote.currency),
                unit_price => (l.unit_price != l.book_price || l.product_id.is_none()).then_some(price),
                discount => (l.discount_bp != 0).then(|| bp_text(l.discount_bp)),
                tax => (l.tax_rate != 0 || l.product_id.is_some()).then(|| bp_text(l.tax_rate)) }
            })
            .chain((0..NEW_ROWS).map(|_| context! {}))
            .collect(),
    };
    let terms = draft.as_ref().map(|f| {
        context! { discount => f.get("discount"), valid_until => f.get("valid_until"),
        payment_terms => f.get("payment_terms"), delivery_terms => f.get("delivery_terms"),
        notes => f.get("notes") }
    });
    let live = versions.iter().find(|v| v.status == "live").cloned();
    // What customers who bought these lines' products also bought, not yet on the quote.
    let suggestions = if p.ctx.can("analytics", Action::Read).is_some() && can_edit {
        let on_quote: Vec<String> = quote
            .lines
            .iter()
            .filter_map(|l| l.product_id.map(|id| id.to_string()))
            .collect();
        let q = guanxi_analytics::cross_sell::RecommendationQuery {
            account_id: Some(quote.account_id),
            exclude: Some(on_quote.join(",")),
            ..Default::default()
        };
        guanxi_analytics::cross_sell::recommend(&s.db, &p.ctx, &q)
            .await
            .map(|r| r.items)
            .unwrap_or_default()
    } else {
        vec![]
    };
    let pressing = crate::service::pages::pressing(s, p, Some(quote.account_id)).await;
    p.page_status(
        s,
        status,
        "sales/quote.html",
        "quotes",
        context! { pressing => pressing, q => quote, versions => versions, live => live, bought => bought, suggestions,
        others => others, catalogue => catalogue, rows => rows, terms => terms,
        errors => errors, error => error, can_edit => can_edit,
        process => process.map(|pr| pr.name), request => request, cleared => cleared,
        can_submit => can_edit && !cleared,
        discount => bp_text(quote.discount_bp), effective => bp_text(quote.effective_discount_bp) },
    )
}

/// A quote's or a price book's refused fields in words: "Line 3 · Qty", "Entry 2 · SKU".
fn rows_named(p: &Signed, errs: Vec<FieldError>) -> Vec<FieldError> {
    crate::problem::with_row_labels(
        errs,
        &p.ctx.locale,
        &[("lines", "quote.row"), ("entries", "book.row")],
    )
}

/// Basis points as people type a percentage: `1250` → `12.5`.
fn bp_text(bp: i64) -> String {
    let whole = bp / 100;
    match bp % 100 {
        0 => whole.to_string(),
        r if r % 10 == 0 => format!("{whole}.{}", r / 10),
        r => format!("{whole}.{r:02}"),
    }
}

/// A typed percentage (`12.5`, `13%`) in basis points.
fn percent(raw: &str) -> Option<i64> {
    crate::money::parse(raw.trim().trim_end_matches('%'))
}

fn row_count(form: &BTreeMap<String, String>) -> usize {
    form.keys()
        .filter_map(|k| {
            k.strip_prefix('l')?
                .split_once('.')?
                .0
                .parse::<usize>()
                .ok()
        })
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// The posted form as the API's input: rows with neither SKU nor name are skipped; a number
/// that cannot be read is the row's field error.
fn input_of(form: &BTreeMap<String, String>) -> Result<QuoteInput, Vec<FieldError>> {
    let mut errs = Vec::new();
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut lines = Vec::new();
    for i in 0..row_count(form) {
        let g = |k: &str| get(&format!("l{i}.{k}"));
        let (sku, name) = (g("sku"), g("name"));
        if sku.is_none() && name.is_none() {
            continue;
        }
        let at = |f: &str| format!("lines[{}].{f}", lines.len());
        let mut num = |k: &str, field: &str, read: fn(&str) -> Option<i64>| match g(k) {
            Some(raw) => match read(&raw) {
                Some(v) => Some(v),
                None => {
                    errs.push(FieldError::new(&at(field), "invalid"));
                    None
                }
            },
            None => None,
        };
        let quantity = num("quantity", "quantity", |r| r.parse().ok());
        let unit_price = num("unit_price", "unit_price", crate::money::parse);
        let discount_bp = num("discount", "discount_bp", percent);
        let tax_rate = num("tax", "tax_rate", percent);
        lines.push(LineInput {
            product_id: None,
            sku,
            name,
            quantity,
            unit_price,
            discount_bp,
            tax_rate,
        });
    }
    let text = |k: &str| Some(get(k));
    let discount_bp = match get("discount") {
        Some(raw) => match percent(&raw) {
            Some(v) => Some(v),
            None => {
                errs.push(FieldError::new("discount_bp", "invalid"));
                None
            }
        },
        None => Some(0),
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(QuoteInput {
        version: get("version").and_then(|v| v.parse().ok()),
        valid_until: text("valid_until"),
        payment_terms: text("payment_terms"),
        delivery_terms: text("delivery_terms"),
        notes: text("notes"),
        discount_bp,
        lines: Some(lines),
        ..Default::default()
    })
}

/// `POST /quotes/{id}`: saves the working copy; a refused one comes back as typed with each
/// line's fields named.
async fn save(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let result = match input_of(&form) {
        Ok(input) => quotes::update(&s.db, &p.ctx, id, None, input)
            .await
            .map_err(|e| p.field_errors(e)),
        Err(errs) => Err(Ok(crate::problem::localize(errs, &p.ctx.locale))),
    }
    .map_err(|r| r.map(|errs| rows_named(&p, errs)));
    match result {
        Ok(q) => Redirect::to(&format!("/quotes/{}", q.id)).into_response(),
        Err(Ok(errors)) => match quotes::get(&s.db, &p.ctx, id).await {
            Ok(q) => {
                page(
                    &s,
                    &p,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    q,
                    errors,
                    Some(form),
                    None,
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
        Err(Err(e)) => back_with(&p, id, e),
    }
}

/// Back to the quote's page saying why (a 412, a 409, a refused send).
fn back_with(p: &Signed, id: Uuid, e: Error) -> Response {
    p.refused_to(&format!("/quotes/{id}"), e, Some("quote."))
}

async fn send(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let version = form.get("version").and_then(|v| v.parse().ok());
    match quotes::send(&s.db, &p.ctx, id, version).await {
        Ok(q) => Redirect::to(&format!("/quotes/{}", q.id)).into_response(),
        Err(e) => back_with(&p, id, e),
    }
}

/// `POST /quotes/{id}/submit`: to the approval process its facts call for.
async fn submit(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let version = form.get("version").and_then(|v| v.parse().ok());
    let comment = form
        .get("comment")
        .cloned()
        .filter(|c| !c.trim().is_empty());
    match quotes::submit(&s.db, &p.ctx, id, version, comment).await {
        Ok(r) => Redirect::to(&format!("/approvals/{}", r.id)).into_response(),
        Err(e) => back_with(&p, id, e),
    }
}

/// `POST /quotes/{id}/answer`: the customer's acceptance (`answer=accept`) or refusal of the
/// version they hold.
async fn answer(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let d = Decision {
        version: form.get("version").and_then(|v| v.parse().ok()),
        version_no: form.get("version_no").and_then(|v| v.parse().ok()),
        reason: form
            .get("reason")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
    };
    let r = match form.get("answer").map(String::as_str) {
        Some("accept") => quotes::accept(&s.db, &p.ctx, id, d).await,
        _ => quotes::decline(&s.db, &p.ctx, id, d).await,
    };
    match r {
        Ok(q) => Redirect::to(&format!("/quotes/{}", q.id)).into_response(),
        Err(e) => back_with(&p, id, e),
    }
}

async fn delete(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let deal = match quotes::get(&s.db, &p.ctx, id).await {
        Ok(q) => q.opportunity_id,
        Err(e) => return p.error(&s, e),
    };
    match quotes::delete(&s.db, &p.ctx, id).await {
        Ok(()) => Redirect::to(&format!("/opportunities/{deal}")).into_response(),
        Err(e) => back_with(&p, id, e),
    }
}

#[derive(Deserialize, Default)]
struct PrintQuery {
    /// `zh-CN`, `zh-TW` or `en`: the customer's language, whatever the rep's.
    lang: Option<String>,
}

/// `GET /quotes/{id}/versions/{n}`: the version as sent, for the browser's print to PDF.
async fn print(
    State(s): State<AppState>,
    p: Signed,
    Path((id, n)): Path<(Uuid, i64)>,
    Query(q): Query<PrintQuery>,
) -> Response {
    let v = match quotes::version_of(&s.db, &p.ctx, id, n).await {
        Ok(v) => v,
        Err(e) => return p.error(&s, e),
    };
    let locale = match q.lang.as_deref() {
        Some(l @ ("zh-CN" | "zh-TW" | "en")) => l.to_owned(),
        _ => p.ctx.locale.clone(),
    };
    p.page(
        &s,
        "sales/quote_print.html",
        "quotes",
        context! { locale => locale, v => v, s => v.snapshot.0, id => id },
    )
}

async fn books_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    editing: Option<PriceBook>,
    errors: Vec<FieldError>,
    draft: Option<BTreeMap<String, String>>,
) -> Response {
    let all = match price_books::list(&s.db, &p.ctx).await {
        Ok(a) => a,
        Err(e) => return p.error(s, e),
    };
    let rows: Vec<Value> = match (&draft, &editing) {
        (Some(form), _) => (0..row_count(form))
            .map(|i| {
                let g = |k: &str| form.get(&format!("l{i}.{k}")).cloned().unwrap_or_default();
                context! { sku => g("sku"), min_quantity => g("min_quantity"), unit_price => g("unit_price") }
            })
            .collect(),
        (None, Some(b)) => b
            .entries
            .iter()
            .map(|e| {
                context! { sku => e.sku, name => e.product_name, min_quantity => e.min_quantity.to_string(),
                unit_price => crate::money::format(e.unit_price, "").trim().replace(',', "") }
            })
            .chain((0..NEW_ROWS).map(|_| context! {}))
            .collect(),
        (None, None) => (0..NEW_ROWS).map(|_| context! {}).collect(),
    };
    let catalogue = products::list(
        &s.db,
        &p.ctx,
        &ProductFilter {
            active: Some(true),
            limit: Some(500),
            ..Default::default()
        },
    )
    .await
    .map(|pg| pg.items)
    .unwrap_or_default();
    p.page_status(
        s,
        status,
        "sales/price_books.html",
        "price_books",
        context! { books => all, editing => editing, errors => errors, rows => rows, form => draft,
        audiences => AUDIENCES, grades => GRADES, channels => orders::CHANNELS, catalogue => catalogue,
        can_edit => p.ctx.can("price_books", Action::Update).is_some(),
        can_create => p.ctx.can("price_books", Action::Create).is_some() },
    )
}

async fn books(State(s): State<AppState>, p: Signed) -> Response {
    books_view(&s, &p, StatusCode::OK, None, vec![], None).await
}

async fn book(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    match price_books::get(&s.db, &p.ctx, id).await {
        Ok(b) => books_view(&s, &p, StatusCode::OK, Some(b), vec![], None).await,
        Err(e) => p.error(&s, e),
    }
}

fn book_input(form: &BTreeMap<String, String>) -> Result<PriceBookInput, Vec<FieldError>> {
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut errs = Vec::new();
    let mut entries = Vec::new();
    for i in 0..row_count(form) {
        let g = |k: &str| get(&format!("l{i}.{k}"));
        let Some(sku) = g("sku") else { continue };
        let at = |f: &str| format!("entries[{}].{f}", entries.len());
        let min_quantity = match g("min_quantity").map(|q| q.parse::<i64>()) {
            Some(Ok(q)) => Some(q),
            Some(Err(_)) => {
                errs.push(FieldError::new(&at("min_quantity"), "invalid"));
                None
            }
            None => None,
        };
        let unit_price = match g("unit_price").map(|v| crate::money::parse(&v)) {
            Some(Some(v)) => v,
            Some(None) => {
                errs.push(FieldError::new(&at("unit_price"), "invalid"));
                0
            }
            None => {
                errs.push(FieldError::new(&at("unit_price"), "required"));
                0
            }
        };
        entries.push(EntryInput {
            product_id: None,
            sku: Some(sku),
            min_quantity,
            unit_price,
        });
    }
    let account_id = match get("account_id").map(|a| a.parse::<Uuid>()) {
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            errs.push(FieldError::new("account_id", "unknown"));
            None
        }
        None => None,
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(PriceBookInput {
        version: get("version").and_then(|v| v.parse().ok()),
        name: Some(get("name").unwrap_or_default()),
        audience: get("audience"),
        account_id,
        audience_value: get("audience_value"),
        currency: get("currency"),
        valid_from: Some(get("valid_from")),
        valid_to: Some(get("valid_to")),
        active: Some(form.get("active").is_some()),
        description: Some(get("description")),
        entries: Some(entries),
    })
}

async fn save_book(
    s: &AppState,
    p: &Signed,
    id: Option<Uuid>,
    form: BTreeMap<String, String>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let result = match book_input(&form) {
        Ok(input) => match id {
            Some(id) => price_books::update(&s.db, &p.ctx, id, None, input).await,
            None => price_books::create(&s.db, &p.ctx, input).await,
        }
        .map_err(|e| p.field_errors(e)),
        Err(errs) => Err(Ok(crate::problem::localize(errs, &p.ctx.locale))),
    }
    .map_err(|r| r.map(|errs| rows_named(p, errs)));
    match result {
        Ok(b) => Redirect::to(&format!("/admin/price-books/{}?saved=1", b.id)).into_response(),
        Err(Ok(errors)) => {
            let editing = match id {
                Some(id) => match price_books::get(&s.db, &p.ctx, id).await {
                    Ok(b) => Some(b),
                    Err(e) => return p.error(s, e),
                },
                None => None,
            };
            books_view(
                s,
                p,
                StatusCode::UNPROCESSABLE_ENTITY,
                editing,
                errors,
                Some(form),
            )
            .await
        }
        Err(Err(Error::PreconditionFailed { .. })) => {
            Redirect::to(&format!("/admin/price-books/{}", id.unwrap_or_default())).into_response()
        }
        Err(Err(e)) => p.error(s, e),
    }
}

async fn create_book(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    save_book(&s, &p, None, form).await
}

async fn update_book(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    save_book(&s, &p, Some(id), form).await
}
