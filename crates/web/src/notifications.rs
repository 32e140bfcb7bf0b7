//! The notification centre over HTTP — `/api/v1/notifications`, the `/notifications` page and
//! the bell — and the job that emails a notification in its reader's language.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use guanxi_platform::approvals;
use guanxi_platform::db::Tx;
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use guanxi_platform::notifications::{self, Notification, Preference};
use guanxi_platform::page::Page;
use minijinja::context;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::{ApiResult, Localize};
use crate::extract::{ApiJson, Auth};
use crate::i18n::{fill, t};
use crate::pages::{forbidden_csrf, CsrfForm, Signed};
use crate::state::AppState;

/// A notification with its message in the reader's language.
#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    #[serde(flatten)]
    pub notification: Notification,
    /// The message, filled from `params`.
    pub message: String,
}

fn view(n: Notification, locale: &str) -> NotificationView {
    let message = fill(locale, &format!("notify.{}", n.kind), &n.params.0);
    NotificationView {
        notification: n,
        message,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationParams {
    /// Only the unread ones.
    pub unread: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Your notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(NotificationParams),
    responses((status = 200, body = Page<NotificationView>)))]
pub async fn list_notifications(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<NotificationParams>,
) -> ApiResult<Json<Page<NotificationView>>> {
    let page = notifications::list(&s.db, &ctx, q.unread.unwrap_or(false), q.limit, q.cursor)
        .await
        .l(&ctx)?;
    Ok(Json(page.map(|n| view(n, &ctx.locale))))
}

#[derive(Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
}

/// How many of your notifications are unread (the bell's number).
#[utoipa::path(get, path = "/api/v1/notifications/unread", tag = "notifications",
    responses((status = 200, body = UnreadCount)))]
pub async fn unread(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<Json<UnreadCount>> {
    Ok(Json(UnreadCount {
        unread: notifications::unread_count(&s.db, &ctx).await.l(&ctx)?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The notifications to mark (at most 500); leave out to mark all of yours.
    pub ids: Option<Vec<Uuid>>,
}

#[derive(Serialize, ToSchema)]
pub struct Marked {
    /// How many were unread and are now read.
    pub marked: u64,
}

/// Marks your notifications read (others' ids change nothing).
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", request_body = MarkRead,
    responses((status = 200, body = Marked)))]
pub async fn mark_read(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<MarkRead>,
) -> ApiResult<Json<Marked>> {
    let marked = notifications::mark_read(&s.db, &ctx, b.ids.as_deref())
        .await
        .l(&ctx)?;
    Ok(Json(Marked { marked }))
}

/// For each kind of notification, whether it is also emailed to you.
#[utoipa::path(get, path = "/api/v1/notifications/preferences", tag = "notifications",
    responses((status = 200, body = Vec<Preference>)))]
pub async fn get_preferences(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<Vec<Preference>>> {
    Ok(Json(notifications::preferences(&s.db, &ctx).await.l(&ctx)?))
}

/// Sets whether the kinds named are emailed to you; answers every kind.
#[utoipa::path(put, path = "/api/v1/notifications/preferences", tag = "notifications",
    request_body = Vec<Preference>, responses((status = 200, body = Vec<Preference>)))]
pub async fn set_preferences(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<Vec<Preference>>,
) -> ApiResult<Json<Vec<Preference>>> {
    Ok(Json(
        notifications::set_preferences(&s.db, &ctx, &b)
            .await
            .l(&ctx)?,
    ))
}

// ---- the email job -----------------------------------------------------------------------------

/// The `notification_email` job: the notification's message, in its reader's language, into
/// the outbox (in the job's own transaction: queued once, whatever happens to the worker).
pub fn email_handler(
    base_url: String,
) -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync + 'static {
    move |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        let base_url = base_url.clone();
        Box::pin(async move {
            let Some(id) = due.payload["notification_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
            else {
                return Ok(());
            };
            let Some(n) = notifications::for_email(tx, due.tenant_id, id).await? else {
                return Ok(());
            };
            if !n.active {
                return Ok(());
            }
            let l = crate::i18n::normalize(&n.locale).unwrap_or("zh-CN");
            let message = fill(l, &format!("notify.{}", n.kind), &n.params.0);
            let subject = fill(
                l,
                "notify.email_subject",
                &serde_json::json!({ "message": message }),
            );
            let link = n
                .link
                .map(|p| format!("{}{p}\n\n", base_url.trim_end_matches('/')))
                .unwrap_or_default();
            // An approver can decide from the email: each link opens a one-tap page, usable
            // once, without signing in (`/approvals/by-link/…`).
            let mut decide = String::new();
            if let (Some("approval_requests"), Some(request)) = (n.entity.as_deref(), n.entity_id) {
                if let Some(token) =
                    approvals::decision_link(tx, due.tenant_id, request, n.user_id).await?
                {
                    let base = base_url.trim_end_matches('/');
                    for (vote, key) in [
                        ("approve", "approval.email_approve"),
                        ("reject", "approval.email_reject"),
                    ] {
                        decide.push_str(&format!(
                            "{}: {base}/approvals/by-link/{token}?decision={vote}\n",
                            t(l, key)
                        ));
                    }
                    decide.push('\n');
                }
            }
            let text = format!("{message}\n\n{decide}{link}{}", t(l, "notify.email_footer"));
            // Due on the worker's clock, so the same pass of the queue sends it.
            jobs::enqueue_at(
                tx,
                due.tenant_id,
                jobs::KIND_EMAIL,
                &jobs::Email {
                    to: n.email,
                    subject,
                    text,
                    message_id: None,
                    in_reply_to: None,
                    reply_to: None,
                    then: None,
                    attachments: Vec::new(),
                },
                due.at,
            )
            .await
            .map(|_| ())
        })
    }
}

// ---- pages -----------------------------------------------------------------------------------

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(page))
        .route("/notifications/read", post(read_all))
        .route("/notifications/preferences", post(save_preferences))
        .route("/notifications/{id}/open", post(open))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    unread: Option<String>,
    cursor: Option<String>,
    saved: Option<String>,
}

async fn page(State(s): State<AppState>, p: Signed, Query(q): Query<PageQuery>) -> Response {
    let unread = q.unread.is_some();
    let list = match notifications::list(&s.db, &p.ctx, unread, Some(50), q.cursor).await {
        Ok(l) => l,
        Err(e) => return p.error(&s, e),
    };
    let prefs = match notifications::preferences(&s.db, &p.ctx).await {
        Ok(x) => x,
        Err(e) => return p.error(&s, e),
    };
    let list = list.map(|n| view(n, &p.ctx.locale));
    p.page(
        &s,
        "notifications.html",
        "notifications",
        context! {
            items => list.items, next_cursor => list.next_cursor, unread_only => unread, prefs => prefs,
            saved => q.saved.is_some(),
        },
    )
}

async fn read_all(State(s): State<AppState>, p: Signed, Form(f): Form<CsrfForm>) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match notifications::mark_read(&s.db, &p.ctx, None).await {
        Ok(_) => Redirect::to("/notifications").into_response(),
        Err(e) => p.error(&s, e),
    }
}

/// Opens what a notification is about, marking it read.
async fn open(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    match notifications::open(&s.db, &p.ctx, id).await {
        Ok(link) => {
            let to = link
                .and_then(|l| crate::extract::local_path(&l))
                .unwrap_or_else(|| "/notifications".into());
            Redirect::to(&to).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

async fn save_preferences(
    State(s): State<AppState>,
    p: Signed,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = f.iter().find(|(k, _)| k == "_csrf").map(|(_, v)| v.clone());
    if !p.csrf_ok(&csrf) {
        return forbidden_csrf();
    }
    // Every kind is on the form: a ticked box emails it, an unticked one does not.
    let prefs: Vec<Preference> = notifications::KINDS
        .iter()
        .map(|(kind, _)| Preference {
            kind: (*kind).to_owned(),
            email: f.iter().any(|(k, _)| k == &format!("email.{kind}")),
        })
        .collect();
    match notifications::set_preferences(&s.db, &p.ctx, &prefs).await {
        Ok(_) => Redirect::to("/notifications?saved=1").into_response(),
        Err(e) => p.error(&s, e),
    }
}

/// The unread count for the bell (0 when it cannot be read: the page still renders).
pub async fn bell(s: &AppState, ctx: &guanxi_platform::Ctx) -> i64 {
    notifications::unread_count(&s.db, ctx).await.unwrap_or(0)
}
