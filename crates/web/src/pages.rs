//! Server-rendered web UI (minijinja, auto-escaped, embedded in the binary). Pages call the
//! same platform service functions as the API, so the same permission check and audit apply.
//! Forms post back with a CSRF token: the session's when signed in, a double-submit cookie
//! before.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_platform::audit::{self, AuditFilter};
use guanxi_platform::error::FieldError;
use guanxi_platform::perms::Action;
use guanxi_platform::users::{NewUser, UserFilter, UserPatch};
use guanxi_platform::{api_tokens, auth, jobs, roles, teams, tenants, users, Ctx, Error};
use minijinja::{context, Environment, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

use crate::extract::{cookie, request_locale, ClientIp, SESSION_COOKIE};
use crate::i18n;
use crate::problem::{localize, status_of};
use crate::session;
use crate::state::AppState;

const FORM_CSRF_COOKIE: &str = "gx_csrf";

macro_rules! templates {
    ($env:ident, $($name:literal),+) => {
        $( $env.add_template($name, include_str!(concat!("../templates/", $name)))?; )+
    };
}

pub fn templates() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    // A missing value prints nothing — never `none` in a form field (typing appended to it).
    env.set_formatter(|out, state, value| {
        if value.is_none() || value.is_undefined() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    templates!(
        env,
        "base.html",
        "macros.html",
        "login.html",
        "signup.html",
        "forgot.html",
        "password.html",
        "home.html",
        "users.html",
        "user.html",
        "teams.html",
        "calendars.html",
        "calendar.html",
        "notifications.html",
        "tokens.html",
        "audit.html",
        "jobs.html",
        "settings.html",
        "account.html",
        "docs.html",
        "docs_body.html",
        "error.html",
        "records/list.html",
        "customers/purchases.html",
        "customers/assets.html",
        "customers/merge.html",
        "customers/import_run.html",
        "custom_fields.html",
        "customers/account.html",
        "customers/contact.html",
        "records/form.html",
        "customers/search.html",
        "customers/tabs.html",
        "sales/lead.html",
        "sales/opportunity.html",
        "service/ticket.html",
        "service/visits.html",
        "service/visit.html",
        "service/policies.html",
        "service/pressing.html",
        "service/queues.html",
        "service/mailboxes.html",
        "service/survey.html",
        "service/article.html",
        "service/help.html",
        "service/portal.html",
        "service/tickets_card.html",
        "sales/board.html",
        "sales/pipelines.html",
        "sales/quotes.html",
        "sales/quote.html",
        "sales/quote_line_money.html",
        "sales/quote_print.html",
        "sales/price_books.html",
        "approvals.html",
        "sales/forecast.html",
        "sales/performance.html",
        "analytics/abc.html",
        "analytics/rfm.html",
        "analytics/clv.html",
        "analytics/churn.html",
        "analytics/tabs.html",
        "analytics/grades.html",
        "analytics/grading_run.html",
        "reports/list.html",
        "reports/builder.html",
        "reports/report.html",
        "reports/result.html",
        "dashboards/list.html",
        "dashboards/dashboard.html",
        "dashboards/tiles.html",
        "dashboards/panel.html",
        "approval.html",
        "approval_link.html",
        "approval_processes.html",
        "sales/pool.html",
        "sales/rules.html",
        "sales/import.html",
        "sales/forms.html",
        "sales/form.html",
        "sales/form_fields.html",
        "sales/public_form.html",
        "sales/public_thanks.html",
        "records/sections.html",
        "customers/timeline.html",
        "customers/tasks.html",
        "customers/activity.html",
        "customers/facts.html",
        "customers/import_report.html",
        "customers/orders.html",
        "customers/order.html",
        "customers/order_form.html",
        "customers/products.html",
        "customers/transfer.html",
        "customers/import.html",
        "customers/duplicates.html"
    );
    env.add_function("t", |state: &minijinja::State, key: &str| -> String {
        let loc = state
            .lookup("locale")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "en".into());
        i18n::t(&loc, key)
    });
    // A code shown to people (`sign_in`, `pending`): `{{ code|named("audit.action.") }}` is its
    // translation under that prefix, or the code itself when there is none.
    env.add_filter(
        "named",
        |state: &minijinja::State, code: &str, prefix: &str| -> String {
            let loc = state
                .lookup("locale")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "en".into());
            let key = format!("{prefix}{code}");
            let text = i18n::t(&loc, &key);
            if text == key {
                code.to_owned()
            } else {
                text
            }
        },
    );
    // Money is stored in minor units: `{{ 123456|money("CNY") }}` → `¥1,234.56`.
    // A record's page from its entity (an audit or recent-view entry): `/leads/<id>`.
    env.add_function("record_path", |entity: &str, id: &str| -> Value {
        let base = crate::LISTS
            .iter()
            .find(|(m, _)| *m == entity)
            .map(|(_, b)| *b)
            .unwrap_or("/customers");
        // A path of known parts and a uuid: nothing to escape (and `/` must stay `/`).
        let id = uuid::Uuid::parse_str(id)
            .map(|u| u.to_string())
            .unwrap_or_default();
        Value::from_safe_string(format!("{base}/{id}"))
    });
    env.add_filter("money", |minor: i64, currency: Option<String>| -> String {
        crate::money::format(minor, currency.as_deref().unwrap_or("CNY"))
    });
    // Instants are shown in the tenant's time zone.
    env.add_filter(
        "datetime",
        |state: &minijinja::State, v: String| -> String {
            let tz: chrono_tz::Tz = state
                .lookup("time_zone")
                .and_then(|z| z.to_string().parse().ok())
                .unwrap_or(chrono_tz::Asia::Shanghai);
            chrono::DateTime::parse_from_rfc3339(&v)
                .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or(v)
        },
    );
    Ok(env)
}

pub(crate) fn render(s: &AppState, status: StatusCode, name: &str, ctx: Value) -> Response {
    match s.templates.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, template = name, "render");
            // Debug builds (tests, development) say what broke; release builds do not.
            let detail = if cfg!(debug_assertions) {
                format!("template error: {e:#}\n{e:?}")
            } else {
                "template error".to_owned()
            };
            (StatusCode::INTERNAL_SERVER_ERROR, detail).into_response()
        }
    }
}

/// A signed-in page visitor: their context, CSRF token and the page's shared template values.
pub struct Signed {
    pub ctx: Ctx,
    pub csrf: String,
    /// The tenant's time zone: times are shown, and typed, in it.
    pub time_zone: chrono_tz::Tz,
    pub base: Value,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let request_id = crate::extract::request_id(parts);
        Signed::resolve(s, &parts.headers, parts.uri.path(), request_id)
            .await
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

impl Signed {
    /// The signed-in visitor behind these headers, if any: one query for the session, the
    /// user's name and the tenant's name and time zone.
    async fn resolve(
        s: &AppState,
        headers: &HeaderMap,
        path: &str,
        request_id: Option<String>,
    ) -> Option<Signed> {
        let session = auth::session(&s.db, cookie(headers, SESSION_COOKIE)?)
            .await
            .ok()?;
        let mut ctx = session.ctx;
        if !ctx.locale_saved {
            ctx.locale = request_locale(headers, &ctx.locale);
        }
        ctx.request_id = request_id;
        // The administration section holds what a role may manage, not what it may merely
        // read: everyone reads colleagues, teams, settings and field definitions (forms and
        // pickers need them), but only those who may change them see these pages.
        let mut admin_nav = Vec::new();
        for (key, module, action, href) in [
            ("users", "users", Action::Update, "/admin/users"),
            ("teams", "teams", Action::Update, "/admin/teams"),
            ("calendars", "calendars", Action::Update, "/admin/calendars"),
            ("forms", "forms", Action::Read, "/admin/forms"),
            (
                "lead_rules",
                "assignment_rules",
                Action::Create,
                "/admin/lead-rules",
            ),
            ("pipelines", "pipelines", Action::Update, "/admin/pipelines"),
            (
                "sla_policies",
                "sla_policies",
                Action::Update,
                "/admin/sla-policies",
            ),
            ("queues", "sla_policies", Action::Update, "/admin/queues"),
            ("mailboxes", "mailboxes", Action::Read, "/admin/mailboxes"),
            (
                "price_books",
                "price_books",
                Action::Update,
                "/admin/price-books",
            ),
            (
                "approval_processes",
                "approval_processes",
                Action::Update,
                "/admin/approval-processes",
            ),
            ("audit", "audit", Action::Read, "/admin/audit"),
            ("jobs", "jobs", Action::Read, "/admin/jobs"),
            ("settings", "settings", Action::Update, "/settings"),
            (
                "custom_fields",
                "custom_fields",
                Action::Create,
                "/admin/custom-fields",
            ),
        ] {
            if ctx.can(module, action).is_some() {
                admin_nav.push((key, href));
            }
        }
        let unread = crate::notifications::bell(s, &ctx).await;
        let base = context! {
            locale => ctx.locale.clone(), me => context! { id => ctx.user_id, name => session.user_name },
            unread => unread,
            csrf => session.csrf.clone(), tenant_name => session.tenant_name,
            time_zone => session.time_zone.clone(), admin_nav => admin_nav, path => path.to_owned(),
            customers_nav => ctx.can("accounts", Action::Read).is_some() || ctx.can("contacts", Action::Read).is_some(),
            leads_nav => ctx.can("leads", Action::Read).is_some(),
            deals_nav => ctx.can("opportunities", Action::Read).is_some(),
            quotes_nav => ctx.can("quotes", Action::Read).is_some(),
            tickets_nav => ctx.can("tickets", Action::Read).is_some(),
            articles_nav => ctx.can("articles", Action::Read).is_some(),
            value_nav => ctx.can("analytics", Action::Read).is_some(),
        };
        Some(Signed {
            ctx,
            csrf: session.csrf,
            time_zone: session
                .time_zone
                .parse()
                .unwrap_or(chrono_tz::Asia::Shanghai),
            base,
        })
    }
    pub(crate) fn page(&self, s: &AppState, name: &str, nav: &str, extra: Value) -> Response {
        self.page_status(s, StatusCode::OK, name, nav, extra)
    }
    pub(crate) fn page_status(
        &self,
        s: &AppState,
        status: StatusCode,
        name: &str,
        nav: &str,
        extra: Value,
    ) -> Response {
        render(
            s,
            status,
            name,
            context! { ..context! { nav => nav }, ..extra, ..self.base.clone() },
        )
    }
    /// Refuses a form whose CSRF token is not this session's.
    pub(crate) fn csrf_ok(&self, sent: &Option<String>) -> bool {
        sent.as_deref() == Some(self.csrf.as_str())
    }
    /// An error page in the visitor's language.
    pub(crate) fn error(&self, s: &AppState, e: Error) -> Response {
        let status = status_of(&e);
        let p = crate::problem::problem(e, &self.ctx.locale);
        self.page_status(
            s,
            status,
            "error.html",
            "",
            context! { status => status.as_u16(), message => p.detail.unwrap_or(p.title) },
        )
    }
    pub(crate) fn field_errors(&self, e: Error) -> Result<Vec<FieldError>, Error> {
        match e {
            Error::Validation(v) => Ok(localize(v, &self.ctx.locale)),
            e => Err(e),
        }
    }
}

impl Signed {
    /// A refused change to carry back to the page it came from in a redirect's `?error=`: keys
    /// only — `<label key>:<code>` per field (`activity.subject:required;…`) or
    /// `problem.<kind>` — never text. [`Signed::refusal_from_url`] turns them back into words.
    pub(crate) fn refusal_keys(&self, e: Error, label_prefix: Option<&str>) -> String {
        match e {
            // Changed by someone else since the page was read.
            Error::PreconditionFailed { .. } => "version:changed".to_owned(),
            Error::Validation(errs) => errs
                .iter()
                .map(|e| format!("{}{}:{}", label_prefix.unwrap_or(""), e.field, e.code))
                .collect::<Vec<_>>()
                .join(";"),
            e => {
                let p = crate::problem::problem(e, &self.ctx.locale);
                format!(
                    "problem.{}",
                    p.kind.rsplit(':').next().unwrap_or("internal")
                )
            }
        }
    }

    /// Back to the same-site `path` saying why a change was refused (its
    /// [`Signed::refusal_keys`] in `?error=`).
    pub(crate) fn refused_to(&self, path: &str, e: Error, label_prefix: Option<&str>) -> Response {
        let q = serde_urlencoded::to_string([("error", self.refusal_keys(e, label_prefix))])
            .unwrap_or_default();
        let join = if path.contains('?') { '&' } else { '?' };
        Redirect::to(&format!("{path}{join}{q}")).into_response()
    }

    /// The words for an `?error=` of [`Signed::refusal_keys`]: only messages this server has
    /// (a key the translations lack shows nothing), so a crafted link cannot put its own text
    /// in the red banner.
    pub(crate) fn refusal_from_url(&self, param: Option<&str>) -> Option<String> {
        let l = &self.ctx.locale;
        let known = |key: &str| {
            let text = i18n::t(l, key);
            (text != key).then_some(text)
        };
        let parts: Vec<String> = param?
            .split(';')
            .filter_map(|item| match item.split_once(':') {
                Some((label, code)) => {
                    let message = known(&format!("err.{code}"))?;
                    // `contacts[2].role` is labelled as `contacts.role`, `regions.3` as
                    // `regions`.
                    let unindexed = || {
                        let mut plain = String::with_capacity(label.len());
                        let mut depth = 0;
                        for c in label.chars() {
                            match c {
                                '[' => depth += 1,
                                ']' => depth -= 1,
                                c if depth == 0 => plain.push(c),
                                _ => {}
                            }
                        }
                        let plain: Vec<&str> = plain
                            .split('.')
                            .filter(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()))
                            .collect();
                        known(&plain.join("."))
                    };
                    Some(match known(label).or_else(unindexed) {
                        Some(label) => format!("{label} {message}"),
                        None => message,
                    })
                }
                None if item.starts_with("problem.") => known(item),
                None => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Locale and the double-submit CSRF token for pages shown before sign-in.
fn public_base(headers: &HeaderMap) -> (String, String, bool) {
    let locale = request_locale(headers, "zh-CN");
    match cookie(headers, FORM_CSRF_COOKIE).filter(|c| c.len() >= 20) {
        Some(c) => (locale, c.to_owned(), false),
        None => (locale, guanxi_platform::secret::random_secret(), true),
    }
}

pub(crate) fn public_page(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    name: &str,
    extra: Value,
) -> Response {
    public_page_in(s, headers, status, name, extra, None)
}

/// [`public_page`] in a language the page chose (a `?lang=` the visitor picked), else the
/// browser's.
pub(crate) fn public_page_in(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    name: &str,
    extra: Value,
    locale: Option<&str>,
) -> Response {
    let (browser, token, fresh) = public_base(headers);
    let locale = locale.map(str::to_owned).unwrap_or(browser);
    let mut r = render(
        s,
        status,
        name,
        context! { locale => locale, form_csrf => token.clone(), allow_signup => s.config.allow_signup, ..extra },
    );
    if fresh {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{FORM_CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
        )) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

pub(crate) fn public_csrf_ok(headers: &HeaderMap, sent: &Option<String>) -> bool {
    matches!((cookie(headers, FORM_CSRF_COOKIE), sent), (Some(c), Some(s)) if c == s && c.len() >= 20)
}

pub(crate) fn forbidden_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        "CSRF token missing or wrong; reload the page",
    )
        .into_response()
}

fn signed_in_redirect(new: &auth::NewSession, to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    session::set_cookie(&mut r, &new.cookie);
    r
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/login", get(login_page).post(login))
        .route("/signup", get(signup_page).post(signup))
        .route("/forgot", get(forgot_page).post(forgot))
        .route("/password", get(password_page).post(password))
        .route("/logout", post(logout))
        .route("/lang", post(lang))
        .route("/admin/users", get(users_page).post(create_user))
        .route("/admin/users/{id}", get(user_page).post(update_user))
        .route("/admin/users/{id}/invite", post(resend_invitation))
        .route("/admin/users/{id}/password", post(set_user_password))
        .route("/admin/users/{id}/sign-in-link", post(create_sign_in_link))
        .route("/admin/teams", get(teams_page).post(create_team))
        .route("/admin/teams/{id}/delete", post(delete_team))
        .route("/admin/tokens", get(tokens_page).post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/audit", get(audit_page))
        .route("/admin/jobs", get(jobs_page))
        .route("/admin/jobs/{id}/retry", post(retry_job))
        .route("/settings", get(settings_page).post(update_settings))
        .route("/settings/numbering", post(update_numbering))
        .route("/account", get(account_page))
        .route("/account/password", post(change_password))
        .route("/account/sign-out-everywhere", post(sign_out_everywhere))
        .route("/api/docs", get(docs))
        .merge(crate::customers::pages::router())
        .merge(crate::calendars::router())
        .merge(crate::notifications::router())
        .merge(crate::sales::pages::routes())
        .merge(crate::sales::deals::routes())
        .merge(crate::service::pages::routes())
        .merge(crate::service::mailboxes_page::routes())
        .merge(crate::service::surveys::routes())
        .merge(crate::service::articles_pages::routes())
        .merge(crate::service::visits::routes())
        .merge(crate::service::help::routes())
        .merge(crate::service::portal_pages::routes())
        .merge(crate::sales::pipelines_page::routes())
        .merge(crate::sales::quotes_pages::routes())
        .merge(crate::approvals::routes())
        .merge(crate::sales::forecast_pages::routes())
        .merge(crate::analytics::routes())
        .merge(crate::grading::routes())
        .merge(crate::reports::routes())
        .merge(crate::dashboards::routes())
        .merge(crate::sales::forms::admin_routes())
        .merge(crate::sales::forms::public_routes())
        .merge(crate::sales::rules_page::routes())
}

/// An unknown address: the API answers problem+json; a page gets the site's own layout (with
/// the menu when signed in), in the visitor's language.
pub async fn not_found(State(s): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let locale = request_locale(&headers, "en");
    if uri.path().starts_with("/api/") {
        return crate::problem::ApiError::new(Error::NotFound, &locale).into_response();
    }
    match Signed::resolve(&s, &headers, uri.path(), None).await {
        Some(p) => {
            let message = i18n::t(&p.ctx.locale, "problem.not_found_page");
            p.page_status(
                &s,
                StatusCode::NOT_FOUND,
                "error.html",
                "",
                context! { status => 404, message => message },
            )
        }
        None => public_page(
            &s,
            &headers,
            StatusCode::NOT_FOUND,
            "error.html",
            context! { status => 404, message => i18n::t(&request_locale(&headers, "zh-CN"), "problem.not_found_page") },
        ),
    }
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/app.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/app.js"),
    )
}

/// Home: the user's day (each module adds its panels) and their home dashboard.
async fn home(State(s): State<AppState>, p: Signed) -> Response {
    let panels = match crate::customers::pages::home_panels(&s, &p).await {
        Ok(panels) => panels,
        Err(e) => return p.error(&s, e),
    };
    match crate::dashboards::home_panel(&s, &p.ctx).await {
        Ok(dashboard) => p.page(
            &s,
            "home.html",
            "home",
            context! { ..panels, ..context! { dashboard } },
        ),
        Err(e) => p.error(&s, e),
    }
}

// ---- sign-in, sign-up, password links, language -------------------------------------------

#[derive(Deserialize)]
struct LoginForm {
    _csrf: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

async fn login_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        if auth::session(&s.db, c).await.is_ok() {
            return Redirect::to("/").into_response();
        }
    }
    public_page(&s, &headers, StatusCode::OK, "login.html", context! {})
}

async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let locale = request_locale(&headers, "zh-CN");
    let email = f.email.unwrap_or_default();
    match auth::sign_in(
        &s.db,
        &s.limiter,
        &email,
        &f.password.unwrap_or_default(),
        &ip,
    )
    .await
    {
        Ok(new) => signed_in_redirect(&new, "/"),
        Err(e) => {
            let status = status_of(&e);
            let msg = match e {
                Error::RateLimited { .. } => i18n::t(&locale, "problem.rate_limited"),
                Error::Unauthorized => i18n::t(&locale, "auth.bad_credentials"),
                e => crate::problem::problem(e, &locale).title,
            };
            public_page(
                &s,
                &headers,
                status,
                "login.html",
                context! { error => msg, email => email },
            )
        }
    }
}

#[derive(Deserialize, Default, serde::Serialize)]
struct SignupForm {
    _csrf: Option<String>,
    company: Option<String>,
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

async fn signup_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !s.config.allow_signup {
        return not_found(State(s.clone()), Uri::from_static("/signup"), headers).await;
    }
    public_page(
        &s,
        &headers,
        StatusCode::OK,
        "signup.html",
        context! { form => SignupForm::default() },
    )
}

async fn signup(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignupForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let locale = request_locale(&headers, "zh-CN");
    let input = crate::api::SignUp {
        company: f.company.clone(),
        name: f.name.clone(),
        email: f.email.clone(),
        password: f.password.clone(),
        locale: Some(locale.clone()),
    };
    match crate::api::signup(&s, input, &locale).await {
        Ok(new) => signed_in_redirect(&new, "/"),
        Err(Error::Validation(v)) => {
            let form = SignupForm {
                password: None,
                ..f
            };
            public_page(
                &s,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                "signup.html",
                context! { errors => localize(v, &locale), form => form },
            )
        }
        Err(e) => {
            let status = status_of(&e);
            let p = crate::problem::problem(e, &locale);
            public_page(
                &s,
                &headers,
                status,
                "error.html",
                context! { status => status.as_u16(), message => p.detail.unwrap_or(p.title) },
            )
        }
    }
}

#[derive(Deserialize)]
struct ForgotForm {
    _csrf: Option<String>,
    email: Option<String>,
}

async fn forgot_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    public_page(&s, &headers, StatusCode::OK, "forgot.html", context! {})
}

async fn forgot(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    if let Err(e) =
        auth::request_reset(&s.db, &f.email.unwrap_or_default(), &s.config.base_url).await
    {
        tracing::error!(error = %e, "password reset request");
    }
    s.jobs_wake.notify_one();
    public_page(
        &s,
        &headers,
        StatusCode::OK,
        "forgot.html",
        context! { sent => true },
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn password_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    public_page(
        &s,
        &headers,
        StatusCode::OK,
        "password.html",
        context! { token => q.token.unwrap_or_default() },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    _csrf: Option<String>,
    token: Option<String>,
    password: Option<String>,
}

async fn password(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let locale = request_locale(&headers, "zh-CN");
    let token = f.token.unwrap_or_default();
    match auth::use_link(&s.db, &token, &f.password.unwrap_or_default()).await {
        Ok(new) => signed_in_redirect(&new, "/"),
        Err(e) => {
            let errors = match e {
                Error::Validation(v) => localize(v, &locale),
                e => localize(
                    vec![FieldError::new(
                        "token",
                        if matches!(e, Error::NotFound) {
                            "invalid_link"
                        } else {
                            "invalid"
                        },
                    )],
                    &locale,
                ),
            };
            public_page(
                &s,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                "password.html",
                context! { errors => errors, token => token },
            )
        }
    }
}

#[derive(Deserialize)]
/// A form that carries only its CSRF token (a button that does one thing).
pub(crate) struct CsrfForm {
    pub(crate) _csrf: Option<String>,
}

async fn logout(
    State(s): State<AppState>,
    p: Signed,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = auth::sign_out(&s.db, c).await {
            return p.error(&s, e);
        }
    }
    let mut r = Redirect::to("/login").into_response();
    session::clear_cookie(&mut r);
    r
}

#[derive(Deserialize)]
struct LangForm {
    _csrf: Option<String>,
    locale: Option<String>,
    back: Option<String>,
}

/// Switches language: remembered on the user's profile when signed in, in a cookie always.
async fn lang(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<LangForm>) -> Response {
    let Some(locale) = f.locale.as_deref().and_then(i18n::normalize) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, "unknown locale").into_response();
    };
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        if let Ok(auth::Session { ctx, csrf, .. }) = auth::session(&s.db, c).await {
            if f._csrf.as_deref() != Some(csrf.as_str()) {
                return forbidden_csrf();
            }
            if let Err(e) =
                users::update_self(&s.db, &ctx, None, Some(Some(locale.to_owned()))).await
            {
                tracing::error!(error = %e, "saving language");
            }
        }
    }
    // Only local paths: never redirect off-site.
    let back = f
        .back
        .as_deref()
        .and_then(crate::extract::local_path)
        .unwrap_or_else(|| "/".into());
    let mut r = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "gx_lang={locale}; Path=/; Max-Age=31536000; SameSite=Lax"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

// ---- users ---------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct UsersQuery {
    q: Option<String>,
    role_id: Option<String>,
    cursor: Option<String>,
}

#[derive(Deserialize, Default, serde::Serialize)]
struct UserForm {
    _csrf: Option<String>,
    version: Option<i64>,
    name: Option<String>,
    email: Option<String>,
    role_id: Option<String>,
    team_id: Option<String>,
    password: Option<String>,
    active: Option<String>,
}

pub(crate) fn opt_uuid(v: &Option<String>) -> Option<Uuid> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| Uuid::parse_str(s).ok())
}

async fn names(s: &AppState, ctx: &Ctx) -> Result<(Vec<roles::Role>, Vec<teams::Team>), Error> {
    let mut r = roles::list(&s.db, ctx, Some(200), None).await?.items;
    // Built-in roles are read-only, so their names follow the reader's language.
    for role in r.iter_mut().filter(|r| r.builtin) {
        role.name = crate::i18n::t(&ctx.locale, &format!("role.{}", role.key));
    }
    let t = teams::list(&s.db, ctx, Some(200), None, None).await?.items;
    Ok((r, t))
}

async fn users_view(
    s: &AppState,
    p: &Signed,
    q: UsersQuery,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: UserForm,
) -> Response {
    let filter = UserFilter {
        q: q.q.clone(),
        role_id: opt_uuid(&q.role_id),
        cursor: q.cursor.clone(),
        ..Default::default()
    };
    let page = match users::list(&s.db, &p.ctx, &filter).await {
        Ok(pg) => pg,
        Err(e) => return p.error(s, e),
    };
    let (roles, teams) = match names(s, &p.ctx).await {
        Ok(x) => x,
        Err(e) => return p.error(s, e),
    };
    let role_names: HashMap<String, String> = roles
        .iter()
        .map(|r| (r.id.to_string(), r.name.clone()))
        .collect();
    let team_names: HashMap<String, String> = teams
        .iter()
        .map(|t| (t.id.to_string(), t.name.clone()))
        .collect();
    p.page_status(s, status, "users.html", "users", context! {
        users => page.items, next_cursor => page.next_cursor, roles => roles, teams => teams, role_names => role_names,
        team_names => team_names, q => q.q.unwrap_or_default(), role_id => q.role_id.unwrap_or_default(),
        can_create => p.ctx.can("users", Action::Create).is_some(), errors => errors, form => form,
    })
}

async fn users_page(State(s): State<AppState>, p: Signed, Query(q): Query<UsersQuery>) -> Response {
    users_view(&s, &p, q, StatusCode::OK, vec![], UserForm::default()).await
}

async fn create_user(State(s): State<AppState>, p: Signed, Form(f): Form<UserForm>) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let input = NewUser {
        email: f.email.clone(),
        name: f.name.clone(),
        password: f.password.clone().filter(|p| !p.is_empty()),
        role_id: opt_uuid(&f.role_id),
        team_id: opt_uuid(&f.team_id),
        locale: None,
    };
    match users::create(&s.db, &p.ctx, &s.config.base_url, input).await {
        Ok(u) => {
            s.jobs_wake.notify_one();
            Redirect::to(&format!("/admin/users/{}", u.id)).into_response()
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                let form = UserForm {
                    password: None,
                    ..f
                };
                users_view(
                    &s,
                    &p,
                    UsersQuery::default(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                    form,
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

#[derive(Deserialize)]
struct SavedQuery {
    saved: Option<String>,
    invited: Option<String>,
}

/// What a user's page shows beside the user: a saved notice, form errors, a refusal, a fresh
/// sign-in link.
#[derive(Default)]
struct UserNotes {
    saved: bool,
    errors: Vec<FieldError>,
    error: Option<String>,
    link: Option<auth::SignInLink>,
}

async fn user_view(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    status: StatusCode,
    notes: UserNotes,
) -> Response {
    let UserNotes {
        saved,
        errors,
        error,
        link,
    } = notes;
    let user = match users::get(&s.db, &p.ctx, id).await {
        Ok(u) => u,
        Err(e) => return p.error(s, e),
    };
    let (roles, teams) = match names(s, &p.ctx).await {
        Ok(x) => x,
        Err(e) => return p.error(s, e),
    };
    p.page_status(s, status, "user.html", "users", context! { user => user, roles => roles, teams => teams, saved => saved, errors => errors, error => error,
        can_invite => user.active && !user.has_password && p.ctx.can("users", Action::Update).is_some(),
        can_manage => user.active && p.ctx.can("users", Action::Update).is_some(), link => link })
}

async fn user_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<SavedQuery>,
) -> Response {
    // A notice after a save or a re-sent invitation.
    let saved = q.saved.is_some() || q.invited.is_some();
    user_view(
        &s,
        &p,
        id,
        StatusCode::OK,
        UserNotes {
            saved,
            ..Default::default()
        },
    )
    .await
}

#[derive(Deserialize)]
struct SetPasswordForm {
    _csrf: Option<String>,
    password: Option<String>,
}

/// `POST /admin/users/{id}/password`: an admin sets the user's password.
async fn set_user_password(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<SetPasswordForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match users::set_password(&s.db, &p.ctx, id, f.password.as_deref().unwrap_or("")).await {
        Ok(()) => Redirect::to(&format!("/admin/users/{id}?saved=1")).into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                let notes = UserNotes {
                    errors,
                    ..Default::default()
                };
                user_view(&s, &p, id, StatusCode::UNPROCESSABLE_ENTITY, notes).await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

/// `POST /admin/users/{id}/sign-in-link`: a one-time link shown on the page, to pass on.
async fn create_sign_in_link(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match users::sign_in_link(&s.db, &p.ctx, &s.config.base_url, id).await {
        Ok(link) => {
            let notes = UserNotes {
                link: Some(link),
                ..Default::default()
            };
            user_view(&s, &p, id, StatusCode::OK, notes).await
        }
        Err(e) => p.error(&s, e),
    }
}

async fn resend_invitation(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match users::resend_invitation(&s.db, &p.ctx, &s.config.base_url, id).await {
        Ok(()) => {
            s.jobs_wake.notify_one();
            Redirect::to(&format!("/admin/users/{id}?invited=1")).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

async fn update_user(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<UserForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let patch = UserPatch {
        version: f.version,
        name: f.name.clone(),
        email: f.email.clone(),
        role_id: opt_uuid(&f.role_id),
        team_id: Some(opt_uuid(&f.team_id)),
        locale: None,
        active: Some(f.active.as_deref() == Some("true")),
    };
    match users::update(&s.db, &p.ctx, id, None, patch).await {
        Ok(_) => Redirect::to(&format!("/admin/users/{id}?saved=1")).into_response(),
        Err(e @ Error::PreconditionFailed { .. }) => {
            let msg = crate::problem::problem(e, &p.ctx.locale).title;
            let notes = UserNotes {
                error: Some(msg),
                ..Default::default()
            };
            user_view(&s, &p, id, StatusCode::PRECONDITION_FAILED, notes).await
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                let notes = UserNotes {
                    errors,
                    ..Default::default()
                };
                user_view(&s, &p, id, StatusCode::UNPROCESSABLE_ENTITY, notes).await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

// ---- teams, tokens -------------------------------------------------------------------------

#[derive(Deserialize)]
struct NameForm {
    _csrf: Option<String>,
    name: Option<String>,
    expires_in_days: Option<String>,
}

async fn teams_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    errors: Vec<FieldError>,
    error: Option<String>,
) -> Response {
    match teams::list(&s.db, &p.ctx, Some(200), None, None).await {
        Ok(pg) => p.page_status(s, status, "teams.html", "teams", context! {
            teams => pg.items, errors => errors, error => error,
            can_create => p.ctx.can("teams", Action::Create).is_some(), can_delete => p.ctx.can("teams", Action::Delete).is_some(),
        }),
        Err(e) => p.error(s, e),
    }
}

async fn teams_page(State(s): State<AppState>, p: Signed) -> Response {
    teams_view(&s, &p, StatusCode::OK, vec![], None).await
}

async fn create_team(State(s): State<AppState>, p: Signed, Form(f): Form<NameForm>) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match teams::create(
        &s.db,
        &p.ctx,
        teams::TeamInput {
            version: None,
            name: f.name,
        },
    )
    .await
    {
        Ok(_) => Redirect::to("/admin/teams").into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => teams_view(&s, &p, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await,
            Err(e) => p.error(&s, e),
        },
    }
}

async fn delete_team(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match teams::delete(&s.db, &p.ctx, id).await {
        Ok(()) => Redirect::to("/admin/teams").into_response(),
        Err(Error::Conflict(m)) => teams_view(&s, &p, StatusCode::CONFLICT, vec![], Some(m)).await,
        Err(e) => p.error(&s, e),
    }
}

async fn tokens_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    created: Option<String>,
    errors: Vec<FieldError>,
) -> Response {
    match api_tokens::list(&s.db, &p.ctx, Some(200), None).await {
        Ok(pg) => p.page_status(s, status, "tokens.html", "tokens", context! {
            tokens => pg.items, created => created, errors => errors, can_create => p.ctx.can("api_tokens", Action::Create).is_some(),
        }),
        Err(e) => p.error(s, e),
    }
}

async fn tokens_page(State(s): State<AppState>, p: Signed) -> Response {
    tokens_view(&s, &p, StatusCode::OK, None, vec![]).await
}

async fn create_token(State(s): State<AppState>, p: Signed, Form(f): Form<NameForm>) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let days = match f
        .expires_in_days
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let errors = localize(
                    vec![FieldError::new("expires_in_days", "invalid")],
                    &p.ctx.locale,
                );
                return tokens_view(&s, &p, StatusCode::UNPROCESSABLE_ENTITY, None, errors).await;
            }
        },
    };
    match api_tokens::create(
        &s.db,
        &p.ctx,
        api_tokens::NewToken {
            name: f.name,
            expires_in_days: days,
        },
    )
    .await
    {
        // Shown once, on this response only; never in a URL.
        Ok(t) => tokens_view(&s, &p, StatusCode::CREATED, Some(t.secret), vec![]).await,
        Err(e) => match p.field_errors(e) {
            Ok(errors) => tokens_view(&s, &p, StatusCode::UNPROCESSABLE_ENTITY, None, errors).await,
            Err(e) => p.error(&s, e),
        },
    }
}

async fn revoke_token(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match api_tokens::revoke(&s.db, &p.ctx, id).await {
        Ok(_) => Redirect::to("/admin/tokens").into_response(),
        Err(e) => p.error(&s, e),
    }
}

// ---- audit, jobs, settings, account --------------------------------------------------------

#[derive(Deserialize, Default, serde::Serialize)]
struct AuditQuery {
    entity: Option<String>,
    entity_id: Option<String>,
    actor_id: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

fn day_start(d: &Option<String>, plus_days: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    let day = chrono::NaiveDate::parse_from_str(d.as_deref()?, "%Y-%m-%d").ok()?;
    let t = day.and_hms_opt(0, 0, 0)?.and_utc() + chrono::Duration::days(plus_days);
    Some(t)
}

/// Field-level differences between two JSON objects: (field, before, after).
fn changes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<(String, String, String)> {
    let empty = serde_json::Map::new();
    let b = before.and_then(|v| v.as_object()).unwrap_or(&empty);
    let a = after.and_then(|v| v.as_object()).unwrap_or(&empty);
    let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "updated_at" | "version"))
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| (k.clone(), show(b.get(k)), show(a.get(k))))
        .collect()
}

async fn audit_page(State(s): State<AppState>, p: Signed, Query(q): Query<AuditQuery>) -> Response {
    let f = AuditFilter {
        entity: q.entity.clone().filter(|e| !e.is_empty()),
        entity_id: opt_uuid(&q.entity_id),
        actor_id: opt_uuid(&q.actor_id),
        action: q.action.clone().filter(|e| !e.is_empty()),
        from: day_start(&q.from, 0),
        to: day_start(&q.to, 1),
        limit: Some(50),
        cursor: q.cursor.clone(),
    };
    let page = match audit::list(&s.db, &p.ctx, &f).await {
        Ok(pg) => pg,
        Err(e) => return p.error(&s, e),
    };
    let people = users::list(
        &s.db,
        &p.ctx,
        &UserFilter {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .map(|pg| pg.items)
    .unwrap_or_default();
    let user_names: BTreeMap<String, String> = people
        .iter()
        .map(|u| (u.id.to_string(), u.name.clone()))
        .collect();
    let events: Vec<Value> = page
        .items
        .iter()
        .map(|e| {
            context! { at => e.at, actor_id => e.actor_id, actor_kind => e.actor_kind, action => e.action, entity => e.entity,
                changes => changes(e.before.as_ref().map(|j| &j.0), e.after.as_ref().map(|j| &j.0)) }
        })
        .collect();
    let next_link = page.next_cursor.as_ref().map(|c| {
        let next = AuditQuery {
            cursor: Some(c.clone()),
            ..q
        };
        format!("?{}", audit_query_string(&next))
    });
    p.page(&s, "audit.html", "audit", context! { events => events, next_cursor => page.next_cursor, next_link => next_link, f => filter_for_template(&f), users => people, user_names => user_names })
}

fn filter_for_template(f: &AuditFilter) -> Value {
    context! {
        entity => f.entity.clone().unwrap_or_default(), action => f.action.clone().unwrap_or_default(),
        actor_id => f.actor_id.map(|u| u.to_string()).unwrap_or_default(), entity_id => f.entity_id.map(|u| u.to_string()),
        from => f.from.map(|d| d.format("%Y-%m-%d").to_string()),
        to => f.to.map(|d| (d - chrono::Duration::days(1)).format("%Y-%m-%d").to_string()),
    }
}

/// The audit filter as a query string: the non-empty fields only.
fn audit_query_string(q: &AuditQuery) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("entity", &q.entity),
        ("entity_id", &q.entity_id),
        ("actor_id", &q.actor_id),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
        ("cursor", &q.cursor),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[derive(Deserialize)]
struct JobsQuery {
    status: Option<String>,
}

async fn jobs_page(State(s): State<AppState>, p: Signed, Query(q): Query<JobsQuery>) -> Response {
    let status = q.status.filter(|s| !s.is_empty());
    let f = jobs::JobFilter {
        status: status.clone(),
        limit: Some(100),
        ..Default::default()
    };
    match jobs::list(&s.db, &p.ctx, &f).await {
        Ok(pg) => p.page(
            &s,
            "jobs.html",
            "jobs",
            context! { jobs => pg.items, status => status },
        ),
        Err(e) => p.error(&s, e),
    }
}

async fn retry_job(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match jobs::retry(&s.db, &p.ctx, id).await {
        Ok(_) => {
            s.jobs_wake.notify_one();
            Redirect::to("/admin/jobs").into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

#[derive(Deserialize)]
struct SettingsForm {
    _csrf: Option<String>,
    version: Option<i64>,
    name: Option<String>,
    time_zone: Option<String>,
    currency: Option<String>,
    locale: Option<String>,
}

async fn settings_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    saved: bool,
    errors: Vec<FieldError>,
    error: Option<String>,
) -> Response {
    use guanxi_platform::numbering;
    use guanxi_sales::quotes::{DEFAULT_PATTERN, NUMBERING};
    let pattern = numbering::pattern(&s.db, p.ctx.tenant_id, NUMBERING, DEFAULT_PATTERN).await;
    match (tenants::get(&s.db, &p.ctx).await, pattern) {
        (Ok(t), Ok(pattern)) => {
            // What the next quote's number looks like (the 123rd of today's period).
            let today = chrono::Utc::now().with_timezone(&p.time_zone).date_naive();
            let example = numbering::Pattern::parse(&pattern)
                .map(|pt| pt.format(today, 123))
                .unwrap_or_default();
            p.page_status(
                s,
                status,
                "settings.html",
                "settings",
                context! {
                    tenant => t, saved => saved, errors => errors, error => error,
                    can_edit => p.ctx.can("settings", Action::Update).is_some(),
                    quote_pattern => pattern, quote_example => example,
                },
            )
        }
        (Err(e), _) | (_, Err(e)) => p.error(s, e),
    }
}

#[derive(Deserialize)]
struct NumberingForm {
    _csrf: Option<String>,
    pattern: String,
}

/// `POST /settings/numbering`: the quote number pattern (`Q-{YYYY}-{SEQ:6}`).
async fn update_numbering(
    State(s): State<AppState>,
    p: Signed,
    Form(f): Form<NumberingForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let name = guanxi_sales::quotes::NUMBERING;
    let result = guanxi_platform::numbering::set(&s.db, &p.ctx, name, &f.pattern).await;
    settings_saved(&s, &p, result.map(|_| ())).await
}

async fn settings_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<SavedQuery>,
) -> Response {
    settings_view(&s, &p, StatusCode::OK, q.saved.is_some(), vec![], None).await
}

async fn update_settings(
    State(s): State<AppState>,
    p: Signed,
    Form(f): Form<SettingsForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let patch = tenants::TenantPatch {
        version: f.version,
        name: f.name,
        time_zone: f.time_zone,
        currency: f.currency,
        locale: f.locale,
    };
    let result = tenants::update(&s.db, &p.ctx, None, patch).await;
    settings_saved(&s, &p, result.map(|_| ())).await
}

/// Where a settings form goes after its change: back saved, or the page again with the
/// refusal (a stale version, or each field's error).
async fn settings_saved(s: &AppState, p: &Signed, result: Result<(), Error>) -> Response {
    match result {
        Ok(()) => Redirect::to("/settings?saved=1").into_response(),
        Err(e @ Error::PreconditionFailed { .. }) => {
            let msg = crate::problem::problem(e, &p.ctx.locale).title;
            settings_view(
                s,
                p,
                StatusCode::PRECONDITION_FAILED,
                false,
                vec![],
                Some(msg),
            )
            .await
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                settings_view(s, p, StatusCode::UNPROCESSABLE_ENTITY, false, errors, None).await
            }
            Err(e) => p.error(s, e),
        },
    }
}

async fn account_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<SavedQuery>,
) -> Response {
    p.page(
        &s,
        "account.html",
        "account",
        context! { saved => q.saved.is_some() },
    )
}

#[derive(Deserialize)]
struct PasswordChangeForm {
    _csrf: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
}

async fn change_password(
    State(s): State<AppState>,
    p: Signed,
    headers: HeaderMap,
    Form(f): Form<PasswordChangeForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let keep = cookie(&headers, SESSION_COOKIE);
    match auth::change_password(
        &s.db,
        &p.ctx,
        &f.current_password.unwrap_or_default(),
        &f.new_password.unwrap_or_default(),
        keep,
    )
    .await
    {
        Ok(()) => Redirect::to("/account?saved=1").into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => p.page_status(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "account.html",
                "account",
                context! { errors => errors },
            ),
            Err(e) => p.error(&s, e),
        },
    }
}

#[derive(Deserialize)]
struct SignOutForm {
    _csrf: Option<String>,
    api_tokens: Option<String>,
}

async fn sign_out_everywhere(
    State(s): State<AppState>,
    p: Signed,
    Form(f): Form<SignOutForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match auth::sign_out_everywhere(&s.db, &p.ctx, f.api_tokens.is_some()).await {
        Ok(()) => {
            let mut r = Redirect::to("/login").into_response();
            session::clear_cookie(&mut r);
            r
        }
        Err(e) => p.error(&s, e),
    }
}

/// The API reference, rendered from the generated OpenAPI document (no CDN, no script).
async fn docs(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let api = serde_json::to_value(crate::openapi()).unwrap_or_default();
    match Signed::resolve(&s, &headers, "/api/docs", None).await {
        Some(p) => p.page(&s, "docs.html", "docs", context! { api => api }),
        None => public_page(
            &s,
            &headers,
            StatusCode::OK,
            "docs.html",
            context! { api => api, path => "/api/docs" },
        ),
    }
}
