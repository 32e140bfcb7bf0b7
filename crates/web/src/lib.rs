//! The HTTP face of Guanxi: the axum app composing the platform's (and later each module's)
//! API handlers and pages with one middleware stack, the generated OpenAPI document, the job
//! worker loop, and `serve`, which tests and the binary both drive.
#![forbid(unsafe_code)]

pub mod analytics;
pub mod api;
pub mod approvals;
pub mod calendars;
pub mod charts;
pub mod customers;
pub mod dashboards;
pub mod extract;
pub mod files;
pub mod grading;
pub mod i18n;
pub mod idem;
pub mod input;
pub mod metrics;
pub mod money;
pub mod notifications;
pub mod ops;
pub mod pages;
pub mod problem;
pub mod records;
pub mod reports;
pub mod sales;
pub mod service;
pub mod session;
pub mod state;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::routing::get;
use axum::{middleware, Router};
use guanxi_platform::jobs;
use guanxi_platform::time::now;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use state::AppState;

/// Every entity a module declared to the record machinery (custom fields may be defined on
/// each).
pub const ENTITIES: &[guanxi_records::Entity] = &[
    guanxi_customers::accounts::ENTITY,
    guanxi_customers::contacts::ENTITY,
    guanxi_sales::leads::ENTITY,
    guanxi_sales::opportunities::ENTITY,
    guanxi_service::tickets::ENTITY,
    guanxi_service::articles::ENTITY,
];

/// Every list page: module (a saved view's entity) and path.
pub const LISTS: &[(&str, &str)] = &[
    ("accounts", "/customers/accounts"),
    ("contacts", "/customers/contacts"),
    ("leads", "/leads"),
    ("opportunities", "/opportunities"),
    ("tickets", "/tickets"),
    ("articles", "/articles"),
];

/// Every module's migrations, in the order they apply.
pub const MIGRATIONS: &[&[guanxi_platform::migrate::Migration]] = &[
    guanxi_platform::migrate::MIGRATIONS,
    guanxi_customers::MIGRATIONS,
    guanxi_sales::MIGRATIONS,
    guanxi_analytics::MIGRATIONS,
    guanxi_service::MIGRATIONS,
];

#[derive(OpenApi)]
#[openapi(
    info(title = "Guanxi CRM API", version = "1", description = "See docs/api.md: cursor pagination, problem+json errors, If-Match versions, Idempotency-Key."),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    components(schemas(problem::Problem, guanxi_customers::import::DuplicatePolicy, guanxi_records::tables::Format))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(extract::SESSION_COOKIE))),
        );
    }
}

/// The API routes and their OpenAPI document.
pub fn api_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::me, api::update_me))
        .routes(routes!(api::change_password))
        .routes(routes!(api::sign_out_everywhere))
        .routes(routes!(api::sign_in))
        .routes(routes!(api::sign_out))
        .routes(routes!(api::sign_up))
        .routes(routes!(api::request_reset))
        .routes(routes!(api::use_link))
        .routes(routes!(api::list_users, api::create_user))
        .routes(routes!(api::get_user, api::update_user))
        .routes(routes!(api::resend_invitation))
        .routes(routes!(api::set_user_password))
        .routes(routes!(api::create_sign_in_link))
        .routes(routes!(api::list_teams, api::create_team))
        .routes(routes!(api::get_team, api::update_team, api::delete_team))
        .routes(routes!(
            calendars::list_calendars,
            calendars::create_calendar
        ))
        .routes(routes!(
            calendars::get_calendar,
            calendars::update_calendar,
            calendars::delete_calendar
        ))
        .routes(routes!(calendars::import_ical))
        .routes(routes!(calendars::trial))
        .routes(routes!(notifications::list_notifications))
        .routes(routes!(notifications::unread))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(
            notifications::get_preferences,
            notifications::set_preferences
        ))
        .routes(routes!(api::list_views, api::create_view))
        .routes(routes!(api::get_view, api::update_view, api::delete_view))
        .routes(routes!(api::list_roles, api::create_role))
        .routes(routes!(api::get_role, api::update_role, api::delete_role))
        .routes(routes!(api::list_tokens, api::create_token))
        .routes(routes!(api::get_token, api::revoke_token))
        .routes(routes!(api::list_audit))
        .routes(routes!(api::get_tenant, api::update_tenant))
        .routes(routes!(api::list_jobs))
        .routes(routes!(api::get_job))
        .routes(routes!(api::retry_job))
        .routes(routes!(
            customers::api::list_accounts,
            customers::api::create_account
        ))
        .routes(routes!(
            customers::api::get_account,
            customers::api::update_account,
            customers::api::delete_account
        ))
        .routes(routes!(customers::api::restore_account))
        .routes(routes!(customers::api::bulk_accounts))
        .routes(routes!(
            customers::api::list_contacts,
            customers::api::create_contact
        ))
        .routes(routes!(
            customers::api::get_contact,
            customers::api::update_contact,
            customers::api::delete_contact
        ))
        .routes(routes!(customers::api::restore_contact))
        .routes(routes!(customers::api::bulk_contacts))
        .routes(routes!(sales::api::list_leads, sales::api::create_lead))
        .routes(routes!(
            sales::api::get_lead,
            sales::api::update_lead,
            sales::api::delete_lead
        ))
        .routes(routes!(sales::api::restore_lead))
        .routes(routes!(sales::api::bulk_leads))
        .routes(routes!(sales::api::import_leads))
        .routes(routes!(sales::api::export_leads))
        .routes(routes!(sales::api::export_leads_xlsx))
        .routes(routes!(sales::api::lead_timeline))
        .routes(routes!(sales::api::log_lead_activity))
        .routes(routes!(sales::api::convert_lead))
        .routes(routes!(
            sales::api::list_assignment_rules,
            sales::api::create_assignment_rule
        ))
        .routes(routes!(
            sales::api::update_assignment_rule,
            sales::api::delete_assignment_rule
        ))
        .routes(routes!(sales::api::list_reps))
        .routes(routes!(sales::api::update_rep))
        .routes(routes!(
            sales::api::list_scoring_rules,
            sales::api::create_scoring_rule
        ))
        .routes(routes!(sales::api::update_scoring_rule))
        .routes(routes!(
            sales::api::get_scoring_model,
            sales::api::train_scoring_model,
            sales::api::forget_scoring_model
        ))
        .routes(routes!(sales::api::get_lead_sla, sales::api::put_lead_sla))
        .routes(routes!(sales::api::list_pools, sales::api::create_pool))
        .routes(routes!(sales::api::get_pool, sales::api::update_pool))
        .routes(routes!(sales::api::pool_leads))
        .routes(routes!(sales::api::pool_accounts))
        .routes(routes!(sales::api::claim_from_pool))
        .routes(routes!(sales::api::release_to_pool))
        .routes(routes!(sales::api::assign_from_pool))
        .routes(routes!(
            sales::deals_api::list_pipelines,
            sales::deals_api::create_pipeline
        ))
        .routes(routes!(
            sales::deals_api::get_pipeline,
            sales::deals_api::update_pipeline
        ))
        .routes(routes!(sales::deals_api::pipeline_board))
        .routes(routes!(
            sales::deals_api::list_opportunities,
            sales::deals_api::create_opportunity
        ))
        .routes(routes!(
            sales::deals_api::get_opportunity,
            sales::deals_api::update_opportunity,
            sales::deals_api::delete_opportunity
        ))
        .routes(routes!(sales::deals_api::restore_opportunity))
        .routes(routes!(sales::deals_api::bulk_opportunities))
        .routes(routes!(sales::deals_api::opportunity_history))
        .routes(routes!(
            sales::deals_api::get_parties,
            sales::deals_api::put_parties
        ))
        .routes(routes!(
            sales::deals_api::get_collaborators,
            sales::deals_api::put_collaborators
        ))
        .routes(routes!(sales::deals_api::opportunity_timeline))
        .routes(routes!(
            service::api::list_tickets,
            service::api::create_ticket
        ))
        .routes(routes!(
            service::api::get_ticket,
            service::api::update_ticket,
            service::api::delete_ticket
        ))
        .routes(routes!(service::api::restore_ticket))
        .routes(routes!(service::api::bulk_tickets))
        .routes(routes!(
            service::api::list_messages,
            service::api::add_message
        ))
        .routes(routes!(service::api::ticket_timeline))
        .routes(routes!(service::api::ticket_sla))
        .routes(routes!(service::api::merge_ticket))
        .routes(routes!(
            service::api::list_followers,
            service::api::follow_ticket
        ))
        .routes(routes!(
            service::api::get_nps_schedule,
            service::api::set_nps_schedule
        ))
        .routes(routes!(
            service::api::get_warranty_sweep,
            service::api::set_warranty_sweep
        ))
        .routes(routes!(
            service::visits::list_visits,
            service::visits::create_visit
        ))
        .routes(routes!(service::visits::visit_engineers))
        .routes(routes!(
            service::visits::get_visit,
            service::visits::update_visit
        ))
        .routes(routes!(service::visits::finish_visit))
        .routes(routes!(service::visits::cancel_visit))
        .routes(routes!(
            service::api::list_attachments,
            service::api::add_attachment
        ))
        .routes(routes!(
            service::api::get_attachment,
            service::api::delete_attachment
        ))
        .routes(routes!(
            service::articles_api::list_articles,
            service::articles_api::create_article
        ))
        .routes(routes!(
            service::articles_api::get_article,
            service::articles_api::update_article,
            service::articles_api::delete_article
        ))
        .routes(routes!(service::articles_api::restore_article))
        .routes(routes!(service::articles_api::bulk_articles))
        .routes(routes!(service::articles_api::article_translations))
        .routes(routes!(service::articles_api::suggest_articles))
        .routes(routes!(service::portal_api::deflection))
        .routes(routes!(
            service::portal_api::list_portal_users,
            service::portal_api::invite_portal_user
        ))
        .routes(routes!(
            service::portal_api::get_portal_user,
            service::portal_api::update_portal_user
        ))
        .routes(routes!(
            service::portal_api::portal_sign_in,
            service::portal_api::portal_sign_out
        ))
        .routes(routes!(service::portal_api::portal_link))
        .routes(routes!(service::portal_api::portal_me))
        .routes(routes!(
            service::portal_api::portal_tickets,
            service::portal_api::portal_open_ticket
        ))
        .routes(routes!(service::portal_api::portal_ticket))
        .routes(routes!(
            service::portal_api::portal_messages,
            service::portal_api::portal_reply
        ))
        .routes(routes!(service::portal_api::portal_attach))
        .routes(routes!(service::portal_api::portal_attachment))
        .routes(routes!(service::portal_api::portal_ask))
        .routes(routes!(service::portal_api::portal_solved))
        .routes(routes!(service::portal_api::portal_articles))
        .routes(routes!(service::portal_api::portal_article))
        .routes(routes!(
            service::articles_api::list_votes,
            service::articles_api::vote_article
        ))
        .routes(routes!(
            service::api::list_policies,
            service::api::create_policy
        ))
        .routes(routes!(
            service::api::get_policy,
            service::api::update_policy
        ))
        .routes(routes!(
            service::api::list_queues,
            service::api::create_queue
        ))
        .routes(routes!(service::api::get_queue, service::api::update_queue))
        .routes(routes!(
            service::mailboxes_api::list_mailboxes,
            service::mailboxes_api::create_mailbox
        ))
        .routes(routes!(
            service::mailboxes_api::get_mailbox,
            service::mailboxes_api::update_mailbox
        ))
        .routes(routes!(
            service::surveys::list_responses,
            service::surveys::record_response
        ))
        .routes(routes!(service::surveys::summary))
        .routes(routes!(service::mailboxes_api::test_mailbox))
        .routes(routes!(service::mailboxes_api::fetch_mailbox))
        .routes(routes!(service::mailboxes_api::mailbox_health))
        .routes(routes!(service::mailboxes_api::dead_letters))
        .routes(routes!(service::mailboxes_api::dead_letter_raw))
        .routes(routes!(service::mailboxes_api::rerun_dead_letter))
        .routes(routes!(service::api::list_agents))
        .routes(routes!(service::api::set_agent))
        .routes(routes!(
            sales::quotes_api::list_price_books,
            sales::quotes_api::create_price_book
        ))
        .routes(routes!(
            sales::quotes_api::get_price_book,
            sales::quotes_api::update_price_book,
            sales::quotes_api::delete_price_book
        ))
        .routes(routes!(sales::quotes_api::get_price))
        .routes(routes!(
            sales::quotes_api::list_quotes,
            sales::quotes_api::create_quote
        ))
        .routes(routes!(
            sales::quotes_api::get_quote,
            sales::quotes_api::update_quote,
            sales::quotes_api::delete_quote
        ))
        .routes(routes!(sales::quotes_api::send_quote))
        .routes(routes!(sales::quotes_api::accept_quote))
        .routes(routes!(sales::quotes_api::decline_quote))
        .routes(routes!(sales::quotes_api::quote_versions))
        .routes(routes!(sales::quotes_api::submit_quote))
        .routes(routes!(sales::forecast_pages::get_forecast))
        .routes(routes!(sales::forecast_pages::get_performance))
        .routes(routes!(
            sales::forecast_pages::post_call,
            sales::forecast_pages::list_calls
        ))
        .routes(routes!(sales::forecast_pages::get_funnel))
        .routes(routes!(analytics::get_abc))
        .routes(routes!(analytics::get_rfm))
        .routes(routes!(analytics::list_runs, analytics::post_run))
        .routes(routes!(analytics::list_models, analytics::post_model))
        .routes(routes!(analytics::get_model))
        .routes(routes!(analytics::model_customers))
        .routes(routes!(analytics::get_recommendations))
        .routes(routes!(analytics::get_churn))
        .routes(routes!(analytics::post_win_back))
        .routes(routes!(grading::get_scheme, grading::put_scheme))
        .routes(routes!(grading::list_runs, grading::post_run))
        .routes(routes!(grading::get_run))
        .routes(routes!(grading::run_customers))
        .routes(routes!(grading::run_moves))
        .routes(routes!(grading::get_history))
        .routes(routes!(reports::run_adhoc))
        .routes(routes!(reports::get_fields))
        .routes(routes!(reports::list_reports, reports::create_report))
        .routes(routes!(
            reports::get_report,
            reports::update_report,
            reports::delete_report
        ))
        .routes(routes!(reports::run_report))
        .routes(routes!(reports::export_report))
        .routes(routes!(
            dashboards::list_dashboards,
            dashboards::create_dashboard
        ))
        .routes(routes!(
            dashboards::get_dashboard,
            dashboards::update_dashboard,
            dashboards::delete_dashboard
        ))
        .routes(routes!(dashboards::dashboard_data))
        .routes(routes!(dashboards::set_home))
        .routes(routes!(
            sales::forecast_pages::list_targets,
            sales::forecast_pages::put_target
        ))
        .routes(routes!(
            approvals::list_processes,
            approvals::create_process
        ))
        .routes(routes!(approvals::get_process, approvals::update_process))
        .routes(routes!(approvals::list_requests))
        .routes(routes!(approvals::get_request))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .routes(routes!(approvals::send_back))
        .routes(routes!(approvals::recall))
        .routes(routes!(approvals::add_approver))
        .routes(routes!(
            sales::quotes_api::get_numbering,
            sales::quotes_api::put_numbering
        ))
        .routes(routes!(sales::forms::list_forms, sales::forms::create_form))
        .routes(routes!(sales::forms::get_form, sales::forms::update_form))
        .routes(routes!(sales::forms::form_submissions))
        .routes(routes!(customers::api::search))
        .routes(routes!(customers::api::create_activity))
        .routes(routes!(
            customers::api::get_activity,
            customers::api::update_activity,
            customers::api::delete_activity
        ))
        .routes(routes!(customers::api::account_timeline))
        .routes(routes!(customers::api::contact_timeline))
        .routes(routes!(customers::api::list_tasks))
        .routes(routes!(
            customers::api::list_products,
            customers::api::create_product
        ))
        .routes(routes!(
            customers::api::get_product,
            customers::api::update_product,
            customers::api::delete_product
        ))
        .routes(routes!(
            customers::api::list_orders,
            customers::api::create_order
        ))
        .routes(routes!(
            customers::api::get_order,
            customers::api::update_order,
            customers::api::delete_order
        ))
        .routes(routes!(customers::api::push_order))
        .routes(routes!(
            customers::api::list_assets,
            customers::api::create_asset
        ))
        .routes(routes!(
            customers::api::get_asset,
            customers::api::update_asset,
            customers::api::delete_asset
        ))
        .routes(routes!(customers::api::account_order_totals))
        .routes(routes!(customers::api::contact_order_totals))
        .routes(routes!(customers::api::transfer))
        .routes(routes!(customers::api::duplicates))
        .routes(routes!(customers::api::duplicate_contact_pairs))
        .routes(routes!(customers::export::export_accounts))
        .routes(routes!(customers::export::export_contacts))
        .routes(routes!(customers::export::export_contacts_vcard))
        .routes(routes!(customers::export::export_accounts_xlsx))
        .routes(routes!(customers::export::export_contacts_xlsx))
        .routes(routes!(customers::api::import_contacts))
        .routes(routes!(customers::api::import_accounts))
        .routes(routes!(customers::api::import_orders))
        .routes(routes!(customers::api::merge_contacts))
        .routes(routes!(customers::api::unmerge_contact))
        .routes(routes!(customers::api::merge_accounts))
        .routes(routes!(customers::api::unmerge_account))
        .routes(routes!(
            customers::api::list_custom_fields,
            customers::api::create_custom_field
        ))
        .routes(routes!(
            customers::api::get_custom_field,
            customers::api::update_custom_field
        ))
        .split_for_parts();
    let (router, mut doc) = api;
    errors_in_spec(&mut doc);
    (router, doc)
}

/// What every operation can answer besides what its handler documents, so the spec matches
/// the server (checked by schemathesis in CI): errors are `application/problem+json` (a
/// documented `Problem` response is moved to that type), and any other status — a 400 for a
/// malformed body, 413, 422, 429 or 503 with `Retry-After` — is the `default` response.
fn errors_in_spec(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            for r in op.responses.responses.values_mut() {
                let RefOr::T(r) = r else { continue };
                let is_problem = r.content.get("application/json").is_some_and(|c| {
                    matches!(&c.schema, Some(RefOr::Ref(x)) if x.ref_location.ends_with("/Problem"))
                });
                if is_problem {
                    if let Some(c) = r.content.shift_remove("application/json") {
                        r.content.insert("application/problem+json".into(), c);
                    }
                }
            }
            op.responses.responses.entry("default".into()).or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description("An error: bad input (400, 413, 422 naming each field), not signed in (401), not allowed (403), absent (404), conflict (409), stale version (412), too many attempts (429) or unavailable (503); 429 and 503 carry Retry-After")
                        .content("application/problem+json", problem())
                        .build(),
                )
            });
        }
    }
}

/// The OpenAPI document as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().1
}

/// The largest request body: 10 MiB (imports included; larger files go through
/// `guanxi import`). Bodies over it are refused with 413 before they are read.
pub const BODY_LIMIT: usize = 10 * 1024 * 1024;

/// The whole application with its middleware.
pub fn app(state: AppState) -> Router {
    let (api, doc) = api_router();
    // Served as the text it is, printed once: the document's tree (megabytes of small
    // allocations for the life of the process) is dropped here.
    let doc = axum::body::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let api = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let d = doc.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], d) }
            }),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), idem::layer));
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .merge(pages::router())
        .fallback(pages::not_found)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(middleware::from_fn(input::refuse_control_chars))
        .layer(middleware::from_fn_with_state(state.clone(), session::https_only))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(problem::problem_bodies))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(60)))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }).on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// The scheduled job kinds of every module, each with its handler (email is the platform's
/// own). A module adds its kinds here as it lands (lead SLA warnings, pool returns, …).
pub fn job_handlers(config: &guanxi_platform::config::Config) -> jobs::Handlers {
    jobs::Handlers::default()
        .with(
            guanxi_platform::notifications::KIND_EMAIL_JOB,
            notifications::email_handler(config.base_url.clone()),
        )
        .with(
            guanxi_sales::scoring::RESCORE_JOB,
            guanxi_sales::scoring::rescore_handler(),
        )
        .with(
            guanxi_sales::pools::RETURNS_JOB,
            guanxi_sales::pools::returns_handler(),
        )
        .with(guanxi_sales::sla::JOB, guanxi_sales::sla::handler())
        .with(guanxi_service::sla::JOB, guanxi_service::sla::handler())
        .with(
            guanxi_service::sla::REEVALUATE_JOB,
            guanxi_service::sla::reevaluate_handler(),
        )
        .with(
            guanxi_service::tickets::REPLY_MAIL_JOB,
            service::mail::reply_handler(config.base_url.clone()),
        )
        .with(
            guanxi_service::nps::JOB,
            service::mail::nps_handler(config.base_url.clone()),
        )
        .with(
            guanxi_service::warranty::JOB,
            guanxi_service::warranty::handler(),
        )
        .with(
            guanxi_service::mailboxes::SENT_COPY_JOB,
            guanxi_service::mailboxes::sent_copy_handler(),
        )
        // A calendar changed: every clock counted on calendars is counted again.
        .with(
            guanxi_platform::calendars::CHANGED_JOB,
            guanxi_service::sla::reevaluate_handler(),
        )
        .with(
            guanxi_analytics::grading_runs::JOB,
            guanxi_analytics::grading_runs::quarter_handler(),
        )
        .with(
            guanxi_analytics::reports::DELIVERY_JOB,
            guanxi_analytics::reports::delivery_handler(),
        )
}

/// The analytics worker: runs the 4V evaluations waiting (asked for, or queued by the
/// quarterly job) one at a time, and sends the scheduled reports due — beside the job worker,
/// so a long evaluation never holds up mail or SLA timers.
pub async fn run_grader(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mail = reports::mail(state.config.base_url.clone());
    loop {
        if let Err(e) = guanxi_analytics::grading_runs::work(&state.db).await {
            tracing::warn!(error = %e, "grader");
        }
        match guanxi_analytics::reports::deliver(&state.db, &mail).await {
            Ok(n) if n > 0 => state.jobs_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "report deliveries"),
        }
        tokio::select! {
            _ = state.grading_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = &mut shutdown => return,
        }
    }
}

/// The mail fetcher: fetches the support mailboxes that are due (each every `poll_seconds`,
/// at once when asked) and turns their mail into tickets, beside the job worker.
pub async fn run_mail_fetcher(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        match guanxi_service::mailboxes::work(&state.db, None, &|_| {}).await {
            Ok(r) if r.processed > 0 => state.jobs_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "mail fetcher"),
        }
        tokio::select! {
            _ = state.mail_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = &mut shutdown => return,
        }
    }
}

/// Runs due jobs until none are left, then waits for a wake-up, a timer or shutdown.
pub async fn run_worker(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        loop {
            match jobs::run_due(&state.db, &state.mailer, &state.handlers, now(), 20).await {
                Ok(s) if s.done + s.retried + s.dead + s.overtaken > 0 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "job worker");
                    break;
                }
            }
        }
        tokio::select! {
            _ = state.jobs_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = &mut shutdown => return,
        }
    }
}

/// Serves the app on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
