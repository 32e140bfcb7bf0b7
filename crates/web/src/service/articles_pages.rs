//! Knowledge-base pages for colleagues: `/articles` (the shared list page), an article's page
//! (its text, languages — with a link to write a missing one — counters, votes and their
//! comments, the help-centre link when it is public) and its form (the shared
//! [`crate::records::forms`]).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_platform::db::Db;
use guanxi_platform::page::Page;
use guanxi_platform::perms::Action;
use guanxi_platform::{Ctx, Error};
use guanxi_records::custom_fields::CustomFilter;
use guanxi_service::articles::{
    self, Article, ArticleFilter, ArticleInput, VoteInput, AUDIENCES, LOCALES, STATUSES,
};
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::records::forms::{self, Formed};
use crate::records::layout::{coded, f, req, Section};
use crate::records::lists::{self, Columns, ListSpec, Listed};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/articles",
            get(lists::page::<Article>).post(forms::create::<Article>),
        )
        .route("/articles/new", get(forms::new::<Article>))
        .route("/articles/bulk", post(lists::bulk_action::<Article>))
        .route("/articles/{id}", get(show))
        .route(
            "/articles/{id}/edit",
            get(forms::edit::<Article>).post(forms::update::<Article>),
        )
        .route("/articles/{id}/cell", post(lists::edit_cell::<Article>))
        .route("/articles/{id}/vote", post(vote))
        .route("/articles/{id}/delete", post(forms::delete::<Article>))
        .route("/articles/{id}/restore", post(forms::restore::<Article>))
}

pub const ARTICLE_SECTIONS: &[Section] = &[
    Section {
        key: "basic",
        fields: &[
            req("title", "text"),
            coded("locale", "article.locale.", LOCALES),
            f("category", "text"),
            coded("status", "article.status.", STATUSES),
            coded("audience", "article.audience.", AUDIENCES),
        ],
    },
    Section {
        key: "management",
        fields: &[f("owner_id", "owner"), f("tags", "tags")],
    },
    Section {
        key: "evaluation",
        fields: &[req("body", "textarea")],
    },
];

pub static ARTICLES: ListSpec = ListSpec {
    kind: "article",
    base: "/articles",
    nav: "articles",
    tabs: None,
    columns: Columns {
        all: &[
            "status",
            "audience",
            "locale",
            "category",
            "views",
            "helpful",
            "unhelpful",
            "used",
            "owner_id",
            "tags",
            "updated_at",
            "created_at",
        ],
        default: &[
            "status", "audience", "locale", "category", "views", "helpful",
        ],
    },
    editable: &["category"],
    auto_sort: "sort.auto_newest",
    sorts: &["-updated_at", "-created_at", "title", "-views", "-helpful"],
    filters: &["category"],
    choices: &[
        ("status", STATUSES),
        ("audience", AUDIENCES),
        ("locale", LOCALES),
    ],
    exports: false,
    codes: "article.",
    sections: ARTICLE_SECTIONS,
};

impl Listed for Article {
    type Filter = ArticleFilter;
    type Input = ArticleInput;
    const SPEC: &'static ListSpec = &ARTICLES;
    fn id(&self) -> Uuid {
        self.id
    }
    async fn list(db: &Db, ctx: &Ctx, f: &ArticleFilter) -> Result<Page<Article>, Error> {
        articles::list(db, ctx, f).await
    }
    async fn update(db: &Db, ctx: &Ctx, id: Uuid, input: ArticleInput) -> Result<(), Error> {
        articles::update(db, ctx, id, None, input).await.map(|_| ())
    }
    fn filter_values(f: &ArticleFilter) -> Value {
        let custom: BTreeMap<String, String> = f
            .custom
            .iter()
            .map(|c: &CustomFilter| (c.param.clone(), c.value.clone()))
            .collect();
        context! { q => f.q, status => f.status, audience => f.audience, locale => f.locale,
        category => f.category, sort => f.sort, deleted => f.deleted.unwrap_or(false),
        tag => f.tag, custom => custom }
    }
    /// Shortcuts: published, drafts, most read, least helpful.
    async fn extras(_db: &Db, ctx: &Ctx) -> Result<Value, Error> {
        let t = |k: &str| crate::i18n::t(&ctx.locale, k);
        Ok(context! { chips => vec![
            context! { href => "/articles?status=published", label => t("article.status.published") },
            context! { href => "/articles?status=draft", label => t("article.status.draft") },
            context! { href => "/articles?status=published&sort=-views", label => t("article.most_read") },
            context! { href => "/articles?status=published&sort=-helpful", label => t("article.most_helpful") },
        ] })
    }
}

impl Formed for Article {
    const NEW: &'static str = "article.new";
    fn heading(&self) -> String {
        self.title.clone()
    }
    async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Article, Error> {
        articles::get(db, ctx, id).await
    }
    async fn create(db: &Db, ctx: &Ctx, input: ArticleInput) -> Result<Uuid, Error> {
        articles::create(db, ctx, input).await.map(|a| a.id)
    }
    async fn set_deleted(db: &Db, ctx: &Ctx, id: Uuid, deleted: bool) -> Result<(), Error> {
        articles::set_deleted(db, ctx, id, deleted)
            .await
            .map(|_| ())
    }
    /// `?translation_of=<id>&locale=en` starts a translation (carried to the create).
    fn new_values(p: &Signed, q: &BTreeMap<String, String>) -> Value {
        let locale = q
            .get("locale")
            .filter(|l| LOCALES.contains(&l.as_str()))
            .cloned()
            .unwrap_or_else(|| p.ctx.locale.clone());
        let carry: BTreeMap<&str, &String> = q
            .get("translation_of")
            .filter(|v| v.parse::<Uuid>().is_ok())
            .map(|v| ("translation_of", v))
            .into_iter()
            .collect();
        context! { owner_id => p.ctx.user_id, locale => locale, status => "draft",
        audience => "internal", carry => carry }
    }
    fn carried(form: &BTreeMap<String, String>, input: &mut ArticleInput) {
        input.translation_of = form
            .get("carry.translation_of")
            .and_then(|v| v.parse().ok());
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    error: Option<String>,
}

async fn show(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let a = match articles::get(&s.db, &p.ctx, id).await {
        Ok(a) => a,
        Err(e) => return p.error(&s, e),
    };
    let (languages, votes, layout) = match (
        articles::translations(&s.db, &p.ctx, a.group_id).await,
        articles::votes(&s.db, &p.ctx, id).await,
        lists::layout_of::<Article>(&s, &p).await,
    ) {
        (Ok(t), Ok(v), Ok(l)) => (t, v, l),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return p.error(&s, e),
    };
    let shown = layout.shown(&s, &p, &a.custom.0).await;
    // The text is the page's own; the groups show the rest.
    let mut sections = layout.sections;
    for sec in &mut sections {
        sec.fields.retain(|f| f.name != "body");
    }
    sections.retain(|sec| !sec.fields.is_empty());
    if let Err(e) = guanxi_platform::recent::viewed(&s.db, &p.ctx, "articles", id, &a.title).await {
        tracing::warn!(error = %e, "noting a recent view");
    }
    let missing: Vec<&str> = LOCALES
        .iter()
        .copied()
        .filter(|l| !languages.iter().any(|t| t.locale == *l))
        .collect();
    let can = |act: Action| {
        p.ctx
            .can("articles", act)
            .is_some_and(|scope| p.ctx.covers(scope, a.owner_id, a.team_id))
    };
    let live = a.deleted_at.is_none();
    let paragraphs = paragraphs(&a.body);
    p.page(
        &s,
        "service/article.html",
        "articles",
        context! {
            a => a, paragraphs => paragraphs, languages => languages, missing => missing,
            votes => votes, sections => sections, shown => shown, live => live,
            tenant_id => p.ctx.tenant_id,
            can_edit => can(Action::Update) && live, can_delete => can(Action::Delete),
            can_translate => p.ctx.can("articles", Action::Create).is_some() && live,
            error => p.refusal_from_url(q.error.as_deref()),
        },
    )
}

/// An article's text as paragraphs (split at blank lines), each a list of lines.
pub(crate) fn paragraphs(body: &str) -> Vec<Vec<String>> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .map(|p| p.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|p: &Vec<String>| p.iter().any(|l| !l.trim().is_empty()))
        .collect()
}

#[derive(Deserialize)]
struct VoteForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    helpful: Option<String>,
    comment: Option<String>,
}

/// `POST /articles/{id}/vote`: a colleague's "did this help?".
async fn vote(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<VoteForm>,
) -> Response {
    if !p.csrf_ok(&form.csrf) {
        return forbidden_csrf();
    }
    let input = VoteInput {
        helpful: form.helpful.as_deref().map(|h| h == "true"),
        comment: form.comment.filter(|c| !c.trim().is_empty()),
    };
    let page = format!("/articles/{id}");
    match articles::vote(&s.db, &p.ctx, id, input).await {
        Ok(_) => Redirect::to(&format!("{page}#votes")).into_response(),
        Err(e) => p.refused_to(&page, e, Some("article.field.")),
    }
}
