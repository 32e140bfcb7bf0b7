//! Lead pages: the list (the shared list page), a lead's page with its timeline and conversion,
//! the form. A lead entered by hand goes through the same intake as the API: a person already
//! known is not entered twice — the page says so and opens the record they are.

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
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::{Ctx, Error};
use guanxi_records::custom_fields::CustomFilter;
use guanxi_sales::convert::{self, ConvertInput};
use guanxi_sales::intake::{self, Arrival, Outcome};
use guanxi_sales::leads::{self, Lead, LeadFilter, LeadInput, SOURCES, STATUSES};
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::records::layout::{f, form_input, req, Layout, Section};
use crate::records::lists::{self, layout_of, Columns, ListSpec, Listed};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/leads", get(lists::page::<Lead>).post(create))
        .route("/leads/new", get(new))
        .route("/leads/bulk", post(lists::bulk_action::<Lead>))
        .route("/leads/{id}", get(show))
        .route("/leads/{id}/edit", get(edit).post(update))
        .route("/leads/{id}/cell", post(lists::edit_cell::<Lead>))
        .route("/leads/{id}/delete", post(delete))
        .route("/leads/{id}/restore", post(restore))
        .route("/leads/{id}/convert", post(convert))
        .route("/leads/{id}/activities", post(log_activity))
        .route("/leads/import", get(import_page).post(import))
        .route("/leads/{id}/release", post(release))
        .route("/pools/{id}", get(pool_page))
        .route("/customers/accounts/{id}/release", post(release_account))
        .route("/pools/{id}/claim", post(claim))
        .route("/pools/{id}/assign", post(assign))
}

/// A lead's profile groups.
pub const LEAD_SECTIONS: &[Section] = &[
    Section {
        key: "basic",
        fields: &[
            req("name", "text"),
            f("company", "text"),
            f("title", "text"),
            f("industry", "text"),
            f("product_interest", "text"),
        ],
    },
    Section {
        key: "contact",
        fields: &[f("phone", "tel"), f("email", "email"), f("wechat", "text")],
    },
    Section {
        key: "address",
        fields: &[
            f("country", "country"),
            f("province", "text"),
            f("city", "text"),
        ],
    },
    Section {
        key: "sales",
        fields: &[
            f("status", "status"),
            f("disqualify_reason", "text"),
            f("source_detail", "text"),
        ],
    },
    Section {
        key: "management",
        fields: &[f("owner_id", "owner"), f("tags", "tags")],
    },
    Section {
        key: "evaluation",
        fields: &[f("notes", "textarea")],
    },
];

pub static LEADS: ListSpec = ListSpec {
    kind: "lead",
    base: "/leads",
    nav: "leads",
    tabs: None,
    columns: Columns {
        all: &[
            "company",
            "status",
            "score",
            "source",
            "phone",
            "email",
            "title",
            "industry",
            "product_interest",
            "province",
            "city",
            "owner_id",
            "tags",
            "last_touch_at",
            "updated_at",
            "created_at",
        ],
        default: &[
            "company",
            "status",
            "score",
            "phone",
            "owner_id",
            "last_touch_at",
        ],
    },
    editable: &[
        "company",
        "title",
        "phone",
        "email",
        "wechat",
        "province",
        "city",
        "industry",
        "product_interest",
    ],
    auto_sort: "sort.auto_newest",
    sorts: &["-score", "-last_touch_at", "name", "-updated_at"],
    filters: &["province", "city", "industry"],
    choices: &[("status", STATUSES), ("source", SOURCES)],
    exports: true,
    codes: "",
    sections: LEAD_SECTIONS,
};

impl Listed for Lead {
    type Filter = LeadFilter;
    type Input = LeadInput;
    const SPEC: &'static ListSpec = &LEADS;
    fn id(&self) -> Uuid {
        self.id
    }
    async fn list(db: &Db, ctx: &Ctx, f: &LeadFilter) -> Result<Page<Lead>, Error> {
        leads::list(db, ctx, f).await
    }
    async fn update(db: &Db, ctx: &Ctx, id: Uuid, input: LeadInput) -> Result<(), Error> {
        leads::update(db, ctx, id, None, input).await.map(|_| ())
    }
    fn filter_values(f: &LeadFilter) -> Value {
        let custom: BTreeMap<String, String> = f
            .custom
            .iter()
            .map(|c: &CustomFilter| (c.param.clone(), c.value.clone()))
            .collect();
        context! { q => f.q, province => f.province, city => f.city, industry => f.industry,
        status => f.status, source => f.source, sort => f.sort, deleted => f.deleted.unwrap_or(false),
        tag => f.tag, custom => custom, sla => f.sla, grade => f.grade }
    }
    /// The response-time views, the pools and the import, as shortcuts above the list.
    async fn extras(db: &Db, ctx: &Ctx) -> Result<Value, Error> {
        let t = |k: &str| crate::i18n::t(&ctx.locale, k);
        let mut chips = vec![
            context! { href => "/leads?sla=breached", label => t("lead.breached_list") },
            context! { href => "/leads?sla=waiting", label => t("lead.waiting_list") },
        ];
        chips.extend(pool_chips(db, ctx, "leads").await?);
        if ctx.can("leads", Action::Create).is_some() {
            chips.push(
                context! { href => "/leads/import", label => t("lead_import.title"), id => "import-leads" },
            );
        }
        Ok(context! { chips => chips })
    }
}

/// The active pools of `table` (`leads`, `accounts`) as a list's shortcuts.
pub(crate) async fn pool_chips(db: &Db, ctx: &Ctx, table: &str) -> Result<Vec<Value>, Error> {
    let label = crate::i18n::t(&ctx.locale, "lead.pool");
    Ok(guanxi_sales::pools::list(db, ctx)
        .await?
        .iter()
        .filter(|p| p.active && p.table() == table)
        .map(|p| context! { href => format!("/pools/{}", p.id), label => format!("{label}: {}", p.name) })
        .collect())
}

fn t(p: &Signed, key: &str) -> String {
    crate::i18n::t(&p.ctx.locale, key)
}

/// Users to own a lead; the statuses a form may set.
async fn options(s: &AppState, p: &Signed) -> Result<Value, Error> {
    let people = users::list(
        &s.db,
        &p.ctx,
        &UserFilter {
            active: Some(true),
            limit: Some(200),
            ..Default::default()
        },
    )
    .await?;
    let users: Vec<Value> = people
        .items
        .iter()
        .map(|u| context! { id => u.id, name => u.name })
        .collect();
    let statuses: Vec<&str> = STATUSES
        .iter()
        .copied()
        .filter(|s| *s != "converted")
        .collect();
    Ok(context! { users => users, statuses => statuses })
}

#[allow(clippy::too_many_arguments)]
async fn form_view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    action: String,
    title: String,
    values: Value,
    errors: Vec<FieldError>,
    error: Option<String>,
) -> Response {
    let (opts, layout) = match (options(s, p).await, layout_of::<Lead>(s, p).await) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(e), _) | (_, Err(e)) => return p.error(s, e),
    };
    p.page_status(
        s,
        status,
        "records/form.html",
        "leads",
        context! { sections => layout.sections, values => values, errors => errors, error => error,
        action => action, title => title, opts => opts, kind => "lead", dupes => Vec::<Value>::new() },
    )
}

async fn new(State(s): State<AppState>, p: Signed) -> Response {
    let values = context! { country => "CN", owner_id => p.ctx.user_id, status => "new" };
    form_view(
        &s,
        &p,
        StatusCode::OK,
        "/leads".into(),
        t(&p, "customers.new_lead"),
        values,
        vec![],
        None,
    )
    .await
}

/// What a refused save shows: the form again with the errors, or an error page.
async fn refused(
    s: &AppState,
    p: &Signed,
    e: Error,
    action: String,
    title: String,
    form: &BTreeMap<String, String>,
) -> Response {
    let (status, errors, error) = match e {
        Error::PreconditionFailed { .. } => (
            StatusCode::PRECONDITION_FAILED,
            vec![],
            Some(crate::problem::problem(e, &p.ctx.locale).title),
        ),
        e => match p.field_errors(e) {
            Ok(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None),
            Err(e) => return p.error(s, e),
        },
    };
    form_view(
        s,
        p,
        status,
        action,
        title,
        Value::from_serialize(form),
        errors,
        error,
    )
    .await
}

async fn posted(
    s: &AppState,
    p: &Signed,
    mut form: BTreeMap<String, String>,
) -> Result<(Layout, BTreeMap<String, String>), Response> {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return Err(forbidden_csrf());
    }
    match layout_of::<Lead>(s, p).await {
        Ok(layout) => {
            layout.fold_choices(&mut form);
            Ok((layout, form))
        }
        Err(e) => Err(p.error(s, e)),
    }
}

/// `POST /leads`: a lead entered by hand, through the intake — a known person opens as the
/// record they are, with a notice.
async fn create(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let (layout, form) = match posted(&s, &p, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let title = t(&p, "customers.new_lead");
    let result = match form_input::<LeadInput>(&layout, &p, &form) {
        Ok(mut input) => {
            let arrival = Arrival {
                source: "manual".into(),
                detail: input.source_detail.take().flatten(),
                extra: serde_json::Value::Null,
                fallback_owner: None,
            };
            intake::intake(&s.db, &p.ctx, input, arrival).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(r) if r.outcome == Outcome::Created => {
            Redirect::to(&format!("/leads/{}", r.id)).into_response()
        }
        Ok(r) => {
            let base = crate::LISTS
                .iter()
                .find(|(m, _)| *m == r.entity)
                .map(|(_, b)| *b)
                .unwrap_or("/leads");
            Redirect::to(&format!("{base}/{}?notice=known_person", r.id)).into_response()
        }
        Err(e) => refused(&s, &p, e, "/leads".into(), title, &form).await,
    }
}

async fn edit(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    let (l, layout) = match (
        leads::get(&s.db, &p.ctx, id).await,
        layout_of::<Lead>(&s, &p).await,
    ) {
        (Ok(l), Ok(layout)) => (l, layout),
        (Err(e), _) | (_, Err(e)) => return p.error(&s, e),
    };
    let title = format!("{} · {}", t(&p, "common.edit"), l.name);
    form_view(
        &s,
        &p,
        StatusCode::OK,
        format!("/leads/{id}/edit"),
        title,
        layout.form_values(&l, p.time_zone),
        vec![],
        None,
    )
    .await
}

async fn update(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let (layout, form) = match posted(&s, &p, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match form_input::<LeadInput>(&layout, &p, &form) {
        Ok(input) => leads::update(&s.db, &p.ctx, id, None, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(l) => Redirect::to(&format!("/leads/{}", l.id)).into_response(),
        Err(e) => {
            let title = form.get("name").cloned().unwrap_or_default();
            refused(&s, &p, e, format!("/leads/{id}/edit"), title, &form).await
        }
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    notice: Option<String>,
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
    let l = match leads::get(&s.db, &p.ctx, id).await {
        Ok(l) => l,
        Err(e) => return p.error(&s, e),
    };
    let live = l.deleted_at.is_none();
    let timeline = crate::customers::pages::timeline_panel(
        &s,
        &p,
        Subject::Record(leads::ENTITY, id),
        &q.timeline,
        live,
    )
    .await;
    let (layout, timeline) = match (layout_of::<Lead>(&s, &p).await, timeline) {
        (Ok(layout), Ok(t)) => (layout, t),
        (Err(e), _) | (_, Err(e)) => return p.error(&s, e),
    };
    if let Err(e) = guanxi_platform::recent::viewed(&s.db, &p.ctx, "leads", id, &l.name).await {
        tracing::warn!(error = %e, "noting a recent view");
    }
    let shown = layout.shown(&s, &p, &l.custom.0).await;
    let can = |a: Action| {
        p.ctx
            .can("leads", a)
            .is_some_and(|scope| p.ctx.covers(scope, l.owner_id, l.team_id))
    };
    let notice = q
        .notice
        .as_deref()
        .filter(|n| ["known_person", "converted"].contains(n))
        .map(|n| t(&p, &format!("lead.notice.{n}")));
    // The pool it waits in, or would go back to, and when.
    let pool = match l.pool_id {
        Some(id) => guanxi_sales::pools::get(&s.db, &p.ctx, id).await.map(Some),
        None => guanxi_sales::pools::pool_for(&s.db, p.ctx.tenant_id, "leads", l.team_id).await,
    };
    let pool = match pool {
        Ok(p) => p,
        Err(e) => return p.error(&s, e),
    };
    let returns_at = pool
        .as_ref()
        .and_then(|pool| guanxi_sales::pools::returns_at(pool, &l));
    let returns_in_days = returns_at.map(days_until);
    let waiting_in = l.pool_id.and(pool.as_ref()).map(|p| p.name.clone());
    p.page(
        &s,
        "sales/lead.html",
        "leads",
        context! {
            l => l, sections => layout.sections, shown => shown, timeline => timeline,
            subject => context! { post => format!("/leads/{id}/activities") },
            pool => pool, returns_in_days => returns_in_days, waiting_in => waiting_in,
            notice => notice, error => p.refusal_from_url(q.error.as_deref()),
            can_edit => can(Action::Update), can_delete => can(Action::Delete),
            can_convert => can(Action::Update) && p.ctx.can("contacts", Action::Create).is_some(),
            can_deal => p.ctx.can("opportunities", Action::Create).is_some(),
        },
    )
}

/// The lead import page: a file of people (a trade show's cards), a campaign, a dry run.
async fn import_page(State(s): State<AppState>, p: Signed) -> Response {
    if p.ctx.can("leads", Action::Create).is_none() {
        return p.error(&s, Error::Forbidden);
    }
    p.page(
        &s,
        "sales/import.html",
        "leads",
        context! { dry_run => true },
    )
}

/// Runs the lead import on the uploaded file and shows its report (a dry run writes nothing;
/// the file is chosen again for the real import).
async fn import(State(s): State<AppState>, p: Signed, form: axum::extract::Multipart) -> Response {
    let upload = match crate::extract::Upload::read(form).await {
        Ok(u) => u,
        Err((status, code)) => {
            let errors =
                crate::problem::localize(vec![FieldError::new("file", code)], &p.ctx.locale);
            return p.page_status(
                &s,
                status,
                "sales/import.html",
                "leads",
                context! { errors => errors, dry_run => true },
            );
        }
    };
    if !p.csrf_ok(&upload.field("_csrf").map(str::to_owned)) {
        return forbidden_csrf();
    }
    let campaign = upload.field("campaign").unwrap_or_default().to_owned();
    let dry_run = upload.field("dry_run").is_some();
    let result = match &upload.file {
        None => Err(Error::field("file", "required")),
        Some((name, bytes)) => {
            let format = guanxi_records::tables::Format::of_name(name);
            match guanxi_records::tables::open(format, std::io::Cursor::new(bytes.clone())) {
                Ok(table) => {
                    let opts = guanxi_sales::import::LeadImportOptions {
                        format: None,
                        campaign: Some(campaign.clone()),
                        dry_run: Some(dry_run),
                    };
                    guanxi_sales::import::run(&s.db, &p.ctx, table, &opts).await
                }
                Err(e) => Err(e),
            }
        }
    };
    let file_name = upload.file.as_ref().map(|(n, _)| n.clone());
    match result {
        Ok(report) => {
            s.jobs_wake.notify_one();
            p.page(&s, "sales/import.html", "leads", context! {
                report => report, dry_run => dry_run, campaign => campaign, file_name => file_name })
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => p.page_status(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "sales/import.html",
                "leads",
                context! { errors => errors, dry_run => dry_run, campaign => campaign },
            ),
            Err(e) => p.error(&s, e),
        },
    }
}

/// The timeline's log form on a lead's page.
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
        Ok(input) => leads::log_activity(&s.db, &p.ctx, id, input).await,
        Err(e) => Err(e),
    };
    logged(&s, &p, result, &format!("/leads/{id}"))
}

fn checked(p: &Signed, form: &BTreeMap<String, String>) -> bool {
    p.csrf_ok(&form.get("_csrf").cloned())
}

async fn delete(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !checked(&p, &form) {
        return forbidden_csrf();
    }
    match leads::set_deleted(&s.db, &p.ctx, id, true).await {
        Ok(_) => Redirect::to("/leads").into_response(),
        Err(e) => p.error(&s, e),
    }
}

async fn restore(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !checked(&p, &form) {
        return forbidden_csrf();
    }
    match leads::set_deleted(&s.db, &p.ctx, id, false).await {
        Ok(_) => Redirect::to(&format!("/leads/{id}")).into_response(),
        Err(e) => p.error(&s, e),
    }
}

/// `POST /leads/{id}/convert`: into an account and contact; back on the lead's page, which
/// links them.
async fn convert(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !checked(&p, &form) {
        return forbidden_csrf();
    }
    // With "open a deal", the first deal too (its amount typed in yuan, optional).
    let opportunity =
        form.contains_key("with_deal")
            .then(|| guanxi_sales::opportunities::OpportunityInput {
                amount: form
                    .get("deal_amount")
                    .and_then(|a| crate::money::parse(a.trim())),
                ..Default::default()
            });
    let input = ConvertInput {
        version: form.get("version").and_then(|v| v.parse().ok()),
        create_account: Some(!form.contains_key("no_account")),
        opportunity,
        ..Default::default()
    };
    match convert::convert(&s.db, &p.ctx, id, input).await {
        Ok(c) => match c.opportunity_id {
            Some(deal) => Redirect::to(&format!("/opportunities/{deal}")).into_response(),
            None => Redirect::to(&format!("/leads/{id}?notice=converted")).into_response(),
        },
        Err(e @ (Error::Validation(_) | Error::PreconditionFailed { .. } | Error::Conflict(_))) => {
            let msg = p.refusal_keys(e, None);
            let q = serde_urlencoded::to_string([("error", msg)]).unwrap_or_default();
            Redirect::to(&format!("/leads/{id}?{q}")).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /leads/{id}/release`: back to the pool, with the reason typed.
async fn release(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    release_from_page(&s, &p, id, &form, &format!("/leads/{id}")).await
}

/// A record given back from its page (`back`, where a refusal is shown): into the pool named
/// by the form, with the reason typed; then to the pool, where the record now is (a rep
/// holding only their own may no longer open it).
async fn release_from_page(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    form: &BTreeMap<String, String>,
    back: &str,
) -> Response {
    if !checked(p, form) {
        return forbidden_csrf();
    }
    let Some(pool) = form.get("pool_id").and_then(|v| Uuid::parse_str(v).ok()) else {
        return p.error(s, Error::field("pool_id", "required"));
    };
    let action = guanxi_sales::pools::PoolAction {
        version: None,
        ids: vec![id],
        reason: form.get("reason").cloned(),
        owner_id: None,
    };
    match guanxi_sales::pools::release(&s.db, &p.ctx, pool, action).await {
        Ok(r) if r.done.is_empty() => {
            let q = serde_urlencoded::to_string([("error", "id:taken")]).unwrap_or_default();
            Redirect::to(&format!("{back}?{q}")).into_response()
        }
        Ok(_) => Redirect::to(&format!("/pools/{pool}?released=1")).into_response(),
        Err(e @ Error::Validation(_)) => {
            let msg = p.refusal_keys(e, None);
            let q = serde_urlencoded::to_string([("error", msg)]).unwrap_or_default();
            Redirect::to(&format!("{back}?{q}")).into_response()
        }
        Err(e) => p.error(s, e),
    }
}

/// Whole days until `at`, a part day counted as one (30 days less a second is "in 30 days").
fn days_until(at: chrono::DateTime<chrono::Utc>) -> i64 {
    let secs = (at - chrono::Utc::now()).num_seconds().max(0);
    (secs + 86_399) / 86_400
}

/// Where an account stands with the pools: the pool it waits in (or would go back to), and
/// in how many days it goes back.
pub(crate) struct PoolPlace {
    pub pool: Option<guanxi_sales::pools::Pool>,
    pub waiting_in: Option<String>,
    pub returns_in_days: Option<i64>,
}

pub(crate) async fn account_pool_place(
    s: &AppState,
    p: &Signed,
    a: &guanxi_customers::accounts::Account,
) -> Result<PoolPlace, Error> {
    use guanxi_sales::pools;
    let pool = match a.pool_id {
        Some(id) => Some(pools::get(&s.db, &p.ctx, id).await?),
        None => pools::pool_for(&s.db, p.ctx.tenant_id, "accounts", a.team_id).await?,
    };
    let returns_at = match &pool {
        Some(pool) if a.owner_id.is_some() && pool.unconverted_days.is_some() => {
            let ordered = pools::ordered_since_held(&s.db, p.ctx.tenant_id, a).await?;
            pools::account_returns_at(pool, a, ordered)
        }
        Some(pool) => pools::account_returns_at(pool, a, true),
        None => None,
    };
    Ok(PoolPlace {
        waiting_in: a.pool_id.and(pool.as_ref()).map(|p| p.name.clone()),
        returns_in_days: returns_at.map(days_until),
        pool,
    })
}

/// `POST /customers/accounts/{id}/release`: back to the customer pool, with the reason typed.
async fn release_account(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    release_from_page(&s, &p, id, &form, &format!("/customers/accounts/{id}")).await
}

#[derive(Deserialize)]
struct PoolQuery {
    after: Option<Uuid>,
    /// Arrived from giving a record back.
    released: Option<u8>,
    done: Option<usize>,
    failed: Option<String>,
}

/// `GET /pools/{id}`: the leads or accounts waiting in a pool, to claim (ticked ones at once).
async fn pool_page(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<PoolQuery>,
) -> Response {
    let pool = match guanxi_sales::pools::get(&s.db, &p.ctx, id).await {
        Ok(pool) => pool,
        Err(e) => return p.error(&s, e),
    };
    let waiting = if pool.holds_accounts() {
        guanxi_sales::pools::accounts_in(&s.db, &p.ctx, id, q.after)
            .await
            .map(|a| (a.last().map(|x| x.id), a.len(), Value::from_serialize(&a)))
    } else {
        guanxi_sales::pools::leads_in(&s.db, &p.ctx, id, q.after)
            .await
            .map(|l| (l.last().map(|x| x.id), l.len(), Value::from_serialize(&l)))
    };
    let (last, count, records) = match waiting {
        Ok(w) => w,
        Err(e) => return p.error(&s, e),
    };
    let next = if count == 200 { last } else { None };
    let failed: Vec<String> = q
        .failed
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| t(&p, &format!("pool.refused.{r}")))
        .collect();
    // Managers (team or company scope) give records out from the pool.
    let can_assign = p
        .ctx
        .can(pool.table(), guanxi_platform::perms::Action::Update)
        .is_some_and(|scope| scope != guanxi_platform::perms::Scope::Own);
    let people = if can_assign {
        match options(&s, &p).await {
            Ok(o) => o,
            Err(e) => return p.error(&s, e),
        }
    } else {
        Value::from(())
    };
    let nav = if pool.holds_accounts() {
        "customers"
    } else {
        "leads"
    };
    p.page(
        &s,
        "sales/pool.html",
        nav,
        context! { pool => pool, records => records, next => next, done => q.done, failed => failed,
        released => q.released.is_some(),
        can_assign => can_assign, opts => people },
    )
}

/// `POST /pools/{id}/claim`: the ticked records, each claimed or refused with its limit.
async fn claim(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    body: String,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.clone());
    if !p.csrf_ok(&csrf) {
        return forbidden_csrf();
    }
    let ids: Vec<Uuid> = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .collect();
    let action = guanxi_sales::pools::PoolAction {
        version: None,
        ids,
        reason: None,
        owner_id: None,
    };
    match guanxi_sales::pools::claim(&s.db, &p.ctx, id, action).await {
        Ok(r) => {
            let mut reasons: Vec<String> = r.failed.iter().map(|f| f.reason.clone()).collect();
            reasons.sort();
            reasons.dedup();
            let q = serde_urlencoded::to_string([
                ("done", r.done.len().to_string()),
                ("failed", reasons.join(",")),
            ])
            .unwrap_or_default();
            Redirect::to(&format!("/pools/{id}?{q}")).into_response()
        }
        Err(e @ Error::Validation(_)) => {
            let q = serde_urlencoded::to_string([("failed", "none_ticked")]).unwrap_or_default();
            let _ = e;
            Redirect::to(&format!("/pools/{id}?{q}")).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}

/// `POST /pools/{id}/assign`: a manager gives the ticked records to a rep.
async fn assign(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    body: String,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    if !p.csrf_ok(&get("_csrf")) {
        return forbidden_csrf();
    }
    let ids: Vec<Uuid> = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .collect();
    let action = guanxi_sales::pools::PoolAction {
        version: None,
        ids,
        reason: get("reason").filter(|r| !r.trim().is_empty()),
        owner_id: get("owner_id").and_then(|v| Uuid::parse_str(&v).ok()),
    };
    match guanxi_sales::pools::assign(&s.db, &p.ctx, id, action).await {
        Ok(r) => {
            let q = serde_urlencoded::to_string([
                ("done", r.done.len().to_string()),
                (
                    "failed",
                    if r.failed.is_empty() {
                        String::new()
                    } else {
                        "taken".into()
                    },
                ),
            ])
            .unwrap_or_default();
            s.jobs_wake.notify_one();
            Redirect::to(&format!("/pools/{id}?{q}")).into_response()
        }
        Err(Error::Validation(errs)) => {
            let reasons: Vec<&str> = errs
                .iter()
                .map(|e| match (e.field.as_str(), e.code.as_str()) {
                    ("ids", _) => "none_ticked",
                    ("owner_id", "out_of_scope") => "out_of_scope",
                    _ => "no_owner",
                })
                .collect();
            let q =
                serde_urlencoded::to_string([("failed", reasons.join(","))]).unwrap_or_default();
            Redirect::to(&format!("/pools/{id}?{q}")).into_response()
        }
        Err(e) => p.error(&s, e),
    }
}
