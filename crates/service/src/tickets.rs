//! Tickets: a customer's request, from any channel, worked to a resolution. They have the record
//! machinery (custom fields, tags, lists, saved views, bulk actions, trash, search by number,
//! subject and customer, with pinyin and initials). A ticket may wait unassigned in its team's
//! queue (`owner_id` empty). What is said on it (`ticket_messages`: public replies, internal
//! notes, the customer's words) and what happens to it (`ticket_events`: created, status and
//! priority changes, replies, assignment, merges, SLA outcomes — append-only) are kept apart;
//! its SLA clocks are derived from the events ([`crate::sla::evaluate`], in the same
//! transaction as every change that moves them).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::accounts::Account;
use guanxi_customers::contacts::Contact;
use guanxi_platform::db::{Backend, Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, numbering, validate, version, Ctx, Error};
use guanxi_records::custom_fields::{self, CustomFilter};
use guanxi_records::record::{self, apply_text, plain};
use guanxi_records::{eras, normalize, Entity, EntityDef};

use crate::clock;

/// The declaration that gives tickets the shared record machinery.
pub const ENTITY: Entity = Entity::declare(&EntityDef {
    table: "tickets",
    path: "/tickets",
    shared: false,
    title: "subject",
});

pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];
pub const CHANNELS: &[&str] = &["email", "portal", "form", "phone", "api", "manual"];
pub use crate::clock::STATUSES;
pub const MESSAGE_KINDS: &[&str] = &["reply", "note", "customer"];
/// The default number pattern (`T-2026-000123`), changed at `/api/v1/numbering/ticket`.
pub const NUMBER_PATTERN: &str = "T-{YYYY}-{SEQ:6}";
/// The job that emails a public reply to the ticket's contact (written by the web layer, in
/// the company's language, into the outbox).
pub const REPLY_MAIL_JOB: &str = "ticket_reply_mail";

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Ticket {
    pub id: Uuid,
    /// Unique per tenant, from the numbering pattern.
    pub number: String,
    pub subject: String,
    pub description: Option<String>,
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    /// The account's grade (A–E), which SLA policies may depend on.
    pub grade: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    /// The customer's product or installation it is about.
    pub asset_id: Option<Uuid>,
    pub asset_name: Option<String>,
    /// The asset's warranty end (`YYYY-MM-DD`).
    pub warranty_until: Option<String>,
    pub category: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    /// `email`, `portal`, `form`, `phone`, `api` or `manual`.
    pub channel: String,
    /// `new`, `open`, `waiting_customer`, `waiting_third_party`, `resolved` or `closed`.
    pub status: String,
    pub parent_id: Option<Uuid>,
    /// Set when this ticket was merged into another (it is closed).
    pub merged_into_id: Option<Uuid>,
    pub first_replied_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// How many times it was reopened after a resolution.
    pub reopened: i64,
    /// The SLA policy its clocks follow, if one applies.
    pub sla_policy_id: Option<Uuid>,
    /// When its next SLA target runs out if nothing changes.
    pub sla_due_at: Option<DateTime<Utc>>,
    /// A target ran out while the ticket was unanswered or unresolved.
    pub sla_breached: bool,
    /// The queue that took it (routing), if any.
    pub queue_id: Option<Uuid>,
    /// The agent working it; empty while it waits in its team's queue.
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
    #[serde(skip)]
    #[sqlx(default)]
    pub sla_due_key: Option<i64>,
}

/// Create or update a ticket. On update, absent fields stay as they are and `null` clears one.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    /// Required on create.
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Default: the contact's account.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub account_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    /// An asset of the ticket's customer.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub asset_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    /// Default `normal`.
    pub priority: Option<String>,
    /// On create only; default `api` (the web form sends `manual` or `phone`).
    pub channel: Option<String>,
    /// Default `new`. Leaving `resolved`/`closed` reopens it.
    pub status: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
    /// Left out on create: routed by the queues (a matching queue's team and, by its
    /// strategy, an agent). `null`: unassigned, waiting in its queue.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
    /// The team (queue); default: the owner's, else the creator's.
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
pub struct TicketFilter {
    /// Search box: number, subject, customer (with pinyin and initials).
    pub q: Option<String>,
    /// Several comma-separated; `active` is every status but resolved and closed.
    pub status: Option<String>,
    /// Several comma-separated.
    pub priority: Option<String>,
    pub channel: Option<String>,
    pub category: Option<String>,
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub queue_id: Option<Uuid>,
    /// `true`: only tickets waiting unassigned.
    pub unassigned: Option<bool>,
    pub team_id: Option<Uuid>,
    /// `true`: only tickets past an SLA target.
    pub breached: Option<bool>,
    pub tag: Option<String>,
    /// `true` lists the trash.
    pub deleted: Option<bool>,
    /// `due` (next SLA due time first), `created_at`, `updated_at`, `subject` or
    /// `custom.<key>`; `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    #[serde(skip)]
    #[param(ignore)]
    pub custom: Vec<CustomFilter>,
}

impl custom_fields::CustomFilters for TicketFilter {
    fn set_custom(&mut self, filters: Vec<CustomFilter>) {
        self.custom = filters;
    }
}

const SELECT: &str = "SELECT t.id, t.number, t.subject, t.description, t.account_id,
    a.name AS account_name, a.grade, t.contact_id, c.name AS contact_name, t.asset_id,
    s.name AS asset_name, s.warranty_until, t.category, t.priority, t.channel, t.status,
    t.parent_id, t.merged_into_id, t.first_replied_at, t.resolved_at, t.closed_at, t.reopened,
    t.sla_policy_id, t.sla_due_at, t.sla_breached, t.queue_id, t.owner_id, o.name AS owner_name, t.team_id,
    t.custom, t.tags, t.created_at, t.updated_at, t.deleted_at, t.version, t.name_key,
    t.sla_due_key
    FROM tickets t
    LEFT JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
    LEFT JOIN contacts c ON c.tenant_id = t.tenant_id AND c.id = t.contact_id
    LEFT JOIN assets s ON s.tenant_id = t.tenant_id AND s.id = t.asset_id
    LEFT JOIN users o ON o.tenant_id = t.tenant_id AND o.id = t.owner_id";

const SORTS: &[SortField] = &[
    ("due", "t.sla_due_key", SortKind::Int),
    ("subject", "t.name_key", SortKind::Text),
    ("created_at", "t.created_at", SortKind::Time),
    ("updated_at", "t.updated_at", SortKind::Time),
];

guanxi_records::declare_record!(
    Ticket,
    entity: ENTITY,
    select: SELECT,
    alias: "t",
    input: TicketInput,
    update: update
);

pub async fn list(db: &Db, ctx: &Ctx, f: &TicketFilter) -> Result<Page<Ticket>> {
    let defs =
        custom_fields::for_list(db, ctx.tenant_id, ENTITY, &f.custom, f.sort.as_deref()).await?;
    let (q, order, limit) = list_sql(db.backend(), ctx, f, &defs)?;
    let rows: Vec<Ticket> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |t| {
        order.cursor(t.seq, t.id, |sort| match &*sort.field {
            "created_at" => guanxi_platform::db::sqlite_time(&t.created_at),
            "updated_at" => guanxi_platform::db::sqlite_time(&t.updated_at),
            "due" => t.sla_due_key.unwrap_or(crate::sla::NO_DUE).to_string(),
            "subject" => t.name_key.clone().unwrap_or_default(),
            other => custom_fields::cursor_value(&t.custom, other, sort.kind),
        })
    }))
}

fn list_sql(
    backend: Backend,
    ctx: &Ctx,
    f: &TicketFilter,
    defs: &[custom_fields::CustomField],
) -> Result<(Sql, record::ListOrder, i64)> {
    let scope = ctx.require("tickets", Action::Read)?;
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
    let mut list = record::ListQuery::start(
        backend,
        ctx,
        scope,
        SELECT,
        (ENTITY, "t"),
        f.q.as_deref(),
        f.sort.as_deref(),
        f.deleted == Some(true),
    );
    let q = &mut list.q;
    for (col, v) in [
        ("t.account_id", f.account_id),
        ("t.contact_id", f.contact_id),
        ("t.owner_id", f.owner_id),
        ("t.queue_id", f.queue_id),
        ("t.team_id", f.team_id),
    ] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = ")).bind(v);
        }
    }
    if f.unassigned == Some(true) {
        q.push(" AND t.owner_id IS NULL");
    }
    if let Some(b) = f.breached {
        q.push(" AND t.sla_breached = ").bind(b);
    }
    match f.status.as_deref().map(str::trim) {
        Some("active") => {
            q.push(" AND t.status NOT IN ('resolved', 'closed')");
        }
        other => record::one_of(q, "t.status", "status", other, STATUSES)?,
    }
    record::one_of(
        q,
        "t.priority",
        "priority",
        f.priority.as_deref(),
        PRIORITIES,
    )?;
    record::one_of(q, "t.channel", "channel", f.channel.as_deref(), CHANNELS)?;
    if let Some(c) = f
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        q.push(" AND t.category = ").bind(c);
    }
    custom_fields::filter_sql(backend, q, "t", defs, &f.custom)?;
    if let Some(tag) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        record::tag_sql(backend, q, "t.tags", tag);
    }
    list.finish(&page, "t.id", || {
        page.sort_or(SORTS, |name| {
            custom_fields::sort_column(backend, "t", defs, name)
        })
    })
}

/// One ticket, in the trash or not; outside the caller's scope it does not exist.
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Ticket> {
    record::get(db, ctx, id).await
}

pub async fn set_deleted(db: &Db, ctx: &Ctx, id: Uuid, deleted: bool) -> Result<Ticket> {
    let t = record::set_deleted::<Ticket>(db, ctx, id, deleted).await?;
    // The clocks stop in the trash and start again on restore.
    let mut tx = db.begin().await?;
    crate::sla::evaluate(&mut tx, ctx, id, now()).await?;
    tx.commit().await?;
    Ok(t)
}

/// The editable columns, validated together.
#[derive(Debug, Clone)]
struct Fields {
    subject: String,
    description: Option<String>,
    account_id: Option<Uuid>,
    account_name: Option<String>,
    contact_id: Option<Uuid>,
    contact_name: Option<String>,
    asset_id: Option<Uuid>,
    category: Option<String>,
    priority: String,
    status: String,
    parent_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    team_id: Option<Uuid>,
    custom: serde_json::Map<String, serde_json::Value>,
    tags: Vec<String>,
}

impl Fields {
    fn new() -> Fields {
        Fields {
            subject: String::new(),
            description: None,
            account_id: None,
            account_name: None,
            contact_id: None,
            contact_name: None,
            asset_id: None,
            category: None,
            priority: "normal".into(),
            status: "new".into(),
            parent_id: None,
            owner_id: None,
            team_id: None,
            custom: Default::default(),
            tags: vec![],
        }
    }

    fn of(t: &Ticket) -> Fields {
        Fields {
            subject: t.subject.clone(),
            description: t.description.clone(),
            account_id: t.account_id,
            account_name: t.account_name.clone(),
            contact_id: t.contact_id,
            contact_name: t.contact_name.clone(),
            asset_id: t.asset_id,
            category: t.category.clone(),
            priority: t.priority.clone(),
            status: t.status.clone(),
            parent_id: t.parent_id,
            owner_id: t.owner_id,
            team_id: t.team_id,
            custom: t.custom.0.as_object().cloned().unwrap_or_default(),
            tags: t.tags.0.clone(),
        }
    }

    /// Subject (with pinyin and initials), number, customer and contact names.
    fn search(&self, number: &str) -> String {
        let names: Vec<String> = [&self.account_name, &self.contact_name]
            .into_iter()
            .flatten()
            .flat_map(|n| {
                let (py, init) = normalize::pinyin(n);
                [n.clone(), py, init]
            })
            .collect();
        let mut extra: Vec<Option<&str>> = vec![Some(number)];
        extra.extend(names.iter().map(|s| Some(s.as_str())));
        record::search_of(&self.subject, None, None, &extra)
    }
}

/// One of a field's fixed codes, or `invalid` on the field.
pub(crate) fn choice(
    errs: &mut Errors,
    field: &str,
    raw: &str,
    allowed: &[&str],
) -> Option<String> {
    let v = raw.trim();
    if allowed.contains(&v) {
        Some(v.to_owned())
    } else {
        errs.add(field, "invalid");
        None
    }
}

/// An asset's account, contact and trash mark.
type AssetOwner = (Option<Uuid>, Option<Uuid>, Option<DateTime<Utc>>);

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &TicketInput,
    f: &mut Fields,
    defs: &[custom_fields::CustomField],
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    match &input.subject {
        Some(n) => match plain(300)(n) {
            Ok(n) if !n.trim().is_empty() => f.subject = n.trim().to_owned(),
            Ok(_) => errs.add("subject", "required"),
            Err(c) => errs.add("subject", c),
        },
        None if creating => errs.add("subject", "required"),
        None => {}
    }
    apply_text(
        &mut errs,
        "description",
        &input.description,
        &mut f.description,
        plain(20_000),
    );
    apply_text(
        &mut errs,
        "category",
        &input.category,
        &mut f.category,
        plain(50),
    );
    if let Some(p) = &input.priority {
        if let Some(p) = choice(&mut errs, "priority", p, PRIORITIES) {
            f.priority = p;
        }
    }
    if let Some(s) = &input.status {
        if let Some(s) = choice(&mut errs, "status", s, STATUSES) {
            f.status = s;
        }
    }
    // The customer: a contact brings its account when none is named.
    if let Some(c) = input.contact_id {
        f.contact_id = c;
        f.contact_name = None;
        if let Some(c) = c {
            match record::get::<Contact>(&mut *tx, ctx, c).await {
                Ok(p) if p.deleted_at.is_some() => errs.add("contact_id", "in_trash"),
                Ok(p) => {
                    f.contact_name = Some(p.name.clone());
                    if input.account_id.is_none() && p.account_id.is_some() {
                        f.account_id = p.account_id;
                        f.account_name = None;
                    }
                }
                Err(Error::NotFound) => errs.add("contact_id", "unknown"),
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(a) = input.account_id {
        f.account_id = a;
    }
    if input.account_id.is_some() || input.contact_id.is_some() {
        f.account_name = None;
        if let Some(a) = f.account_id {
            match record::get::<Account>(&mut *tx, ctx, a).await {
                Ok(acc) if acc.deleted_at.is_some() => errs.add("account_id", "in_trash"),
                Ok(acc) => f.account_name = Some(acc.name),
                Err(Error::NotFound) => errs.add("account_id", "unknown"),
                Err(e) => return Err(e),
            }
        }
        if let (Some(c), Some(a)) = (f.contact_id, f.account_id) {
            let of: Option<(Option<Uuid>,)> = tx
                .fetch_optional(
                    "SELECT account_id FROM contacts WHERE tenant_id = $1 AND id = $2",
                    args![ctx.tenant_id, c],
                )
                .await?;
            if of.is_some_and(|(acc,)| acc.is_some_and(|acc| acc != a)) {
                errs.add("contact_id", "other_account");
            }
        }
    }
    if let Some(asset) = input.asset_id {
        f.asset_id = asset;
    }
    if let Some(asset) = f.asset_id.filter(|_| {
        input.asset_id.is_some() || input.account_id.is_some() || input.contact_id.is_some()
    }) {
        let row: Option<AssetOwner> = tx
            .fetch_optional(
                "SELECT account_id, contact_id, deleted_at FROM assets WHERE tenant_id = $1 AND id = $2",
                args![ctx.tenant_id, asset],
            )
            .await?;
        match row {
            None => errs.add("asset_id", "unknown"),
            Some((_, _, Some(_))) => errs.add("asset_id", "in_trash"),
            Some((acc, con, None)) => {
                let ours = (acc.is_some() && acc == f.account_id)
                    || (con.is_some() && con == f.contact_id);
                if !ours {
                    errs.add("asset_id", "other_customer");
                }
            }
        }
    }
    if let Some(p) = input.parent_id {
        f.parent_id = p;
    }
    // Assignment: an active colleague (their team unless a queue is named), or nobody.
    if let Some(o) = input.owner_id {
        f.owner_id = o;
        if let Some(o) = o {
            let row: Option<(Option<Uuid>,)> = tx
                .fetch_optional(
                    "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
                    args![ctx.tenant_id, o, true],
                )
                .await?;
            match row {
                Some((team,)) if input.team_id.is_none() => f.team_id = team.or(f.team_id),
                Some(_) => {}
                None => errs.add("owner_id", "unknown"),
            }
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
    if creating && input.team_id.is_none() && f.team_id.is_none() {
        f.team_id = ctx.team_id;
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

/// A parent must be a live ticket that is not itself a child, and a ticket with children
/// cannot become one (one level: no cycles).
async fn check_parent(tx: &mut Tx, tenant: Uuid, id: Uuid, parent: Option<Uuid>) -> Result<()> {
    let Some(parent) = parent else { return Ok(()) };
    if parent == id {
        return Err(Error::field("parent_id", "self"));
    }
    let row: Option<(Option<Uuid>, Option<DateTime<Utc>>)> = tx
        .fetch_optional(
            "SELECT parent_id, deleted_at FROM tickets WHERE tenant_id = $1 AND id = $2",
            args![tenant, parent],
        )
        .await?;
    match row {
        None => return Err(Error::field("parent_id", "unknown")),
        Some((_, Some(_))) => return Err(Error::field("parent_id", "in_trash")),
        Some((Some(_), _)) => return Err(Error::field("parent_id", "is_child")),
        Some((None, None)) => {}
    }
    let children: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM tickets WHERE tenant_id = $1 AND parent_id = $2",
            args![tenant, id],
        )
        .await?;
    if children > 0 {
        return Err(Error::field("parent_id", "has_children"));
    }
    Ok(())
}

/// A ticket just resolved (or closed) books the follow-up visit its policy asks for.
async fn follow_up(
    tx: &mut Tx,
    ctx: &Ctx,
    id: Uuid,
    from: &str,
    to: &str,
    t: DateTime<Utc>,
) -> Result<()> {
    if clock::done(to) && !clock::done(from) {
        let after: Ticket = record::load(tx, ctx.tenant_id, id).await?;
        crate::visits::on_resolved(tx, ctx.tenant_id, &after, t).await?;
    }
    Ok(())
}

/// Appends to a ticket's event log.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn log(
    tx: &mut Tx,
    ctx: &Ctx,
    id: Uuid,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
    data: Option<serde_json::Value>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO ticket_events (tenant_id, id, ticket_id, kind, from_value, to_value, data, user_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![ctx.tenant_id, new_id(), id, kind, from, to, data, ctx.user_id, at],
    )
    .await?;
    Ok(())
}

pub async fn create(db: &Db, ctx: &Ctx, input: TicketInput) -> Result<Ticket> {
    let mut tx = db.begin().await?;
    let t = create_in(&mut tx, ctx, input).await?;
    tx.commit().await?;
    Ok(t)
}

/// [`create`] inside the caller's transaction (another channel's intake).
pub async fn create_in(tx: &mut Tx, ctx: &Ctx, input: TicketInput) -> Result<Ticket> {
    let scope = ctx.require("tickets", Action::Create)?;
    let mut f = Fields::new();
    let defs = custom_fields::active(tx, ctx.tenant_id, ENTITY).await?;
    apply(tx, ctx, &input, &mut f, &defs, true).await?;
    let mut errs = Errors::default();
    let channel = match &input.channel {
        Some(c) => choice(&mut errs, "channel", c, CHANNELS),
        None => Some("api".to_owned()),
    };
    errs.finish()?;
    let channel = channel.unwrap_or_else(|| "api".into());
    // Routing: the first matching queue takes a ticket no one was named for.
    let mut queue_id = None;
    if input.owner_id.is_none() || input.owner_id == Some(None) {
        let (grade, region, products) =
            crate::routing::facts(tx, ctx.tenant_id, f.account_id, f.contact_id, f.asset_id)
                .await?;
        let text = format!("{} {}", f.subject, f.description.as_deref().unwrap_or(""));
        let facts = crate::routing::Facts {
            category: f.category.clone(),
            grade,
            priority: f.priority.clone(),
            channel: channel.clone(),
            region,
            products,
            language: crate::routing::language_of(&text),
        };
        if let Some(r) = crate::routing::route(tx, ctx.tenant_id, &facts).await? {
            queue_id = Some(r.queue_id);
            if input.team_id.is_none() {
                f.team_id = Some(r.team_id);
            }
            if input.owner_id.is_none() {
                f.owner_id = r.owner_id;
            }
        }
    }
    let id = new_id();
    check_parent(tx, ctx.tenant_id, id, f.parent_id).await?;
    if !ctx.covers(scope, f.owner_id.or(ctx.user_id), f.team_id) {
        return Err(Error::field("owner_id", "out_of_scope"));
    }
    let t = now();
    let number = numbering::next(tx, ctx.tenant_id, "ticket", NUMBER_PATTERN).await?;
    let search = f.search(&number);
    let status = f.status.clone();
    let era: i64 = tx.scalar(
        &format!(
            "INSERT INTO tickets (tenant_id, id, number, subject, description, account_id, contact_id,
             asset_id, category, priority, channel, status, parent_id, resolved_at, closed_at,
             owner_id, team_id, search, grams, era, custom, tags, created_at, updated_at,
             created_by, updated_by, queue_id, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, {}, $20, $21, $22, $23, $24, $25, $26, 1)
         RETURNING era",
            eras::newest_for("tickets", "$1")
        ),
        args![
            ctx.tenant_id,
            id,
            number.as_str(),
            f.subject.as_str(),
            f.description.clone(),
            f.account_id,
            f.contact_id,
            f.asset_id,
            f.category.clone(),
            f.priority.as_str(),
            channel.as_str(),
            status.as_str(),
            f.parent_id,
            clock::done(&status).then_some(t),
            (status == "closed").then_some(t),
            f.owner_id,
            f.team_id,
            search.as_str(),
            normalize::grams(&search),
            serde_json::Value::Object(f.custom.clone()),
            serde_json::json!(f.tags),
            t,
            t,
            ctx.user_id,
            ctx.user_id,
            queue_id
        ],
    )
    .await?;
    eras::count_one(tx, ctx.tenant_id, "tickets", era, id).await?;
    custom_fields::hold_unique(tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    log(tx, ctx, id, "created", None, Some(&channel), None, t).await?;
    if status != "new" {
        log(tx, ctx, id, "status", Some("new"), Some(&status), None, t).await?;
    }
    if let Some(o) = f.owner_id {
        log(tx, ctx, id, "assigned", None, Some(&o.to_string()), None, t).await?;
    }
    crate::sla::evaluate(tx, ctx, id, t).await?;
    let ticket: Ticket = record::load(tx, ctx.tenant_id, id).await?;
    audit::record(tx, ctx, "create", "tickets", Some(id), None, Some(&ticket)).await?;
    if let Some(o) = f.owner_id {
        tell_assigned(tx, ctx, &ticket, o).await?;
    }
    Ok(ticket)
}

async fn tell_assigned(tx: &mut Tx, ctx: &Ctx, t: &Ticket, to: Uuid) -> Result<()> {
    guanxi_platform::notifications::notify(
        tx,
        ctx,
        to,
        guanxi_platform::notifications::Notice {
            kind: "ticket_assigned",
            params: serde_json::json!({"number": t.number, "subject": t.subject}),
            link: Some(ENTITY.link(t.id)),
            entity: Some("tickets"),
            entity_id: Some(t.id),
        },
    )
    .await
    .map(|_| ())
}

/// The resolved/closed timestamps and reopen count after a status change at `t`.
fn status_columns(
    before: &Ticket,
    to: &str,
    t: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64) {
    let resolved = match (clock::done(&before.status), clock::done(to)) {
        (_, false) => None,
        (true, true) => before.resolved_at.or(Some(t)),
        (false, true) => Some(t),
    };
    let closed = match (before.status == "closed", to == "closed") {
        (_, false) => None,
        (true, true) => before.closed_at.or(Some(t)),
        (false, true) => Some(t),
    };
    let reopened = before.reopened + i64::from(clock::done(&before.status) && !clock::done(to));
    (resolved, closed, reopened)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: TicketInput,
) -> Result<Ticket> {
    ctx.require("tickets", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before: Ticket = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    if before.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the ticket is in the trash; restore it first".into(),
        ));
    }
    if before.merged_into_id.is_some() {
        return Err(Error::Conflict(
            "the ticket was merged into another; work on that one".into(),
        ));
    }
    version::check(expected, before.version)?;
    let mut f = Fields::of(&before);
    let defs = custom_fields::active(&mut tx, ctx.tenant_id, ENTITY).await?;
    apply(&mut tx, ctx, &input, &mut f, &defs, false).await?;
    if input.parent_id.is_some() && f.parent_id != before.parent_id {
        check_parent(&mut tx, ctx.tenant_id, id, f.parent_id).await?;
    }
    // Handing it on stays within the caller's scope.
    if f.owner_id != before.owner_id {
        let scope = ctx.require("tickets", Action::Update)?;
        if !ctx.covers(scope, f.owner_id.or(ctx.user_id), f.team_id) {
            return Err(Error::field("owner_id", "out_of_scope"));
        }
    }
    let t = now();
    let (resolved_at, closed_at, reopened) = status_columns(&before, &f.status, t);
    let search = f.search(&before.number);
    version::update(
        &mut tx,
        version::Row {
            table: "tickets",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "subject = $1, description = $2, account_id = $3, contact_id = $4, asset_id = $5,
         category = $6, priority = $7, status = $8, parent_id = $9, resolved_at = $10,
         closed_at = $11, reopened = $12, owner_id = $13, team_id = $14, search = $15,
         grams = $16, custom = $17, tags = $18, updated_at = $19, updated_by = $20",
        args![
            f.subject.as_str(),
            f.description.clone(),
            f.account_id,
            f.contact_id,
            f.asset_id,
            f.category.clone(),
            f.priority.as_str(),
            f.status.as_str(),
            f.parent_id,
            resolved_at,
            closed_at,
            reopened,
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
    .await?;
    if input.custom.is_some() {
        custom_fields::hold_unique(&mut tx, ctx.tenant_id, ENTITY, id, &defs, &f.custom).await?;
    }
    let ev = |a: &str, b: &str| (a != b).then(|| (a.to_owned(), b.to_owned()));
    if let Some((a, b)) = ev(&before.status, &f.status) {
        log(&mut tx, ctx, id, "status", Some(&a), Some(&b), None, t).await?;
    }
    if let Some((a, b)) = ev(&before.priority, &f.priority) {
        log(&mut tx, ctx, id, "priority", Some(&a), Some(&b), None, t).await?;
    }
    if before.category != f.category {
        log(
            &mut tx,
            ctx,
            id,
            "category",
            before.category.as_deref(),
            f.category.as_deref(),
            None,
            t,
        )
        .await?;
    }
    if before.owner_id != f.owner_id {
        let (a, b) = (
            before.owner_id.map(|u| u.to_string()),
            f.owner_id.map(|u| u.to_string()),
        );
        log(
            &mut tx,
            ctx,
            id,
            "assigned",
            a.as_deref(),
            b.as_deref(),
            None,
            t,
        )
        .await?;
    }
    crate::sla::evaluate(&mut tx, ctx, id, t).await?;
    follow_up(&mut tx, ctx, id, &before.status, &f.status, t).await?;
    let after: Ticket = record::load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "tickets",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    if let Some(o) = after.owner_id.filter(|o| Some(*o) != before.owner_id) {
        tell_assigned(&mut tx, ctx, &after, o).await?;
    }
    if after.status != before.status {
        tell_followers(&mut tx, ctx, &after, None).await?;
    }
    tx.commit().await?;
    Ok(after)
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Message {
    pub id: Uuid,
    /// `reply` (public, from an agent), `note` (internal) or `customer` (the customer's words).
    pub kind: String,
    pub body: String,
    pub user_id: Option<Uuid>,
    pub user_name: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub channel: String,
    pub at: DateTime<Utc>,
    /// The Message-ID it was emailed under (a reply sent to the customer).
    pub mail_id: Option<String>,
    /// The files it carried.
    #[sqlx(skip)]
    pub attachments: Vec<crate::attachments::Attachment>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    /// `reply`, `note` or `customer` (required).
    pub kind: Option<String>,
    /// Required.
    pub body: Option<String>,
    /// The status after it (a reply that asks the customer something: `waiting_customer`; a
    /// reply that solves it: `resolved`). Default: a first reply opens a new ticket; the
    /// customer writing reopens a resolved one and ends a wait.
    pub status: Option<String>,
    /// Checked when given: the ticket as the writer saw it.
    pub version: Option<i64>,
    /// For `customer`: which of the customer's people wrote (default: the ticket's contact).
    pub contact_id: Option<Uuid>,
    /// Where it came from (default `manual`; `phone` for what was said on a call).
    pub channel: Option<String>,
    /// A published knowledge-base article to send (a reply or a note): its title and text
    /// follow the body, which may then be left out; the article counts it as used.
    pub article_id: Option<Uuid>,
    /// Uploads waiting on the ticket (`POST …/attachments`) that this message sends (at most
    /// 10): a public reply mails them; a note keeps them internal.
    pub attachment_ids: Option<Vec<Uuid>>,
}

const MESSAGES: &str = "SELECT m.id, m.kind, m.body, m.user_id, u.name AS user_name, m.contact_id,
    c.name AS contact_name, m.channel, m.at, m.mail_id
    FROM ticket_messages m
    LEFT JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
    LEFT JOIN contacts c ON c.tenant_id = m.tenant_id AND c.id = m.contact_id";

/// The ticket's messages, oldest first (the latest 1,000).
pub async fn messages(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Vec<Message>> {
    get(db, ctx, id).await?;
    let mut rows: Vec<Message> = db
        .fetch_all(
            &format!("{MESSAGES} WHERE m.tenant_id = $1 AND m.ticket_id = $2 ORDER BY m.at DESC, m.id DESC LIMIT 1000"),
            args![ctx.tenant_id, id],
        )
        .await?;
    rows.reverse();
    let mut files = crate::attachments::of_ticket(db, ctx.tenant_id, id, false).await?;
    for m in &mut rows {
        let (mine, rest) = files.into_iter().partition(|a| a.message_id == Some(m.id));
        m.attachments = mine;
        files = rest;
    }
    Ok(rows)
}

/// Adds a reply, note or the customer's words to a ticket, moving its status as the message
/// does (and its clocks with it), in one transaction.
pub async fn add_message(db: &Db, ctx: &Ctx, id: Uuid, input: MessageInput) -> Result<Message> {
    let mut tx = db.begin().await?;
    let m = add_message_in(&mut tx, ctx, id, input, None).await?;
    tx.commit().await?;
    Ok(m)
}

/// [`add_message`] with files uploaded in the same request, sent by the message (all of it or
/// nothing: a refused file or message keeps neither).
pub async fn add_message_with(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    mut input: MessageInput,
    files: &[(String, Vec<u8>)],
) -> Result<Message> {
    if files.len() > crate::attachments::MAX_PER_MESSAGE {
        return Err(Error::field("file", "too_many"));
    }
    let mut tx = db.begin().await?;
    if !files.is_empty() {
        ctx.require("tickets", Action::Update)?;
        let _: Ticket = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    }
    let mut ids = input.attachment_ids.take().unwrap_or_default();
    for (name, bytes) in files {
        let a = crate::attachments::add_in(
            &mut tx,
            ctx,
            id,
            crate::attachments::Origin::Staff,
            name,
            bytes,
        )
        .await?;
        ids.push(a.id);
    }
    input.attachment_ids = Some(ids);
    let m = add_message_in(&mut tx, ctx, id, input, None).await?;
    tx.commit().await?;
    Ok(m)
}

/// [`add_message`] inside the caller's transaction; `mail_id` is the Message-ID a customer's
/// mailed words came under (a mail answering it, or a copy of it, finds this ticket).
pub async fn add_message_in(
    tx: &mut Tx,
    ctx: &Ctx,
    id: Uuid,
    input: MessageInput,
    inbound_mail_id: Option<String>,
) -> Result<Message> {
    ctx.require("tickets", Action::Update)?;
    let before: Ticket = record::load_for(&mut *tx, ctx, id, Action::Update).await?;
    let mut errs = Errors::default();
    let kind = match input.kind.as_deref() {
        Some(k) => choice(&mut errs, "kind", k, MESSAGE_KINDS),
        None => {
            errs.add("kind", "required");
            None
        }
    };
    // A knowledge-base article sent in the message: its title and text after what was typed
    // (counted as used).
    let article = match input.article_id {
        Some(a) if input.kind.as_deref() != Some("customer") => {
            Some(crate::articles::use_in_reply(tx, ctx, a).await?)
        }
        Some(_) => {
            errs.add("article_id", "invalid");
            None
        }
        None => None,
    };
    let body = match plain(50_000)(input.body.as_deref().unwrap_or_default()) {
        Ok(b) => match (b.trim(), &article) {
            ("", None) => {
                errs.add("body", "required");
                None
            }
            (typed, None) => Some(typed.to_owned()),
            ("", Some((title, text))) => Some(format!("{title}\n\n{}", text.trim())),
            (typed, Some((title, text))) => Some(format!("{typed}\n\n{title}\n\n{}", text.trim())),
        },
        Err(c) => {
            errs.add("body", c);
            None
        }
    };
    let asked = match &input.status {
        Some(s) => choice(&mut errs, "status", s, STATUSES),
        None => None,
    };
    let channel = match &input.channel {
        Some(c) => choice(&mut errs, "channel", c, CHANNELS),
        None => Some("manual".to_owned()),
    };
    let attachments = input.attachment_ids.clone().unwrap_or_default();
    if attachments.len() > crate::attachments::MAX_PER_MESSAGE {
        errs.add("attachment_ids", "too_many");
    }
    errs.finish()?;
    let (Some(kind), Some(body), Some(channel)) = (kind, body, channel) else {
        return Err(Error::field("kind", "invalid"));
    };
    if before.deleted_at.is_some() {
        return Err(Error::Conflict(
            "the ticket is in the trash; restore it first".into(),
        ));
    }
    if before.merged_into_id.is_some() {
        return Err(Error::Conflict(
            "the ticket was merged into another; write there".into(),
        ));
    }
    if let Some(v) = input.version {
        version::check(v, before.version)?;
    }
    if kind == "customer" && before.status == "closed" && asked.is_none() {
        return Err(Error::Conflict(
            "the ticket is closed; open a new one, or reopen it first".into(),
        ));
    }
    let contact = match (kind.as_str(), input.contact_id) {
        ("customer", Some(c)) => match record::get::<Contact>(&mut *tx, ctx, c).await {
            Ok(_) => Some(c),
            Err(Error::NotFound) => return Err(Error::field("contact_id", "unknown")),
            Err(e) => return Err(e),
        },
        ("customer", None) => before.contact_id,
        _ => None,
    };
    let to = asked.unwrap_or_else(|| match kind.as_str() {
        "reply" if before.status == "new" => "open".to_owned(),
        "customer" if matches!(before.status.as_str(), "waiting_customer" | "resolved") => {
            "open".to_owned()
        }
        _ => before.status.clone(),
    });
    let t = now();
    let mid = new_id();
    let user = (kind != "customer").then_some(ctx.user_id).flatten();
    // A public reply to a customer with an email address goes out by mail, under a Message-ID
    // naming the ticket and the message (a mail answering it finds its ticket), from the
    // outbox: queued in this transaction, so a failed send is retried and never lost.
    let mail_id = if kind == "reply" {
        let to: Option<(Option<String>,)> = match before.contact_id {
            Some(c) => {
                tx.fetch_optional(
                    "SELECT email FROM contacts WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                    args![ctx.tenant_id, c],
                )
                .await?
            }
            None => None,
        };
        to.and_then(|e| e.0)
            .map(|_| format!("ticket.{id}.{mid}@guanxi"))
    } else if kind == "customer" {
        inbound_mail_id
    } else {
        None
    };
    tx.execute(
        "INSERT INTO ticket_messages (tenant_id, id, ticket_id, kind, body, user_id, contact_id, channel, at, mail_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        args![ctx.tenant_id, mid, id, kind.as_str(), body.as_str(), user, contact, channel.as_str(), t, mail_id.clone()],
    )
    .await?;
    crate::attachments::send_with(tx, ctx.tenant_id, id, mid, &kind, &attachments).await?;
    if mail_id.is_some() && kind == "reply" {
        guanxi_platform::jobs::enqueue(
            &mut *tx,
            ctx.tenant_id,
            REPLY_MAIL_JOB,
            &serde_json::json!({"ticket_id": id, "message_id": mid}),
        )
        .await?;
    }
    match kind.as_str() {
        "reply" => {
            log(
                &mut *tx,
                ctx,
                id,
                "reply",
                None,
                None,
                Some(serde_json::json!({"message_id": mid})),
                t,
            )
            .await?
        }
        "customer" => {
            log(
                &mut *tx,
                ctx,
                id,
                "customer_reply",
                None,
                None,
                Some(serde_json::json!({"message_id": mid})),
                t,
            )
            .await?
        }
        _ => {}
    }
    if to != before.status {
        log(
            &mut *tx,
            ctx,
            id,
            "status",
            Some(&before.status),
            Some(&to),
            None,
            t,
        )
        .await?;
    }
    let (resolved_at, closed_at, reopened) = status_columns(&before, &to, t);
    let first = if kind == "reply" {
        before.first_replied_at.or(Some(t))
    } else {
        before.first_replied_at
    };
    // At the version read: the status written here was worked out from it, so a change that
    // landed meanwhile (on PostgreSQL, read before it committed) is refused, not overwritten.
    version::update(
        &mut *tx,
        version::Row {
            table: "tickets",
            tenant_id: ctx.tenant_id,
            id,
        },
        before.version,
        "status = $1, resolved_at = $2, closed_at = $3, reopened = $4, first_replied_at = $5,
         updated_at = $6, updated_by = $7",
        args![
            to.as_str(),
            resolved_at,
            closed_at,
            reopened,
            first,
            t,
            ctx.user_id
        ],
    )
    .await?;
    crate::sla::evaluate(&mut *tx, ctx, id, t).await?;
    follow_up(tx, ctx, id, &before.status, &to, t).await?;
    audit::record(
        &mut *tx,
        ctx,
        "message",
        "tickets",
        Some(id),
        Some(&serde_json::json!({"status": before.status})),
        Some(&serde_json::json!({"kind": kind, "message_id": mid, "status": to})),
    )
    .await?;
    // The owner hears of the customer's words (unless they logged them).
    if let (Some(owner), "customer") = (before.owner_id, kind.as_str()) {
        guanxi_platform::notifications::notify(
            &mut *tx,
            ctx,
            owner,
            guanxi_platform::notifications::Notice {
                kind: "ticket_customer_replied",
                params: serde_json::json!({"number": before.number, "subject": before.subject}),
                link: Some(ENTITY.link(id)),
                entity: Some("tickets"),
                entity_id: Some(id),
            },
        )
        .await?;
    }
    // Followers hear of what the customer said and of what was answered (the owner heard of
    // the customer's words above).
    let skip = (kind == "customer").then_some(before.owner_id).flatten();
    tell_followers(tx, ctx, &before, skip).await?;
    let mut m: Message = tx
        .fetch_one(
            &format!("{MESSAGES} WHERE m.tenant_id = $1 AND m.id = $2"),
            args![ctx.tenant_id, mid],
        )
        .await?;
    if !attachments.is_empty() {
        m.attachments = crate::attachments::of_ticket(&mut *tx, ctx.tenant_id, id, false)
            .await?
            .into_iter()
            .filter(|a| a.message_id == Some(mid))
            .collect();
    }
    Ok(m)
}

/// Tells the ticket's followers (but `skip`, and the writer) that it moved.
async fn tell_followers(tx: &mut Tx, ctx: &Ctx, t: &Ticket, skip: Option<Uuid>) -> Result<()> {
    let followers: Vec<(Uuid,)> = tx
        .fetch_all(
            "SELECT f.user_id FROM ticket_followers f
             JOIN users u ON u.tenant_id = f.tenant_id AND u.id = f.user_id
             WHERE f.tenant_id = $1 AND f.ticket_id = $2 AND u.active = $3 AND u.deleted_at IS NULL",
            args![ctx.tenant_id, t.id, true],
        )
        .await?;
    for (user,) in followers.into_iter().filter(|(u,)| Some(*u) != skip) {
        guanxi_platform::notifications::notify(
            &mut *tx,
            ctx,
            user,
            guanxi_platform::notifications::Notice {
                kind: "ticket_followed",
                params: serde_json::json!({"number": t.number, "subject": t.subject}),
                link: Some(ENTITY.link(t.id)),
                entity: Some("tickets"),
                entity_id: Some(t.id),
            },
        )
        .await?;
    }
    Ok(())
}

/// A colleague following a ticket.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Follower {
    pub user_id: Uuid,
    pub name: String,
    pub since: DateTime<Utc>,
}

/// Who follows the ticket.
pub async fn followers(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Vec<Follower>> {
    get(db, ctx, id).await?;
    db.fetch_all(
        "SELECT f.user_id, u.name, f.created_at AS since FROM ticket_followers f
         JOIN users u ON u.tenant_id = f.tenant_id AND u.id = f.user_id
         WHERE f.tenant_id = $1 AND f.ticket_id = $2 ORDER BY f.created_at, u.name LIMIT 200",
        args![ctx.tenant_id, id],
    )
    .await
}

/// Following a ticket, or not.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowInput {
    /// Default: the caller. Someone else is added or removed by a colleague who may edit
    /// the ticket.
    pub user_id: Option<Uuid>,
    /// Default `true`; `false` stops following.
    pub follow: Option<bool>,
}

/// Starts or stops following (anyone who reads the ticket follows it themselves; adding or
/// removing a colleague takes the right to edit it). Returns the followers.
pub async fn set_following(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    input: FollowInput,
) -> Result<Vec<Follower>> {
    let me = ctx.user_id;
    let user = match (input.user_id, me) {
        (Some(u), _) => u,
        (None, Some(m)) => m,
        (None, None) => return Err(Error::field("user_id", "required")),
    };
    let mut tx = db.begin().await?;
    if Some(user) == me {
        record::get::<Ticket>(&mut tx, ctx, id).await?;
    } else {
        record::load_for::<Ticket>(&mut tx, ctx, id, Action::Update).await?;
        let known: Option<(Uuid,)> = tx
            .fetch_optional(
                "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
                args![ctx.tenant_id, user, true],
            )
            .await?;
        if known.is_none() {
            return Err(Error::field("user_id", "unknown"));
        }
    }
    if input.follow.unwrap_or(true) {
        tx.execute(
            "INSERT INTO ticket_followers (tenant_id, ticket_id, user_id, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            args![ctx.tenant_id, id, user, now()],
        )
        .await?;
    } else {
        tx.execute(
            "DELETE FROM ticket_followers WHERE tenant_id = $1 AND ticket_id = $2 AND user_id = $3",
            args![ctx.tenant_id, id, user],
        )
        .await?;
    }
    tx.commit().await?;
    followers(db, ctx, id).await
}

/// Merges a duplicate into `into`: the duplicate is closed pointing at the survivor, a note
/// on each says so, both logs record it. Its messages stay where they were written.
pub async fn merge(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    into: Option<Uuid>,
    version: Option<i64>,
) -> Result<Ticket> {
    ctx.require("tickets", Action::Update)?;
    let mut tx = db.begin().await?;
    let dup: Ticket = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    if let Some(v) = version {
        version::check(v, dup.version)?;
    }
    let into = match into {
        None => return Err(Error::field("into", "required")),
        Some(i) if i == id => return Err(Error::field("into", "self")),
        Some(i) => i,
    };
    let survivor: Ticket = match record::load_for(&mut tx, ctx, into, Action::Update).await {
        Ok(t) => t,
        Err(Error::NotFound) => return Err(Error::field("into", "unknown")),
        Err(e) => return Err(e),
    };
    for (field, t) in [("id", &dup), ("into", &survivor)] {
        if t.deleted_at.is_some() {
            return Err(Error::field(field, "in_trash"));
        }
        if t.merged_into_id.is_some() {
            return Err(Error::field(field, "merged"));
        }
    }
    let t = now();
    let (resolved_at, closed_at, reopened) = status_columns(&dup, "closed", t);
    version::update(
        &mut tx,
        version::Row {
            table: "tickets",
            tenant_id: ctx.tenant_id,
            id,
        },
        dup.version,
        "status = 'closed', merged_into_id = $1, resolved_at = $2, closed_at = $3, reopened = $4,
         updated_at = $5, updated_by = $6",
        args![into, resolved_at, closed_at, reopened, t, ctx.user_id],
    )
    .await?;
    if dup.status != "closed" {
        log(
            &mut tx,
            ctx,
            id,
            "status",
            Some(&dup.status),
            Some("closed"),
            None,
            t,
        )
        .await?;
    }
    log(
        &mut tx,
        ctx,
        id,
        "merged",
        None,
        Some(&survivor.number),
        Some(serde_json::json!({"into": into})),
        t,
    )
    .await?;
    log(
        &mut tx,
        ctx,
        into,
        "merged",
        Some(&dup.number),
        None,
        Some(serde_json::json!({"from": id})),
        t,
    )
    .await?;
    tx.execute(
        "UPDATE tickets SET updated_at = $1, version = version + 1 WHERE tenant_id = $2 AND id = $3",
        args![t, ctx.tenant_id, into],
    )
    .await?;
    crate::sla::evaluate(&mut tx, ctx, id, t).await?;
    let after: Ticket = record::load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "merge",
        "tickets",
        Some(id),
        Some(&dup),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct TicketEvent {
    /// `created`, `status`, `priority`, `category`, `reply`, `customer_reply`, `assigned`,
    /// `merged` or `sla` (an SLA target's outcome: `from_value` the target, `to_value` `met` or
    /// `missed`, `data` the margin).
    pub kind: String,
    pub from_value: Option<String>,
    pub to_value: Option<String>,
    #[schema(value_type = Object)]
    pub data: Option<sqlx::types::Json<serde_json::Value>>,
    pub user_id: Option<Uuid>,
    pub user_name: Option<String>,
    pub at: DateTime<Utc>,
}

/// The ticket's event log, oldest first (the latest 1,000).
pub async fn events(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Vec<TicketEvent>> {
    get(db, ctx, id).await?;
    let mut rows: Vec<TicketEvent> = db
        .fetch_all(
            "SELECT e.kind, e.from_value, e.to_value, e.data, e.user_id, u.name AS user_name, e.at
             FROM ticket_events e
             LEFT JOIN users u ON u.tenant_id = e.tenant_id AND u.id = e.user_id
             WHERE e.tenant_id = $1 AND e.ticket_id = $2
             ORDER BY e.at DESC, e.id DESC LIMIT 1000",
            args![ctx.tenant_id, id],
        )
        .await?;
    rows.reverse();
    Ok(rows)
}

/// Open tickets of an account at high or urgent priority (sales sees service): how many, and
/// the most pressing few.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pressing {
    pub count: i64,
    pub items: Vec<Ticket>,
}

pub async fn pressing_for_account(db: &Db, ctx: &Ctx, account: Uuid) -> Result<Option<Pressing>> {
    if ctx.can("tickets", Action::Read).is_none() {
        return Ok(None);
    }
    let f = TicketFilter {
        account_id: Some(account),
        status: Some("active".into()),
        priority: Some("high,urgent".into()),
        sort: Some("due".into()),
        limit: Some(5),
        ..Default::default()
    };
    let page = list(db, ctx, &f).await?;
    if page.items.is_empty() {
        return Ok(None);
    }
    let mut q = Sql::new("SELECT COUNT(*) FROM tickets t WHERE t.tenant_id = ");
    q.bind(ctx.tenant_id);
    q.push(" AND t.account_id = ").bind(account);
    q.push(" AND t.deleted_at IS NULL AND t.status NOT IN ('resolved', 'closed') AND t.priority IN ('high', 'urgent')");
    let scope = ctx.require("tickets", Action::Read)?;
    ctx.scope_sql(&mut q, scope, "t.owner_id", "t.team_id");
    let count: i64 = db.scalar(&q.sql, q.args).await?;
    Ok(Some(Pressing {
        count,
        items: page.items,
    }))
}

/// What the reply mail says: the company, the ticket, the reply, and the customer's latest
/// mailed words it answers.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplyMail {
    pub company: String,
    pub locale: String,
    pub number: String,
    pub subject: String,
    pub status: String,
    pub body: String,
    pub recipient: Option<String>,
    pub contact_id: Option<Uuid>,
    pub mail_id: Option<String>,
    pub answers: Option<String>,
    /// The support mailbox answers go to: the one the ticket came in by, else the first.
    pub reply_to: Option<String>,
    /// The mail the ticket began with (answered when the customer has not written since).
    pub first_mail: Option<String>,
    /// The mailbox whose Sent folder keeps a copy of the reply (its own, else the first).
    pub sent_copy_to: Option<Uuid>,
}

/// The reply `message` of `ticket` as its mail (for the outbox job), if it still goes out.
pub async fn reply_mail(
    tx: &mut Tx,
    tenant: Uuid,
    ticket: Uuid,
    message: Uuid,
) -> Result<Option<ReplyMail>> {
    tx.fetch_optional(
        "SELECT n.name AS company, n.locale, t.number, t.subject, t.status, m.body,
                c.email AS recipient, t.contact_id, m.mail_id,
                (SELECT p.mail_id FROM ticket_messages p
                  WHERE p.tenant_id = m.tenant_id AND p.ticket_id = m.ticket_id
                    AND p.kind = 'customer' AND p.mail_id IS NOT NULL AND p.at <= m.at
                  ORDER BY p.at DESC, p.id DESC LIMIT 1) AS answers,
                COALESCE(
                  (SELECT b.address FROM mailboxes b
                    WHERE b.tenant_id = t.tenant_id AND b.id = t.mailbox_id),
                  (SELECT b.address FROM mailboxes b WHERE b.tenant_id = t.tenant_id AND b.enabled = $4
                    ORDER BY b.created_at, b.id LIMIT 1)) AS reply_to,
                t.mail_id AS first_mail,
                COALESCE(
                  (SELECT b.id FROM mailboxes b WHERE b.tenant_id = t.tenant_id
                      AND b.id = t.mailbox_id AND b.sent_folder IS NOT NULL),
                  (SELECT b.id FROM mailboxes b WHERE b.tenant_id = t.tenant_id AND t.mailbox_id IS NULL
                      AND b.enabled = $4 AND b.sent_folder IS NOT NULL
                    ORDER BY b.created_at, b.id LIMIT 1)) AS sent_copy_to
         FROM ticket_messages m
         JOIN tickets t ON t.tenant_id = m.tenant_id AND t.id = m.ticket_id
         JOIN tenants n ON n.id = m.tenant_id
         LEFT JOIN contacts c ON c.tenant_id = t.tenant_id AND c.id = t.contact_id
         WHERE m.tenant_id = $1 AND m.ticket_id = $2 AND m.id = $3",
        args![tenant, ticket, message, true],
    )
    .await
}
