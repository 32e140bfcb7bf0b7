//! Public forms: the admin API (`/api/v1/forms`), the admin pages (`/admin/forms`) with the
//! embed snippet and the submissions, and the public side — the hosted form page, the post
//! (form-encoded or JSON) and `embed.js`, which fills a pasted form's fill-time token and
//! campaign parameters. A pasted plain `<form>` works without the script.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form as PostedForm, Json, Router};
use guanxi_platform::page::Page;
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::Error;
use guanxi_records::custom_fields;
use guanxi_sales::forms::{
    self, Form, FormField, FormInput, Posted, Submission, SubmissionFilter, Submitted, CONSENT,
    HONEYPOT, TOKEN,
};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{request_locale, ApiJson, Auth, ClientIp, IfMatch};
use crate::pages::{forbidden_csrf, Signed};
use crate::problem::Problem;
use crate::state::AppState;

// ---- API -----------------------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
pub struct FormList {
    pub items: Vec<Form>,
}

#[utoipa::path(get, path = "/api/v1/forms", tag = "forms", responses((status = 200, body = FormList)))]
pub async fn list_forms(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Json<FormList>> {
    Ok(Json(FormList {
        items: forms::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A new public form; its `key` is the address visitors post to (`/public/forms/{key}`).
#[utoipa::path(post, path = "/api/v1/forms", tag = "forms", request_body = FormInput, responses(
    (status = 201, body = Form), (status = 422, body = Problem)))]
pub async fn create_form(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<FormInput>,
) -> ApiResult<Response> {
    let f = forms::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &f, f.version))
}

#[utoipa::path(get, path = "/api/v1/forms/{id}", tag = "forms", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Form), (status = 404, body = Problem)))]
pub async fn get_form(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let f = forms::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &f, f.version))
}

#[utoipa::path(patch, path = "/api/v1/forms/{id}", tag = "forms", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = FormInput, responses((status = 200, body = Form), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_form(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<FormInput>,
) -> ApiResult<Response> {
    let f = forms::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &f, f.version))
}

/// Every post to the form, newest first, whatever became of it.
#[utoipa::path(get, path = "/api/v1/forms/{id}/submissions", tag = "forms", params(("id" = Uuid, Path), SubmissionFilter), responses(
    (status = 200, body = Page<Submission>), (status = 404, body = Problem)))]
pub async fn form_submissions(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<SubmissionFilter>,
) -> ApiResult<Json<Page<Submission>>> {
    Ok(Json(forms::submissions(&s.db, &ctx, id, &f).await.l(&ctx)?))
}

// ---- public --------------------------------------------------------------------------------

pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/public/forms/{key}", get(hosted).post(submit))
        .route("/public/forms/{key}/embed.js", get(embed_js))
}

/// The visitor's language: `?lang=`, else the browser's.
fn visitor_lang(headers: &HeaderMap, q: &BTreeMap<String, String>) -> String {
    q.get("lang")
        .and_then(|l| crate::i18n::normalize(l))
        .map(str::to_owned)
        .unwrap_or_else(|| request_locale(headers, "zh-CN"))
}

#[derive(Serialize)]
struct FieldView {
    name: String,
    label: String,
    required: bool,
    kind: &'static str,
}

fn field_views(f: &Form, lang: &str) -> Vec<FieldView> {
    f.fields
        .0
        .iter()
        .map(|fl| FieldView {
            name: fl.field.clone(),
            label: forms::pick(&fl.labels, lang),
            required: fl.required,
            kind: match fl.field.as_str() {
                "email" => "email",
                "phone" => "tel",
                "notes" | "description" => "textarea",
                _ => "text",
            },
        })
        .collect()
}

/// The hosted form page (no script needed): the fields in the visitor's language, the
/// fill-time token filled in.
#[allow(clippy::too_many_arguments)]
fn form_page(
    s: &AppState,
    status: StatusCode,
    f: &Form,
    lang: &str,
    values: &BTreeMap<String, String>,
    errors: &[(String, String)],
    error: Option<String>,
) -> Response {
    let errors: BTreeMap<&str, String> = errors
        .iter()
        .map(|(field, code)| (field.as_str(), crate::i18n::t(lang, &format!("err.{code}"))))
        .collect();
    crate::pages::render(
        s,
        status,
        "sales/public_form.html",
        context! {
            locale => lang, form => f.name, key => f.key, fields => field_views(f, lang),
            consent => f.consent.as_ref().map(|c| forms::pick(&c.0, lang)),
            token => forms::token(f, now()), values => values, errors => errors, error => error,
            honeypot => HONEYPOT, token_name => TOKEN, consent_name => CONSENT,
        },
    )
}

async fn hosted(
    State(s): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let lang = visitor_lang(&headers, &q);
    match forms::public(&s.db, &key).await {
        Ok((_, f)) => form_page(&s, StatusCode::OK, &f, &lang, &q, &[], None),
        Err(e) => public_error(&s, e, &lang),
    }
}

fn public_error(s: &AppState, e: Error, lang: &str) -> Response {
    let retry_after = match e {
        Error::RateLimited { retry_after } => Some(retry_after),
        _ => None,
    };
    let (status, key) = match e {
        Error::NotFound => (StatusCode::NOT_FOUND, "public_form.not_found"),
        Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "public_form.too_many"),
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "public_form.try_again"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "public_form.try_again"),
    };
    let mut r = crate::pages::render(
        s,
        status,
        "sales/public_thanks.html",
        context! { locale => lang, message => crate::i18n::t(lang, key), failed => true },
    );
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    r
}

/// What a post carries, from a form-encoded body or a JSON object (numbers and booleans as
/// text); anything else is refused.
fn posted_values(headers: &HeaderMap, body: &Bytes) -> Result<BTreeMap<String, String>, Error> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("a JSON object of fields: {e}")))?;
        Ok(v.into_iter()
            .filter_map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(true) => "yes".into(),
                    serde_json::Value::Bool(false) | serde_json::Value::Null => return None,
                    _ => return None,
                };
                Some((k, text))
            })
            .collect())
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::BadRequest(format!("form fields: {e}")))?;
        Ok(pairs.into_iter().collect())
    }
}

/// `POST /public/forms/{key}`: a browser gets the thank-you page (or the form's redirect), or
/// the form again with what is missing; a JSON client gets JSON.
async fn submit(
    State(s): State<AppState>,
    Path(key): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let lang = visitor_lang(&headers, &q);
    let wants_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let values = match posted_values(&headers, &body) {
        Ok(v) => v,
        Err(e) => return crate::problem::ApiError::new(e, &lang).into_response(),
    };
    let header_text = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let posted = Posted {
        referrer: values
            .get("_page")
            .cloned()
            .or_else(|| header_text(header::REFERER)),
        user_agent: header_text(header::USER_AGENT),
        ip,
        values: values.clone(),
    };
    let result = forms::submit(&s.db, &key, posted, &lang, &crate::service::webforms::Desk).await;
    if wants_json {
        return match result {
            Ok(done) => Json(done).into_response(),
            Err(e) => crate::problem::ApiError::new(e, &lang).into_response(),
        };
    }
    match result {
        Ok(Submitted {
            redirect_url: Some(to),
            ..
        }) => Redirect::to(&to).into_response(),
        Ok(done) => crate::pages::render(
            &s,
            StatusCode::OK,
            "sales/public_thanks.html",
            context! { locale => lang, message => done.message, failed => false },
        ),
        Err(Error::Validation(errs)) => match forms::public(&s.db, &key).await {
            Ok((_, f)) => {
                let errs: Vec<(String, String)> =
                    errs.into_iter().map(|e| (e.field, e.code)).collect();
                form_page(
                    &s,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &f,
                    &lang,
                    &values,
                    &errs,
                    None,
                )
            }
            Err(e) => public_error(&s, e, &lang),
        },
        Err(e) => public_error(&s, e, &lang),
    }
}

/// `embed.js`: made per request, so the token in it says when the page was shown. It fills
/// the pasted form's token, the page's address and campaign parameters; the form posts as a
/// plain form.
async fn embed_js(State(s): State<AppState>, Path(key): Path<String>) -> Response {
    let f = match forms::public(&s.db, &key).await {
        Ok((_, f)) => f,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/javascript")],
                "/* no such form */",
            )
                .into_response()
        }
    };
    let js = format!(
        r#"(function () {{
  var key = {key}, token = {token};
  var forms = document.querySelectorAll('form[data-guanxi-form]');
  for (var i = 0; i < forms.length; i++) {{
    var f = forms[i];
    if (f.getAttribute('data-guanxi-form') !== key) continue;
    var set = function (name, value) {{
      var el = f.querySelector('input[name="' + name + '"]');
      if (!el) {{ el = document.createElement('input'); el.type = 'hidden'; el.name = name; f.appendChild(el); }}
      el.value = value;
    }};
    set('{token_name}', token);
    set('_page', location.href.slice(0, 500));
    var q = new URLSearchParams(location.search);
    ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content'].forEach(function (k) {{
      if (q.get(k)) set(k, q.get(k).slice(0, 200));
    }});
  }}
}})();
"#,
        key = serde_json::json!(f.key),
        token = serde_json::json!(forms::token(&f, now())),
        token_name = TOKEN,
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        js,
    )
        .into_response()
}

// ---- admin pages ---------------------------------------------------------------------------

pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/forms", get(forms_page).post(create_page))
        .route("/admin/forms/{id}", get(form_detail).post(update_page))
}

/// The fields a form of `target` may ask for: the lead's (or the ticket's) own and its custom
/// fields, each with its label.
async fn choosable(s: &AppState, p: &Signed, target: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out: Vec<(String, String)> = forms::fields_of(target)
        .iter()
        .map(|f| {
            (
                (*f).to_owned(),
                crate::i18n::t(&p.ctx.locale, &format!("field.{f}")),
            )
        })
        .collect();
    let defs = custom_fields::live(&s.db, p.ctx.tenant_id, target).await?;
    out.extend(defs.iter().map(|d| {
        (
            format!("custom.{}", d.key),
            d.label_in(&p.ctx.locale).to_owned(),
        )
    }));
    Ok(out)
}

async fn owners(s: &AppState, p: &Signed) -> Result<Vec<Value>, Error> {
    let people = users::list(
        &s.db,
        &p.ctx,
        &UserFilter {
            active: Some(true),
            limit: Some(200),
            ..Default::default()
        },
    )
    .await?;
    Ok(people
        .items
        .iter()
        .map(|u| context! { id => u.id, name => u.name })
        .collect())
}

/// The form's definition from the admin page's fields: one row per choosable field (ticked to
/// include, required, Chinese and English labels).
fn input_of(form: &BTreeMap<String, String>, fields: &[(String, String)]) -> FormInput {
    let text = |k: &str| form.get(k).map(|v| v.trim().to_owned());
    let labels = |zh: &str, en: &str| {
        let mut m = BTreeMap::new();
        if let Some(v) = text(zh).filter(|v| !v.is_empty()) {
            m.insert("zh-CN".to_owned(), v);
        }
        if let Some(v) = text(en).filter(|v| !v.is_empty()) {
            m.insert("en".to_owned(), v);
        }
        m
    };
    let chosen: Vec<FormField> = fields
        .iter()
        .filter(|(name, _)| form.contains_key(&format!("use.{name}")))
        .map(|(name, default)| {
            let mut l = labels(&format!("zh.{name}"), &format!("en.{name}"));
            if l.is_empty() {
                l.insert("zh-CN".to_owned(), default.clone());
            }
            FormField {
                field: name.clone(),
                labels: l,
                required: form.contains_key(&format!("required.{name}")),
            }
        })
        .collect();
    let consent = labels("consent_zh", "consent_en");
    let number = |k: &str| text(k).and_then(|v| v.parse::<i64>().ok());
    FormInput {
        version: number("version"),
        target: text("target").filter(|t| !t.is_empty()),
        name: text("name"),
        fields: Some(chosen),
        consent: Some((!consent.is_empty()).then_some(consent)),
        thanks: Some(labels("thanks_zh", "thanks_en")).filter(|t| !t.is_empty()),
        redirect_url: Some(text("redirect_url")),
        source_detail: Some(text("source_detail")),
        tags: text("tags").map(|t| {
            t.split([',', '，', '、'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        owner_id: text("owner_id").and_then(|v| Uuid::parse_str(&v).ok()),
        min_fill_seconds: number("min_fill_seconds"),
        per_ip_hour: number("per_ip_hour"),
        per_minute: number("per_minute"),
        active: Some(form.contains_key("active")),
    }
}

#[derive(Deserialize)]
struct NewFormQuery {
    /// The new form's target (`?target=tickets`: a service request form).
    target: Option<String>,
}

async fn forms_page(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<NewFormQuery>,
) -> Response {
    // A new form's leads go to whoever makes it, unless they choose someone.
    let mut form = BTreeMap::new();
    if let Some(me) = p.ctx.user_id {
        form.insert("owner_id".to_owned(), me.to_string());
    }
    let target = q.target.filter(|t| forms::TARGETS.contains(&t.as_str()));
    form.insert(
        "target".to_owned(),
        target.unwrap_or_else(|| "leads".into()),
    );
    list_view(&s, &p, StatusCode::OK, form, vec![]).await
}

async fn list_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    form: BTreeMap<String, String>,
    errors: Vec<guanxi_platform::error::FieldError>,
) -> Response {
    let all = match forms::list(&s.db, &p.ctx).await {
        Ok(f) => f,
        Err(e) => return p.error(s, e),
    };
    let target = form
        .get("target")
        .filter(|t| forms::TARGETS.contains(&t.as_str()))
        .cloned()
        .unwrap_or_else(|| "leads".into());
    let (fields, people) = match (choosable(s, p, &target).await, owners(s, p).await) {
        (Ok(f), Ok(o)) => (f, o),
        (Err(e), _) | (_, Err(e)) => return p.error(s, e),
    };
    p.page_status(
        s,
        status,
        "sales/forms.html",
        "forms",
        context! { forms => all, fields => fields, users => people, form => form, errors => errors,
        target => target, targets => forms::TARGETS,
        can_create => p.ctx.can("forms", Action::Create).is_some() },
    )
}

async fn create_page(
    State(s): State<AppState>,
    p: Signed,
    PostedForm(form): PostedForm<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let target = form
        .get("target")
        .filter(|t| forms::TARGETS.contains(&t.as_str()))
        .cloned()
        .unwrap_or_else(|| "leads".into());
    let fields = match choosable(&s, &p, &target).await {
        Ok(f) => f,
        Err(e) => return p.error(&s, e),
    };
    match forms::create(&s.db, &p.ctx, input_of(&form, &fields)).await {
        Ok(f) => Redirect::to(&format!("/admin/forms/{}", f.id)).into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => list_view(&s, &p, StatusCode::UNPROCESSABLE_ENTITY, form, errors).await,
            Err(e) => p.error(&s, e),
        },
    }
}

async fn form_detail(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    detail_view(&s, &p, id, StatusCode::OK, None, vec![]).await
}

async fn detail_view(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    status: StatusCode,
    posted: Option<BTreeMap<String, String>>,
    errors: Vec<guanxi_platform::error::FieldError>,
) -> Response {
    let f = match forms::get(&s.db, &p.ctx, id).await {
        Ok(f) => f,
        Err(e) => return p.error(s, e),
    };
    let subs = forms::submissions(
        &s.db,
        &p.ctx,
        id,
        &SubmissionFilter {
            limit: Some(50),
            ..Default::default()
        },
    )
    .await;
    let (subs, fields, people) = match (subs, choosable(s, p, &f.target).await, owners(s, p).await)
    {
        (Ok(x), Ok(f), Ok(o)) => (x, f, o),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return p.error(s, e),
    };
    let base = s.config.base_url.trim_end_matches('/').to_owned();
    let lang = &p.ctx.locale;
    let snippet = snippet(&f, &base, if lang.starts_with("zh") { lang } else { "en" });
    p.page_status(
        s,
        status,
        "sales/form.html",
        "forms",
        context! { f => f, subs => subs.items, fields => fields, users => people, posted => posted,
        errors => errors, snippet => snippet, hosted => format!("{base}/public/forms/{}", f.key),
        can_edit => p.ctx.can("forms", Action::Update).is_some() },
    )
}

/// The HTML to paste into a web page: a plain form posting to the public address (it works
/// without JavaScript) and the script that adds the fill-time token and campaign parameters.
fn snippet(f: &Form, base: &str, lang: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut out = format!(
        "<form method=\"post\" action=\"{base}/public/forms/{key}\" data-guanxi-form=\"{key}\" accept-charset=\"UTF-8\">\n",
        key = f.key
    );
    for fl in field_views(f, lang) {
        let req = if fl.required { " required" } else { "" };
        let star = if fl.required { " *" } else { "" };
        let input = if fl.kind == "textarea" {
            format!("<textarea name=\"{}\"{req}></textarea>", fl.name)
        } else {
            format!("<input type=\"{}\" name=\"{}\"{req}>", fl.kind, fl.name)
        };
        out.push_str(&format!(
            "  <p><label>{}{star}<br>{input}</label></p>\n",
            esc(&fl.label)
        ));
    }
    if let Some(c) = &f.consent {
        out.push_str(&format!(
            "  <p><label><input type=\"checkbox\" name=\"{CONSENT}\" value=\"yes\" required> {}</label></p>\n",
            esc(&forms::pick(&c.0, lang))
        ));
    }
    out.push_str(&format!(
        "  <div style=\"position:absolute;left:-10000px\" aria-hidden=\"true\"><input name=\"{HONEYPOT}\" tabindex=\"-1\" autocomplete=\"off\"></div>\n  <input type=\"hidden\" name=\"{TOKEN}\" value=\"\">\n  <p><button type=\"submit\">{}</button></p>\n</form>\n<script src=\"{base}/public/forms/{}/embed.js\" async></script>\n",
        crate::i18n::t(lang, "public_form.submit"),
        f.key
    ));
    out
}

async fn update_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    PostedForm(form): PostedForm<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let target = match forms::get(&s.db, &p.ctx, id).await {
        Ok(f) => f.target,
        Err(e) => return p.error(&s, e),
    };
    let fields = match choosable(&s, &p, &target).await {
        Ok(f) => f,
        Err(e) => return p.error(&s, e),
    };
    match forms::update(&s.db, &p.ctx, id, None, input_of(&form, &fields)).await {
        Ok(_) => Redirect::to(&format!("/admin/forms/{id}")).into_response(),
        Err(e @ Error::PreconditionFailed { .. }) => p.error(&s, e),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                detail_view(
                    &s,
                    &p,
                    id,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(form),
                    errors,
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
    }
}
