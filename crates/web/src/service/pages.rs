//! Ticket pages: the queue (the shared list page; "active, due first" from the menu), a
//! ticket's page (its clocks in business time and as dates, the conversation, a reply / note
//! form that also sets the status, the event log, merge), the form (new — from a customer's
//! page for a phone call — and edit), and `/admin/sla-policies`.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guanxi_platform::db::Db;
use guanxi_platform::error::FieldError;
use guanxi_platform::page::Page;
use guanxi_platform::perms::Action;
use guanxi_platform::{Ctx, Error};
use guanxi_records::custom_fields::CustomFilter;
use guanxi_service::routing::{self, AgentInput, QueueInput};
use guanxi_service::sla::{self, PolicyInput};
use guanxi_service::tickets::{
    self, MessageInput, Ticket, TicketFilter, TicketInput, CHANNELS, PRIORITIES, STATUSES,
};
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::records::layout::{f, form_input, req, Section};
use crate::records::lists::{self, layout_of, Columns, ListSpec, Listed};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tickets", get(lists::page::<Ticket>).post(create))
        .route("/tickets/new", get(new))
        .route("/tickets/bulk", post(lists::bulk_action::<Ticket>))
        .route("/tickets/{id}", get(show))
        .route("/tickets/{id}/edit", get(edit).post(update))
        .route("/tickets/{id}/cell", post(lists::edit_cell::<Ticket>))
        .route("/tickets/{id}/messages", post(write))
        .route("/tickets/{id}/merge", post(merge))
        .route("/tickets/{id}/followers", post(follow))
        .route("/tickets/{id}/attachments/{file}/delete", post(remove_file))
        .route("/tickets/{id}/delete", post(delete))
        .route("/tickets/{id}/restore", post(restore))
        .route("/admin/sla-policies", get(policies).post(save_policy))
        .route("/admin/sla-policies/nps", post(save_nps))
        .route("/admin/sla-policies/warranty", post(save_warranty))
        .route("/admin/queues", get(queues).post(save_queue))
        .route("/admin/queues/agents/{id}", post(save_agent))
}

/// A ticket's profile groups.
pub const TICKET_SECTIONS: &[Section] = &[
    Section {
        key: "basic",
        fields: &[
            req("subject", "text"),
            f("account_id", "account"),
            f("contact_id", "contact"),
            f("category", "text"),
            f("priority", "priority"),
            f("channel", "ticket_channel"),
            f("status", "ticket_status"),
        ],
    },
    Section {
        key: "management",
        fields: &[f("owner_id", "assignee"), f("tags", "tags")],
    },
    Section {
        key: "evaluation",
        fields: &[f("description", "textarea")],
    },
];

pub static TICKETS: ListSpec = ListSpec {
    kind: "ticket",
    base: "/tickets",
    nav: "tickets",
    tabs: None,
    columns: Columns {
        all: &[
            "number",
            "status",
            "priority",
            "account_id",
            "contact_id",
            "category",
            "channel",
            "sla_due_at",
            "owner_id",
            "tags",
            "updated_at",
            "created_at",
        ],
        default: &[
            "number",
            "status",
            "priority",
            "account_id",
            "sla_due_at",
            "owner_id",
        ],
    },
    editable: &["category"],
    auto_sort: "sort.auto_newest",
    sorts: &["due", "-updated_at", "-created_at", "subject"],
    filters: &["category"],
    choices: &[
        ("status", STATUSES),
        ("priority", PRIORITIES),
        ("channel", CHANNELS),
    ],
    exports: false,
    codes: "ticket.",
    sections: TICKET_SECTIONS,
};

impl Listed for Ticket {
    type Filter = TicketFilter;
    type Input = TicketInput;
    const SPEC: &'static ListSpec = &TICKETS;
    fn id(&self) -> Uuid {
        self.id
    }
    async fn list(db: &Db, ctx: &Ctx, f: &TicketFilter) -> Result<Page<Ticket>, Error> {
        tickets::list(db, ctx, f).await
    }
    async fn update(db: &Db, ctx: &Ctx, id: Uuid, input: TicketInput) -> Result<(), Error> {
        tickets::update(db, ctx, id, None, input).await.map(|_| ())
    }
    fn filter_values(f: &TicketFilter) -> Value {
        let custom: BTreeMap<String, String> = f
            .custom
            .iter()
            .map(|c: &CustomFilter| (c.param.clone(), c.value.clone()))
            .collect();
        context! { q => f.q, status => f.status, priority => f.priority, channel => f.channel,
        category => f.category, sort => f.sort, deleted => f.deleted.unwrap_or(false),
        tag => f.tag, custom => custom }
    }
    /// The queues: active tickets due first, unassigned, mine, past a target.
    async fn extras(_db: &Db, ctx: &Ctx) -> Result<Value, Error> {
        let t = |k: &str| crate::i18n::t(&ctx.locale, k);
        let mut chips = vec![
            context! { href => "/tickets?status=active&sort=due", label => t("ticket.queue.active") },
            context! { href => "/tickets?status=active&unassigned=true&sort=due", label => t("ticket.queue.unassigned") },
            context! { href => "/tickets?status=active&breached=true&sort=due", label => t("ticket.queue.breached") },
        ];
        if let Some(me) = ctx.user_id {
            chips.insert(1, context! { href => format!("/tickets?status=active&owner_id={me}&sort=due"), label => t("ticket.queue.mine") });
        }
        Ok(context! { chips => chips })
    }
}

/// Open high or urgent tickets of an account, for the banner of its page, its deals and its
/// quotes (sales sees service). A failure to read them leaves the banner out, never the page.
pub(crate) async fn pressing(s: &AppState, p: &Signed, account: Option<Uuid>) -> Value {
    let Some(account) = account else {
        return Value::from(());
    };
    match tickets::pressing_for_account(&s.db, &p.ctx, account).await {
        Ok(Some(x)) => Value::from_serialize(&x),
        Ok(None) => Value::from(()),
        Err(e) => {
            tracing::warn!(error = %e, "reading pressing tickets");
            Value::from(())
        }
    }
}

/// A customer's CSAT and NPS for their 360 page (`None`: the reader may not read tickets, or
/// nobody answered).
pub(crate) async fn satisfaction(
    s: &AppState,
    p: &Signed,
    account: Option<Uuid>,
    contact: Option<Uuid>,
) -> Option<guanxi_service::surveys::Summary> {
    p.ctx.can("tickets", Action::Read)?;
    let f = guanxi_service::surveys::SurveyFilter {
        account_id: account,
        contact_id: contact,
        ..Default::default()
    };
    match guanxi_service::surveys::summary(&s.db, &p.ctx, &f).await {
        Ok(sum) if sum.csat_answers + sum.nps_answers > 0 => Some(sum),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "reading a customer's satisfaction");
            None
        }
    }
}

/// A customer's latest tickets (ten, newest first) for their 360 page; `None` when the reader
/// may not read tickets or they cannot be read (the card is left out, never the page).
pub(crate) async fn of_customer(
    s: &AppState,
    p: &Signed,
    account: Option<Uuid>,
    contact: Option<Uuid>,
) -> Option<Vec<Ticket>> {
    p.ctx.can("tickets", Action::Read)?;
    let f = TicketFilter {
        account_id: account,
        contact_id: contact,
        sort: Some("-created_at".into()),
        limit: Some(10),
        ..Default::default()
    };
    match tickets::list(&s.db, &p.ctx, &f).await {
        Ok(page) => Some(page.items),
        Err(e) => {
            tracing::warn!(error = %e, "reading a customer's tickets");
            None
        }
    }
}

fn t(p: &Signed, key: &str) -> String {
    crate::i18n::t(&p.ctx.locale, key)
}

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
        layout_of::<Ticket>(s, p).await,
    ) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(e), _) | (_, Err(e)) => return p.error(s, e),
    };
    p.page_status(
        s,
        status,
        "records/form.html",
        "tickets",
        context! { sections => layout.sections, values => values, errors => errors,
        action => action, title => title, opts => opts, kind => "ticket", dupes => Vec::<Value>::new() },
    )
}

#[derive(Deserialize)]
struct NewQuery {
    account_id: Option<Uuid>,
    account_name: Option<String>,
    contact_id: Option<Uuid>,
    contact_name: Option<String>,
    channel: Option<String>,
}

/// The new-ticket form; from a customer's page (`?contact_id=…&channel=phone`) it is the call
/// being logged.
async fn new(State(s): State<AppState>, p: Signed, Query(q): Query<NewQuery>) -> Response {
    let channel = q
        .channel
        .filter(|c| CHANNELS.contains(&c.as_str()))
        .unwrap_or_else(|| "manual".into());
    let values = context! { owner_id => p.ctx.user_id, account_id => q.account_id,
    account_name => q.account_name, contact_id => q.contact_id, contact_name => q.contact_name,
    channel => channel, priority => "normal", status => "new" };
    let title = t(&p, "ticket.new");
    form_view(
        &s,
        &p,
        StatusCode::OK,
        "/tickets".into(),
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

async fn input_of(
    s: &AppState,
    p: &Signed,
    form: &BTreeMap<String, String>,
) -> Result<TicketInput, Error> {
    let layout = layout_of::<Ticket>(s, p).await?;
    let mut form = form.clone();
    layout.fold_choices(&mut form);
    form_input::<TicketInput>(&layout, p, &form)
}

async fn create(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    let title = t(&p, "ticket.new");
    let result = match input_of(&s, &p, &form).await {
        Ok(input) => tickets::create(&s.db, &p.ctx, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => Redirect::to(&format!("/tickets/{}", d.id)).into_response(),
        Err(e) => refused(&s, &p, e, "/tickets".into(), title, &form).await,
    }
}

async fn edit(State(s): State<AppState>, p: Signed, Path(id): Path<Uuid>) -> Response {
    let (d, layout) = match (
        tickets::get(&s.db, &p.ctx, id).await,
        layout_of::<Ticket>(&s, &p).await,
    ) {
        (Ok(d), Ok(l)) => (d, l),
        (Err(e), _) | (_, Err(e)) => return p.error(&s, e),
    };
    let title = format!("{} · {}", t(&p, "common.edit"), d.number);
    let values = layout.form_values(&d, p.time_zone);
    form_view(
        &s,
        &p,
        StatusCode::OK,
        format!("/tickets/{id}/edit"),
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
        Ok(input) => tickets::update(&s.db, &p.ctx, id, None, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => Redirect::to(&format!("/tickets/{}", d.id)).into_response(),
        Err(e) => {
            let title = form.get("subject").cloned().unwrap_or_default();
            refused(&s, &p, e, format!("/tickets/{id}/edit"), title, &form).await
        }
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    error: Option<String>,
}

/// A clock as the page shows it: its target, state, business time used of the target, and
/// when it runs (or ran) out as a date.
fn clock_view(c: &sla::TargetRow) -> Value {
    context! {
        target => c.target, cycle => c.cycle, state => c.state,
        used_minutes => c.elapsed_seconds / 60, target_minutes => c.target_minutes,
        margin_minutes => (c.target_minutes * 60 - c.elapsed_seconds) / 60,
        due_at => c.due_at, completed_at => c.completed_at,
    }
}

async fn show(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Response {
    show_page(&s, &p, id, q.error.as_deref(), StatusCode::OK, vec![]).await
}

async fn show_page(
    s: &AppState,
    p: &Signed,
    id: Uuid,
    error: Option<&str>,
    status: StatusCode,
    errors: Vec<FieldError>,
) -> Response {
    let d = match tickets::get(&s.db, &p.ctx, id).await {
        Ok(d) => d,
        Err(e) => return p.error(s, e),
    };
    let (messages, events, clocks, layout) = match (
        tickets::messages(&s.db, &p.ctx, id).await,
        tickets::events(&s.db, &p.ctx, id).await,
        sla::targets_of(&s.db, p.ctx.tenant_id, id).await,
        layout_of::<Ticket>(s, p).await,
    ) {
        (Ok(m), Ok(e), Ok(c), Ok(l)) => (m, e, c, l),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return p.error(s, e),
    };
    let shown = layout.shown(s, p, &d.custom.0).await;
    if let Err(e) = guanxi_platform::recent::viewed(&s.db, &p.ctx, "tickets", id, &d.subject).await
    {
        tracing::warn!(error = %e, "noting a recent view");
    }
    let live = d.deleted_at.is_none() && d.merged_into_id.is_none();
    let can = |a: Action| {
        p.ctx
            .can("tickets", a)
            .is_some_and(|scope| p.ctx.covers(scope, d.owner_id.or(p.ctx.user_id), d.team_id))
    };
    let policy = match d.sla_policy_id {
        Some(pid) => sla::get(&s.db, &p.ctx, pid).await.ok(),
        None => None,
    };
    let clocks: Vec<Value> = clocks.iter().map(clock_view).collect();
    let survey = guanxi_service::surveys::list(
        &s.db,
        &p.ctx,
        &guanxi_service::surveys::SurveyFilter {
            ticket_id: Some(id),
            limit: Some(20),
            ..Default::default()
        },
    )
    .await
    .map(|page| page.items)
    .unwrap_or_default();
    let followers = tickets::followers(&s.db, &p.ctx, id)
        .await
        .unwrap_or_default();
    let following = followers.iter().any(|f| Some(f.user_id) == p.ctx.user_id);
    let files = guanxi_service::attachments::of_ticket(&s.db, p.ctx.tenant_id, id, false)
        .await
        .unwrap_or_default();
    let visits = guanxi_service::visits::list(
        &s.db,
        &p.ctx,
        &guanxi_service::visits::VisitFilter {
            ticket_id: Some(id),
            limit: Some(50),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_default();
    // Who could go, and the skills there are (the booking form's choices).
    let engineers = guanxi_service::routing::agents(&s.db, &p.ctx)
        .await
        .unwrap_or_default();
    let skills: std::collections::BTreeSet<String> = engineers
        .iter()
        .flat_map(|a| a.skills.0.keys().cloned())
        .collect();
    let engineers: Vec<Value> = engineers
        .iter()
        .map(|a| minijinja::context! { id => a.user_id, name => a.name })
        .collect();
    // Articles answering the ticket, for a reply (a failure leaves the card out).
    let suggested = if p.ctx.can("articles", Action::Read).is_some() && live {
        let text = format!("{} {}", d.subject, d.description.as_deref().unwrap_or(""));
        guanxi_service::articles::suggest(
            &s.db,
            guanxi_service::articles::Reader::Staff(&p.ctx),
            &text,
            &p.ctx.locale,
            5,
        )
        .await
        .unwrap_or_default()
    } else {
        vec![]
    };
    p.page_status(
        s,
        status,
        "service/ticket.html",
        "tickets",
        context! {
            d => d, messages => messages, events => events, clocks => clocks, policy => policy,
            survey => survey, suggested => suggested, followers => followers, files => files,
            visits => visits, engineers => engineers, skills => skills, following => following, sections => layout.sections, shown => shown, errors => errors,
            statuses => STATUSES, live => live,
            error => p.refusal_from_url(error),
            can_edit => can(Action::Update) && live, can_delete => can(Action::Delete),
        },
    )
}

/// `POST /tickets/{id}/messages` (multipart: `kind`, `body`, `status`, `version`, a suggested
/// `article_id`, and files chosen under `file`): a reply, note or what the customer said, with
/// the status it leaves and the files it sends. A refusal shows the page with the field named.
async fn write(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    crate::extract::Posted(form): crate::extract::Posted,
) -> Response {
    let form = match form {
        Ok(u) => u,
        Err((status, code)) => {
            let errors = p
                .field_errors(Error::field("file", code))
                .unwrap_or_default();
            return show_page(&s, &p, id, None, status, errors).await;
        }
    };
    if !p.csrf_ok(&form.field("_csrf").map(str::to_owned)) {
        return forbidden_csrf();
    }
    let text = |k: &str| form.field(k).map(str::to_owned);
    let input = MessageInput {
        kind: text("kind"),
        body: text("body"),
        status: text("status").filter(|s| !s.trim().is_empty()),
        version: form.field("version").and_then(|v| v.parse().ok()),
        contact_id: None,
        channel: None,
        article_id: form
            .field("article_id")
            .filter(|v| !v.is_empty())
            .and_then(|v| v.parse().ok()),
        attachment_ids: None,
    };
    match tickets::add_message_with(&s.db, &p.ctx, id, input, &form.files).await {
        Ok(_) => Redirect::to(&format!("/tickets/{id}#conversation")).into_response(),
        Err(Error::PreconditionFailed { .. }) => {
            show_page(
                &s,
                &p,
                id,
                Some("version:changed"),
                StatusCode::PRECONDITION_FAILED,
                vec![],
            )
            .await
        }
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                show_page(&s, &p, id, None, StatusCode::UNPROCESSABLE_ENTITY, errors).await
            }
            Err(e) => p.error(&s, e),
        },
    }
}

#[derive(Deserialize)]
struct MergeForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    /// The surviving ticket's number.
    into: String,
}

/// `POST /tickets/{id}/merge`: this ticket into the one with the number typed.
async fn merge(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<MergeForm>,
) -> Response {
    if !p.csrf_ok(&form.csrf) {
        return forbidden_csrf();
    }
    let back = format!("/tickets/{id}");
    let f = TicketFilter {
        q: Some(form.into.trim().to_owned()),
        limit: Some(20),
        ..Default::default()
    };
    let target = match tickets::list(&s.db, &p.ctx, &f).await {
        Ok(page) => page
            .items
            .into_iter()
            .find(|t| t.number.eq_ignore_ascii_case(form.into.trim())),
        Err(e) => return p.error(&s, e),
    };
    let Some(target) = target else {
        return p.refused_to(
            &back,
            Error::field("into", "unknown"),
            Some("ticket.field."),
        );
    };
    match tickets::merge(&s.db, &p.ctx, id, Some(target.id), None).await {
        Ok(_) => Redirect::to(&format!("/tickets/{}", target.id)).into_response(),
        Err(e) => p.refused_to(&back, e, Some("ticket.field.")),
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
    match tickets::set_deleted(&s.db, &p.ctx, id, deleted).await {
        Ok(_) => Redirect::to(&format!("/tickets/{id}")).into_response(),
        Err(e) => p.error(s, e),
    }
}

#[derive(Deserialize)]
struct PoliciesQuery {
    error: Option<String>,
}

/// `/admin/sla-policies`: every policy as a row of its conditions and targets, each saved on
/// its own, and a blank one to add.
async fn policies(
    State(s): State<AppState>,
    p: Signed,
    Query(q): Query<PoliciesQuery>,
) -> Response {
    let nps = guanxi_service::nps::schedule(&s.db, &p.ctx).await.ok();
    let warranty = guanxi_service::warranty::sweep(&s.db, &p.ctx).await.ok();
    match sla::list(&s.db, &p.ctx).await {
        Ok(list) => p.page(
            &s,
            "service/policies.html",
            "sla_policies",
            context! { policies => list, priorities => PRIORITIES, grades => sla::GRADES, nps => nps,
            coverages => sla::COVERAGES, warranty => warranty,
            can_edit => p.ctx.can("sla_policies", Action::Update).is_some(),
            error => p.refusal_from_url(q.error.as_deref()) },
        ),
        Err(e) => p.error(&s, e),
    }
}

/// One policy row posted: `id` empty creates.
async fn save_policy(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    let back = "/admin/sla-policies";
    let input = (|| -> Result<PolicyInput, Error> {
        Ok(PolicyInput {
            version: f.number("version")?,
            name: f.one("name"),
            position: f.number("position")?,
            active: Some(f.one("active").is_some()),
            priorities: Some(f.many("priorities")),
            grades: Some(f.many("grades")),
            categories: Some(f.list("categories")),
            coverage: Some(f.many("coverage")),
            first_response_minutes: Some(f.number("first_response_minutes")?),
            next_response_minutes: Some(f.number("next_response_minutes")?),
            resolution_minutes: Some(f.number("resolution_minutes")?),
            warn_minutes: Some(f.number("warn_minutes")?.unwrap_or(0)),
            raise_priority: Some(f.one("raise_priority").is_some()),
            follow_up_days: Some(f.number("follow_up_days")?),
            calendar_id: None,
        })
    })();
    let id = f.one("id").and_then(|v| v.parse::<Uuid>().ok());
    let result = match (input, id) {
        (Err(e), _) => Err(e),
        (Ok(input), Some(id)) => sla::update(&s.db, &p.ctx, id, None, input).await,
        (Ok(input), None) => sla::create(&s.db, &p.ctx, input).await,
    };
    match result {
        Ok(_) => {
            s.jobs_wake.notify_one();
            Redirect::to(back).into_response()
        }
        Err(e) => p.refused_to(back, e, Some("sla.field.")),
    }
}

/// `/admin/queues`: each queue as a card (saved on its own), a blank one to add, and the
/// agents' workload — open and overdue tickets against capacity, availability and skills, each
/// row saved on its own.
async fn queues(State(s): State<AppState>, p: Signed, Query(q): Query<PoliciesQuery>) -> Response {
    let teams = guanxi_platform::teams::list(&s.db, &p.ctx, Some(200), None, None).await;
    match (
        routing::list(&s.db, &p.ctx).await,
        routing::agents(&s.db, &p.ctx).await,
        teams,
    ) {
        (Ok(list), Ok(agents), Ok(teams)) => {
            let agents: Vec<Value> = agents
                .iter()
                .map(|a| {
                    let skills: Vec<String> =
                        a.skills.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    context! { a => a, skills => skills.join(", ") }
                })
                .collect();
            p.page(
                &s,
                "service/queues.html",
                "queues",
                context! { queues => list, agents => agents, teams => teams.items,
                strategies => routing::STRATEGIES, priorities => PRIORITIES, grades => sla::GRADES,
                channels => CHANNELS, languages => routing::LANGUAGES,
                can_edit => p.ctx.can("sla_policies", Action::Update).is_some(),
                error => p.refusal_from_url(q.error.as_deref()) },
            )
        }
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => p.error(&s, e),
    }
}

/// The posted form's values: one value, every value of a repeated name.
pub(super) struct Posted(pub(super) Vec<(String, String)>);

impl Posted {
    pub(super) fn one(&self, k: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
    }
    fn many(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, v)| key == k && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
    /// A comma-separated list typed in one box (Chinese commas too).
    fn list(&self, k: &str) -> Vec<String> {
        self.one(k)
            .unwrap_or_default()
            .split([',', '，', '、'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }
    pub(super) fn number(&self, k: &str) -> Result<Option<i64>, Error> {
        match self.one(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| Error::field(k, "invalid")),
        }
    }
}

async fn save_queue(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    let back = "/admin/queues";
    let input = (|| -> Result<QueueInput, Error> {
        Ok(QueueInput {
            version: f.number("version")?,
            name: f.one("name"),
            position: f.number("position")?,
            active: Some(f.one("active").is_some()),
            team_id: match f.one("team_id").filter(|v| !v.is_empty()) {
                Some(v) => Some(v.parse().map_err(|_| Error::field("team_id", "invalid"))?),
                None => None,
            },
            strategy: f.one("strategy"),
            categories: Some(f.list("categories")),
            grades: Some(f.many("grades")),
            priorities: Some(f.many("priorities")),
            channels: Some(f.many("channels")),
            skill: Some(f.one("skill").filter(|v| !v.is_empty())),
            min_level: f.number("min_level")?,
            regions: Some(f.list("regions")),
            products: Some(f.list("products")),
            languages: Some(f.many("languages")),
        })
    })();
    let id = f.one("id").and_then(|v| v.parse::<Uuid>().ok());
    let result = match (input, id) {
        (Err(e), _) => Err(e),
        (Ok(input), Some(id)) => routing::update(&s.db, &p.ctx, id, None, input).await,
        (Ok(input), None) => routing::create(&s.db, &p.ctx, input).await,
    };
    match result {
        Ok(_) => Redirect::to(back).into_response(),
        Err(e) => p.refused_to(back, e, Some("queue.field.")),
    }
}

/// One agent's row: capacity (blank: no limit), available, skills typed `name=level, …`.
async fn save_agent(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    let back = "/admin/queues";
    let input = (|| -> Result<AgentInput, Error> {
        let mut skills = BTreeMap::new();
        for part in f
            .one("skills")
            .unwrap_or_default()
            .split([',', '，', '、'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (name, level) = part
                .split_once(['=', '＝', ':', '：'])
                .ok_or_else(|| Error::field("skills", "invalid"))?;
            let level: i64 = level
                .trim()
                .parse()
                .map_err(|_| Error::field("skills", "invalid"))?;
            skills.insert(name.trim().to_owned(), level);
        }
        Ok(AgentInput {
            version: f.number("version")?,
            capacity: Some(f.number("capacity")?),
            available: Some(f.one("available").is_some()),
            skills: Some(skills),
        })
    })();
    let result = match input {
        Ok(input) => routing::set_agent(&s.db, &p.ctx, id, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to(back).into_response(),
        Err(e) => p.refused_to(back, e, Some("queue.field.")),
    }
}

#[derive(Deserialize)]
struct FollowForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    /// Empty: me.
    user_id: Option<String>,
    follow: Option<String>,
}

/// `POST /tickets/{id}/followers`: follow or stop following; add or remove a colleague.
async fn follow(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(f): Form<FollowForm>,
) -> Response {
    if !p.csrf_ok(&f.csrf) {
        return forbidden_csrf();
    }
    let input = tickets::FollowInput {
        user_id: f.user_id.as_deref().and_then(|u| u.parse().ok()),
        follow: Some(f.follow.as_deref() != Some("false")),
    };
    let page = format!("/tickets/{id}");
    match tickets::set_following(&s.db, &p.ctx, id, input).await {
        Ok(_) => Redirect::to(&format!("{page}#followers")).into_response(),
        Err(e) => p.refused_to(&page, e, Some("ticket.field.")),
    }
}

#[derive(Deserialize)]
struct RemoveFileForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST /tickets/{id}/attachments/{file}/delete`: an upload not sent yet.
async fn remove_file(
    State(s): State<AppState>,
    p: Signed,
    Path((id, file)): Path<(Uuid, Uuid)>,
    Form(f): Form<RemoveFileForm>,
) -> Response {
    if !p.csrf_ok(&f.csrf) {
        return forbidden_csrf();
    }
    let page = format!("/tickets/{id}");
    match guanxi_service::attachments::remove(&s.db, &p.ctx, id, file).await {
        Ok(()) => Redirect::to(&format!("{page}#files-card")).into_response(),
        Err(e) => p.refused_to(&page, e, Some("ticket.field.")),
    }
}

/// A form's `next_on` date: 10:00 that day in the tenant's zone.
fn next_on(p: &Signed, f: &Posted) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    use chrono::TimeZone;
    match f.one("next_on").filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .and_then(|t| p.time_zone.from_local_datetime(&t).earliest())
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .ok_or_else(|| Error::field("next_at", "invalid")),
    }
}

/// `POST /admin/sla-policies/warranty`: the warranty follow-up sweep.
async fn save_warranty(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    let back = "/admin/sla-policies";
    let input = (|| -> Result<guanxi_service::warranty::SweepInput, Error> {
        Ok(guanxi_service::warranty::SweepInput {
            version: f.number("version")?,
            active: Some(f.one("active").is_some()),
            days_before: f.number("days_before")?,
            skill: Some(f.one("skill").filter(|v| !v.is_empty())),
            next_at: next_on(&p, &f)?,
        })
    })();
    let result = match input {
        Ok(i) => guanxi_service::warranty::set_sweep(&s.db, &p.ctx, i).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.jobs_wake.notify_one();
            Redirect::to(&format!("{back}#warranty")).into_response()
        }
        Err(e) => p.refused_to(back, e, Some("warranty.field.")),
    }
}

/// `POST /admin/sla-policies/nps`: the NPS survey's schedule (`next_on` a date in the tenant's
/// zone, 10:00 that day).
async fn save_nps(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let f = Posted(form);
    if !p.csrf_ok(&f.one("_csrf")) {
        return forbidden_csrf();
    }
    let back = "/admin/sla-policies";
    let next_at = match next_on(&p, &f) {
        Ok(n) => n,
        Err(e) => return p.refused_to(back, e, Some("nps.field.")),
    };
    let input = (|| -> Result<guanxi_service::nps::ScheduleInput, Error> {
        Ok(guanxi_service::nps::ScheduleInput {
            version: f.number("version")?,
            active: Some(f.one("active").is_some()),
            every_days: f.number("every_days")?,
            lookback_days: f.number("lookback_days")?,
            quiet_days: f.number("quiet_days")?,
            next_at,
        })
    })();
    let result = match input {
        Ok(i) => guanxi_service::nps::set_schedule(&s.db, &p.ctx, i).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.jobs_wake.notify_one();
            Redirect::to(&format!("{back}#nps")).into_response()
        }
        Err(e) => p.refused_to(back, e, Some("nps.field.")),
    }
}
