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
        Error::RateLimited => StatusCode::TOO_MANY_REQUESTS,
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

pub fn problem(e: Error, locale: &str) -> Problem {
    let status = status_of(&e);
    let (slug, detail, errors, current_version) = match e {
        Error::NotFound => ("not_found", None, vec![], None),
        Error::Unauthorized => ("unauthorized", None, vec![], None),
        Error::Forbidden => ("forbidden", None, vec![], None),
        Error::BadRequest(d) => ("bad_request", Some(d), vec![], None),
        Error::Validation(v) => ("validation", None, localize(v, locale), None),
        Error::Conflict(d) => ("conflict", Some(d), vec![], None),
        Error::PreconditionFailed { current } => ("precondition", None, vec![], Some(current)),
        Error::RateLimited => ("rate_limited", None, vec![], None),
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
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = problem(self.error, &self.locale);
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&p).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}
