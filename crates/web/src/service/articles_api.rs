//! `/api/v1/articles`: the knowledge base (list, create, read, edit, trash, restore, bulk
//! actions, translations, suggestions for a text, "did this help?" votes).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use guanxi_platform::page::Page;
use guanxi_records::bulk::{self, BulkInput, BulkResult};
use guanxi_service::articles::{
    self, Article, ArticleFilter, ArticleInput, Reader, Suggestion, Translation, Vote, VoteInput,
};
use uuid::Uuid;

use crate::api::{versioned, ApiResult, Localize};
use crate::extract::{ApiJson, Auth, IfMatch, ListQuery};
use crate::problem::Problem;
use crate::state::AppState;

/// Articles in the caller's view: every published or archived one, drafts within their scope.
#[utoipa::path(get, path = "/api/v1/articles", tag = "articles", params(ArticleFilter), responses(
    (status = 200, body = Page<Article>), (status = 422, body = Problem)))]
pub async fn list_articles(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ListQuery(f): ListQuery<ArticleFilter>,
) -> ApiResult<Json<Page<Article>>> {
    Ok(Json(articles::list(&s.db, &ctx, &f).await.l(&ctx)?))
}

/// A new article (a draft unless `status` says otherwise); `translation_of` makes it another
/// language of an existing one (one live article per language and group).
#[utoipa::path(post, path = "/api/v1/articles", tag = "articles", request_body = ArticleInput, responses(
    (status = 201, body = Article), (status = 422, body = Problem)))]
pub async fn create_article(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<ArticleInput>,
) -> ApiResult<Response> {
    let a = articles::create(&s.db, &ctx, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::CREATED, &a, a.version))
}

#[utoipa::path(get, path = "/api/v1/articles/{id}", tag = "articles", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Article), (status = 404, body = Problem)))]
pub async fn get_article(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let a = articles::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

/// Edits an article; one changed since it was read is refused (412).
#[utoipa::path(patch, path = "/api/v1/articles/{id}", tag = "articles", params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = ArticleInput, responses((status = 200, body = Article), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "In the trash"), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_article(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    IfMatch(v): IfMatch,
    ApiJson(b): ApiJson<ArticleInput>,
) -> ApiResult<Response> {
    let a = articles::update(&s.db, &ctx, id, v, b).await.l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

#[utoipa::path(delete, path = "/api/v1/articles/{id}", tag = "articles", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Moved to the trash"), (status = 404, body = Problem)))]
pub async fn delete_article(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    articles::set_deleted(&s.db, &ctx, id, true).await.l(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/articles/{id}/restore", tag = "articles", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Article), (status = 404, body = Problem),
    (status = 422, body = Problem, description = "Its group has a live article in its language")))]
pub async fn restore_article(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let a = articles::set_deleted(&s.db, &ctx, id, false)
        .await
        .l(&ctx)?;
    Ok(versioned(StatusCode::OK, &a, a.version))
}

/// Assigns, tags, untags or trashes up to 500 articles, each as a single edit would.
#[utoipa::path(post, path = "/api/v1/articles/bulk", tag = "articles", request_body = BulkInput, responses(
    (status = 200, body = BulkResult), (status = 422, body = Problem)))]
pub async fn bulk_articles(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<BulkInput>,
) -> ApiResult<Json<BulkResult>> {
    Ok(Json(bulk::run::<Article>(&s.db, &ctx, b).await.l(&ctx)?))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TranslationList {
    pub items: Vec<Translation>,
}

/// The article's languages (itself among them).
#[utoipa::path(get, path = "/api/v1/articles/{id}/translations", tag = "articles", params(("id" = Uuid, Path)), responses(
    (status = 200, body = TranslationList), (status = 404, body = Problem)))]
pub async fn article_translations(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<TranslationList>> {
    let a = articles::get(&s.db, &ctx, id).await.l(&ctx)?;
    Ok(Json(TranslationList {
        items: articles::translations(&s.db, &ctx, a.group_id)
            .await
            .l(&ctx)?,
    }))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuggestQuery {
    /// The text to answer: a ticket's subject, a customer's question (the first 500
    /// characters are read).
    pub q: Option<String>,
    /// The language preferred when an article has several (default: the caller's).
    pub locale: Option<String>,
    /// At most 20; default 5.
    pub limit: Option<usize>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SuggestionList {
    pub items: Vec<Suggestion>,
}

/// Published articles (internal ones too) answering a text, best first, one per translation
/// group: each of the text's words (Chinese character pairs, letter triples) in the title
/// counts three, in the body one.
#[utoipa::path(get, path = "/api/v1/articles/suggest", tag = "articles", params(SuggestQuery), responses(
    (status = 200, body = SuggestionList)))]
pub async fn suggest_articles(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SuggestQuery>,
) -> ApiResult<Json<SuggestionList>> {
    let locale = q.locale.clone().unwrap_or_else(|| ctx.locale.clone());
    let items = articles::suggest(
        &s.db,
        Reader::Staff(&ctx),
        q.q.as_deref().unwrap_or(""),
        &locale,
        q.limit.unwrap_or(5),
    )
    .await
    .l(&ctx)?;
    Ok(Json(SuggestionList { items }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct VoteList {
    pub items: Vec<Vote>,
}

/// The newest "did this help?" answers (at most 50), with their comments.
#[utoipa::path(get, path = "/api/v1/articles/{id}/votes", tag = "articles", params(("id" = Uuid, Path)), responses(
    (status = 200, body = VoteList), (status = 404, body = Problem)))]
pub async fn list_votes(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<VoteList>> {
    Ok(Json(VoteList {
        items: articles::votes(&s.db, &ctx, id).await.l(&ctx)?,
    }))
}

/// A colleague's "did this help?" on a published article.
#[utoipa::path(post, path = "/api/v1/articles/{id}/votes", tag = "articles", params(("id" = Uuid, Path)), request_body = VoteInput, responses(
    (status = 201, body = Vote), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn vote_article(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<VoteInput>,
) -> ApiResult<(StatusCode, Json<Vote>)> {
    let v = articles::vote(&s.db, &ctx, id, b).await.l(&ctx)?;
    Ok((StatusCode::CREATED, Json(v)))
}
