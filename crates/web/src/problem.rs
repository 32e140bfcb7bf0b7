//! The one mapping from platform errors to HTTP: RFC 9457 `application/problem+json`, with each
//! invalid field listed and its message in the requester's language.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use guanxi_platform::error::{Error, FieldError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::i18n::t;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:guanxi:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Validation problems: each field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// On 412: the version now stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// On 429: seconds until the limit lets the caller in again (also `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// A platform error with the language to explain it in.
#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    pub locale: String,
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError {
            error,
            locale: "en".into(),
        }
    }
}

impl ApiError {
    pub fn new(error: Error, locale: &str) -> Self {
        ApiError {
            error,
            locale: locale.to_owned(),
        }
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::Forbidden => StatusCode::FORBIDDEN,
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Fills each field error's message in `locale`.
pub fn localize(mut errs: Vec<FieldError>, locale: &str) -> Vec<FieldError> {
    for e in &mut errs {
        e.message = t(locale, &format!("err.{}", e.code));
        if e.message.starts_with("err.") {
            e.message = e.code.replace('_', " ");
        }
    }
    errs
}

/// A form's refused fields in the reader's words: a row of one of `rows` (list name, message
/// key of its row label with `{n}`) — `lines[2].quantity` or `stages.2.name` — becomes
/// "Line 3 · Qty"; a plain field its label. The errors box then shows words, not paths.
pub fn with_row_labels(
    mut errs: Vec<FieldError>,
    locale: &str,
    rows: &[(&str, &str)],
) -> Vec<FieldError> {
    let label = |f: &str| {
        let l = t(locale, &format!("field.{f}"));
        if l.starts_with("field.") {
            f.to_owned()
        } else {
            l
        }
    };
    for e in &mut errs {
        let flat = e.field.replace('[', ".").replace(']', "");
        let parts: Vec<&str> = flat.split('.').collect();
        let row = |list: &str| rows.iter().find(|(l, _)| *l == list).map(|(_, k)| *k);
        e.field = match parts.as_slice() {
            [list, n, f] => match (row(list), n.parse::<usize>()) {
                (Some(key), Ok(n)) => format!(
                    "{} · {}",
                    t(locale, key).replace("{n}", &(n + 1).to_string()),
                    label(f)
                ),
                _ => continue,
            },
            [f] => label(f),
            _ => continue,
        };
    }
    errs
}

pub fn problem(e: Error, locale: &str) -> Problem {
    let status = status_of(&e);
    let retry_after = match e {
        Error::RateLimited { retry_after } => Some(retry_after),
        _ => None,
    };
    let (slug, detail, errors, current_version) = match e {
        Error::NotFound => ("not_found", None, vec![], None),
        Error::Unauthorized => ("unauthorized", None, vec![], None),
        Error::Forbidden => ("forbidden", None, vec![], None),
        Error::BadRequest(d) => ("bad_request", Some(d), vec![], None),
        Error::Validation(v) => ("validation", None, localize(v, locale), None),
        Error::Conflict(d) => ("conflict", Some(d), vec![], None),
        Error::PreconditionFailed { current } => ("precondition", None, vec![], Some(current)),
        Error::RateLimited { .. } => ("rate_limited", None, vec![], None),
        Error::Unavailable(d) => {
            tracing::warn!(error = %d, "unavailable");
            ("unavailable", None, vec![], None)
        }
        Error::Internal(err) => {
            tracing::error!(error = ?err, "internal error");
            ("internal", None, vec![], None)
        }
    };
    Problem {
        kind: format!("urn:guanxi:problem:{slug}"),
        title: t(locale, &format!("problem.{slug}")),
        status: status.as_u16(),
        detail,
        errors,
        current_version,
        retry_after,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem(self.error, &self.locale).into_response()
    }
}

impl IntoResponse for Problem {
    /// The one way a problem goes out: its status, `application/problem+json`, `Retry-After`
    /// on 429 and 503, `WWW-Authenticate` on 401.
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.retry_after.unwrap_or(1)),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Middleware on the API: an error response that is not yet `application/problem+json` — a
/// rejection by an extractor (a malformed query string or path, a body over the limit), a
/// method the path does not take — becomes one, with its text as the detail. So every API
/// error has the documented shape, whoever produced it.
pub async fn problem_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // A body declared over the limit is read through (up to 64 MB, then dropped) before it is
    // refused, so the client gets the answer instead of a broken connection mid-upload.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let req = if declared > crate::BODY_LIMIT && declared <= 64 << 20 {
        let (parts, body) = req.into_parts();
        // Chunk by chunk, keeping none of it.
        let mut chunks = body.into_data_stream();
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut chunks).await {}
        axum::extract::Request::from_parts(parts, axum::body::Body::empty())
    } else {
        req
    };
    if !req.uri().path().starts_with("/api/") {
        // A page's upload over the limit is refused before any handler reads it: say so in
        // words, on a page with the site's style, with the way back.
        let locale = crate::extract::request_locale(req.headers(), "zh-CN");
        let back = req.uri().path().to_owned();
        let r = next.run(req).await;
        if r.status() != StatusCode::PAYLOAD_TOO_LARGE {
            return r;
        }
        let html = format!(
            "<!doctype html><html lang=\"{locale}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>413</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"narrow\"><h1>413</h1><p class=\"errors\">{}</p><p><a href=\"{}\">{}</a></p></main></body></html>",
            t(&locale, "upload.too_large"),
            crate::extract::local_path(&back).unwrap_or_else(|| "/".into()),
            t(&locale, "common.back"),
        );
        let mut out = (StatusCode::PAYLOAD_TOO_LARGE, html).into_response();
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return out;
    }
    let locale = crate::extract::request_locale(req.headers(), "en");
    let r = next.run(req).await;
    let status = r.status();
    let is_problem = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return r;
    }
    let text = axum::body::to_bytes(r.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let slug = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PRECONDITION_FAILED => "precondition",
        StatusCode::UNPROCESSABLE_ENTITY => "validation",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    Problem {
        kind: format!("urn:guanxi:problem:{slug}"),
        title: t(&locale, &format!("problem.{slug}")),
        status: status.as_u16(),
        detail: (!text.is_empty() && !status.is_server_error()).then_some(text),
        errors: vec![],
        current_version: None,
        retry_after: None,
    }
    .into_response()
}
