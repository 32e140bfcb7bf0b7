//! Extractors: who is calling (`Auth`), JSON bodies whose errors are problem documents
//! (`ApiJson`), `If-Match` versions, the client address and the request's language.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use guanxi_platform::{auth, Ctx, Error};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

use crate::i18n;
use crate::problem::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "gx_session";
pub const LANG_COOKIE: &str = "gx_lang";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language for a request without a saved preference: language cookie, then
/// `Accept-Language`, then `fallback`.
pub fn request_locale(headers: &HeaderMap, fallback: &str) -> String {
    cookie(headers, LANG_COOKIE)
        .and_then(i18n::normalize)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(i18n::from_accept_language)
        })
        .unwrap_or(fallback)
        .to_owned()
}

pub fn request_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The caller, authenticated by bearer token or session cookie. A cookie-authenticated API call
/// that changes something must carry the session's CSRF token in `X-CSRF-Token`.
pub struct Auth(pub Ctx);

/// A cookie-authenticated change must echo the session's CSRF token (`expected`) in the header.
pub fn check_csrf(headers: &HeaderMap, expected: Option<&str>) -> Result<(), Error> {
    match expected {
        Some(e) if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some(e) => {
            Err(Error::Forbidden)
        }
        _ => Ok(()),
    }
}

/// A caller already resolved by a middleware, handed to [`Auth`] through request extensions.
#[derive(Clone)]
pub struct Authenticated(pub Ctx, pub Option<String>);

/// Resolves the caller from headers; `Ok(None)` when no credentials were sent.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Option<(Ctx, Option<String>)>, Error> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().map_err(|_| Error::Unauthorized)?;
        let token = v.strip_prefix("Bearer ").ok_or(Error::Unauthorized)?;
        let mut ctx = auth::token(&state.db, token.trim()).await?;
        if !ctx.locale_saved {
            ctx.locale = request_locale(headers, &ctx.locale);
        }
        return Ok(Some((ctx, None)));
    }
    let Some(c) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let auth::Session { mut ctx, csrf, .. } = auth::session(&state.db, c).await?;
    if !ctx.locale_saved {
        ctx.locale = request_locale(headers, &ctx.locale);
    }
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    Ok(Some((ctx, if safe { None } else { Some(csrf) })))
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let locale = request_locale(&parts.headers, "en");
        // The Idempotency-Key layer may have authenticated this request already.
        let found = match parts.extensions.remove::<Authenticated>() {
            Some(Authenticated(ctx, csrf)) => Some((ctx, csrf)),
            None => authenticate(state, &parts.headers, &parts.method)
                .await
                .map_err(|e| ApiError::new(e, &locale))?,
        };
        let (mut ctx, csrf) = found.ok_or_else(|| ApiError::new(Error::Unauthorized, &locale))?;
        check_csrf(&parts.headers, csrf.as_deref()).map_err(|e| ApiError::new(e, &ctx.locale))?;
        ctx.request_id = request_id(parts);
        Ok(Auth(ctx))
    }
}

/// A JSON body. Malformed JSON, a wrong type or an unknown field is a 400 problem naming it.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let locale = request_locale(req.headers(), "en");
        // Parsed once as a JSON value, checked at the edge (control characters, list lengths:
        // `input::check_json`), then read into the handler's type.
        let v = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rej) => return Err(ApiError::new(Error::BadRequest(rej.body_text()), &locale)),
        };
        crate::input::check_json(&v).map_err(|e| ApiError::new(e, &locale))?;
        serde_path_to_error::deserialize(v)
            .map(ApiJson)
            .map_err(|e| {
                ApiError::new(
                    Error::BadRequest(format!(
                        "Failed to deserialize the JSON body into the target type: {e}"
                    )),
                    &locale,
                )
            })
    }
}

/// The version in `If-Match: "3"` (or `W/"3"`), if sent.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(v) => {
                let s = v
                    .to_str()
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("W/")
                    .trim_matches('"');
                s.parse::<i64>().map(|n| IfMatch(Some(n))).map_err(|_| {
                    ApiError::from(Error::BadRequest(
                        "If-Match must be a version ETag such as \"3\"".into(),
                    ))
                })
            }
        }
    }
}

/// The client's address: the socket peer (a reverse proxy's `X-Forwarded-For` is not trusted).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientIp(ip))
    }
}

/// A list's query string: the typed filter (unknown parameters refused as by `Query`), with the
/// `custom.<key>` parameters — filters on custom fields, which no struct can list — picked out
/// and handed to it.
pub struct ListQuery<T>(pub T);

/// A list filter that also takes custom-field filters.
pub trait CustomFilters {
    fn set_custom(&mut self, filters: Vec<guanxi_customers::custom_fields::CustomFilter>);
}

impl CustomFilters for guanxi_customers::accounts::AccountFilter {
    fn set_custom(&mut self, filters: Vec<guanxi_customers::custom_fields::CustomFilter>) {
        self.custom = filters;
    }
}

impl CustomFilters for guanxi_customers::contacts::ContactFilter {
    fn set_custom(&mut self, filters: Vec<guanxi_customers::custom_fields::CustomFilter>) {
        self.custom = filters;
    }
}

impl<T: DeserializeOwned + CustomFilters, S: Send + Sync> FromRequestParts<S> for ListQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let locale = request_locale(&parts.headers, "en");
        let bad = |e: String| ApiError::new(Error::BadRequest(e), &locale);
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw).map_err(|e| bad(e.to_string()))?;
        let (custom, rest): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(k, _)| k.starts_with("custom."));
        let rest = serde_urlencoded::to_string(&rest).map_err(|e| bad(e.to_string()))?;
        let mut f: T = serde_urlencoded::from_str(&rest)
            .map_err(|e| bad(format!("Failed to deserialize query string: {e}")))?;
        f.set_custom(guanxi_customers::custom_fields::filters_of(&custom));
        Ok(ListQuery(f))
    }
}
