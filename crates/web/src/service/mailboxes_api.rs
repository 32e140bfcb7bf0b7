//! `/api/v1/mailboxes`: support mailboxes fetched over IMAP — their settings (the password
//! write-only), a connection test, a fetch now, their health, and the messages set aside or
//! dead-lettered, each downloadable whole and re-runnable.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use guanxi_platform::page::Page;
use guanxi_service::mailboxes::{
    self, Health, InboundMail, MailFilter, Mailbox, MailboxInput, Probe,
};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MailboxList {
    pub items: Vec<Mailbox>,
}

#[utoipa::path(get, path = "/api/v1/mailboxes", tag = "mailboxes", responses((status = 200, body = MailboxList)))]
pub async fn list_mailboxes(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<MailboxList>> {
    Ok(Json(MailboxList {
        items: mailboxes::list(&s.db, &ctx).await.l(&ctx)?,
    }))
}

/// A support mailbox: fetched over IMAP (`tls`, `starttls` or `plain`) every `poll_seconds`
/// from `folder`; its new mail opens tickets, replies continue them.
#[utoipa::path(post, path = "/api/v1/mailboxes", tag = "mailboxes", request_body = MailboxInput, responses(
    (status = 201, body = Mailbox), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_mailbox(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<MailboxInput>,
) -> ApiResult<Response> {
    let m = mailboxes::create(&s.db, &ctx, b).await.l(&ctx)?;
    s.mail_wake.notify_one();
    Ok(versioned(StatusCode::CREATED, &m, m.version))
}

#[utoipa::path(get, path = "/api/v1/mailboxes/{id}", tag = "mailboxes", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Mailbox), (status = 404, body = Problem)))]
pub async fn get_mailbox(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let m = mailboxes::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &m, m.version))
}

/// Edits a mailbox at the version read (412 when it changed meanwhile). Leave `password` out
/// to keep it.
#[utoipa::path(patch, path = "/api/v1/mailboxes/{id}", tag = "mailboxes", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = MailboxInput, responses((status = 200, body = Mailbox), (status = 404, body = Problem),
    (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_mailbox(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<MailboxInput>,
) -> ApiResult<Response> {
    let m = mailboxes::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    s.mail_wake.notify_one();
    Ok(versioned(StatusCode::OK, &m, m.version))
}

/// Logs in and opens the folder read-only: whether the settings work, and how many messages
/// the folder holds.
#[utoipa::path(post, path = "/api/v1/mailboxes/{id}/test", tag = "mailboxes", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Probe), (status = 404, body = Problem)))]
pub async fn test_mailbox(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Probe>> {
    Ok(Json(mailboxes::probe(&s.db, &ctx, id).await.l(&ctx)?))
}

/// Fetches the mailbox now (in the background; its health tells the outcome). A mailbox
/// switched off is refused (422, `enabled: disabled`).
#[utoipa::path(post, path = "/api/v1/mailboxes/{id}/fetch", tag = "mailboxes", params(("id" = Uuid, Path)), responses(
    (status = 202, body = Mailbox), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn fetch_mailbox(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<Mailbox>)> {
    let m = mailboxes::fetch_now(&s.db, &ctx, id).await.l(&ctx)?;
    s.mail_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(m)))
}

/// Last success, last error, the backlog left on the server, messages waiting, dead letters.
#[utoipa::path(get, path = "/api/v1/mailboxes/{id}/health", tag = "mailboxes", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Health), (status = 404, body = Problem)))]
pub async fn mailbox_health(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Health>> {
    Ok(Json(mailboxes::health(&s.db, &ctx, id).await.l(&ctx)?))
}

/// The mailbox's fetched messages, newest first: by default the dead letters (with why) and
/// the mail set aside as automatic or looping.
#[utoipa::path(get, path = "/api/v1/mailboxes/{id}/dead-letters", tag = "mailboxes", params(("id" = Uuid, Path), MailFilter), responses(
    (status = 200, body = Page<InboundMail>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn dead_letters(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(f): Query<MailFilter>,
) -> ApiResult<Json<Page<InboundMail>>> {
    Ok(Json(mailboxes::mails(&s.db, &ctx, id, &f).await.l(&ctx)?))
}

/// The message as fetched (`message/rfc822`; only its header when it was above the size limit).
#[utoipa::path(get, path = "/api/v1/mailboxes/{id}/dead-letters/{mail_id}", tag = "mailboxes",
    params(("id" = Uuid, Path), ("mail_id" = Uuid, Path)), responses(
    (status = 200, content_type = "message/rfc822", body = Vec<u8>), (status = 404, body = Problem)))]
pub async fn dead_letter_raw(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((id, mail)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let raw = mailboxes::raw(&s.db, &ctx, id, mail).await.l(&ctx)?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{mail}.eml\""),
            ),
        ],
        raw,
    )
        .into_response())
}

/// Runs a dead letter, or a message set aside as automatic, again now (as real mail: the loop
/// checks are skipped).
#[utoipa::path(post, path = "/api/v1/mailboxes/{id}/dead-letters/{mail_id}/rerun", tag = "mailboxes",
    params(("id" = Uuid, Path), ("mail_id" = Uuid, Path)), responses(
    (status = 200, body = InboundMail), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rerun_dead_letter(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((id, mail)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<InboundMail>> {
    Ok(Json(mailboxes::rerun(&s.db, &ctx, id, mail).await.l(&ctx)?))
}
