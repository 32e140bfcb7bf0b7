//! Imports started from the web page run in the background: the file is kept
//! (`guanxi_customers::import_runs`), a task imports it, writing how far it got every half
//! second, and `/customers/imports/{id}` shows a progress bar (refreshing itself while the
//! import runs), then the report. An interrupted import is run again from its page.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use guanxi_customers::import::{self, DuplicatePolicy, ImportOptions};
use guanxi_customers::import_runs;
use guanxi_platform::{Ctx, Error};
use guanxi_records::tables::{self, Counted, Format};
use minijinja::context;
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

/// The options kept with a run (what `ImportOptions` holds besides the labels).
pub fn options_json(opts: &ImportOptions) -> serde_json::Value {
    serde_json::json!({"duplicates": opts.duplicates, "mapping": opts.mapping})
}

fn options_of(v: &serde_json::Value) -> ImportOptions {
    ImportOptions {
        dry_run: false,
        duplicates: serde_json::from_value::<DuplicatePolicy>(v["duplicates"].clone())
            .unwrap_or_default(),
        labels: super::api::import_labels(),
        mapping: serde_json::from_value(v["mapping"].clone()).unwrap_or_default(),
    }
}

/// Runs import `id` on a task; returns at once.
pub fn spawn(s: AppState, ctx: Ctx, id: Uuid, stored: import_runs::Stored) {
    tokio::spawn(async move {
        let target = import_runs::target_of(&stored.target);
        let opts = options_of(&stored.options);
        let read = Arc::new(AtomicU64::new(0));
        let rows = Arc::new(AtomicU64::new(0));
        let input = Counted {
            inner: std::io::Cursor::new(stored.data),
            read: read.clone(),
        };
        let outcome = match tables::open(Format::of_name(&stored.file_name), input) {
            Err(e) => Err(e),
            Ok(table) => {
                // Progress is written by a task of its own: writing it from this one while the
                // import is suspended inside a row's transaction would wait on that
                // transaction's lock (SQLite) until the busy timeout.
                let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
                let ticker = {
                    let (s, rows, read, tenant) =
                        (s.clone(), rows.clone(), read.clone(), ctx.tenant_id);
                    tokio::spawn(async move {
                        let mut tick = tokio::time::interval(Duration::from_millis(500));
                        loop {
                            tokio::select! {
                                _ = &mut stop_rx => break,
                                _ = tick.tick() => {
                                    let (r, b) = (rows.load(Ordering::Relaxed), read.load(Ordering::Relaxed));
                                    if let Err(e) = import_runs::progress(&s.db, tenant, id, r, b).await {
                                        tracing::warn!(import = %id, error = %e, "import progress");
                                    }
                                }
                            }
                        }
                    })
                };
                let counter = rows.clone();
                let r = import::run(&s.db, &ctx, target, table, &opts, move |n| {
                    counter.store(n, Ordering::Relaxed)
                })
                .await;
                let _ = stop_tx.send(());
                let _ = ticker.await;
                r
            }
        };
        let result = match &outcome {
            Ok(report) => import_runs::finish(&s.db, ctx.tenant_id, id, Ok(report)).await,
            Err(e) => {
                let msg = match e {
                    Error::Validation(v) => v
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.code))
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                import_runs::finish(&s.db, ctx.tenant_id, id, Err(msg)).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(import = %id, error = %e, "recording the import's end");
        }
    });
}

/// `GET /customers/imports/{id}`: the progress bar, then the report.
pub async fn page(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    match import_runs::get(&s.db, &p.ctx, id).await {
        Ok(run) => {
            // Finished is 100%, whatever the last progress write said.
            let percent = if run.status != "running" {
                100
            } else if run.size > 0 {
                (run.bytes_done * 100 / run.size).clamp(0, 100)
            } else {
                100
            };
            let report = run.report.as_ref().map(|r| r.0.clone());
            p.page(
                &s,
                "customers/import_run.html",
                "customers",
                context! { run => run, percent => percent, report => report },
            )
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /customers/imports/{id}/rerun`: an interrupted (or failed) import, again.
pub async fn rerun(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let stored = match import_runs::stored(&s.db, &p.ctx, id).await {
        Ok(x) => x,
        Err(e) => return p.error(&s, e),
    };
    if let Err(e) = import_runs::restart(&s.db, &p.ctx, id).await {
        return p.error(&s, e);
    }
    spawn(s.clone(), p.ctx.clone(), id, stored);
    Redirect::to(&format!("/customers/imports/{id}")).into_response()
}

/// `GET /customers/imports/{id}/errors.csv`: the rows the import refused, as they were in the
/// file (UTF-8 CSV with the file's own headers) with a last column saying why — fix them in a
/// spreadsheet and import this file again.
pub async fn error_rows(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    let result = async {
        let run = import_runs::get(&s.db, &p.ctx, id).await?;
        let stored = import_runs::stored(&s.db, &p.ctx, id).await?;
        let errors: Vec<ErrorRow> = run
            .report
            .as_ref()
            .and_then(|r| r.0.get("errors").cloned())
            .and_then(|e| serde_json::from_value(e).ok())
            .unwrap_or_default();
        let mut why: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for e in &errors {
            let reason = crate::i18n::t(&p.ctx.locale, &format!("err.{}", e.reason));
            why.entry(e.row)
                .or_default()
                .push(format!("{} {reason}", e.column));
        }
        let format = Format::of_name(&stored.file_name);
        let table = tables::open(format, std::io::Cursor::new(stored.data))?;
        let mut head = table.headers.clone();
        head.push(crate::i18n::t(&p.ctx.locale, "import.reason"));
        let mut rows = vec![head];
        for row in table.rows {
            let (line, mut cells) = match row {
                Ok(r) => r,
                Err((line, _)) => (line, vec![]),
            };
            if let Some(reasons) = why.get(&line) {
                cells.resize(table.headers.len(), String::new());
                cells.push(reasons.join(crate::i18n::t(&p.ctx.locale, "common.list_sep").as_str()));
                rows.push(cells);
            }
        }
        let mut body = vec![0xEF, 0xBB, 0xBF];
        body.extend(crate::records::export::csv_bytes(rows));
        Ok::<_, Error>(body)
    }
    .await;
    match result {
        Ok(body) => {
            let mut r = body.into_response();
            let h = r.headers_mut();
            h.insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!(
                "attachment; filename=\"import-errors-{id}.csv\""
            )) {
                h.insert(axum::http::header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => p.error(&s, e),
    }
}

/// A stored report's error row (the report is kept as JSON).
#[derive(serde::Deserialize)]
struct ErrorRow {
    row: u64,
    column: String,
    reason: String,
}
