//! The knowledge base: articles with the record machinery (custom fields, tags, lists, saved
//! views, bulk actions, trash, search with pinyin and initials). An article is in one language
//! (`zh-CN`, `zh-TW`, `en`); its translations are articles of their own in the same group
//! (`group_id`: the original's id), at most one live article per language. Drafts are the
//! authors'; a published article is read by every colleague and, when its audience is
//! `public`, by anyone in the company's help centre. Counters — help-centre views, "did this
//! help?" votes (each also kept as a row), uses in replies — never move the version.
//!
//! Suggestions ([`suggest`]) rank the articles sharing index tokens with a text (a ticket's
//! subject, what a customer is typing) by the pure [`score`]: a token in the title counts three,
//! in the body one — a long question finds the articles that share most of its words, where a
//! substring search would need the whole sentence.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Backend, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx, Error};
use guanxi_records::custom_fields::{self, CustomFilter};
use guanxi_records::record::{self, apply_text, plain};
use guanxi_records::{eras, normalize, Entity, EntityDef};

use crate::tickets::choice;

/// The declaration that gives articles the shared record machinery.
pub const ENTITY: Entity = Entity::declare(&EntityDef {
    table: "articles",
    path: "/articles",
    shared: false,
    title: "title",
});

pub const LOCALES: &[&str] = &["zh-CN", "zh-TW", "en"];
pub const STATUSES: &[&str] = &["draft", "published", "archived"];
pub const AUDIENCES: &[&str] = &["internal", "public"];
/// The longest body kept (characters).
pub const MAX_BODY: usize = 50_000;
/// Suggestions are ranked among at most this many articles sharing a token with the text.
const CANDIDATES: i64 = 300;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Article {
    pub id: Uuid,
    /// The translation group: the original article's id (its own for an original).
    pub group_id: Uuid,
    /// `zh-CN`, `zh-TW` or `en`.
    pub locale: String,
    pub title: String,
    /// Plain text: paragraphs separated by a blank line.
    pub body: String,
    pub category: Option<String>,
    /// `draft`, `published` or `archived`.
    pub status: String,
    /// `internal` (colleagues only) or `public` (the help centre too).
    pub audience: String,
    /// When it was first published.
    pub published_at: Option<DateTime<Utc>>,
    /// Opened in the help centre.
    pub views: i64,
    pub helpful: i64,
    pub unhelpful: i64,
    /// Sent to customers in replies.
    pub used: i64,
    /// The author.
    pub owner_id: Option<Uuid>,
    pub owner_name: Option<String>,
    pub team_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub custom: sqlx::types::Json<serde_json::Value>,
    #[schema(value_type = Vec<String>)]
    pub tags: sqlx::types::Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
    #[serde(skip)]
    #[sqlx(default)]
    pub seq: Option<i64>,
    #[serde(skip)]
    #[sqlx(default)]
    pub name_key: Option<String>,
}

/// Create or update an article. On update, absent fields stay as they are and `null` clears
/// one.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    /// Required on create.
    pub title: Option<String>,
    /// Required on create.
    pub body: Option<String>,
    /// Default: the writer's language.
    pub locale: Option<String>,
    /// On create only: the article this one translates (another language of its group).
    pub translation_of: Option<Uuid>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    /// Default `draft`.
    pub status: Option<String>,
    /// Default `internal`.
    pub audience: Option<String>,
    /// The author; default the writer.
    pub owner_id: Option<Uuid>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub team_id: Option<Option<Uuid>>,
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArticleFilter {
    /// Search box: title (with pinyin and initials) and body.
    pub q: Option<String>,
    /// Several comma-separated.
    pub status: Option<String>,
    pub audience: Option<String>,
    pub locale: Option<String>,
    pub category: Option<String>,
    /// The translations of one article.
    pub group_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub tag: Option<String>,
    /// `true` lists the trash.
    pub deleted: Option<bool>,
    /// `title`, `updated_at`, `created_at`, `views`, `helpful` or `custom.<key>`; `-` for
    /// descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    #[serde(skip)]
    #[param(ignore)]
    pub custom: Vec<CustomFilter>,
}

impl custom_fields::CustomFilters for ArticleFilter {
    fn set_custom(&mut self, filters: Vec<CustomFilter>) {
        self.custom = filters;
    }
}

const SELECT: &str = "SELECT a.id, a.group_id, a.locale, a.title, a.body, a.category, a.status,
    a.audience, a.published_at, a.views, a.helpful, a.unhelpful, a.used, a.owner_id,
    o.name AS owner_name, a.team_id, a.custom, a.tags, a.created_at, a.updated_at, a.deleted_at,
    a.version, a.name_key
    FROM articles a
    LEFT JOIN users o ON o.tenant_id = a.tenant_id AND o.id = a.owner_id";

const SORTS: &[SortField] = &[
    ("title", "a.name_key", SortKind::Text),
    ("created_at", "a.created_at", SortKind::Time),
    ("updated_at", "a.updated_at", SortKind::Time),
    ("views", "a.views", SortKind::Int),
    ("helpful", "a.helpful", SortKind::Int),
];

guanxi_records::declare_record!(
    Article,
    entity: ENTITY,
    select: SELECT,
    alias: "a",
    input: ArticleInput,
    update: update
);

/// A draft is read by its author and those whose scope covers the author; what is published
/// or archived by everyone who reads articles.
fn visible_sql(q: &mut Sql, ctx: &Ctx, scope: guanxi_platform::perms::Scope) {
    if scope == guanxi_platform::perms::Scope::All {
        return;
    }
    q.push(" AND (a.status <> 'draft' OR ");
    match (scope, ctx.user_id, ctx.team_id) {
        (guanxi_platform::perms::Scope::Team, _, Some(team)) => {
            q.push("a.team_id = ").bind(team);
        }
        (_, Some(me), _) => {
            q.push("a.owner_id = ").bind(me);
        }
        _ => {
            q.push("1 = 0");
        }
    }
    q.push(")");
}

pub async fn list(db: &Db, ctx: &Ctx, f: &ArticleFilter) -> Result<Page<Article>> {
    let defs =
        custom_fields::for_list(db, ctx.tenant_id, ENTITY, &f.custom, f.sort.as_deref()).await?;
    let (q, order, limit) = list_sql(db.backend(), ctx, f, &defs)?;
    let rows: Vec<Article> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |a| {
        order.cursor(a.seq, a.id, |sort| match &*sort.field {
            "created_at" => guanxi_platform::db::sqlite_time(&a.created_at),
            "updated_at" => guanxi_platform::db::sqlite_time(&a.updated_at),
            "views" => a.views.to_string(),
            "helpful" => a.helpful.to_string(),
            "title" => a.name_key.clone().unwrap_or_default(),
            other => custom_fields::cursor_value(&a.custom, other, sort.kind),
        })
    }))
}

fn list_sql(
    backend: Backend,
    ctx: &Ctx,
    f: &ArticleFilter,
    defs: &[custom_fields::CustomField],
) -> Result<(Sql, record::ListOrder, i64)> {
    let scope = ctx.require("articles", Action::Read)?;
    let sort = f.sort.clone().or_else(|| {
        f.q.as_deref()
            .is_none_or(|q| q.trim().is_empty())
            .then(|| "-updated_at".to_owned())
    });
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: sort.clone(),
    };
    // Every reader may read every published article: the list's scope is `all`, drafts are
    // narrowed below.
    let mut list = record::ListQuery::start(
        backend,
        ctx,
        guanxi_platform::perms::Scope::All,
        SELECT,
        (ENTITY, "a"),
        f.q.as_deref(),
        f.sort.as_deref(),
        f.deleted == Some(true),
    );
    let q = &mut list.q;
    visible_sql(q, ctx, scope);
    for (col, v) in [("a.group_id", f.group_id), ("a.owner_id", f.owner_id)] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    record::one_of(q, "a.status", "status", f.status.as_deref(), STATUSES)?;
    record::one_of(
        q,
        "a.audience",
        "audience",
        f.audience.as_deref(),
        AUDIENCES,
    )?;
    record::one_of(q, "a.locale", "locale", f.locale.as_deref(), LOCALES)?;
    if let Some(c) = f
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        q.push(" AND a.category = ").bind(c);
    }
    custom_fields::filter_sql(backend, q, "a", defs, &f.custom)?;
    if let Some(tag) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        record::tag_sql(backend, q, "a.tags", tag);
    }
    list.finish(&page, "a.id", || {
        page.sort_or(SORTS, |name| {
            custom_fields::sort_column(backend, "a", defs, name)
        })
    })
}

/// Whether the caller reads this article: a draft only within their scope over its author.
fn readable(ctx: &Ctx, a: &Article) -> Result<()> {
    let scope = ctx.require("articles", Action::Read)?;
    if a.status == "draft" && !ctx.covers(scope, a.owner_id, a.team_id) {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// One article, in the trash or not.
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Article> {
    ctx.require("articles", Action::Read)?;
    let a: Article = db
        .fetch_optional(
            &<Article as record::Record>::select_one(),
            args![ctx.tenant_id, id],
        )
        .await?
        .ok_or(Error::NotFound)?;
    readable(ctx, &a)?;
    Ok(a)
}

pub async fn set_deleted(db: &Db, ctx: &Ctx, id: Uuid, deleted: bool) -> Result<Article> {
    if !deleted {
        // Restoring beside a live article of its group in the same language would make two.
        let a = get(db, ctx, id).await?;
        let taken: Option<(Uuid,)> = db
            .fetch_optional(
                "SELECT id FROM articles WHERE tenant_id = $1 AND group_id = $2 AND locale = $3
                   AND id <> $4 AND deleted_at IS NULL",
                args![ctx.tenant_id, a.group_id, a.locale.as_str(), id],
            )
            .await?;
        if taken.is_some() {
            return Err(Error::field("locale", "taken"));
        }
    }
    record::set_deleted::<Article>(db, ctx, id, deleted)
        .await
        .map_err(translation_taken)
}

struct Fields {
    title: String,
    body: String,
    locale: String,
    category: Option<String>,
    status: String,
    audience: String,
    owner_id: Option<Uuid>,
    team_id: Option<Uuid>,
    custom: serde_json::Map<String, serde_json::Value>,
    tags: Vec<String>,
}

impl Fields {
    fn of(a: &Article) -> Fields {
        Fields {
            title: a.title.clone(),
            body: a.body.clone(),
            locale: a.locale.clone(),
            category: a.category.clone(),
            status: a.status.clone(),
            audience: a.audience.clone(),
            owner_id: a.owner_id,
            team_id: a.team_id,
            custom: a.custom.0.as_object().cloned().unwrap_or_default(),
            tags: a.tags.0.clone(),
        }
    }

    /// Title (with pinyin and initials), category and body.
    fn search(&self) -> String {
        record::search_of(
            &self.title,
            None,
            None,
            &[self.category.as_deref(), Some(&self.body)],
        )
    }
}

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &ArticleInput,
    f: &mut Fields,
    defs: &[custom_fields::CustomField],
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    let mut text = |field: &str, v: &Option<String>, max: usize, out: &mut String| match v {
        Some(n) => match plain(max)(n) {
            Ok(n) if !n.trim().is_empty() => *out = n.trim().to_owned(),
            Ok(_) => errs.add(field, "required"),
            Err(c) => errs.add(field, c),
        },
        None if creating => errs.add(field, "required"),
        None => {}
    };
    text("title", &input.title, 300, &mut f.title);
    text("body", &input.body, MAX_BODY, &mut f.body);
    apply_text(
        &mut errs,
        "category",
        &input.category,
        &mut f.category,
        plain(50),
    );
    for (field, v, allowed, out) in [
        ("locale", &input.locale, LOCALES, &mut f.locale),
        ("status", &input.status, STATUSES, &mut f.status),
        ("audience", &input.audience, AUDIENCES, &mut f.audience),
    ] {
        if let Some(c) = v
            .as_deref()
            .and_then(|v| choice(&mut errs, field, v, allowed))
        {
            *out = c;
        }
    }
    if let Some(o) = input.owner_id {
        let row: Option<(Option<Uuid>,)> = tx
            .fetch_optional(
                "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
                args![ctx.tenant_id, o, true],
            )
            .await?;
        match row {
            Some((team,)) => {
                f.owner_id = Some(o);
                if input.team_id.is_none() {
                    f.team_id = team;
                }
            }
            None => errs.add("owner_id", "unknown"),
        }
    }
    if let Some(team) = input.team_id {
        if let Some(id) = team {
            let known: Option<(Uuid,)> = tx
                .fetch_optional(
                    "SELECT id FROM teams WHERE tenant_id = $1 AND id = $2",
                    args![ctx.tenant_id, id],
                )
                .await?;
            if known.is_none() {
                errs.add("team_id", "unknown");
            }
        }
        f.team_id = team;
    }
    if let Some(tags) = &input.tags {
        record::apply_tags(&mut errs, tags, &mut f.tags);
    }
    custom_fields::apply(
        tx,
        ctx.tenant_id,
        &mut errs,
        defs,
        input.custom.as_ref(),
        &mut f.custom,
        creating,
        "CN",
    )
    .await?;
    errs.finish()
}

/// The one unique index an article's write can meet (a group's languages), as the field it is
/// about.
fn translation_taken(e: Error) -> Error {
    match e {
        Error::Conflict(_) => Error::field("locale", "taken"),
        e => e,
    }
}

pub async fn create(db: &Db, ctx: &Ctx, input: ArticleInput) -> Result<Article> {
    let scope = ctx.require("articles", Action::Create)?;
    let mut f = Fields {
        title: String::new(),
        body: String::new(),
        locale: if LOCALES.contains(&ctx.locale.as_str()) {
            ctx.locale.clone()
        } else {
            "zh-CN".into()
        },
        category: None,
        status: "draft".into(),
        audience: "internal".into(),
        owner_id: ctx.user_id,
        team_id: ctx.team_id,
        custom: Default::default(),
        tags: vec![],
    };
    let id = new_id();
    let mut group_id = id;
    if let Some(of) = input.translation_of {
        let original = match get(db, ctx, of).await {
            Ok(a) if a.deleted_at.is_none() => a,
            Ok(_) => return Err(Error::field("translation_of", "in_trash")),
            Err(Error::NotFound) => return Err(Error::field("translation_of", "unknown")),
            Err(e) => return Err(e),
        };
        group_id = original.group_id;
        // A translation starts where its original is.
        f.category = original.category.clone();
        f.audience = original.audience.clone();
    }
    // Begun after the original is read: a transaction never waits on a second connection.
    let mut tx = db.begin().await?;
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, ENTITY).await?;
    apply(&mut tx, ctx, &input, &mut f, &defs, true).await?;
    if !ctx.covers(scope, f.owner_id, f.team_id) {
        return Err(Error::field("owner_id", "out_of_scope"));
    }
    let t = now();
    let search = f.search();
    let era: i64 = tx
        .scalar(
            &format!(
            "INSERT INTO articles (tenant_id, id, group_id, locale, title, body, category, status,
             audience, published_at, owner_id, team_id, search, grams, era, custom, tags,
             created_at, updated_at, created_by, updated_by, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, {}, $15, $16,
             $17, $18, $19, $20, 1)
         RETURNING era",
            eras::newest_for("articles", "$1")
        ),
            args![
                ctx.tenant_id,
                id,
                group_id,
                f.locale.as_str(),
                f.title.as_str(),
                f.body.as_str(),
                f.category.clone(),
                f.status.as_str(),
                f.audience.as_str(),
                (f.status != "draft").then_some(t),
                f.owner_id,
                f.team_id,
                search.as_str(),
                normalize::grams(&search),
                serde_json::Value::Object(f.custom.clone()),
                serde_json::json!(f.tags),
                t,
                t,
                ctx.user_id,
                ctx.user_id
            ],
        )
        .await
        .map_err(translation_taken)?;
    eras::count_one(&mut tx, ctx.tenant_id, "articles", era, id).await?;
    custom_fields::hold_unique(&mut tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    let a: Article = record::load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(&mut tx, ctx, "create", "articles", Some(id), None, Some(&a)).await?;
    tx.commit().await?;
    Ok(a)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: ArticleInput,
) -> Result<Article> {
    ctx.require("articles", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    if input.translation_of.is_some() {
        return Err(Error::field("translation_of", "immutable"));
    }
    let mut tx = db.begin().await?;
    let before: Article = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    if before.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the article is in the trash; restore it first".into(),
        ));
    }
    version::check(expected, before.version)?;
    let mut f = Fields::of(&before);
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, ENTITY).await?;
    apply(&mut tx, ctx, &input, &mut f, &defs, false).await?;
    if f.owner_id != before.owner_id {
        let scope = ctx.require("articles", Action::Update)?;
        if !ctx.covers(scope, f.owner_id, f.team_id) {
            return Err(Error::field("owner_id", "out_of_scope"));
        }
    }
    let t = now();
    // First publication is remembered; a draft again forgets it.
    let published_at = match (&*f.status, before.published_at) {
        ("draft", _) => None,
        (_, Some(p)) => Some(p),
        (_, None) => Some(t),
    };
    let search = f.search();
    version::update(
        &mut tx,
        version::Row {
            table: "articles",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "title = $1, body = $2, locale = $3, category = $4, status = $5, audience = $6,
         published_at = $7, owner_id = $8, team_id = $9, search = $10, grams = $11,
         custom = $12, tags = $13, updated_at = $14, updated_by = $15",
        args![
            f.title.as_str(),
            f.body.as_str(),
            f.locale.as_str(),
            f.category.clone(),
            f.status.as_str(),
            f.audience.as_str(),
            published_at,
            f.owner_id,
            f.team_id,
            search.as_str(),
            normalize::grams(&search),
            serde_json::Value::Object(f.custom.clone()),
            serde_json::json!(f.tags),
            t,
            ctx.user_id
        ],
    )
    .await
    .map_err(translation_taken)?;
    if input.custom.is_some() {
        custom_fields::hold_unique(&mut tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    }
    let after: Article = record::load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "articles",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// One language of an article's group.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Translation {
    pub id: Uuid,
    pub locale: String,
    pub title: String,
    pub status: String,
}

/// The live articles of a group (the article itself among them), by language.
pub async fn translations(db: &Db, ctx: &Ctx, group: Uuid) -> Result<Vec<Translation>> {
    ctx.require("articles", Action::Read)?;
    db.fetch_all(
        "SELECT id, locale, title, status FROM articles
         WHERE tenant_id = $1 AND group_id = $2 AND deleted_at IS NULL ORDER BY locale",
        args![ctx.tenant_id, group],
    )
    .await
}

/// How well an article answers a text: each of the text's index tokens found in the title
/// counts three, elsewhere in the article (`indexed`: its stored index tokens — title,
/// category, body) one. Zero: nothing shared. Only the short title is tokenised here.
pub fn score(tokens: &[String], title: &str, indexed: &str) -> i64 {
    let title = normalize::grams(&normalize::search_text([title]));
    let title: std::collections::HashSet<&str> = title.split(' ').collect();
    let indexed: std::collections::HashSet<&str> = indexed.split(' ').collect();
    tokens
        .iter()
        .map(|t| {
            if title.contains(t.as_str()) {
                3
            } else if indexed.contains(t.as_str()) {
                1
            } else {
                0
            }
        })
        .sum()
}

/// An article suggested for a text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suggestion {
    pub id: Uuid,
    pub title: String,
    pub locale: String,
    pub category: Option<String>,
    pub audience: String,
    /// The beginning of its body.
    pub excerpt: String,
    /// [`score`]: 3 for each of the text's tokens in the title, 1 in the body.
    pub score: i64,
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: Uuid,
    group_id: Uuid,
    title: String,
    /// The body's beginning (for the excerpt).
    body: String,
    grams: Option<String>,
    locale: String,
    category: Option<String>,
    audience: String,
}

/// Who asks for suggestions: a colleague (internal articles too) or the help centre of a
/// tenant (public ones only).
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    Staff(&'a Ctx),
    Public(Uuid),
}

/// The published articles best answering `text`, best first, one per group (the reader's
/// language when the group has it), at most `limit` (≤ 20). A text with no index token (one
/// letter) suggests nothing.
pub async fn suggest(
    db: &Db,
    reader: Reader<'_>,
    text: &str,
    locale: &str,
    limit: usize,
) -> Result<Vec<Suggestion>> {
    let tenant = match reader {
        Reader::Staff(ctx) => {
            ctx.require("articles", Action::Read)?;
            ctx.tenant_id
        }
        Reader::Public(t) => t,
    };
    let text: String = text.chars().take(500).collect();
    let folded = normalize::search_text([text.as_str()]);
    let mut tokens = normalize::query_grams(folded.trim_matches('|'));
    // Single Chinese characters (的, 了) match nearly everything; pairs carry the meaning.
    if tokens.iter().any(|t| t.chars().count() > 1) {
        tokens.retain(|t| t.chars().count() > 1);
    }
    tokens.truncate(64);
    let mut q = Sql::new(
        "SELECT a.id, a.group_id, a.title, substr(a.body, 1, 400) AS body, a.grams, a.locale,
                a.category, a.audience
         FROM articles a WHERE a.tenant_id = ",
    );
    q.bind(tenant)
        .push(" AND a.deleted_at IS NULL AND a.status = 'published' AND ");
    if matches!(reader, Reader::Public(_)) {
        q.push("a.audience = 'public' AND ");
    }
    record::any_token_sql(db.backend(), &mut q, "articles", "a", &tokens);
    q.push(" ORDER BY a.updated_at DESC LIMIT ")
        .bind(CANDIDATES);
    let rows: Vec<Candidate> = db.fetch_sql(q).await?;
    let mut scored: Vec<(i64, bool, Candidate)> = rows
        .into_iter()
        .map(|c| {
            let s = score(&tokens, &c.title, c.grams.as_deref().unwrap_or(""));
            (s, c.locale == locale, c)
        })
        .filter(|(s, _, _)| *s > 0)
        .collect();
    // Best first; within a group the reader's language, then the better match.
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut seen = std::collections::HashSet::new();
    let mut best: Vec<(i64, bool, Candidate)> = Vec::new();
    for (s, mine, c) in scored {
        if let Some(i) = best.iter().position(|(_, _, b)| b.group_id == c.group_id) {
            // The group's article in the reader's language replaces a better-scoring other.
            if mine && !best[i].1 {
                best[i] = (best[i].0.max(s), true, c);
            }
            continue;
        }
        if seen.insert(c.group_id) {
            best.push((s, mine, c));
        }
    }
    // Articles sharing a word or two by chance (不了, the) are left out: a suggestion scores
    // at least a third of the best one.
    let floor = best.iter().map(|b| b.0).max().unwrap_or(0) / 3;
    best.retain(|b| b.0 >= floor.max(2));
    best.truncate(limit.min(20));
    Ok(best
        .into_iter()
        .map(|(s, _, c)| Suggestion {
            id: c.id,
            excerpt: excerpt(&c.body, 160),
            title: c.title,
            locale: c.locale,
            category: c.category,
            audience: c.audience,
            score: s,
        })
        .collect())
}

/// The first `n` characters of a text on one line, with an ellipsis when cut.
pub fn excerpt(body: &str, n: usize) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= n {
        flat
    } else {
        format!("{}…", flat.chars().take(n).collect::<String>())
    }
}

/// A "did this help?" answer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteInput {
    /// Required.
    pub helpful: Option<bool>,
    /// What was missing (up to 1,000 characters).
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Vote {
    pub id: Uuid,
    pub helpful: bool,
    pub comment: Option<String>,
    /// `agent`, `public` (the help centre) or `portal`.
    pub channel: String,
    pub user_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Records a vote on a published article (kept as a row; its counter moves).
async fn vote_in(
    tx: &mut Tx,
    tenant: Uuid,
    id: Uuid,
    input: &VoteInput,
    channel: &str,
    user: Option<Uuid>,
    voter: Option<&str>,
) -> Result<Vote> {
    let mut errs = Errors::default();
    let helpful = input.helpful;
    if helpful.is_none() {
        errs.add("helpful", "required");
    }
    let comment = match input.comment.as_deref().map(plain(1_000)) {
        Some(Ok(c)) if !c.trim().is_empty() => Some(c.trim().to_owned()),
        Some(Err(c)) => {
            errs.add("comment", c);
            None
        }
        _ => None,
    };
    errs.finish()?;
    let helpful = helpful.unwrap_or(false);
    let column = if helpful { "helpful" } else { "unhelpful" };
    let n = tx
        .execute(
            &format!(
                "UPDATE articles SET {column} = {column} + 1
                 WHERE tenant_id = $1 AND id = $2 AND status = 'published' AND deleted_at IS NULL"
            ),
            args![tenant, id],
        )
        .await?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    let v = Vote {
        id: new_id(),
        helpful,
        comment,
        channel: channel.to_owned(),
        user_id: user,
        at: now(),
    };
    tx.execute(
        "INSERT INTO article_votes (tenant_id, id, article_id, helpful, comment, channel, user_id, at, voter)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![tenant, v.id, id, v.helpful, v.comment.clone(), channel, user, v.at, voter],
    )
    .await?;
    Ok(v)
}

/// A colleague's vote.
pub async fn vote(db: &Db, ctx: &Ctx, id: Uuid, input: VoteInput) -> Result<Vote> {
    get(db, ctx, id).await?;
    let mut tx = db.begin().await?;
    let v = vote_in(
        &mut tx,
        ctx.tenant_id,
        id,
        &input,
        "agent",
        ctx.user_id,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(v)
}

/// The newest votes on an article (at most 50), for its page.
pub async fn votes(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Vec<Vote>> {
    get(db, ctx, id).await?;
    db.fetch_all(
        "SELECT id, helpful, comment, channel, user_id, at FROM article_votes
         WHERE tenant_id = $1 AND article_id = $2 ORDER BY at DESC, id DESC LIMIT 50",
        args![ctx.tenant_id, id],
    )
    .await
}

/// An article a reply sends: counted as used; its text for the customer. Inside the reply's
/// transaction.
pub async fn use_in_reply(tx: &mut Tx, ctx: &Ctx, id: Uuid) -> Result<(String, String)> {
    ctx.require("articles", Action::Read)?;
    let row: Option<(String, String)> = tx
        .fetch_optional(
            "SELECT title, body FROM articles
             WHERE tenant_id = $1 AND id = $2 AND status = 'published' AND deleted_at IS NULL",
            args![ctx.tenant_id, id],
        )
        .await?;
    let Some(text) = row else {
        return Err(Error::field("article_id", "unknown"));
    };
    tx.execute(
        "UPDATE articles SET used = used + 1 WHERE tenant_id = $1 AND id = $2",
        args![ctx.tenant_id, id],
    )
    .await?;
    Ok(text)
}

// ---- The public help centre: published public articles of one tenant, no sign-in. ----

/// An article as the help centre shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PublicArticle {
    pub id: Uuid,
    pub group_id: Uuid,
    pub locale: String,
    pub title: String,
    pub body: String,
    pub category: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// The help centre's articles: published, public, live (binds the tenant as `$1`).
macro_rules! public_where {
    () => {
        "FROM articles WHERE tenant_id = $1 AND status = 'published' AND audience = 'public'
           AND deleted_at IS NULL"
    };
}
const PUBLIC: &str = concat!(
    "SELECT id, group_id, locale, title, body, category, updated_at ",
    public_where!()
);
/// The index lists titles: bodies stay in the database.
const PUBLIC_LIST: &str = concat!(
    "SELECT id, group_id, locale, title, '' AS body, category, updated_at ",
    public_where!()
);

/// Every public article once (per group the one in `locale`, else the group's first language
/// by zh-CN, zh-TW, en), by category then title — at most 2,000 groups.
pub async fn public_index(db: &Db, tenant: Uuid, locale: &str) -> Result<Vec<PublicArticle>> {
    let rows: Vec<PublicArticle> = db
        .fetch_all(
            &format!("{PUBLIC_LIST} ORDER BY group_id, locale LIMIT 6000"),
            args![tenant],
        )
        .await?;
    let mut out = pick_languages(rows, locale);
    out.truncate(2_000);
    out.sort_by(|a, b| {
        (a.category.is_none(), &a.category, &a.title).cmp(&(
            b.category.is_none(),
            &b.category,
            &b.title,
        ))
    });
    Ok(out)
}

/// One article per group: the one in `locale` when there is one, else the first by
/// [`LOCALES`] order. Pure.
pub fn pick_languages(rows: Vec<PublicArticle>, locale: &str) -> Vec<PublicArticle> {
    let rank = |l: &str| {
        if l == locale {
            0
        } else {
            1 + LOCALES.iter().position(|x| *x == l).unwrap_or(9)
        }
    };
    let mut best: std::collections::BTreeMap<Uuid, PublicArticle> = Default::default();
    for r in rows {
        match best.get(&r.group_id) {
            Some(b) if rank(&b.locale) <= rank(&r.locale) => {}
            _ => {
                best.insert(r.group_id, r);
            }
        }
    }
    best.into_values().collect()
}

/// A public article with the other languages it is in; counted as viewed when `count`.
pub async fn public_open(
    db: &Db,
    tenant: Uuid,
    id: Uuid,
    count: bool,
) -> Result<(PublicArticle, Vec<(Uuid, String)>)> {
    let mut tx = db.begin().await?;
    if count {
        tx.execute(
            "UPDATE articles SET views = views + 1 WHERE tenant_id = $1 AND id = $2
               AND status = 'published' AND audience = 'public' AND deleted_at IS NULL",
            args![tenant, id],
        )
        .await?;
    }
    let a: PublicArticle = tx
        .fetch_optional(&format!("{PUBLIC} AND id = $2"), args![tenant, id])
        .await?
        .ok_or(Error::NotFound)?;
    let others: Vec<(Uuid, String)> = tx
        .fetch_all(
            &format!("SELECT id, locale FROM ({PUBLIC} AND group_id = $2 AND id <> $3) x ORDER BY locale"),
            args![tenant, a.group_id, id],
        )
        .await?;
    tx.commit().await?;
    Ok((a, others))
}

/// Votes one address may cast in the help centre in an hour.
pub const PUBLIC_VOTES_PER_HOUR: i64 = 30;

/// A help-centre visitor's vote, from `ip`: their second on the same article within a day
/// changes nothing (the first is returned); past [`PUBLIC_VOTES_PER_HOUR`] they are refused
/// (429). Counted from the stored votes, so every node counts the same.
pub async fn public_vote(
    db: &Db,
    tenant: Uuid,
    id: Uuid,
    input: VoteInput,
    ip: &str,
) -> Result<Vote> {
    let voter = guanxi_platform::secret::digest(&format!("{tenant}|{ip}"));
    let t = now();
    let earlier: Option<Vote> = db
        .fetch_optional(
            "SELECT id, helpful, comment, channel, user_id, at FROM article_votes
             WHERE tenant_id = $1 AND voter = $2 AND article_id = $3 AND at > $4
             ORDER BY at LIMIT 1",
            args![tenant, voter.as_str(), id, t - chrono::Duration::days(1)],
        )
        .await?;
    if let Some(v) = earlier {
        return Ok(v);
    }
    let recent: i64 = db
        .scalar(
            "SELECT COUNT(*) FROM article_votes WHERE tenant_id = $1 AND voter = $2 AND at > $3",
            args![tenant, voter.as_str(), t - chrono::Duration::hours(1)],
        )
        .await?;
    if recent >= PUBLIC_VOTES_PER_HOUR {
        // The hour's oldest vote leaves the window within the hour.
        return Err(Error::rate_limited(std::time::Duration::from_secs(3600)));
    }
    let mut tx = db.begin().await?;
    let public: Option<(Uuid,)> = tx
        .fetch_optional(
            &format!("SELECT id FROM ({PUBLIC} AND id = $2) x"),
            args![tenant, id],
        )
        .await?;
    if public.is_none() {
        return Err(Error::NotFound);
    }
    let v = vote_in(&mut tx, tenant, id, &input, "public", None, Some(&voter)).await?;
    tx.commit().await?;
    Ok(v)
}

/// The company whose help centre this is (name, language), if the tenant exists.
pub async fn help_centre(db: &Db, tenant: Uuid) -> Result<(String, String)> {
    db.fetch_optional(
        "SELECT name, locale FROM tenants WHERE id = $1",
        args![tenant],
    )
    .await?
    .ok_or(Error::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An article's stored index tokens, as `create` writes them.
    fn idx(title: &str, body: &str) -> String {
        normalize::grams(&normalize::search_text([title, body]))
    }

    fn toks(s: &str) -> Vec<String> {
        normalize::query_grams(normalize::search_text([s]).trim_matches('|'))
    }

    #[test]
    fn title_words_weigh_more_than_body_words() {
        let t = toks("打印机连不上网络");
        let in_title = score(
            &t,
            "打印机无法连接网络怎么办",
            &idx("打印机无法连接网络怎么办", "检查网线"),
        );
        let in_body = score(
            &t,
            "常见问题",
            &idx("常见问题", "打印机无法连接网络时，先检查网线"),
        );
        assert!(in_title > in_body, "{in_title} vs {in_body}");
        assert!(in_body > 0);
        assert_eq!(
            score(&t, "发票怎么开", &idx("发票怎么开", "开具增值税发票")),
            0
        );
    }

    fn art(group: u128, locale: &str) -> PublicArticle {
        PublicArticle {
            id: Uuid::from_u128(
                group * 10 + LOCALES.iter().position(|l| *l == locale).unwrap_or(0) as u128,
            ),
            group_id: Uuid::from_u128(group),
            locale: locale.into(),
            title: format!("{group} {locale}"),
            body: String::new(),
            category: None,
            updated_at: now(),
        }
    }

    proptest! {
        /// Each group once, in the reader's language when the group has it, else the first
        /// of LOCALES it has.
        #[test]
        fn one_article_per_group_in_the_best_language(
            groups in proptest::collection::vec(proptest::collection::btree_set(0usize..3, 1..=3), 1..8),
            reader in 0usize..3,
        ) {
            let reader = LOCALES[reader];
            let mut rows = vec![];
            for (g, langs) in groups.iter().enumerate() {
                for l in langs {
                    rows.push(art(g as u128 + 1, LOCALES[*l]));
                }
            }
            let picked = pick_languages(rows, reader);
            prop_assert_eq!(picked.len(), groups.len());
            for p in picked {
                let langs = &groups[p.group_id.as_u128() as usize - 1];
                let want = if langs.iter().any(|l| LOCALES[*l] == reader) {
                    reader
                } else {
                    LOCALES[*langs.iter().next().unwrap_or(&0)]
                };
                prop_assert_eq!(p.locale, want);
            }
        }

        /// A score is never negative, and an article holding the whole text in its title
        /// scores at least as much as any article (three per token).
        #[test]
        fn whole_text_in_title_scores_highest(text in "[a-z打印机网络发票]{2,12}", other in "[a-z打印机网络发票 ]{0,30}") {
            let t = toks(&text);
            let best = score(&t, &text, &idx(&text, ""));
            prop_assert_eq!(best, 3 * t.len() as i64);
            let s = score(&t, &other, &idx(&other, &other));
            prop_assert!(s >= 0 && s <= best);
        }
    }
}
