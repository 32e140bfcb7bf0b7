//! `/admin/mailboxes`: each support mailbox as a card — its health (last success, last error,
//! backlog, waiting, dead letters), a connection test and a fetch now, its settings (the
//! password left blank keeps it), and its dead letters and set-aside mail, each downloadable
//! as `.eml` and re-runnable.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_platform::perms::Action;
use guanxi_platform::Error;
use guanxi_service::mailboxes::{self, MailFilter, MailboxInput, Probe};
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use super::pages::Posted;
use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/mailboxes", get(page).post(save))
        .route("/admin/mailboxes/{id}/test", post(test))
        .route("/admin/mailboxes/{id}/fetch", post(fetch))
        .route("/admin/mailboxes/{id}/mail/{mail}", get(download))
        .route("/admin/mailboxes/{id}/mail/{mail}/rerun", post(rerun))
}

#[derive(Deserialize)]
struct PageQuery {
    error: Option<String>,
}

const BACK: &str = "/admin/mailboxes";

async fn render(
    s: &AppState,
    p: &Signed,
    error: Option<String>,
    probe: Option<(Uuid, Probe)>,
) -> Response {
    let list = match mailboxes::list(&s.db, &p.ctx).await {
        Ok(l) => l,
        Err(e) => return p.error(s, e),
    };
    let mut cards: Vec<Value> = Vec::with_capacity(list.len());
    for m in &list {
        let health = match mailboxes::health(&s.db, &p.ctx, m.id).await {
            Ok(h) => h,
            Err(e) => return p.error(s, e),
        };
        let mail: Vec<Value> =
            match mailboxes::mails(&s.db, &p.ctx, m.id, &MailFilter::default()).await {
                Ok(page) => page
                    .items
                    .iter()
                    .map(|x| {
                        // `invalid_sender: x@` → the reason's words and what it was about.
                        let r = x.reason.as_deref().unwrap_or("");
                        let (reason, detail) = r.split_once(':').unwrap_or((r, ""));
                        context! { m => x, reason => reason, detail => detail.trim() }
                    })
                    .collect(),
                Err(e) => return p.error(s, e),
            };
        let tested = probe.as_ref().filter(|(id, _)| *id == m.id).map(|(_, r)| r);
        cards.push(context! { m => m, health => health, mail => mail, probe => tested });
    }
    p.page(
        s,
        "service/mailboxes.html",
        "mailboxes",
        context! { cards => cards,
        can_edit => p.ctx.can("mailboxes", Action::Update).is_some(),
        can_create => p.ctx.can("mailboxes", Action::Create).is_some(),
        can_rerun => p.ctx.can("tickets", Action::Update).is_some(),
        error => error },
    )
}

async fn page(State(s): State<AppState>, p: Signed, Query(q): Query<PageQuery>) -> Response {
    let error = p.refusal_from_url(q.error.as_deref());
    render(&s, &p, error, None).await
}

/// One mailbox's settings posted: `id` empty creates.
async fn save(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    let opt = |k: &str| Some(f.one(k).filter(|v| !v.is_empty()));
    let input = (|| -> Result<MailboxInput, Error> {
        Ok(MailboxInput {
            version: f.number("version")?,
            name: f.one("name"),
            address: f.one("address"),
            host: f.one("host"),
            port: f.number("port")?,
            security: f.one("security"),
            ca_pem: opt("ca_pem"),
            username: f.one("username"),
            // Blank keeps the saved one.
            password: f.one("password").filter(|v| !v.is_empty()),
            folder: f.one("folder").filter(|v| !v.is_empty()),
            sent_folder: opt("sent_folder"),
            poll_seconds: f.number("poll_seconds")?,
            enabled: Some(f.one("enabled").is_some()),
            category: opt("category"),
            owner_id: None,
        })
    })();
    let id = f.one("id").and_then(|v| v.parse::<Uuid>().ok());
    let result = match (input, id) {
        (Err(e), _) => Err(e),
        (Ok(input), Some(id)) => mailboxes::update(&s.db, &p.ctx, id, None, input).await,
        (Ok(input), None) => mailboxes::create(&s.db, &p.ctx, input).await,
    };
    match result {
        Ok(_) => {
            s.mail_wake.notify_one();
            Redirect::to(BACK).into_response()
        }
        Err(e) => p.refused_to(BACK, e, Some("mailbox.field.")),
    }
}

/// The connection test's outcome is shown on the page it was asked from (the server's own
/// words in it are never carried in a link).
async fn test(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    match mailboxes::probe(&s.db, &p.ctx, id).await {
        Ok(r) => render(&s, &p, None, Some((id, r))).await,
        Err(e) => p.refused_to(BACK, e, None),
    }
}

async fn fetch(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    match mailboxes::fetch_now(&s.db, &p.ctx, id).await {
        Ok(_) => {
            s.mail_wake.notify_one();
            Redirect::to(BACK).into_response()
        }
        Err(e) => p.refused_to(BACK, e, Some("mailbox.field.")),
    }
}

async fn download(
    State(s): State<AppState>,
    p: Signed,
    Path((id, mail)): Path<(Uuid, Uuid)>,
) -> Response {
    match mailboxes::raw(&s.db, &p.ctx, id, mail).await {
        Ok(raw) => (
            [
                (header::CONTENT_TYPE, "message/rfc822".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{mail}.eml\""),
                ),
            ],
            raw,
        )
            .into_response(),
        Err(e) => p.error(&s, e),
    }
}

async fn rerun(
    State(s): State<AppState>,
    p: Signed,
    Path((id, mail)): Path<(Uuid, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    match mailboxes::rerun(&s.db, &p.ctx, id, mail).await {
        Ok(m) => {
            s.jobs_wake.notify_one();
            match m.ticket_id {
                Some(t) => Redirect::to(&format!("/tickets/{t}")).into_response(),
                None => Redirect::to(BACK).into_response(),
            }
        }
        Err(e) => p.refused_to(BACK, e, None),
    }
}
