//! Operations endpoints: liveness, readiness (the database answers), Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use guanxi_platform::{args, jobs};

use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s
        .db
        .scalar::<i64>("SELECT CAST(1 AS BIGINT)", args![])
        .await
    {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let jobs = jobs::counts(&s.db).await.unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&jobs),
    )
}
