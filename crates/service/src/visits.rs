//! Field service: on-site visits by an engineer and follow-up visits (回访).
//!
//! A visit is booked for an engineer — named, or the best free one with the skill asked (their
//! level first, then the lightest day) — and never double-booked: the engineer's visits are
//! checked for overlap under a key lock on the engineer, so two colleagues booking the same
//! hour at once get one visit and one refusal. A visit belongs to a ticket (its customer
//! taken from it) or directly to a customer (a warranty check). Done, its report goes on the
//! customer's timeline (an activity of kind `visit`) and on the ticket's log.
//!
//! Follow-ups: an SLA policy with `follow_up_days` books one, for the ticket's owner, that many
//! days after its ticket is resolved (once per ticket): at 10:00 in the company's zone, or the
//! owner's next free half hour that day; the warranty sweep (`warranty.rs`) books them
//! before an asset's warranty ends. Service stations are teams (a team whose queue covers
//! regions): their engineers go first for the tickets they took, and a visit carries its
//! engineer's team.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::accounts::Account;
use guanxi_customers::activities::{self, ActivityInput};
use guanxi_customers::contacts::Contact;
use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, keylock, version, Ctx, Error};
use guanxi_records::record::{self, plain};

use crate::tickets::{self, Ticket};

pub const KINDS: &[&str] = &["onsite", "follow_up"];
/// An on-site visit's outcomes, then a follow-up's.
pub const ONSITE_OUTCOMES: &[&str] = &["solved", "unsolved"];
pub const FOLLOW_UP_OUTCOMES: &[&str] = &["satisfied", "unsatisfied", "unreachable"];

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Visit {
    pub id: Uuid,
    /// `onsite` or `follow_up` (回访).
    pub kind: String,
    /// `manual`, `resolved` (booked by the SLA policy when its ticket was resolved) or
    /// `warranty` (booked by the warranty sweep before its asset's warranty ends).
    pub reason: String,
    /// The asset whose warranty end it is for (`warranty`).
    pub asset_id: Option<Uuid>,
    pub asset_name: Option<String>,
    /// The warranty end it is for.
    pub warranty_until: Option<String>,
    pub ticket_id: Option<Uuid>,
    pub ticket_number: Option<String>,
    pub ticket_subject: Option<String>,
    pub account_id: Option<Uuid>,
    pub account_name: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub engineer_id: Option<Uuid>,
    pub engineer_name: Option<String>,
    /// The engineer's team (service station).
    pub team_id: Option<Uuid>,
    /// The skill it needs.
    pub skill: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub minutes: i64,
    pub address: Option<String>,
    /// `scheduled`, `done` or `cancelled`.
    pub status: String,
    /// What the engineer found and did (done visits).
    pub report: Option<String>,
    /// On-site: `solved` or `unsolved`; follow-up: `satisfied`, `unsatisfied` or
    /// `unreachable`.
    pub outcome: Option<String>,
    /// The report on the customer's timeline.
    pub activity_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub version: i64,
}

const SELECT: &str = "SELECT v.id, v.kind, v.reason, v.asset_id, s.name AS asset_name,
    v.warranty_until, v.ticket_id, t.number AS ticket_number,
    t.subject AS ticket_subject, v.account_id, a.name AS account_name, v.contact_id,
    c.name AS contact_name, v.engineer_id, u.name AS engineer_name, v.team_id, v.skill,
    v.starts_at, v.minutes, v.address, v.status, v.report, v.outcome, v.activity_id,
    v.created_at, v.updated_at, v.done_at, v.version
    FROM service_visits v
    LEFT JOIN tickets t ON t.tenant_id = v.tenant_id AND t.id = v.ticket_id
    LEFT JOIN accounts a ON a.tenant_id = v.tenant_id AND a.id = v.account_id
    LEFT JOIN contacts c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id
    LEFT JOIN users u ON u.tenant_id = v.tenant_id AND u.id = v.engineer_id
    LEFT JOIN assets s ON s.tenant_id = v.tenant_id AND s.id = v.asset_id";

/// Book a visit, or move one (`starts_at`, `minutes`, `engineer_id`, `address`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    /// Required to move a visit (or send `If-Match`).
    pub version: Option<i64>,
    /// `onsite` (default) or `follow_up`.
    pub kind: Option<String>,
    /// The ticket it serves (its customer is the visit's).
    pub ticket_id: Option<Uuid>,
    /// The customer, when no ticket is named (one of the three is required).
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// Default: the best free engineer with `skill` when one is asked, else the caller.
    pub engineer_id: Option<Uuid>,
    /// The skill it needs: a named engineer must have it.
    pub skill: Option<String>,
    /// Required.
    pub starts_at: Option<DateTime<Utc>>,
    /// Default 60 (15–1,440).
    pub minutes: Option<i64>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VisitFilter {
    pub engineer_id: Option<Uuid>,
    pub ticket_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// `scheduled`, `done` or `cancelled`.
    pub status: Option<String>,
    /// Starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Starting before.
    pub to: Option<DateTime<Utc>>,
    /// At most 500 (default 200).
    pub limit: Option<i64>,
}

/// The visits the caller may see, by start time: all of them with tickets read in every
/// scope, else those they go on or booked.
pub async fn list(db: &Db, ctx: &Ctx, f: &VisitFilter) -> Result<Vec<Visit>> {
    let scope = ctx.require("tickets", Action::Read)?;
    let mut q = guanxi_platform::db::Sql::new(&format!("{SELECT} WHERE v.tenant_id = "));
    q.bind(ctx.tenant_id);
    if scope != Scope::All {
        let me = ctx.user_id.unwrap_or(Uuid::nil());
        q.push(" AND (v.engineer_id = ").bind(me);
        q.push(" OR v.created_by = ").bind(me).push(")");
    }
    if let Some(e) = f.engineer_id {
        q.push(" AND v.engineer_id = ").bind(e);
    }
    if let Some(t) = f.ticket_id {
        q.push(" AND v.ticket_id = ").bind(t);
    }
    if let Some(a) = f.account_id {
        q.push(" AND v.account_id = ").bind(a);
    }
    if let Some(s) = &f.status {
        if !["scheduled", "done", "cancelled"].contains(&s.as_str()) {
            return Err(Error::field("status", "invalid"));
        }
        q.push(" AND v.status = ").bind(s.as_str());
    }
    if let Some(from) = f.from {
        q.push(" AND v.starts_at >= ").bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND v.starts_at < ").bind(to);
    }
    let limit = f.limit.unwrap_or(200);
    if !(1..=500).contains(&limit) {
        return Err(Error::field("limit", "out_of_range"));
    }
    q.push(&format!(" ORDER BY v.starts_at, v.id LIMIT {limit}"));
    db.fetch_sql(q).await
}

async fn load(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<Visit> {
    tx.fetch_optional(
        &format!("{SELECT} WHERE v.tenant_id = $1 AND v.id = $2"),
        args![tenant, id],
    )
    .await?
    .ok_or(Error::NotFound)
}

/// Whether the caller may see (or, `write`, change) the visit: every one with tickets in every
/// scope, else those they go on or booked.
fn reaches(ctx: &Ctx, v: &Visit, by: Option<Uuid>, action: Action) -> Result<()> {
    let scope = ctx.require("tickets", action)?;
    let me = ctx.user_id;
    if scope == Scope::All || (me.is_some() && (v.engineer_id == me || by == me)) {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

async fn booked_by(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<Option<Uuid>> {
    let r: Option<(Option<Uuid>,)> = tx
        .fetch_optional(
            "SELECT created_by FROM service_visits WHERE tenant_id = $1 AND id = $2",
            args![tenant, id],
        )
        .await?;
    Ok(r.and_then(|r| r.0))
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Visit> {
    let mut tx = db.begin().await?;
    let v = load(&mut tx, ctx.tenant_id, id).await?;
    let by = booked_by(&mut tx, ctx.tenant_id, id).await?;
    reaches(ctx, &v, by, Action::Read)?;
    Ok(v)
}

/// An engineer who could go: their level in the skill asked, and whether they are free then.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Engineer {
    pub user_id: Uuid,
    pub name: String,
    pub team_id: Option<Uuid>,
    /// Their level (1–10) in the skill asked; none when no skill was asked.
    pub level: Option<i64>,
    /// No visit of theirs overlaps the time asked.
    pub free: bool,
    /// A member of the station (team) asked for: the ticket's.
    pub in_station: bool,
    /// Their visits booked that day.
    pub visits_that_day: i64,
}

/// Who could take a visit at `starts_at` for `minutes`: the colleagues who work tickets (with
/// `skill` at any level, when asked), the free ones first, then the members of `station` (the
/// team whose queue took the ticket — a service station covering the customer's region), then
/// by level, then the lightest day.
pub async fn engineers(
    db: &Db,
    ctx: &Ctx,
    skill: Option<&str>,
    station: Option<Uuid>,
    starts_at: DateTime<Utc>,
    minutes: i64,
) -> Result<Vec<Engineer>> {
    let agents = crate::routing::agents(db, ctx).await?;
    let day = (
        starts_at - Duration::hours(12),
        starts_at + Duration::hours(12),
    );
    let booked: Vec<(Uuid, DateTime<Utc>, i64)> = db
        .fetch_all(
            "SELECT engineer_id, starts_at, minutes FROM service_visits
             WHERE tenant_id = $1 AND status = 'scheduled' AND engineer_id IS NOT NULL
               AND starts_at >= $2 AND starts_at < $3",
            args![ctx.tenant_id, day.0 - Duration::days(1), day.1],
        )
        .await?;
    let end = starts_at + Duration::minutes(minutes);
    let mut out: Vec<Engineer> = agents
        .into_iter()
        .filter_map(|a| {
            let level = match skill {
                Some(s) => Some(*a.skills.0.get(s).filter(|l| **l > 0)?),
                None => None,
            };
            let theirs = booked.iter().filter(|(e, _, _)| *e == a.user_id);
            let free = !theirs
                .clone()
                .any(|(_, s, m)| *s < end && *s + Duration::minutes(*m) > starts_at);
            let visits_that_day =
                theirs.filter(|(_, s, _)| *s >= day.0 && *s < day.1).count() as i64;
            Some(Engineer {
                user_id: a.user_id,
                name: a.name,
                team_id: a.team_id,
                level,
                free,
                in_station: station.is_some() && a.team_id == station,
                visits_that_day,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.free
            .cmp(&a.free)
            .then(b.in_station.cmp(&a.in_station))
            .then(b.level.cmp(&a.level))
            .then(a.visits_that_day.cmp(&b.visits_that_day))
            .then(a.name.cmp(&b.name))
    });
    Ok(out)
}

/// Refuses a time the engineer already has a visit in (`starts_at: engineer_busy`); run under
/// the engineer's key lock.
async fn check_free(
    tx: &mut Tx,
    tenant: Uuid,
    engineer: Uuid,
    starts_at: DateTime<Utc>,
    minutes: i64,
    except: Option<Uuid>,
) -> Result<()> {
    keylock::hold(tx, tenant, &[format!("visit-engineer:{engineer}")], now()).await?;
    if busy(tx, tenant, engineer, starts_at, minutes, except).await? {
        return Err(Error::field("starts_at", "engineer_busy"));
    }
    Ok(())
}

/// Whether the engineer has a scheduled visit (other than `except`) overlapping the time.
async fn busy(
    tx: &mut Tx,
    tenant: Uuid,
    engineer: Uuid,
    starts_at: DateTime<Utc>,
    minutes: i64,
    except: Option<Uuid>,
) -> Result<bool> {
    let theirs: Vec<(Uuid, DateTime<Utc>, i64)> = tx
        .fetch_all(
            "SELECT id, starts_at, minutes FROM service_visits
             WHERE tenant_id = $1 AND engineer_id = $2 AND status = 'scheduled'
               AND starts_at >= $3 AND starts_at < $4",
            args![
                tenant,
                engineer,
                starts_at - Duration::days(1),
                starts_at + Duration::minutes(minutes)
            ],
        )
        .await?;
    let end = starts_at + Duration::minutes(minutes);
    Ok(theirs.iter().any(|(id, s, m)| {
        Some(*id) != except && *s < end && *s + Duration::minutes(*m) > starts_at
    }))
}

/// Books a visit (see [`VisitInput`]).
pub async fn schedule(db: &Db, ctx: &Ctx, input: VisitInput) -> Result<Visit> {
    ctx.require("tickets", Action::Update)?;
    let mut errs = Errors::default();
    let kind = input.kind.clone().unwrap_or_else(|| "onsite".into());
    if !KINDS.contains(&kind.as_str()) {
        errs.add("kind", "invalid");
    }
    let minutes = input.minutes.unwrap_or(60);
    if !(15..=1440).contains(&minutes) {
        errs.add("minutes", "out_of_range");
    }
    if input.starts_at.is_none() {
        errs.add("starts_at", "required");
    }
    let address = text(&mut errs, "address", input.address.as_deref(), 500);
    let skill = text(&mut errs, "skill", input.skill.as_deref(), 50);
    if input.ticket_id.is_none() && input.account_id.is_none() && input.contact_id.is_none() {
        errs.add("ticket_id", "required");
    }
    errs.finish()?;
    let starts_at = input.starts_at.unwrap_or_else(now);
    let mut tx = db.begin().await?;
    let (mut account, mut contact) = (input.account_id, input.contact_id);
    let mut station = None;
    if let Some(t) = input.ticket_id {
        let ticket: Ticket = match record::load_for(&mut tx, ctx, t, Action::Update).await {
            Ok(t) => t,
            Err(Error::NotFound) => return Err(Error::field("ticket_id", "unknown")),
            Err(e) => return Err(e),
        };
        account = account.or(ticket.account_id);
        contact = contact.or(ticket.contact_id);
        station = ticket.team_id;
    }
    if let Some(a) = input.account_id {
        if record::get::<Account>(&mut tx, ctx, a).await.is_err() {
            return Err(Error::field("account_id", "unknown"));
        }
    }
    if let Some(c) = input.contact_id {
        if record::get::<Contact>(&mut tx, ctx, c).await.is_err() {
            return Err(Error::field("contact_id", "unknown"));
        }
    }
    let engineer = match (input.engineer_id, &skill) {
        (Some(e), _) => {
            let level = skill_level(&mut tx, ctx.tenant_id, e, skill.as_deref()).await?;
            match level {
                None => return Err(Error::field("engineer_id", "unknown")),
                Some(0) => return Err(Error::field("engineer_id", "lacks_skill")),
                Some(_) => e,
            }
        }
        (None, Some(s)) => {
            // The best free one with the skill (read through this transaction's connection).
            drop(tx);
            let pick = engineers(db, ctx, Some(s), station, starts_at, minutes)
                .await?
                .into_iter()
                .find(|e| e.free)
                .ok_or_else(|| Error::field("engineer_id", "none_free"))?;
            tx = db.begin().await?;
            pick.user_id
        }
        (None, None) => ctx
            .user_id
            .ok_or_else(|| Error::field("engineer_id", "required"))?,
    };
    check_free(&mut tx, ctx.tenant_id, engineer, starts_at, minutes, None).await?;
    let team: Option<(Option<Uuid>,)> = tx
        .fetch_optional(
            "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, engineer],
        )
        .await?;
    let id = new_id();
    let t = now();
    tx.execute(
        "INSERT INTO service_visits (tenant_id, id, kind, reason, ticket_id, account_id, contact_id,
             engineer_id, team_id, skill, starts_at, minutes, address, status, created_at,
             created_by, updated_at, version)
         VALUES ($1, $2, $3, 'manual', $4, $5, $6, $7, $8, $9, $10, $11, $12, 'scheduled', $13,
             $14, $13, 1)",
        args![
            ctx.tenant_id,
            id,
            kind.as_str(),
            input.ticket_id,
            account,
            contact,
            engineer,
            team.and_then(|t| t.0),
            skill,
            starts_at,
            minutes,
            address,
            t,
            ctx.user_id
        ],
    )
    .await?;
    if let Some(ticket) = input.ticket_id {
        tickets::log(
            &mut tx,
            ctx,
            ticket,
            "visit",
            None,
            Some("scheduled"),
            Some(serde_json::json!({"visit_id": id, "kind": kind, "starts_at": starts_at})),
            t,
        )
        .await?;
    }
    let v = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "service_visits",
        Some(id),
        None,
        Some(&v),
    )
    .await?;
    tx.commit().await?;
    Ok(v)
}

/// The engineer's level in `skill` (0 without it; any level when no skill is asked); none for
/// someone who is not an active colleague.
async fn skill_level(
    tx: &mut Tx,
    tenant: Uuid,
    user: Uuid,
    skill: Option<&str>,
) -> Result<Option<i64>> {
    type Skills = sqlx::types::Json<std::collections::BTreeMap<String, i64>>;
    let row: Option<(Option<Skills>,)> = tx
        .fetch_optional(
            "SELECT p.skills FROM users u
             LEFT JOIN agent_profiles p ON p.tenant_id = u.tenant_id AND p.id = u.id
             WHERE u.tenant_id = $1 AND u.id = $2 AND u.active = $3 AND u.deleted_at IS NULL",
            args![tenant, user, true],
        )
        .await?;
    Ok(row.map(|(skills,)| match skill {
        None => 1,
        Some(s) => skills.and_then(|k| k.0.get(s).copied()).unwrap_or(0),
    }))
}

fn text(errs: &mut Errors, field: &str, v: Option<&str>, max: usize) -> Option<String> {
    match v.map(plain(max)) {
        Some(Ok(t)) if !t.trim().is_empty() => Some(t.trim().to_owned()),
        Some(Err(c)) => {
            errs.add(field, c);
            None
        }
        _ => None,
    }
}

/// Moves a scheduled visit (time, length, engineer, address) at the version read.
pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: VisitInput,
) -> Result<Visit> {
    let expected = version::expected(if_match, input.version)?;
    let mut errs = Errors::default();
    for (field, given) in [
        ("kind", input.kind.is_some()),
        ("ticket_id", input.ticket_id.is_some()),
        ("account_id", input.account_id.is_some()),
        ("contact_id", input.contact_id.is_some()),
    ] {
        if given {
            errs.add(field, "fixed");
        }
    }
    let address = text(&mut errs, "address", input.address.as_deref(), 500);
    if input.minutes.is_some_and(|m| !(15..=1440).contains(&m)) {
        errs.add("minutes", "out_of_range");
    }
    errs.finish()?;
    let mut tx = db.begin().await?;
    let before = for_change(&mut tx, ctx, id, Some(expected)).await?;
    if before.status != "scheduled" {
        return Err(Error::Conflict(
            "only a scheduled visit can be moved".into(),
        ));
    }
    let starts_at = input.starts_at.unwrap_or(before.starts_at);
    let minutes = input.minutes.unwrap_or(before.minutes);
    let engineer = match input.engineer_id {
        Some(e) => match skill_level(&mut tx, ctx.tenant_id, e, before.skill.as_deref()).await? {
            None => return Err(Error::field("engineer_id", "unknown")),
            Some(0) => return Err(Error::field("engineer_id", "lacks_skill")),
            Some(_) => Some(e),
        },
        None => before.engineer_id,
    };
    if let Some(e) = engineer {
        check_free(&mut tx, ctx.tenant_id, e, starts_at, minutes, Some(id)).await?;
    }
    version::update(
        &mut tx,
        version::Row {
            table: "service_visits",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "starts_at = $1, minutes = $2, engineer_id = $3, address = $4, updated_at = $5",
        args![
            starts_at,
            minutes,
            engineer,
            address.or(before.address.clone()),
            now()
        ],
    )
    .await?;
    changed(tx, ctx, "update", &before).await
}

/// The visit's end: its report and outcome, or its cancellation.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoneInput {
    pub version: Option<i64>,
    /// What was found and done (required to finish a visit).
    pub report: Option<String>,
    /// On-site: `solved` or `unsolved`; follow-up: `satisfied`, `unsatisfied` or
    /// `unreachable` (required to finish a visit).
    pub outcome: Option<String>,
}

/// Finishes a visit: its report on the customer's timeline (or the ticket's, for a visit with
/// no customer) and on the ticket's log.
pub async fn finish(db: &Db, ctx: &Ctx, id: Uuid, input: DoneInput) -> Result<Visit> {
    let mut tx = db.begin().await?;
    let before = for_change(&mut tx, ctx, id, input.version).await?;
    let mut errs = Errors::default();
    let report = text(&mut errs, "report", input.report.as_deref(), 20_000);
    if report.is_none() && !errs.0.iter().any(|e| e.field == "report") {
        errs.add("report", "required");
    }
    let allowed = if before.kind == "follow_up" {
        FOLLOW_UP_OUTCOMES
    } else {
        ONSITE_OUTCOMES
    };
    match input.outcome.as_deref() {
        Some(o) if allowed.contains(&o) => {}
        Some(_) => errs.add("outcome", "invalid"),
        None => errs.add("outcome", "required"),
    }
    errs.finish()?;
    if before.status != "scheduled" {
        return Err(Error::Conflict(format!("the visit is {}", before.status)));
    }
    let outcome = input.outcome.unwrap_or_default();
    let report = report.unwrap_or_default();
    let t = now();
    let locale: (String,) = tx
        .fetch_one(
            "SELECT locale FROM tenants WHERE id = $1",
            args![ctx.tenant_id],
        )
        .await?;
    let title = match (before.kind.as_str(), locale.0.as_str()) {
        ("follow_up", "en") => "Follow-up visit",
        ("follow_up", "zh-TW") => "回訪",
        ("follow_up", _) => "回访",
        (_, "en") => "On-site visit",
        (_, "zh-TW") => "上門服務",
        _ => "上门服务",
    };
    let subject = match &before.ticket_number {
        Some(n) => format!("{title} · {n}"),
        None => title.to_owned(),
    };
    let about = match (before.account_id, before.contact_id, before.ticket_id) {
        (None, None, Some(t)) => Some((tickets::ENTITY, t)),
        _ => None,
    };
    let activity = activities::create_in(
        &mut tx,
        ctx,
        about,
        ActivityInput {
            kind: Some("visit".into()),
            subject: Some(subject),
            body: Some(Some(format!("{report}\n\n({outcome})"))),
            account_id: if about.is_none() {
                before.account_id
            } else {
                None
            },
            contact_id: if about.is_none() {
                before.contact_id
            } else {
                None
            },
            occurred_at: Some(t),
            ..Default::default()
        },
    )
    .await?;
    version::update(
        &mut tx,
        version::Row {
            table: "service_visits",
            tenant_id: ctx.tenant_id,
            id,
        },
        before.version,
        "status = 'done', report = $1, outcome = $2, activity_id = $3, done_at = $4,
         updated_at = $4",
        args![report.as_str(), outcome.as_str(), activity.id, t],
    )
    .await?;
    on_ticket(&mut tx, ctx, &before, &outcome, t).await?;
    changed(tx, ctx, "finish", &before).await
}

/// The visit as the caller may change it, at the version read when one is given.
async fn for_change(tx: &mut Tx, ctx: &Ctx, id: Uuid, version: Option<i64>) -> Result<Visit> {
    let v = load(tx, ctx.tenant_id, id).await?;
    let by = booked_by(tx, ctx.tenant_id, id).await?;
    reaches(ctx, &v, by, Action::Update)?;
    if let Some(expected) = version {
        version::check(expected, v.version)?;
    }
    Ok(v)
}

/// Reads the changed visit back, audits the change and commits.
async fn changed(mut tx: Tx, ctx: &Ctx, action: &str, before: &Visit) -> Result<Visit> {
    let after = load(&mut tx, ctx.tenant_id, before.id).await?;
    audit::record(
        &mut tx,
        ctx,
        action,
        "service_visits",
        Some(before.id),
        Some(before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A scheduled visit's end (`to`: its outcome, or `cancelled`) on its ticket's log.
async fn on_ticket(tx: &mut Tx, ctx: &Ctx, v: &Visit, to: &str, at: DateTime<Utc>) -> Result<()> {
    if let Some(ticket) = v.ticket_id {
        tickets::log(
            tx,
            ctx,
            ticket,
            "visit",
            Some("scheduled"),
            Some(to),
            Some(serde_json::json!({"visit_id": v.id, "kind": v.kind})),
            at,
        )
        .await?;
    }
    Ok(())
}

/// Cancels a scheduled visit (its time freed).
pub async fn cancel(db: &Db, ctx: &Ctx, id: Uuid, version: Option<i64>) -> Result<Visit> {
    let mut tx = db.begin().await?;
    let before = for_change(&mut tx, ctx, id, version).await?;
    if before.status != "scheduled" {
        return Err(Error::Conflict(format!("the visit is {}", before.status)));
    }
    let t = now();
    version::update(
        &mut tx,
        version::Row {
            table: "service_visits",
            tenant_id: ctx.tenant_id,
            id,
        },
        before.version,
        "status = 'cancelled', updated_at = $1",
        args![t],
    )
    .await?;
    on_ticket(&mut tx, ctx, &before, "cancelled", t).await?;
    changed(tx, ctx, "cancel", &before).await
}

/// A ticket just resolved: the follow-up its SLA policy asks for (`follow_up_days`), for its
/// owner, once per ticket. Inside the resolving transaction.
/// The company's time zone.
pub(crate) async fn zone_of(tx: &mut Tx, tenant: Uuid) -> Result<chrono_tz::Tz> {
    let (zone,): (String,) = tx
        .fetch_one("SELECT time_zone FROM tenants WHERE id = $1", args![tenant])
        .await?;
    Ok(zone.parse().unwrap_or(chrono_tz::Asia::Shanghai))
}

/// A follow-up call's half hour on `day`: 10:00 in the company's zone, or the engineer's next
/// free half hour until 18:00 (follow-ups of one day do not pile on one minute). Holds the
/// engineer's key lock for the caller's insert.
pub(crate) async fn follow_up_slot(
    tx: &mut Tx,
    tenant: Uuid,
    tz: chrono_tz::Tz,
    day: chrono::NaiveDate,
    engineer: Option<Uuid>,
) -> Result<DateTime<Utc>> {
    let mut starts_at = day
        .and_hms_opt(10, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(now);
    if let Some(e) = engineer {
        keylock::hold(tx, tenant, &[format!("visit-engineer:{e}")], now()).await?;
        for _ in 0..16 {
            if !busy(tx, tenant, e, starts_at, 30, None).await? {
                break;
            }
            starts_at += Duration::minutes(30);
        }
    }
    Ok(starts_at)
}

pub async fn on_resolved(
    tx: &mut Tx,
    tenant: Uuid,
    ticket: &Ticket,
    at: DateTime<Utc>,
) -> Result<()> {
    let Some(policy) = ticket.sla_policy_id else {
        return Ok(());
    };
    let days: Option<(Option<i64>,)> = tx
        .fetch_optional(
            "SELECT follow_up_days FROM sla_policies WHERE tenant_id = $1 AND id = $2",
            args![tenant, policy],
        )
        .await?;
    let Some(days) = days.and_then(|d| d.0) else {
        return Ok(());
    };
    let booked: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM service_visits WHERE tenant_id = $1 AND ticket_id = $2 AND reason = 'resolved'",
            args![tenant, ticket.id],
        )
        .await?;
    if booked > 0 {
        return Ok(());
    }
    let tz = zone_of(tx, tenant).await?;
    let day = (at + Duration::days(days)).with_timezone(&tz).date_naive();
    let starts_at = follow_up_slot(tx, tenant, tz, day, ticket.owner_id).await?;
    tx.execute(
        "INSERT INTO service_visits (tenant_id, id, kind, reason, ticket_id, account_id, contact_id,
             engineer_id, team_id, starts_at, minutes, status, created_at, updated_at, version)
         VALUES ($1, $2, 'follow_up', 'resolved', $3, $4, $5, $6, $7, $8, 30, 'scheduled', $9, $9, 1)",
        args![
            tenant,
            new_id(),
            ticket.id,
            ticket.account_id,
            ticket.contact_id,
            ticket.owner_id,
            ticket.team_id,
            starts_at,
            at
        ],
    )
    .await?;
    Ok(())
}
