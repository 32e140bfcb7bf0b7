//! `Idempotency-Key` middleware for POST under `/api/v1`: a retried request gets the first
//! response instead of doing the work twice.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use guanxi_platform::idempotency::{self, Begin};
use guanxi_platform::secret::digest;

use crate::extract::{authenticate, check_csrf, Authenticated};
use crate::problem::ApiError;
use crate::state::AppState;

const MAX_BODY: usize = 10 * 1024 * 1024;

pub async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    // Unauthenticated requests carry on to the handler, which refuses them.
    let Ok(Some((ctx, csrf))) = authenticate(&s, req.headers(), req.method()).await else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    parts
        .extensions
        .insert(Authenticated(ctx.clone(), csrf.clone()));
    // A browser request without its CSRF token is refused before anything is stored.
    if let Err(e) = check_csrf(&parts.headers, csrf.as_deref()) {
        return ApiError::new(e, &ctx.locale).into_response();
    }
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut fingerprint = format!("{} {}\n", parts.method, parts.uri.path()).into_bytes();
    fingerprint.extend_from_slice(&bytes);
    let hash = digest(&String::from_utf8_lossy(&fingerprint));
    match idempotency::begin(&s.db, &ctx, &key, &hash).await {
        Err(e) => ApiError::new(e, &ctx.locale).into_response(),
        Ok(Begin::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let ct = if status.is_success() {
                "application/json"
            } else {
                "application/problem+json"
            };
            let mut r = (status, body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
        Ok(Begin::Run) => {
            let r = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (rparts, rbody) = r.into_parts();
            let rbytes = to_bytes(rbody, MAX_BODY).await.unwrap_or_default();
            let stored = if rparts.status.is_server_error() {
                idempotency::abandon(&s.db, &ctx, &key).await
            } else {
                idempotency::finish(
                    &s.db,
                    &ctx,
                    &key,
                    rparts.status.as_u16(),
                    &String::from_utf8_lossy(&rbytes),
                )
                .await
            };
            if let Err(e) = stored {
                tracing::error!(error = %e, "could not store idempotent response");
            }
            Response::from_parts(rparts, Body::from(rbytes))
        }
    }
}
