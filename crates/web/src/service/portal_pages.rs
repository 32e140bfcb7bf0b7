//! The customer portal's pages, `/portal/{tenant}` (no script; a phone first): sign in with a
//! password or an emailed link (the link's page only shows a button, so a mail scanner opening
//! it signs nobody in), the customer's tickets (and their company's when allowed), a ticket's
//! conversation with a reply box, and a new request — the question first, answered with
//! suggested articles ("this solved it" ends there), then the details. Forms carry the public
//! form token; the session cookie is the portal's own (`gx_portal`, path `/portal`).

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_platform::perms::Action;
use guanxi_platform::Error;
use guanxi_service::portal::{
    self, Customer, PortalUserInput, QuestionInput, ReplyInput, RequestInput, SolvedInput,
};
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::extract::{cookie, ClientIp, Posted, Upload};
use crate::pages::{forbidden_csrf, public_csrf_ok, public_page_in, Signed};
use crate::service::portal_api::PORTAL_COOKIE;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/customers/contacts/{id}/portal", post(invite))
        .route("/portal-users/{id}", post(update_access))
        .route("/portal/{tenant}", get(home))
        .route("/portal/{tenant}/login", get(login).post(sign_in))
        .route("/portal/{tenant}/link", post(send_link))
        .route("/portal/{tenant}/link/{token}", get(link).post(use_link))
        .route("/portal/{tenant}/logout", post(sign_out))
        .route("/portal/{tenant}/new", get(new_request))
        .route("/portal/{tenant}/ask", post(ask))
        .route("/portal/{tenant}/questions/{id}/solved", post(solved))
        .route("/portal/{tenant}/tickets", post(open_ticket))
        .route("/portal/{tenant}/tickets/{id}", get(ticket).post(reply))
}

/// The customer signed in to this tenant's portal, if any.
async fn customer(s: &AppState, headers: &HeaderMap, tenant: Uuid) -> Option<Customer> {
    let token = cookie(headers, PORTAL_COOKIE)?;
    match portal::session(&s.db, token).await {
        Ok(c) if c.tenant_id == tenant => Some(c),
        _ => None,
    }
}

/// A form posted by the signed-in customer: its token checked and the customer found, or the
/// response refusing it (403, or to the sign-in page).
async fn poster(
    s: &AppState,
    headers: &HeaderMap,
    tenant: Uuid,
    csrf: &Option<String>,
) -> Result<Customer, Response> {
    if !public_csrf_ok(headers, csrf) {
        return Err(forbidden_csrf());
    }
    customer(s, headers, tenant)
        .await
        .ok_or_else(|| to_login(tenant))
}

fn page(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    locale: Option<&str>,
    extra: Value,
) -> Response {
    public_page_in(s, headers, status, "service/portal.html", extra, locale)
}

fn to_login(tenant: Uuid) -> Response {
    Redirect::to(&format!("/portal/{tenant}/login")).into_response()
}

fn failed(s: &AppState, headers: &HeaderMap, c: Option<&Customer>, e: Error) -> Response {
    let status = match &e {
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Conflict(_) => StatusCode::CONFLICT,
        _ => {
            tracing::error!(error = %e, "portal");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    page(
        s,
        headers,
        status,
        c.map(|c| c.locale.as_str()),
        context! { c => c, tenant => c.map(|c| c.tenant_id), failed => status.as_u16() },
    )
}

#[derive(Deserialize)]
struct HomeQuery {
    scope: Option<String>,
    cursor: Option<String>,
}

async fn home(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
    Query(q): Query<HomeQuery>,
) -> Response {
    let Some(c) = customer(&s, &headers, tenant).await else {
        return to_login(tenant);
    };
    let company = q.scope.as_deref() == Some("company") && c.company_access;
    match portal::tickets(&s.db, &c, company, None, q.cursor).await {
        Ok(list) => page(
            &s,
            &headers,
            StatusCode::OK,
            Some(&c.locale),
            context! { c => c, tenant => tenant, mode => "home", tickets => list.items,
            next_cursor => list.next_cursor, company => company },
        ),
        Err(e) => failed(&s, &headers, Some(&c), e),
    }
}

async fn company_of(s: &AppState, tenant: Uuid) -> Option<String> {
    guanxi_service::articles::help_centre(&s.db, tenant)
        .await
        .ok()
        .map(|(name, _)| name)
}

async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
) -> Response {
    let Some(company) = company_of(&s, tenant).await else {
        return failed(&s, &headers, None, Error::NotFound);
    };
    page(
        &s,
        &headers,
        StatusCode::OK,
        None,
        context! { tenant => tenant, company => company, mode => "login" },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    _csrf: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

fn signed_in(tenant: Uuid, token: &str) -> Response {
    let mut r = Redirect::to(&format!("/portal/{tenant}")).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{PORTAL_COOKIE}={token}; Path=/portal; HttpOnly; SameSite=Lax; Max-Age={}",
        portal::SESSION_DAYS * 86_400
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn sign_in(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
    Form(f): Form<SignInForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let email = f.email.unwrap_or_default();
    match portal::sign_in(
        &s.db,
        &s.limiter,
        tenant,
        &email,
        &f.password.unwrap_or_default(),
        &ip,
    )
    .await
    {
        Ok(new) => signed_in(tenant, &new.token),
        Err(e @ (Error::Unauthorized | Error::RateLimited { .. })) => {
            let company = company_of(&s, tenant).await;
            let (status, why) = match e {
                Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "portal.too_many"),
                _ => (StatusCode::UNAUTHORIZED, "portal.wrong"),
            };
            page(
                &s,
                &headers,
                status,
                None,
                context! { tenant => tenant, company => company, mode => "login", why => why, email => email },
            )
        }
        Err(e) => failed(&s, &headers, None, e),
    }
}

#[derive(Deserialize)]
struct LinkForm {
    _csrf: Option<String>,
    email: Option<String>,
}

async fn send_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
    Form(f): Form<LinkForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let Some(company) = company_of(&s, tenant).await else {
        return failed(&s, &headers, None, Error::NotFound);
    };
    let email = f.email.unwrap_or_default();
    if let Err(e) = portal::request_link(&s.db, tenant, &email, &s.config.base_url).await {
        return failed(&s, &headers, None, e);
    }
    page(
        &s,
        &headers,
        StatusCode::OK,
        None,
        context! { tenant => tenant, company => company, mode => "login", sent => true },
    )
}

async fn link(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tenant, token)): Path<(Uuid, String)>,
) -> Response {
    let Some(company) = company_of(&s, tenant).await else {
        return failed(&s, &headers, None, Error::NotFound);
    };
    page(
        &s,
        &headers,
        StatusCode::OK,
        None,
        context! { tenant => tenant, company => company, mode => "link", token => token },
    )
}

#[derive(Deserialize)]
struct UseLinkForm {
    _csrf: Option<String>,
    password: Option<String>,
}

async fn use_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tenant, token)): Path<(Uuid, String)>,
    Form(f): Form<UseLinkForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let password = f.password.filter(|p| !p.is_empty());
    match portal::use_link(&s.db, tenant, &token, password.as_deref()).await {
        Ok(new) => signed_in(tenant, &new.token),
        Err(Error::Validation(errs)) => {
            let company = company_of(&s, tenant).await;
            page(
                &s,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                context! { tenant => tenant, company => company, mode => "link", token => token,
                errors => errs },
            )
        }
        Err(e) => failed(&s, &headers, None, e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    _csrf: Option<String>,
}

async fn sign_out(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    if let Some(token) = cookie(&headers, PORTAL_COOKIE) {
        if let Err(e) = portal::sign_out(&s.db, token).await {
            return failed(&s, &headers, None, e);
        }
    }
    let mut r = to_login(tenant);
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("gx_portal=; Path=/portal; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    r
}

async fn new_request(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
) -> Response {
    let Some(c) = customer(&s, &headers, tenant).await else {
        return to_login(tenant);
    };
    page(
        &s,
        &headers,
        StatusCode::OK,
        Some(&c.locale.clone()),
        context! { c => c, tenant => tenant, mode => "ask" },
    )
}

#[derive(Deserialize)]
struct AskForm {
    _csrf: Option<String>,
    text: Option<String>,
}

async fn ask(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
    Form(f): Form<AskForm>,
) -> Response {
    let c = match poster(&s, &headers, tenant, &f._csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let text = f.text.unwrap_or_default();
    match portal::ask(
        &s.db,
        &c,
        QuestionInput {
            text: Some(text.clone()),
        },
    )
    .await
    {
        Ok(q) => {
            let subject: String = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(100)
                .collect();
            page(
                &s,
                &headers,
                StatusCode::OK,
                Some(&c.locale.clone()),
                context! { c => c, tenant => tenant, mode => "details", q => q, text => text,
                subject => subject },
            )
        }
        Err(Error::Validation(errs)) => page(
            &s,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&c.locale.clone()),
            context! { c => c, tenant => tenant, mode => "ask", errors => errs },
        ),
        Err(e) => failed(&s, &headers, Some(&c), e),
    }
}

#[derive(Deserialize)]
struct SolvedForm {
    _csrf: Option<String>,
    article_id: Option<Uuid>,
}

async fn solved(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
    Form(f): Form<SolvedForm>,
) -> Response {
    let c = match poster(&s, &headers, tenant, &f._csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match portal::solved(
        &s.db,
        &c,
        id,
        SolvedInput {
            article_id: f.article_id,
        },
    )
    .await
    {
        Ok(()) => page(
            &s,
            &headers,
            StatusCode::OK,
            Some(&c.locale.clone()),
            context! { c => c, tenant => tenant, mode => "solved" },
        ),
        Err(e) => failed(&s, &headers, Some(&c), e),
    }
}

/// A portal form as posted (multipart with files, or urlencoded); one that cannot be read is
/// the field error `file` (too large, or broken).
fn read_form(form: Posted) -> Result<Upload, Error> {
    form.0.map_err(|(_, code)| Error::field("file", code))
}

/// `POST /portal/{tenant}/tickets` (multipart: `subject`, `body`, `question_id`, files).
async fn open_ticket(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
    form: Posted,
) -> Response {
    // A form that could not be read did nothing: shown again with why (no CSRF to check).
    let (f, result) = match read_form(form) {
        Ok(f) => {
            let c = match poster(&s, &headers, tenant, &f.field("_csrf").map(str::to_owned)).await {
                Ok(c) => c,
                Err(r) => return r,
            };
            let input = RequestInput {
                subject: f.field("subject").map(str::to_owned),
                body: f.field("body").map(str::to_owned),
                question_id: f.field("question_id").and_then(|v| v.parse().ok()),
            };
            let r = portal::open_ticket(&s.db, &c, input, &f.files).await;
            (f, r.map_err(|e| (c, e)))
        }
        Err(e) => match customer(&s, &headers, tenant).await {
            Some(c) => (Upload::default(), Err((c, e))),
            None => return to_login(tenant),
        },
    };
    let text = |k: &str| f.field(k).map(str::to_owned);
    let question_id = f.field("question_id").and_then(|v| v.parse::<Uuid>().ok());
    let (c, e) = match result {
        Ok(t) => {
            return Redirect::to(&format!("/portal/{tenant}/tickets/{}", t.id)).into_response()
        }
        Err(ce) => ce,
    };
    match e {
        Error::Validation(errs) => page(
            &s,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&c.locale.clone()),
            context! { c => c, tenant => tenant, mode => "details", errors => errs,
            subject => text("subject"), text => text("body"), q => context! { id => question_id } },
        ),
        e => failed(&s, &headers, Some(&c), e),
    }
}

async fn ticket_page(
    s: &AppState,
    headers: &HeaderMap,
    c: &Customer,
    id: Uuid,
    status: StatusCode,
    extra: Value,
) -> Response {
    match (
        portal::ticket(&s.db, c, id).await,
        portal::messages(&s.db, c, id).await,
    ) {
        (Ok(t), Ok(m)) => page(
            s,
            headers,
            status,
            Some(&c.locale),
            context! { c => c, tenant => c.tenant_id, mode => "ticket", tk => t, messages => m, ..extra },
        ),
        (Err(e), _) | (_, Err(e)) => failed(s, headers, Some(c), e),
    }
}

async fn ticket(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
) -> Response {
    let Some(c) = customer(&s, &headers, tenant).await else {
        return to_login(tenant);
    };
    ticket_page(&s, &headers, &c, id, StatusCode::OK, context! {}).await
}

/// `POST /portal/{tenant}/tickets/{id}/messages` (multipart: `body`, files).
async fn reply(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
    form: Posted,
) -> Response {
    // A form that could not be read did nothing: shown again with why (no CSRF to check).
    let (c, result) = match read_form(form) {
        Ok(f) => {
            let c = match poster(&s, &headers, tenant, &f.field("_csrf").map(str::to_owned)).await {
                Ok(c) => c,
                Err(r) => return r,
            };
            let input = ReplyInput {
                body: f.field("body").map(str::to_owned),
                attachment_ids: None,
            };
            let r = portal::reply(&s.db, &c, id, input, &f.files).await;
            (c, r)
        }
        Err(e) => match customer(&s, &headers, tenant).await {
            Some(c) => (c, Err(e)),
            None => return to_login(tenant),
        },
    };
    match result {
        Ok(_) => {
            Redirect::to(&format!("/portal/{tenant}/tickets/{id}#conversation")).into_response()
        }
        Err(Error::Validation(errs)) => {
            ticket_page(
                &s,
                &headers,
                &c,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                context! { errors => errs },
            )
            .await
        }
        Err(Error::Conflict(_)) => {
            ticket_page(
                &s,
                &headers,
                &c,
                id,
                StatusCode::CONFLICT,
                context! { closed => true },
            )
            .await
        }
        Err(e) => failed(&s, &headers, Some(&c), e),
    }
}

// ---- The colleagues' side: a contact page's "Customer portal" card. ----

/// The card's content for a contact: their portal access if any, and whether the reader may
/// change it; nothing for a reader who may not see portal users.
pub(crate) async fn card(s: &AppState, p: &Signed, contact: Uuid) -> Value {
    if p.ctx.can("portal_users", Action::Read).is_none() {
        return Value::from(());
    }
    let user = portal::list_users(&s.db, &p.ctx, Some(contact))
        .await
        .ok()
        .and_then(|u| u.into_iter().next());
    context! { user => user, can_manage => p.ctx.can("portal_users", Action::Create).is_some() }
}

#[derive(Deserialize)]
struct AccessForm {
    _csrf: Option<String>,
    company_access: Option<String>,
    active: Option<String>,
    version: Option<i64>,
    contact: Option<Uuid>,
}

/// `POST /customers/contacts/{id}/portal`: open the portal to the contact (a link emailed).
async fn invite(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<AccessForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let input = PortalUserInput {
        contact_id: Some(id),
        company_access: Some(f.company_access.is_some()),
        ..Default::default()
    };
    let page = format!("/customers/contacts/{id}");
    match portal::invite(&s.db, &p.ctx, input, &s.config.base_url).await {
        Ok(_) => Redirect::to(&format!("{page}#portal-access")).into_response(),
        Err(e) => p.refused_to(&page, e, Some("portal.field.")),
    }
}

/// `POST /portal-users/{id}`: company-wide access, or closing the portal to them.
async fn update_access(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<AccessForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let input = PortalUserInput {
        company_access: Some(f.company_access.is_some()),
        active: Some(f.active.is_some()),
        version: f.version,
        ..Default::default()
    };
    let page = match f.contact {
        Some(c) => format!("/customers/contacts/{c}"),
        None => "/".to_owned(),
    };
    match portal::update_user(&s.db, &p.ctx, id, None, input).await {
        Ok(_) => Redirect::to(&format!("{page}#portal-access")).into_response(),
        Err(e) => p.refused_to(&page, e, Some("portal.field.")),
    }
}
