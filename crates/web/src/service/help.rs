//! The company's public help centre, no sign-in: `/help/{tenant}` lists the published public
//! articles by category (each once, in the visitor's language when written in it) and answers
//! a question typed into its search box with the best-matching articles (the same ranking as
//! an agent's suggestions); `/help/{tenant}/articles/{id}` shows one (counted as a view) with
//! its other languages and "did this help?" (a POST with the public form token). Drafts,
//! internal articles and other companies' articles do not exist here.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_platform::Error;
use guanxi_service::articles::{self, Reader, VoteInput, LOCALES};
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, public_csrf_ok, public_page_in};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/help/{tenant}", get(index))
        .route("/help/{tenant}/articles/{id}", get(article))
        .route("/help/{tenant}/articles/{id}/vote", post(vote))
}

#[derive(Deserialize)]
struct HelpQuery {
    q: Option<String>,
    lang: Option<String>,
    voted: Option<String>,
}

/// The language asked for by `?lang=`, if it is one we write in.
fn chosen(lang: Option<&str>) -> Option<&'static str> {
    lang.and_then(|l| LOCALES.iter().copied().find(|x| *x == l))
}

fn page(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    lang: Option<&str>,
    extra: Value,
) -> Response {
    public_page_in(s, headers, status, "service/help.html", extra, chosen(lang))
}

fn failed(s: &AppState, headers: &HeaderMap, lang: Option<&str>, e: Error) -> Response {
    let status = match e {
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        e => {
            tracing::error!(error = %e, "help centre");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    page(s, headers, status, lang, context! { gone => true })
}

/// The visitor's language: `?lang=`, else the browser's.
fn reading(headers: &HeaderMap, lang: Option<&str>) -> String {
    chosen(lang)
        .map(str::to_owned)
        .unwrap_or_else(|| crate::extract::request_locale(headers, "zh-CN"))
}

async fn index(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<Uuid>,
    Query(q): Query<HelpQuery>,
) -> Response {
    let lang = q.lang.as_deref();
    let company = match articles::help_centre(&s.db, tenant).await {
        Ok((name, _)) => name,
        Err(e) => return failed(&s, &headers, lang, e),
    };
    let locale = reading(&headers, lang);
    let question = q.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let listed = match question {
        Some(text) => articles::suggest(&s.db, Reader::Public(tenant), text, &locale, 20)
            .await
            .map(|found| context! { found => found }),
        None => articles::public_index(&s.db, tenant, &locale)
            .await
            .map(|all| context! { all => all }),
    };
    match listed {
        Ok(listed) => page(
            &s,
            &headers,
            StatusCode::OK,
            lang,
            context! { company => company, tenant => tenant, q => question, lang => lang,
            locales => LOCALES, ..listed },
        ),
        Err(e) => failed(&s, &headers, lang, e),
    }
}

async fn article(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
    Query(q): Query<HelpQuery>,
) -> Response {
    let lang = q.lang.as_deref();
    let company = match articles::help_centre(&s.db, tenant).await {
        Ok((name, _)) => name,
        Err(e) => return failed(&s, &headers, lang, e),
    };
    match articles::public_open(&s.db, tenant, id, q.voted.is_none()).await {
        Ok((a, others)) => {
            let paragraphs = super::articles_pages::paragraphs(&a.body);
            let others: Vec<Value> = others
                .into_iter()
                .map(|(id, locale)| context! { id => id, locale => locale })
                .collect();
            // Read in the article's own language unless the visitor chose one.
            let lang = lang.or(Some(a.locale.as_str())).map(str::to_owned);
            page(
                &s,
                &headers,
                StatusCode::OK,
                lang.as_deref(),
                context! { company => company, tenant => tenant, a => a, paragraphs => paragraphs,
                others => others, voted => q.voted.is_some(), lang => lang },
            )
        }
        Err(e) => failed(&s, &headers, lang, e),
    }
}

#[derive(Deserialize)]
struct VoteForm {
    _csrf: Option<String>,
    helpful: Option<String>,
    comment: Option<String>,
}

async fn vote(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
    crate::extract::ClientIp(ip): crate::extract::ClientIp,
    Form(f): Form<VoteForm>,
) -> Response {
    if !public_csrf_ok(&headers, &f._csrf) {
        return forbidden_csrf();
    }
    let input = VoteInput {
        helpful: f.helpful.as_deref().map(|h| h == "true"),
        comment: f.comment.filter(|c| !c.trim().is_empty()),
    };
    match articles::public_vote(&s.db, tenant, id, input, &ip).await {
        Ok(_) => {
            Redirect::to(&format!("/help/{tenant}/articles/{id}?voted=1#vote")).into_response()
        }
        // A vote without its answer (a hand-made post): back to the page as it was.
        Err(Error::Validation(_)) => {
            Redirect::to(&format!("/help/{tenant}/articles/{id}#vote")).into_response()
        }
        Err(e) => failed(&s, &headers, None, e),
    }
}
