//! Deal pages: the list (the shared list page), the kanban board of a pipeline (a stage picker
//! on every card moves it — on a phone too — and a refused move says which fields the stage
//! needs), a deal's page with its stage path, move form, history and timeline, and the form.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_customers::activities::Subject;
use guanxi_platform::db::Db;
use guanxi_platform::error::FieldError;
use guanxi_platform::page::Page;
use guanxi_platform::perms::Action;
use guanxi_platform::{Ctx, Error};
use guanxi_records::custom_fields::CustomFilter;
use guanxi_records::shares;
use guanxi_sales::opportunities::{
    self, BoardFilter, Opportunity, OpportunityFilter, OpportunityInput, STATUSES,
};
use guanxi_sales::pipelines;
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::records::layout::{f, form_input, req, Section};
use crate::records::lists::{self, layout_of, Columns, ListSpec, Listed};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/opportunities",
            get(lists::page::<Opportunity>).post(create),
        )
        .route("/opportunities/new", get(new))
        .route("/opportunities/board", get(board))
        .route(
            "/opportunities/bulk",
            post(lists::bulk_action::<Opportunity>),
        )
        .route("/opportunities/{id}", get(show))
        .route("/opportunities/{id}/edit", get(edit).post(update))
        .route(
            "/opportunities/{id}/cell",
            post(lists::edit_cell::<Opportunity>),
        )
        .route("/opportunities/{id}/move", post(move_deal))
        .route("/opportunities/{id}/parties", post(save_parties))
        .route(
            "/opportunities/{id}/collaborators",
            post(save_collaborators),
        )
        .route("/opportunities/{id}/activities", post(log_activity))
        .route("/opportunities/{id}/delete", post(delete))
        .route("/opportunities/{id}/restore", post(restore))
}

/// A deal's profile groups.
pub const DEAL_SECTIONS: &[Section] = &[
    Section {
        key: "basic",
        fields: &[req("name", "text"), req("account_id", "account")],
    },
    Section {
        key: "sales",
        fields: &[
            f("amount", "money"),
            f("probability", "number"),
            f("expected_close", "date"),
            f("close_reason", "text"),
        ],
    },
    Section {
        key: "management",
        fields: &[f("owner_id", "owner"), f("tags", "tags")],
    },
    Section {
        key: "evaluation",
        fields: &[f("description", "textarea")],
    },
];

pub static DEALS: ListSpec = ListSpec {
    kind: "opportunity",
    base: "/opportunities",
    nav: "opportunities",
    tabs: None,
    columns: Columns {
        all: &[
            "account_id",
            "stage_id",
            "status",
            "amount",
            "probability",
            "weighted",
            "expected_close",
            "owner_id",
            "tags",
            "updated_at",
            "created_at",
        ],
        default: &[
            "account_id",
            "stage_id",
            "amount",
            "expected_close",
            "owner_id",
        ],
    },
    editable: &["expected_close"],
    auto_sort: "sort.auto_newest",
    sorts: &["-updated_at", "-amount", "expected_close", "name"],
    filters: &[],
    choices: &[("status", STATUSES)],
    exports: false,
    codes: "",
    sections: DEAL_SECTIONS,
};

impl Listed for Opportunity {
    type Filter = OpportunityFilter;
    type Input = OpportunityInput;
    const SPEC: &'static ListSpec = &DEALS;
    fn id(&self) -> Uuid {
        self.id
    }
    async fn list(db: &Db, ctx: &Ctx, f: &OpportunityFilter) -> Result<Page<Opportunity>, Error> {
        opportunities::list(db, ctx, f).await
    }
    async fn update(db: &Db, ctx: &Ctx, id: Uuid, input: OpportunityInput) -> Result<(), Error> {
        opportunities::update(db, ctx, id, None, input)
            .await
            .map(|_| ())
    }
    fn filter_values(f: &OpportunityFilter) -> Value {
        let custom: BTreeMap<String, String> = f
            .custom
            .iter()
            .map(|c: &CustomFilter| (c.param.clone(), c.value.clone()))
            .collect();
        context! { q => f.q, status => f.status, sort => f.sort, deleted => f.deleted.unwrap_or(false),
        tag => f.tag, custom => custom }
    }
    /// The pipelines' boards, as shortcuts above the list.
    async fn extras(db: &Db, ctx: &Ctx) -> Result<Value, Error> {
        let board = crate::i18n::t(&ctx.locale, "deal.board");
        let chips: Vec<Value> = pipelines::list(db, ctx)
            .await?
            .iter()
            .filter(|p| p.active)
            .map(|p| context! { href => format!("/opportunities/board?pipeline={}", p.id), label => format!("{board}: {}", p.name) })
            .collect();
        Ok(context! { chips => chips })
    }
}

fn t(p: &Signed, key: &str) -> String {
    crate::i18n::t(&p.ctx.locale, key)
}

/// The form of a deal: new (`values` from the query: an account to sell to) or an edit.
#[allow(clippy::too_many_arguments)]
async fn form_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    action: String,
    title: String,
    values: Value,
    errors: Vec<FieldError>,
) -> Response {
    let (opts, layout) = match (
        crate::customers::pages::options(s, p).await,
        layout_of::<Opportunity>(s, p).await,
    ) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(e), _) | (_, Err(e)) => return p.error(s, e),
    };
    p.page_status(
        s,
        status,
        "records/form.html",
        "opportunities",
        context! { sections => layout.sections, values => values, errors => errors,
        action => action, title => title, opts => opts, kind => "opportunity", dupes => Vec::<Value>::new() },
    )
}

#[derive(Deserialize)]
struct NewQuery {
    account_id: Option<Uuid>,
    account_name: Option<String>,
}

async fn new(State(s): State<AppState>, p: Signed, Query(q): Query<NewQuery>) -> Response {
    let values = context! { owner_id => p.ctx.user_id, account_id => q.account_id,
    account_name => q.account_name };
    let title = t(&p, "deal.new");
    form_view(
        &s,
        &p,
        StatusCode::OK,
        "/opportunities".into(),
        title,
        values,
        vec![],
    )
    .await
}

async fn refused(
    s: &AppState,
    p: &Signed,
    e: Error,
    action: String,
    title: String,
    form: &BTreeMap<String, String>,
) -> Response {
    match p.field_errors(e) {
        Ok(errors) => {
            form_view(
                s,
                p,
                StatusCode::UNPROCESSABLE_ENTITY,
                action,
                title,
                Value::from_serialize(form),
                errors,
            )
            .await
        }
        Err(e) => p.error(s, e),
    }
}

async fn create(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let title = t(&p, "deal.new");
    let result = match input_of(&s, &p, &form).await {
        Ok(input) => opportunities::create(&s.db, &p.ctx, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => Redirect::to(&format!("/opportunities/{}", d.id)).into_response(),
        Err(e) => refused(&s, &p, e, "/opportunities".into(), title, &form).await,
    }
}

/// The form as the API input; a malformed value is the field's error.
async fn input_of(
    s: &AppState,
    p: &Signed,
    form: &BTreeMap<String, String>,
) -> Result<OpportunityInput, Error> {
    let layout = layout_of::<Opportunity>(s, p).await?;
    let mut form = form.clone();
    layout.fold_choices(&mut form);
    form_input::<OpportunityInput>(&layout, p, &form)
}

async fn edit(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    let (d, layout) = match (
        opportunities::get(&s.db, &p.ctx, id).await,
        layout_of::<Opportunity>(&s, &p).await,
    ) {
        (Ok(d), Ok(l)) => (d, l),
        (Err(e), _) | (_, Err(e)) => return p.error(&s, e),
    };
    let title = format!("{} · {}", t(&p, "common.edit"), d.name);
    let values = layout.form_values(&d, p.time_zone);
    form_view(
        &s,
        &p,
        StatusCode::OK,
        format!("/opportunities/{id}/edit"),
        title,
        values,
        vec![],
    )
    .await
}

async fn update(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let result = match input_of(&s, &p, &form).await {
        Ok(input) => opportunities::update(&s.db, &p.ctx, id, None, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => Redirect::to(&format!("/opportunities/{}", d.id)).into_response(),
        Err(e) => {
            let title = form.get("name").cloned().unwrap_or_default();
            refused(&s, &p, e, format!("/opportunities/{id}/edit"), title, &form).await
        }
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    error: Option<String>,
    #[serde(flatten)]
    timeline: crate::customers::pages::TimelineQuery,
}

async fn show(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Response {
    show_page(&s, &p, id, q, StatusCode::OK, vec![], None).await
}

async fn show_page(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    q: ShowQuery,
    status: StatusCode,
    errors: Vec<FieldError>,
    asked: Option<Uuid>,
) -> Response {
    let d = match opportunities::get(&s.db, &p.ctx, id).await {
        Ok(d) => d,
        Err(e) => return p.error(s, e),
    };
    let live = d.deleted_at.is_none();
    let timeline = crate::customers::pages::timeline_panel(
        s,
        p,
        Subject::Record(opportunities::ENTITY, id),
        &q.timeline,
        live,
    )
    .await;
    let (timeline, history, pipeline, layout) = match (
        timeline,
        opportunities::history_of(&s.db, &p.ctx, id).await,
        pipelines::load(&s.db, p.ctx.tenant_id, d.pipeline_id).await,
        layout_of::<Opportunity>(s, p).await,
    ) {
        (Ok(t), Ok(h), Ok(pl), Ok(l)) => (t, h, pl, l),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return p.error(s, e),
    };
    let shown = layout.shown(s, p, &d.custom.0).await;
    // A visit is noted for the home page; failing to note it never fails the page.
    if let Err(e) =
        guanxi_platform::recent::viewed(&s.db, &p.ctx, "opportunities", id, &d.name).await
    {
        tracing::warn!(error = %e, "noting a recent view");
    }
    // What the caller may do: their scope over the deal, or the deal shared with them.
    let share = shares::mine(&s.db, &p.ctx, opportunities::ENTITY, id)
        .await
        .ok()
        .flatten();
    let can = |a: Action| {
        p.ctx.can("opportunities", a).is_some_and(|scope| {
            p.ctx.covers(scope, Some(d.owner_id), d.team_id) || shares::grants(share, a)
        })
    };
    let can_share = shares::manages(&p.ctx, &d) && live;
    // Collaborators: a failure to read them leaves the card out, never the page.
    let collaborators = shares::list(&s.db, p.ctx.tenant_id, opportunities::ENTITY, id)
        .await
        .ok();
    let colleagues = if can_share {
        let f = guanxi_platform::users::UserFilter {
            active: Some(true),
            limit: Some(200),
            ..Default::default()
        };
        guanxi_platform::users::list(&s.db, &p.ctx, &f)
            .await
            .map(|page| page.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|u| {
                u.id != d.owner_id && !collaborators.iter().flatten().any(|c| c.user_id == u.id)
            })
            .map(|u| context! { id => u.id, name => u.name })
            .collect()
    } else {
        vec![]
    };
    let in_stage_days = (chrono::Utc::now() - d.stage_since).num_days();
    // The deal's quote: a failure to read it leaves the card out, never the page.
    let quote = guanxi_sales::quotes::of_opportunity(&s.db, &p.ctx, id)
        .await
        .ok()
        .flatten();
    // Who is on the deal: a failure to read it leaves the cards out, never the page.
    let parties = guanxi_sales::parties::of(&s.db, &p.ctx, &d).await.ok();
    let candidates = guanxi_sales::parties::candidates(&s.db, &p.ctx, &d)
        .await
        .unwrap_or_default();
    let can_quote = p
        .ctx
        .can("quotes", Action::Create)
        .is_some_and(|scope| p.ctx.covers(scope, Some(d.owner_id), d.team_id))
        && live;
    let pressing = crate::service::pages::pressing(s, p, Some(d.account_id)).await;
    p.page_status(
        s,
        status,
        "sales/opportunity.html",
        "opportunities",
        context! {
            d => d, pipeline => pipeline, history => history, timeline => timeline,
            sections => layout.sections, shown => shown, errors => errors,
            in_stage_days => in_stage_days, asked => asked.unwrap_or(d.stage_id),
            subject => context! { post => format!("/opportunities/{id}/activities") },
            error => p.refusal_from_url(q.error.as_deref()),
            can_edit => can(Action::Update) && live, can_delete => can(Action::Delete),
            quote => quote, can_quote => can_quote, parties => parties, candidates => candidates,
            roles => guanxi_sales::parties::ROLES,
            collaborators => collaborators, colleagues => colleagues, can_share => can_share,
            share => share, pressing => pressing,
        },
    )
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    version: i64,
    stage_id: Uuid,
    amount: Option<String>,
    expected_close: Option<String>,
    close_reason: Option<String>,
    /// Where to go after the move: the board (`board`) or the deal's page.
    back: Option<String>,
}

/// `POST /opportunities/{id}/move`: to another stage, with what the stage requires. A refused
/// move shows the deal's page with each missing field named; a card moved meanwhile by someone
/// else is refused (the board reloads with the card where it now is).
async fn move_deal(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<MoveForm>,
) -> Response {
    if !p.csrf_ok(&form.csrf) {
        return forbidden_csrf();
    }
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| Some(v.to_owned()))
    };
    let amount = match form
        .amount
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(raw) => match crate::money::parse(raw) {
            Some(m) => Some(m),
            None => {
                let q = ShowQuery {
                    error: None,
                    timeline: Default::default(),
                };
                return show_page(
                    &s,
                    &p,
                    id,
                    q,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    vec![FieldError::new("amount", "invalid")],
                    Some(form.stage_id),
                )
                .await;
            }
        },
        None => None,
    };
    let input = OpportunityInput {
        version: Some(form.version),
        stage_id: Some(form.stage_id),
        amount,
        expected_close: text(&form.expected_close),
        close_reason: text(&form.close_reason),
        ..Default::default()
    };
    let to_board = form.back.as_deref() == Some("board");
    match opportunities::update(&s.db, &p.ctx, id, None, input).await {
        Ok(d) if to_board => {
            Redirect::to(&format!("/opportunities/board?pipeline={}", d.pipeline_id))
                .into_response()
        }
        Ok(d) => Redirect::to(&format!("/opportunities/{}", d.id)).into_response(),
        // Someone moved or changed the card meanwhile: the board (or the deal) as it is now,
        // saying so.
        Err(Error::PreconditionFailed { .. }) => {
            let q = serde_urlencoded::to_string([("error", "version:changed")]).unwrap_or_default();
            match (to_board, opportunities::get(&s.db, &p.ctx, id).await) {
                (true, Ok(d)) => Redirect::to(&format!(
                    "/opportunities/board?pipeline={}&{q}",
                    d.pipeline_id
                ))
                .into_response(),
                _ => Redirect::to(&format!("/opportunities/{id}?{q}")).into_response(),
            }
        }
        Err(e @ Error::Validation(_)) => match p.field_errors(e) {
            Ok(errors) => {
                let q = ShowQuery {
                    error: None,
                    timeline: Default::default(),
                };
                let asked = Some(form.stage_id);
                show_page(
                    &s,
                    &p,
                    id,
                    q,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                    asked,
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
        Err(e) => p.error(&s, e),
    }
}

async fn delete(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    trash(&s, &p, id, &form, true).await
}

async fn restore(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    trash(&s, &p, id, &form, false).await
}

async fn trash(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    form: &BTreeMap<String, String>,
    deleted: bool,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    match opportunities::set_deleted(&s.db, &p.ctx, id, deleted).await {
        Ok(_) => Redirect::to(&format!("/opportunities/{id}")).into_response(),
        Err(e) => p.error(s, e),
    }
}

#[derive(Deserialize)]
struct BoardQuery {
    pipeline: Option<Uuid>,
    error: Option<String>,
    stage_id: Option<Uuid>,
    cursor: Option<String>,
    owner_id: Option<Uuid>,
    team_id: Option<Uuid>,
    tag: Option<String>,
    q: Option<String>,
    /// A saved view of the deal list: its owner, team, tag and search filters apply.
    view: Option<Uuid>,
}

/// `GET /opportunities/board`: a pipeline's columns (the default pipeline unless chosen), each
/// with its count, amount and weighted amount and its first cards; "more" pages one column.
async fn board(State(s): State<AppState>, p: Signed, Query(q): Query<BoardQuery>) -> Response {
    let all = match pipelines::list(&s.db, &p.ctx).await {
        Ok(all) => all,
        Err(e) => return p.error(&s, e),
    };
    let chosen = q
        .pipeline
        .or_else(|| all.iter().find(|x| x.is_default).map(|x| x.id));
    let Some(chosen) = chosen else {
        return p.page(
            &s,
            "sales/board.html",
            "opportunities",
            context! { pipelines => all, board => Value::from(()) },
        );
    };
    // The deal list's saved views work on the board too: what the board can filter by
    // (owner, team, tag, search) is taken from the view; what the URL says wins.
    let views = guanxi_platform::views::list(
        &s.db,
        &p.ctx,
        &guanxi_platform::views::SavedViewFilter {
            entity: Some("opportunities".into()),
        },
    )
    .await
    .unwrap_or_default();
    let saved: std::collections::BTreeMap<String, String> = q
        .view
        .and_then(|v| views.iter().find(|x| x.id == v))
        .map(|v| serde_urlencoded::from_str(&v.query).unwrap_or_default())
        .unwrap_or_default();
    let from_view = |k: &str| saved.get(k).filter(|v| !v.is_empty()).cloned();
    let f = BoardFilter {
        stage_id: q.stage_id,
        cursor: q.cursor.clone(),
        owner_id: q
            .owner_id
            .or_else(|| from_view("owner_id").and_then(|v| v.parse().ok())),
        team_id: q
            .team_id
            .or_else(|| from_view("team_id").and_then(|v| v.parse().ok())),
        tag: q.tag.clone().or_else(|| from_view("tag")),
        q: q.q.clone().or_else(|| from_view("q")),
        ..Default::default()
    };
    match opportunities::board(&s.db, &p.ctx, chosen, &f).await {
        Ok(b) => {
            let can_move = p.ctx.can("opportunities", Action::Update).is_some();
            p.page(
                &s,
                "sales/board.html",
                "opportunities",
                context! { pipelines => all, board => b, chosen => chosen, one => q.stage_id.is_some(),
                q => f.q, tag => f.tag, mine => f.owner_id.is_some() && f.owner_id == p.ctx.user_id,
                views => views, view => q.view,
                can_move => can_move, error => p.refusal_from_url(q.error.as_deref()) },
            )
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /opportunities/{id}/activities`: a call, visit, note or task about the deal.
async fn log_activity(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<crate::customers::pages::LogForm>,
) -> Response {
    use crate::customers::pages::{log_input, logged};
    if !p.csrf_ok(&f._csrf) {
        return forbidden_csrf();
    }
    let result = match log_input(&p, &f) {
        Ok(input) => opportunities::log_activity(&s.db, &p.ctx, id, input).await,
        Err(e) => Err(e),
    };
    logged(&s, &p, result, &format!("/opportunities/{id}"))
}

/// `POST /opportunities/{id}/collaborators`: the deal's collaborators (`s<i>.user_id`,
/// `s<i>.access`, `s<i>.remove`; a blank user adds no one), at the deal's version.
async fn save_collaborators(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    use shares::{Access, ShareInput, SharesInput};
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let back = format!("/opportunities/{id}");
    let mut input = SharesInput {
        version: form.get("version").and_then(|v| v.parse().ok()),
        shares: vec![],
    };
    for i in (0..).take_while(|i| form.contains_key(&format!("s{i}.user_id"))) {
        let raw = form
            .get(&format!("s{i}.user_id"))
            .map(|v| v.trim())
            .unwrap_or_default();
        if raw.is_empty() || form.contains_key(&format!("s{i}.remove")) {
            continue;
        }
        let access = match form.get(&format!("s{i}.access")).map(String::as_str) {
            Some("edit") => Access::Edit,
            _ => Access::Read,
        };
        match raw.parse::<Uuid>() {
            Ok(user_id) => input.shares.push(ShareInput { user_id, access }),
            Err(_) => {
                let e = Error::field(&format!("shares[{i}].user_id"), "invalid");
                return p.refused_to(&back, e, Some("collab."));
            }
        }
    }
    let saved = shares::set(&s.db, &p.ctx, id, None, input, |d: &Opportunity| {
        d.name.clone()
    })
    .await;
    match saved {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e @ (Error::Validation(_) | Error::PreconditionFailed { .. })) => {
            p.refused_to(&back, e, Some("collab."))
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /opportunities/{id}/parties`: the contacts with their roles (`what=contacts`:
/// `c<i>.contact_id`, `c<i>.role`, `c<i>.remove`) or the competitors (`what=competitors`:
/// `k<i>.name`, `k<i>.note`; a cleared name drops the row), at the deal's version.
async fn save_parties(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<std::collections::BTreeMap<String, String>>,
) -> Response {
    use guanxi_sales::parties::{CompetitorInput, ContactRole, PartiesInput};
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let field = |k: String| {
        form.get(&k)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let rows = |prefix: char| {
        (0..)
            .take_while(|i| {
                form.contains_key(&format!("{prefix}{i}.contact_id"))
                    || form.contains_key(&format!("{prefix}{i}.name"))
            })
            .collect::<Vec<usize>>()
    };
    let mut input = PartiesInput {
        version: form.get("version").and_then(|v| v.parse().ok()),
        ..Default::default()
    };
    if form.get("what").map(String::as_str) == Some("competitors") {
        input.competitors = Some(
            rows('k')
                .into_iter()
                .filter(|i| !field(format!("k{i}.name")).is_empty())
                .map(|i| CompetitorInput {
                    name: field(format!("k{i}.name")),
                    note: Some(field(format!("k{i}.note"))),
                })
                .collect(),
        );
    } else {
        let mut contacts = Vec::new();
        for i in rows('c') {
            let raw = field(format!("c{i}.contact_id"));
            if raw.is_empty() || form.contains_key(&format!("c{i}.remove")) {
                continue;
            }
            match raw.parse::<Uuid>() {
                Ok(contact_id) => contacts.push(ContactRole {
                    contact_id,
                    role: field(format!("c{i}.role")),
                }),
                Err(_) => {
                    let e = guanxi_platform::Error::field(
                        &format!("contacts[{i}].contact_id"),
                        "invalid",
                    );
                    return p.refused_to(&format!("/opportunities/{id}"), e, Some("parties."));
                }
            }
        }
        input.contacts = Some(contacts);
    }
    match guanxi_sales::parties::set(&s.db, &p.ctx, id, None, input).await {
        Ok(_) => Redirect::to(&format!("/opportunities/{id}")).into_response(),
        Err(
            e @ (guanxi_platform::Error::Validation(_)
            | guanxi_platform::Error::PreconditionFailed { .. }),
        ) => p.refused_to(&format!("/opportunities/{id}"), e, Some("parties.")),
        Err(e) => p.error(&s, e),
    }
}
