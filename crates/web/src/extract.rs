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

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        use super::client_ip;
        let peer = Some("10.0.0.2".parse().unwrap());
        let trusted = vec!["10.0.0.0/8".to_owned()];
        assert_eq!(
            client_ip(peer, Some("1.2.3.4"), &[]),
            "10.0.0.2",
            "no proxy configured"
        );
        assert_eq!(client_ip(peer, Some("1.2.3.4"), &trusted), "1.2.3.4");
        assert_eq!(
            client_ip(peer, Some("6.6.6.6, 1.2.3.4, 10.0.0.9"), &trusted),
            "1.2.3.4",
            "the client's own claim (6.6.6.6) is not believed"
        );
        assert_eq!(
            client_ip(Some("5.5.5.5".parse().unwrap()), Some("1.2.3.4"), &trusted),
            "5.5.5.5"
        );
        assert_eq!(client_ip(peer, Some("garbage"), &trusted), "10.0.0.2");
    }

    #[test]
    fn only_paths_on_this_site_are_return_addresses() {
        for ok in ["/", "/customers/contacts?q=%E5%BC%A0&sort=name", "/tasks#x"] {
            assert!(local_path(ok).is_some(), "{ok}");
        }
        for bad in [
            "/\\evil.example",
            "\\\\evil.example",
            "//evil.example",
            "///evil.example",
            "https://evil.example/",
            "http:/evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/\tevil",
            "/%0d%0aSet-Cookie",
            "",
        ] {
            let got = local_path(bad);
            assert!(
                got.as_deref().is_none_or(|p| p.starts_with('/')
                    && !p.starts_with("//")
                    && !p.contains('\\')
                    && !p.contains('\r')),
                "{bad:?} → {got:?}"
            );
        }
        assert_eq!(local_path("/\\evil.example"), None);
        assert_eq!(local_path("https://evil.example/"), None);
    }
}

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

/// A return address taken from a request (`back=`, `next=`), if it is a path on this site —
/// decided by parsing it as a URI, not by looking at its first characters: no scheme, no host,
/// an absolute path, and no backslash (browsers read `/\evil.example` as `//evil.example`, another
/// host) or control character anywhere. Every place that redirects to an address the client
/// gave goes through here.
pub fn local_path(back: &str) -> Option<String> {
    if back.contains('\\') || back.chars().any(char::is_control) || back.starts_with("//") {
        return None;
    }
    let uri: axum::http::Uri = back.parse().ok()?;
    if uri.scheme().is_some() || uri.authority().is_some() {
        return None;
    }
    let pq = uri.path_and_query()?;
    let path = pq.path();
    if !path.starts_with('/') || path.starts_with("//") {
        return None;
    }
    Some(pq.as_str().to_owned())
}

/// The client's address: the socket peer — or, when the peer is one of the configured
/// `trusted_proxies`, the last address in `X-Forwarded-For` that is not itself a trusted proxy
/// (the one the nearest untrusted hop connected from; addresses further left are whatever the
/// client wrote).
pub struct ClientIp(pub String);

pub fn client_ip(
    peer: Option<std::net::IpAddr>,
    forwarded: Option<&str>,
    trusted: &[String],
) -> String {
    use guanxi_platform::config::ip_matches;
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|t| ip_matches(t, ip));
    let Some(peer) = peer else {
        return "unknown".into();
    };
    if !is_trusted(peer) {
        return peer.to_string();
    }
    let mut client = peer;
    for hop in forwarded.unwrap_or("").rsplit(',') {
        match hop.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client.to_string()
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        Ok(ClientIp(client_ip(
            peer,
            forwarded,
            &s.config.trusted_proxies,
        )))
    }
}

/// A list's query string: the typed filter (unknown parameters refused as by `Query`), with the
/// `custom.<key>` parameters — filters on custom fields, which no struct can list — picked out
/// and handed to it.
pub struct ListQuery<T>(pub T);

pub use guanxi_records::custom_fields::CustomFilters;

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
        f.set_custom(guanxi_records::custom_fields::filters_of(&custom));
        Ok(ListQuery(f))
    }
}

/// A multipart form read whole (the request size limit bounds it): its text fields, and the
/// chosen file of the field `file` (name, bytes) — none when nothing was chosen.
#[derive(Debug, Default)]
pub struct Upload {
    pub fields: std::collections::BTreeMap<String, String>,
    pub file: Option<(String, Vec<u8>)>,
    /// Every file chosen in a `file` field (a `multiple` input sends several), in order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Upload {
    /// Reads the form; a failure is the status and the `file` error code to show: too large
    /// (with the limit's 413) or unreadable.
    pub async fn read(
        mut form: axum::extract::Multipart,
    ) -> Result<Upload, (axum::http::StatusCode, &'static str)> {
        let refused = |e: axum::extract::multipart::MultipartError| {
            let code = if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                "file_too_large"
            } else {
                "unreadable_upload"
            };
            (e.status(), code)
        };
        let mut upload = Upload::default();
        while let Some(field) = form.next_field().await.map_err(refused)? {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.map_err(refused)?;
            if name == "file" {
                if !bytes.is_empty() {
                    let f = (file_name.unwrap_or_default(), bytes.to_vec());
                    if upload.file.is_none() {
                        upload.file = Some(f.clone());
                    }
                    upload.files.push(f);
                }
            } else {
                upload
                    .fields
                    .insert(name, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Ok(upload)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A form as posted: multipart (with files) or urlencoded (without) — both read into an
/// [`Upload`], so a page's form works whichever way a browser or a script sends it. A body
/// that cannot be read is the status and the `file` error code to show.
pub struct Posted(pub Result<Upload, (axum::http::StatusCode, &'static str)>);

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if multipart {
            return Ok(Posted(
                match axum::extract::Multipart::from_request(req, state).await {
                    Ok(m) => Upload::read(m).await,
                    Err(_) => Err((axum::http::StatusCode::BAD_REQUEST, "unreadable_upload")),
                },
            ));
        }
        Ok(Posted(
            match axum::Form::<Vec<(String, String)>>::from_request(req, state).await {
                Ok(axum::Form(pairs)) => Ok(Upload {
                    fields: pairs.into_iter().collect(),
                    ..Default::default()
                }),
                Err(_) => Err((axum::http::StatusCode::BAD_REQUEST, "unreadable_upload")),
            },
        ))
    }
}
