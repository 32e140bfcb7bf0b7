//! The timeline: every call, email, meeting, visit, note and task logged against an account or
//! contact — who, when, what was said or promised — plus the record's own history (created,
//! ownership transfers, trash, restore, merges) in one list per customer. Tasks have an
//! assignee, a due time and an emailed reminder (a job in the outbox, cancelled when the task
//! is done first).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortField, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, jobs, validate, version, Ctx, Error};

use crate::accounts::Account;
use crate::contacts::Contact;
use guanxi_records::record::{self, apply_text, plain};
use guanxi_records::Entity;

/// What can be logged.
pub const KINDS: &[&str] = &["call", "email", "meeting", "visit", "note", "task"];

/// The record's own history shown in its timeline (audit actions).
pub const HISTORY: &[&str] = &[
    "create", "transfer", "delete", "restore", "merge", "unmerge", "touch", "claim", "release",
    "return", "assign", "grade",
];

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Activity {
    pub id: Uuid,
    /// `call`, `email`, `meeting`, `visit`, `note` or `task`.
    pub kind: String,
    pub subject: String,
    /// What was said or promised.
    pub body: Option<String>,
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    /// When it happened (for a task: when it was set).
    pub occurred_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub remind_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<Uuid>,
    pub assignee_name: Option<String>,
    /// Who logged it.
    pub owner_id: Uuid,
    pub owner_name: String,
    pub team_id: Option<Uuid>,
    /// The other record it is about, by entity (`leads`), when not only an account or contact.
    pub record_type: Option<String>,
    pub record_id: Option<Uuid>,
    /// That record's name (in task lists).
    pub record_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// Log an activity, or change one. `kind`, `account_id` and `contact_id` are set on create.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    pub kind: Option<String>,
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub body: Option<Option<String>>,
    /// At least one of `account_id` and `contact_id`; a contact's account is added for you.
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// Default: now.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Tasks only.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// Tasks only: when to email the assignee.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub remind_at: Option<Option<DateTime<Utc>>>,
    /// Tasks only; default the creator.
    pub assignee_id: Option<Uuid>,
    /// Tasks only: mark done (`true`) or open again (`false`).
    pub done: Option<bool>,
}

const SELECT: &str =
    "SELECT ac.id, ac.kind, ac.subject, ac.body, ac.account_id, a.name AS account_name,
    ac.contact_id, c.name AS contact_name, ac.occurred_at, ac.due_at, ac.remind_at, ac.done_at,
    ac.assignee_id, asg.name AS assignee_name, ac.owner_id, o.name AS owner_name, ac.team_id,
    ac.record_type, ac.record_id, CAST(NULL AS TEXT) AS record_name, ac.created_at, ac.updated_at, ac.deleted_at, ac.version
    FROM activities ac
    LEFT JOIN users o ON o.tenant_id = ac.tenant_id AND o.id = ac.owner_id
    LEFT JOIN users asg ON asg.tenant_id = ac.tenant_id AND asg.id = ac.assignee_id
    LEFT JOIN accounts a ON a.tenant_id = ac.tenant_id AND a.id = ac.account_id
    LEFT JOIN contacts c ON c.tenant_id = ac.tenant_id AND c.id = ac.contact_id";
// (`a` and `c` are also what the task list's visibility condition reads.)

async fn load(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Activity> {
    tx.fetch_one(
        &format!("{SELECT} WHERE ac.tenant_id = $1 AND ac.id = $2"),
        args![tenant_id, id],
    )
    .await
}

/// An activity is visible to whoever may read the account, contact or other record it was
/// logged against.
async fn check_visible(db: &Db, ctx: &Ctx, a: &Activity) -> Result<()> {
    ctx.require("activities", Action::Read)?;
    let seen = match (a.account_id, a.contact_id) {
        (Some(id), _) if record::get::<Account>(db, ctx, id).await.is_ok() => true,
        (_, Some(id)) if record::get::<Contact>(db, ctx, id).await.is_ok() => true,
        _ => match (a.record_type.as_deref(), a.record_id) {
            (Some(table), Some(id)) => record::readable(db, ctx, table, id).await?.is_some(),
            _ => false,
        },
    };
    if seen {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Activity> {
    let a: Activity = db
        .fetch_one(
            &format!("{SELECT} WHERE ac.tenant_id = $1 AND ac.id = $2 AND ac.deleted_at IS NULL"),
            args![ctx.tenant_id, id],
        )
        .await?;
    check_visible(db, ctx, &a).await?;
    Ok(a)
}

/// Whether the caller may change this activity: within their scope, or the task's assignee
/// (who may only complete it or open it again — [`assignee_only`]).
fn may_change(ctx: &Ctx, a: &Activity, action: Action) -> bool {
    is_assignee(ctx, a) && action == Action::Update || in_scope(ctx, a, action)
}

fn is_assignee(ctx: &Ctx, a: &Activity) -> bool {
    a.kind == "task" && a.assignee_id.is_some() && a.assignee_id == ctx.user_id
}

fn in_scope(ctx: &Ctx, a: &Activity, action: Action) -> bool {
    ctx.can("activities", action)
        .is_some_and(|s| ctx.covers(s, Some(a.owner_id), a.team_id))
}

/// Whether the caller may change every field of this activity (not only complete it).
pub fn may_edit(ctx: &Ctx, a: &Activity) -> bool {
    in_scope(ctx, a, Action::Update)
}

/// Whether the caller may delete this activity.
pub fn may_delete(ctx: &Ctx, a: &Activity) -> bool {
    in_scope(ctx, a, Action::Delete)
}

/// The caller may change this task only as its assignee: its done mark, nothing else.
fn assignee_only(ctx: &Ctx, a: &Activity) -> bool {
    is_assignee(ctx, a) && !in_scope(ctx, a, Action::Update)
}

/// The editable columns.
#[derive(Debug, Clone, Default, PartialEq)]
struct Fields {
    subject: String,
    body: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    remind_at: Option<DateTime<Utc>>,
    done_at: Option<DateTime<Utc>>,
    assignee_id: Option<Uuid>,
}

fn apply(errs: &mut Errors, kind: &str, input: &ActivityInput, f: &mut Fields) {
    if let Some(s) = &input.subject {
        match validate::name(s) {
            Ok(s) => f.subject = s,
            Err(c) => errs.add("subject", c),
        }
    } else if f.subject.is_empty() {
        errs.add("subject", "required");
    }
    apply_text(errs, "body", &input.body, &mut f.body, plain(20_000));
    if let Some(t) = input.occurred_at {
        f.occurred_at = Some(t);
    }
    let task = kind == "task";
    for (field, given) in [
        ("due_at", input.due_at.is_some()),
        ("remind_at", input.remind_at.is_some()),
        ("assignee_id", input.assignee_id.is_some()),
        ("done", input.done.is_some()),
    ] {
        if given && !task {
            errs.add(field, "only_for_tasks");
        }
    }
    if !task {
        return;
    }
    if let Some(d) = input.due_at {
        f.due_at = d;
    }
    if let Some(r) = input.remind_at {
        f.remind_at = r;
    }
    if let Some(a) = input.assignee_id {
        f.assignee_id = Some(a);
    }
    match input.done {
        Some(true) if f.done_at.is_none() => f.done_at = Some(now()),
        Some(false) => f.done_at = None,
        _ => {}
    }
}

/// The assignee must be an active user of the tenant.
async fn check_assignee(tx: &mut Tx, ctx: &Ctx, errs: &mut Errors, id: Option<Uuid>) -> Result<()> {
    if let Some(id) = id {
        let n: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
                args![ctx.tenant_id, id, true],
            )
            .await?;
        if n == 0 {
            errs.add("assignee_id", "unknown");
        }
    }
    Ok(())
}

/// Re-plans a task's reminder: cancels the queued one and queues a new email to the assignee
/// when the task is open and its reminder time is still ahead. Returns the new job id.
async fn plan_reminder(
    tx: &mut Tx,
    ctx: &Ctx,
    old_job: Option<Uuid>,
    f: &Fields,
) -> Result<Option<Uuid>> {
    if let Some(job) = old_job {
        jobs::cancel(tx, ctx.tenant_id, job).await?;
    }
    let (Some(at), Some(assignee), None) = (f.remind_at, f.assignee_id, f.done_at) else {
        return Ok(None);
    };
    if at <= now() {
        return Ok(None);
    }
    let (email, name, locale, tz): (String, String, String, String) = tx
        .fetch_one(
            "SELECT u.email, u.name, COALESCE(u.locale, t.locale), t.time_zone FROM users u
             JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $2",
            args![ctx.tenant_id, assignee],
        )
        .await?;
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let due = f
        .due_at
        .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string());
    let zh = locale.starts_with("zh");
    let (subject, text) = match (zh, due) {
        (true, Some(d)) => (
            format!("任务提醒：{}", f.subject),
            format!("{name}，您好：\n\n任务「{}」将于 {d} 到期。\n", f.subject),
        ),
        (true, None) => (
            format!("任务提醒：{}", f.subject),
            format!("{name}，您好：\n\n请记得完成任务「{}」。\n", f.subject),
        ),
        (false, Some(d)) => (
            format!("Reminder: {}", f.subject),
            format!("Hello {name},\n\nThe task \"{}\" is due {d}.\n", f.subject),
        ),
        (false, None) => (
            format!("Reminder: {}", f.subject),
            format!(
                "Hello {name},\n\nA reminder of your task \"{}\".\n",
                f.subject
            ),
        ),
    };
    let job = jobs::enqueue_at(
        tx,
        ctx.tenant_id,
        jobs::KIND_EMAIL,
        &jobs::Email {
            to: email,
            subject,
            text,
            message_id: None,
            in_reply_to: None,
            reply_to: None,
            then: None,
            attachments: Vec::new(),
        },
        at,
    )
    .await?;
    Ok(Some(job))
}

/// Logs an activity against an account or contact (`account_id`, `contact_id`).
pub async fn create(db: &Db, ctx: &Ctx, input: ActivityInput) -> Result<Activity> {
    let mut tx = db.begin().await?;
    let a = create_in(&mut tx, ctx, None, input).await?;
    tx.commit().await?;
    Ok(a)
}

/// Logs an activity inside the caller's transaction: against an account or contact, or about
/// another record (`about`: a lead, by its entity) the caller may read — then `account_id` and
/// `contact_id` are not given.
pub async fn create_in(
    tx: &mut Tx,
    ctx: &Ctx,
    about: Option<(Entity, Uuid)>,
    input: ActivityInput,
) -> Result<Activity> {
    let scope = ctx.require("activities", Action::Create)?;
    let mut errs = Errors::default();
    let kind = match input.kind.as_deref().map(str::trim) {
        Some(k) if KINDS.contains(&k) => k.to_owned(),
        Some(_) => {
            errs.add("kind", "invalid");
            String::new()
        }
        None => {
            errs.add("kind", "required");
            String::new()
        }
    };
    // The record it is about must be one the caller can see.
    let mut account_id = input.account_id;
    if let Some((entity, id)) = about {
        match record::readable(&mut *tx, ctx, entity.table(), id).await? {
            None => return Err(Error::NotFound),
            Some(true) => errs.add("record_id", "in_trash"),
            Some(false) => {}
        }
        for (field, given) in [
            ("account_id", input.account_id.is_some()),
            ("contact_id", input.contact_id.is_some()),
        ] {
            if given {
                errs.add(field, "read_only");
            }
        }
    }
    if let Some(c) = input.contact_id {
        match record::get::<Contact>(&mut *tx, ctx, c).await {
            Ok(contact) if contact.deleted_at.is_some() => errs.add("contact_id", "in_trash"),
            Ok(contact) => account_id = account_id.or(contact.account_id),
            Err(_) => errs.add("contact_id", "unknown"),
        }
    }
    if let Some(a) = input.account_id {
        match record::get::<Account>(&mut *tx, ctx, a).await {
            Ok(account) if account.deleted_at.is_some() => errs.add("account_id", "in_trash"),
            Ok(_) => {}
            Err(_) => errs.add("account_id", "unknown"),
        }
    }
    if input.account_id.is_none() && input.contact_id.is_none() && about.is_none() {
        errs.add("account_id", "required");
    }
    let mut f = Fields::default();
    apply(&mut errs, &kind, &input, &mut f);
    if kind == "task" && f.assignee_id.is_none() {
        f.assignee_id = ctx.user_id;
    }
    let owner = ctx.user_id.ok_or(Error::Forbidden)?;
    check_assignee(tx, ctx, &mut errs, f.assignee_id).await?;
    errs.finish()?;
    let (team,): (Option<Uuid>,) = tx
        .fetch_one(
            "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, owner],
        )
        .await?;
    if !ctx.covers(scope, Some(owner), team) {
        return Err(Error::Forbidden);
    }
    let id = new_id();
    let job = plan_reminder(tx, ctx, None, &f).await?;
    let t = now();
    tx.execute(
        "INSERT INTO activities (tenant_id, id, kind, subject, body, account_id, contact_id, occurred_at,
             due_at, remind_at, done_at, assignee_id, reminder_job_id, owner_id, team_id, created_at,
             updated_at, created_by, updated_by, version, custom, record_type, record_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 1, $20,
             $21, $22)",
        args![
            ctx.tenant_id, id, kind.as_str(), f.subject.as_str(), f.body.clone(), account_id,
            input.contact_id, f.occurred_at.unwrap_or(t), f.due_at, f.remind_at, f.done_at,
            f.assignee_id, job, owner, team, t, t, ctx.user_id, ctx.user_id, serde_json::json!({}),
            about.map(|(e, _)| e.table()), about.map(|(_, id)| id)
        ],
    )
    .await?;
    // A touch logged (not a task planned) is the account's follow-up: its pool's "no follow-up
    // for N days" clock starts again. Not a change of the account (no version).
    if let (Some(account), false) = (account_id, kind == "task") {
        let at = f.occurred_at.unwrap_or(t);
        tx.execute(
            "UPDATE accounts SET followed_at = $1 WHERE tenant_id = $2 AND id = $3
               AND (followed_at IS NULL OR followed_at < $1)",
            args![at, ctx.tenant_id, account],
        )
        .await?;
    }
    let a = load(tx, ctx.tenant_id, id).await?;
    audit::record(tx, ctx, "create", "activities", Some(id), None, Some(&a)).await?;
    Ok(a)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: ActivityInput,
) -> Result<Activity> {
    let expected = version::expected(if_match, input.version)?;
    let before = get(db, ctx, id).await?;
    if !may_change(ctx, &before, Action::Update) {
        return Err(Error::Forbidden);
    }
    let mut errs = Errors::default();
    if input.kind.as_deref().is_some_and(|k| k != before.kind) {
        errs.add("kind", "read_only");
    }
    if input
        .account_id
        .is_some_and(|a| Some(a) != before.account_id)
    {
        errs.add("account_id", "read_only");
    }
    if input
        .contact_id
        .is_some_and(|c| Some(c) != before.contact_id)
    {
        errs.add("contact_id", "read_only");
    }
    let mut f = Fields {
        subject: before.subject.clone(),
        body: before.body.clone(),
        occurred_at: Some(before.occurred_at),
        due_at: before.due_at,
        remind_at: before.remind_at,
        done_at: before.done_at,
        assignee_id: before.assignee_id,
    };
    let unchanged = f.clone();
    apply(&mut errs, &before.kind, &input, &mut f);
    if assignee_only(ctx, &before)
        && (Fields {
            done_at: unchanged.done_at,
            ..f.clone()
        }) != unchanged
    {
        // An assignee outside the task's scope completes it (or opens it again); retitling,
        // rescheduling or handing it to someone else is for those who may change it.
        return Err(Error::Forbidden);
    }
    let mut tx = db.begin().await?;
    check_assignee(&mut tx, ctx, &mut errs, f.assignee_id).await?;
    errs.finish()?;
    version::check(expected, before.version)?;
    let (old_job,): (Option<Uuid>,) = tx
        .fetch_one(
            "SELECT reminder_job_id FROM activities WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
    let job = plan_reminder(&mut tx, ctx, old_job, &f).await?;
    version::update(
        &mut tx,
        version::Row { table: "activities", tenant_id: ctx.tenant_id, id },
        expected,
        "subject = $1, body = $2, occurred_at = $3, due_at = $4, remind_at = $5,
                 done_at = $6, assignee_id = $7, reminder_job_id = $8, updated_at = $9, updated_by = $10",
        args![
            f.subject.as_str(), f.body.clone(), f.occurred_at, f.due_at, f.remind_at, f.done_at,
            f.assignee_id, job, now(), ctx.user_id
        ],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "activities",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    let before = get(db, ctx, id).await?;
    if !may_change(ctx, &before, Action::Delete) {
        return Err(Error::Forbidden);
    }
    let mut tx = db.begin().await?;
    let (job,): (Option<Uuid>,) = tx
        .fetch_one(
            "SELECT reminder_job_id FROM activities WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
    if let Some(job) = job {
        jobs::cancel(&mut tx, ctx.tenant_id, job).await?;
    }
    let t = now();
    tx.execute(
        "UPDATE activities SET deleted_at = $1, updated_at = $1, updated_by = $2, version = version + 1
         WHERE tenant_id = $3 AND id = $4",
        args![t, ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "activities",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}

// ---- the timeline --------------------------------------------------------------------------

/// One line of a customer's timeline: an activity, or a change to the record itself.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct TimelineEntry {
    /// An activity kind (`call`, `task`, …) or a history entry (`create`, `transfer`,
    /// `delete`, `restore`, `merge`).
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    /// The activity's id, or the audit event's.
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub subject: Option<String>,
    pub body: Option<String>,
    /// Who did it.
    pub actor_name: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub assignee_name: Option<String>,
    /// For an order: its total (minor units) and currency; its number is the `subject` and its
    /// status the `body`.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// For history entries: the record after the change (e.g. the new owner).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<sqlx::types::Json<serde_json::Value>>,
    /// For an update: the fields it changed (`amount`, `stage_id`, `custom.tier`, `contacts`…),
    /// by name.
    #[sqlx(skip)]
    pub changed: Vec<String>,
    /// The record before the change (to work out `changed`).
    #[serde(skip)]
    pub before: Option<sqlx::types::Json<serde_json::Value>>,
}

/// What an audit event's update changed: the top-level fields whose values differ (custom
/// fields one by one), without bookkeeping (version, timestamps, search text, card position).
pub fn changed_fields(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    const BOOKKEEPING: &[&str] = &[
        "version",
        "updated_at",
        "updated_by",
        "search",
        "grams",
        "era",
        "name_key",
        "position",
        "stage_since",
        "reached_stage_id",
        "closed_at",
        "seq",
        "owner_name",
        "team_name",
        "account_name",
        "contact_name",
        "stage_name",
        // Derived from what did change.
        "weighted",
        "phone_e164",
        "grade",
        "score_reasons",
    ];
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for (k, v) in a {
        if BOOKKEEPING.contains(&k.as_str()) || b.get(k) == Some(v) {
            continue;
        }
        match (
            k.as_str(),
            b.get(k).and_then(|x| x.as_object()),
            v.as_object(),
        ) {
            ("custom", Some(old), Some(new)) => {
                let keys = new
                    .keys()
                    .chain(old.keys().filter(|k| !new.contains_key(*k)));
                for key in keys {
                    if old.get(key) != new.get(key) {
                        out.push(format!("custom.{key}"));
                    }
                }
            }
            _ => out.push(k.clone()),
        }
    }
    out
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimelineFilter {
    /// Comma-separated types to keep, e.g. `call,visit,transfer`.
    pub types: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const TIMELINE_SORT: &[SortField] = &[("at", "x.at", SortKind::Time)];

/// Whose timeline.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Account(Uuid),
    Contact(Uuid),
    /// Any other declared record (a lead): its activities and its whole audit history.
    Record(Entity, Uuid),
}

impl Subject {
    /// The activities of this subject, as a condition on `activities ac` (`$1` tenant, `$2` id).
    fn activities_sql(self) -> String {
        match self {
            Subject::Account(_) => "ac.account_id = $2".into(),
            Subject::Contact(_) => "ac.contact_id = $2".into(),
            Subject::Record(e, _) => {
                format!("ac.record_type = '{}' AND ac.record_id = $2", e.table())
            }
        }
    }

    fn id(self) -> Uuid {
        match self {
            Subject::Account(id) | Subject::Contact(id) | Subject::Record(_, id) => id,
        }
    }
}

/// The key facts of a customer's activities for the top of its page: open tasks and the last
/// touch (the newest call, email, meeting or visit).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub open_tasks: i64,
    pub last_touch: Option<DateTime<Utc>>,
}

/// [`Facts`] of a customer the caller may read (checked by the caller's record page).
pub async fn facts(db: &Db, ctx: &Ctx, who: Subject) -> Result<Facts> {
    if ctx.can("activities", Action::Read).is_none() {
        return Ok(Facts::default());
    }
    let of = who.activities_sql();
    let (open_tasks, last_touch): (i64, Option<DateTime<Utc>>) = db
        .fetch_one(
            &format!(
                "SELECT (SELECT COUNT(*) FROM activities ac WHERE ac.tenant_id = $1 AND {of}
                     AND ac.kind = 'task' AND ac.done_at IS NULL AND ac.deleted_at IS NULL),
                 (SELECT MAX(ac.occurred_at) FROM activities ac WHERE ac.tenant_id = $1 AND {of}
                     AND ac.kind IN ('call', 'email', 'meeting', 'visit') AND ac.deleted_at IS NULL)"
            ),
            args![ctx.tenant_id, who.id()],
        )
        .await?;
    Ok(Facts {
        open_tasks,
        last_touch,
    })
}

/// The customer's timeline, newest first. Needs read access to the customer.
pub async fn timeline(
    db: &Db,
    ctx: &Ctx,
    who: Subject,
    f: &TimelineFilter,
) -> Result<Page<TimelineEntry>> {
    ctx.require("activities", Action::Read)?;
    let id = who.id();
    // Accounts and contacts show their own history; another record shows all of it.
    let history = HISTORY
        .iter()
        .map(|h| format!("'{h}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let (column, entity, history) = match who {
        Subject::Account(id) => {
            record::get::<Account>(db, ctx, id).await?;
            (
                "account_id",
                "accounts",
                format!("AND e.action IN ({history})"),
            )
        }
        Subject::Contact(id) => {
            record::get::<Contact>(db, ctx, id).await?;
            (
                "contact_id",
                "contacts",
                format!("AND e.action IN ({history})"),
            )
        }
        Subject::Record(e, id) => {
            if record::readable(db, ctx, e.table(), id).await?.is_none() {
                return Err(Error::NotFound);
            }
            ("record_id", e.table(), String::new())
        }
    };
    let of = who.activities_sql();
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: Some("-at".into()),
    };
    let sort = page.sort(TIMELINE_SORT)?;
    // Orders appear to those who may read orders.
    let orders = if ctx.can("orders", Action::Read).is_some() && column != "record_id" {
        format!(
            "UNION ALL
             SELECT 'order', o.id, o.ordered_at, o.number, o.status, o.created_by, o.contact_id, NULL,
                 NULL, NULL, o.total, o.currency, NULL, NULL
             FROM orders o WHERE o.tenant_id = $1 AND o.{column} = $2 AND o.deleted_at IS NULL"
        )
    } else {
        String::new()
    };
    let mut q = Sql::new(&format!(
        "SELECT x.type, x.id, x.at, x.subject, x.body, actor.name AS actor_name, x.contact_id,
             c.name AS contact_name, x.due_at, x.done_at, asg.name AS assignee_name, x.amount,
             x.currency, x.detail, x.before
         FROM (
             SELECT ac.kind AS type, ac.id, ac.occurred_at AS at, ac.subject, ac.body,
                 ac.owner_id AS actor_id, ac.contact_id, ac.due_at, ac.done_at, ac.assignee_id,
                 CAST(NULL AS BIGINT) AS amount, CAST(NULL AS TEXT) AS currency, NULL AS detail,
                 NULL AS before
             FROM activities ac WHERE ac.tenant_id = $1 AND {of} AND ac.deleted_at IS NULL
             UNION ALL
             SELECT e.action, e.id, e.at, NULL, NULL, e.actor_id, NULL, NULL, NULL, NULL, NULL, NULL,
                 e.after, CASE WHEN e.action = 'update' THEN e.before END
             FROM audit_events e WHERE e.tenant_id = $1 AND e.entity = '{entity}' AND e.entity_id = $2
                 {history}
             {orders}
         ) x
         LEFT JOIN users actor ON actor.tenant_id = $1 AND actor.id = x.actor_id
         LEFT JOIN users asg ON asg.tenant_id = $1 AND asg.id = x.assignee_id
         LEFT JOIN contacts c ON c.tenant_id = $1 AND c.id = x.contact_id
         WHERE 1 = 1"
    ));
    q.args = args![ctx.tenant_id, id];
    if let Some(types) = f.types.as_deref() {
        let wanted: Vec<&str> = types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let known = |t: &str| match who {
            Subject::Record(..) => t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            _ => KINDS.contains(&t) || HISTORY.contains(&t) || t == "order",
        };
        if wanted.iter().any(|t| !known(t)) {
            return Err(Error::field("types", "invalid"));
        }
        if !wanted.is_empty() {
            q.push(" AND x.type IN ").bind_list(wanted.iter().copied());
        }
    }
    let limit = page.apply(&mut q, &sort, "x.id")?;
    let mut rows: Vec<TimelineEntry> = db.fetch_sql(q).await?;
    for e in &mut rows {
        if let (Some(before), Some(after)) = (e.before.take(), &e.detail) {
            e.changed = changed_fields(&before.0, &after.0);
        }
    }
    Ok(Page::from_rows(rows, limit, |e| {
        sort.cursor(guanxi_platform::db::sqlite_time(&e.at), e.id)
    }))
}

// ---- my tasks ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// Default: the caller ("my tasks").
    pub assignee_id: Option<Uuid>,
    /// `open` (default), `done` or `all`.
    pub status: Option<String>,
    /// Only tasks due before this instant (e.g. the end of today).
    pub due_before: Option<DateTime<Utc>>,
    /// 1–500, default 100. Ordered by due time, undated last.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub items: Vec<Activity>,
}

/// Tasks by due time. Other people's tasks need read access to activities of all or the team.
/// `records`: the entities besides accounts and contacts a task may be about.
pub async fn tasks(db: &Db, ctx: &Ctx, records: &[Entity], f: &TaskFilter) -> Result<TaskList> {
    ctx.require("activities", Action::Read)?;
    let limit = match f.limit {
        None => 100,
        Some(n) if (1..=500).contains(&n) => n,
        Some(_) => return Err(Error::field("limit", "out_of_range")),
    };
    let assignee = f.assignee_id.or(ctx.user_id).ok_or(Error::Forbidden)?;
    // The name of the other record a task is about, from its entity's table.
    let mut names = String::from("CASE WHEN ac.record_type IS NULL THEN NULL");
    for e in records {
        let (t, title) = (e.table(), e.title());
        names.push_str(&format!(
            " WHEN ac.record_type = '{t}' THEN (SELECT r.{title} FROM {t} r
                WHERE r.tenant_id = ac.tenant_id AND r.id = ac.record_id)"
        ));
    }
    names.push_str(" END AS record_name");
    let mut q = Sql::new(&SELECT.replace("CAST(NULL AS TEXT) AS record_name", &names));
    q.push(" WHERE ac.tenant_id = ").bind(ctx.tenant_id);
    q.push(" AND ac.kind = 'task' AND ac.deleted_at IS NULL AND ac.assignee_id = ")
        .bind(assignee);
    match f.status.as_deref().unwrap_or("open") {
        "open" => {
            q.push(" AND ac.done_at IS NULL");
        }
        "done" => {
            q.push(" AND ac.done_at IS NOT NULL");
        }
        "all" => {}
        _ => return Err(Error::field("status", "invalid")),
    }
    if let Some(b) = f.due_before {
        q.push(" AND ac.due_at < ").bind(b);
    }
    // Each task is about a customer: keep those the caller can see (the rule of Ctx::covers,
    // in SQL, so the list is one query).
    q.push(" AND (");
    match ctx.can("accounts", Action::Read) {
        Some(scope) => {
            q.push("(a.id IS NOT NULL");
            ctx.scope_sql(&mut q, scope, "a.owner_id", "a.team_id");
            q.push(")");
        }
        None => {
            q.push("1 = 0");
        }
    }
    q.push(" OR ");
    match ctx.can("contacts", Action::Read) {
        Some(scope) => {
            q.push("(c.id IS NOT NULL");
            ctx.scope_sql(&mut q, scope, "c.owner_id", "c.team_id");
            q.push(")");
        }
        None => {
            q.push("1 = 0");
        }
    }
    record::readable_sql(
        ctx,
        &mut q,
        records,
        "ac.record_type",
        "ac.record_id",
        "ac.tenant_id",
    );
    q.push(")");
    q.push(" ORDER BY ac.due_at IS NULL, ac.due_at, ac.id LIMIT ")
        .bind(limit);
    let items: Vec<Activity> = db.fetch_sql(q).await?;
    Ok(TaskList { items })
}

/// Gives an open task to someone else inside the caller's transaction (a rep's book moving to
/// colleagues): the reminder is re-planned for the new assignee; the change is audited.
pub(crate) async fn reassign_task(tx: &mut Tx, ctx: &Ctx, id: Uuid, assignee: Uuid) -> Result<()> {
    let before = load(tx, ctx.tenant_id, id).await?;
    let f = Fields {
        subject: before.subject.clone(),
        body: before.body.clone(),
        occurred_at: Some(before.occurred_at),
        due_at: before.due_at,
        remind_at: before.remind_at,
        done_at: before.done_at,
        assignee_id: Some(assignee),
    };
    let (old_job,): (Option<Uuid>,) = tx
        .fetch_one(
            "SELECT reminder_job_id FROM activities WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
    let job = plan_reminder(tx, ctx, old_job, &f).await?;
    tx.execute(
        "UPDATE activities SET assignee_id = $1, reminder_job_id = $2, updated_at = $3, updated_by = $4,
             version = version + 1 WHERE tenant_id = $5 AND id = $6",
        args![assignee, job, now(), ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    let after = load(tx, ctx.tenant_id, id).await?;
    audit::record(
        tx,
        ctx,
        "update",
        "activities",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await
}

#[cfg(test)]
mod changed_tests {
    use super::changed_fields;
    use serde_json::json;

    #[test]
    fn an_update_names_what_it_changed_and_no_bookkeeping() {
        let before = json!({"name": "甲", "amount": 1, "version": 3, "updated_at": "x",
            "custom": {"tier": "A", "gone": 1}, "tags": []});
        let after = json!({"name": "甲", "amount": 2, "version": 4, "updated_at": "y",
            "custom": {"tier": "B", "new": true}, "tags": ["重点"]});
        assert_eq!(
            changed_fields(&before, &after),
            ["amount", "custom.new", "custom.tier", "custom.gone", "tags"]
        );
        assert!(changed_fields(&before, &before).is_empty());
        assert!(changed_fields(&json!([1]), &after).is_empty());
    }
}
