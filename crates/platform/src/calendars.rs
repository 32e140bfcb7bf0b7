//! Business calendars as the company keeps them: a company default and one per team at most,
//! each a time zone, a week of working periods and dated holidays and make-up days, entered by
//! an admin or imported from an iCal file. [`schedule_for`] is what every deadline asks for;
//! the arithmetic is [`crate::calendar`].

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::calendar::{check_periods, Day, DayKind, Period, Schedule, Week, WEEKDAYS};
use crate::ctx::Ctx;
use crate::db::{Conn, Db, Tx};
use crate::error::{Error, Errors, Result};
use crate::page::Page;
use crate::perms::Action;
use crate::time::{new_id, now};
use crate::{validate, version};

/// At most this many dated exceptions in one calendar (years of holidays and make-up days).
pub const MAX_DAYS: usize = 1000;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Calendar {
    pub id: Uuid,
    pub name: String,
    /// IANA time zone the periods and dates are read in.
    pub time_zone: String,
    /// The team whose calendar this is; none for a company calendar.
    pub team_id: Option<Uuid>,
    /// The company's calendar: used for every team without its own.
    pub is_default: bool,
    #[schema(value_type = Week)]
    pub week: sqlx::types::Json<Week>,
    /// Holidays and make-up working days, by date.
    #[schema(value_type = Vec<Day>)]
    pub days: sqlx::types::Json<Vec<Day>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Calendar {
    pub fn schedule(&self) -> Schedule {
        let tz = self.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
        Schedule::new(tz, &self.week, &self.days)
    }
}

/// A week as typed: periods per weekday as `HH:MM-HH:MM` strings.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeekInput {
    pub mon: Option<Vec<String>>,
    pub tue: Option<Vec<String>>,
    pub wed: Option<Vec<String>>,
    pub thu: Option<Vec<String>>,
    pub fri: Option<Vec<String>>,
    pub sat: Option<Vec<String>>,
    pub sun: Option<Vec<String>>,
}

impl WeekInput {
    /// From the weekdays' periods, Monday first.
    pub fn from_days(d: [Option<Vec<String>>; 7]) -> WeekInput {
        let [mon, tue, wed, thu, fri, sat, sun] = d;
        WeekInput {
            mon,
            tue,
            wed,
            thu,
            fri,
            sat,
            sun,
        }
    }

    fn days(&self) -> [&Option<Vec<String>>; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }
}

/// A dated exception as typed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayInput {
    /// `YYYY-MM-DD`.
    pub date: Option<String>,
    /// `holiday` or `workday`.
    pub kind: Option<String>,
    pub name: Option<String>,
    /// A make-up day's own periods (else the week's normal day).
    pub periods: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarInput {
    /// Required on update (or send `If-Match`); ignored on create.
    pub version: Option<i64>,
    pub name: Option<String>,
    /// IANA name; the company's zone when left out on create.
    pub time_zone: Option<String>,
    /// The team this calendar serves (`null`: a company calendar).
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub team_id: Option<Option<Uuid>>,
    pub is_default: Option<bool>,
    /// Replaces the week (weekdays left out do not work). Monday to Friday 09:00–12:00 and
    /// 13:30–18:00 when left out on create.
    pub week: Option<WeekInput>,
    /// Replaces every dated exception.
    pub days: Option<Vec<DayInput>>,
}

const COLS: &str =
    "id, name, time_zone, team_id, is_default, week, days, created_at, updated_at, version";

fn parse_periods(errs: &mut Errors, field: &str, raw: &[String]) -> Vec<Period> {
    let mut out = Vec::with_capacity(raw.len());
    for p in raw {
        match Period::parse(p) {
            Ok(p) => out.push(p),
            Err(code) => {
                errs.add(field, code);
                return vec![];
            }
        }
    }
    if let Err(code) = check_periods(&mut out) {
        errs.add(field, code);
    }
    out
}

/// Checks a week as typed (each weekday's field named `week.<day>`).
pub fn parse_week(errs: &mut Errors, w: &WeekInput) -> Week {
    let mut week = Week::default();
    for ((slot, raw), key) in week.days_mut().into_iter().zip(w.days()).zip(WEEKDAYS) {
        if let Some(raw) = raw {
            *slot = parse_periods(errs, &format!("week.{key}"), raw);
        }
    }
    week
}

/// Checks dated exceptions as typed (fields named `days.<n>.<field>`, `n` from 0); one per
/// date, sorted by date.
pub fn parse_days(errs: &mut Errors, raw: &[DayInput]) -> Vec<Day> {
    if raw.len() > MAX_DAYS {
        errs.add("days", "too_many_days");
        return vec![];
    }
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    for (i, d) in raw.iter().enumerate() {
        let f = |name: &str| format!("days.{i}.{name}");
        let date = match d.date.as_deref().map(str::trim) {
            None | Some("") => {
                errs.add(&f("date"), "required");
                None
            }
            Some(s) => match NaiveDate::parse_from_str(&validate::fold_width(s), "%Y-%m-%d") {
                Ok(date) if days.contains_key(&date) => {
                    errs.add(&f("date"), "duplicate_date");
                    None
                }
                Ok(date) => Some(date),
                Err(_) => {
                    errs.add(&f("date"), "invalid_date");
                    None
                }
            },
        };
        let kind = match d.kind.as_deref().map(str::trim) {
            Some("holiday") | Some("休") => Some(DayKind::Holiday),
            Some("workday") | Some("班") => Some(DayKind::Workday),
            None | Some("") => {
                errs.add(&f("kind"), "required");
                None
            }
            Some(_) => {
                errs.add(&f("kind"), "unknown_day_kind");
                None
            }
        };
        let name = d.name.as_deref().unwrap_or("").trim().to_owned();
        if name.chars().count() > 200 {
            errs.add(&f("name"), "too_long");
        }
        let periods = d
            .periods
            .as_ref()
            .map(|p| parse_periods(errs, &f("periods"), p));
        if kind == Some(DayKind::Holiday) && periods.as_ref().is_some_and(|p| !p.is_empty()) {
            errs.add(&f("periods"), "holiday_has_no_periods");
        }
        if let (Some(date), Some(kind)) = (date, kind) {
            days.insert(
                date,
                Day {
                    date,
                    kind,
                    name,
                    periods: periods.filter(|_| kind == DayKind::Workday),
                },
            );
        }
    }
    days.into_values().collect()
}

fn check_zone(errs: &mut Errors, tz: &str) -> String {
    match tz.trim().parse::<Tz>() {
        Ok(z) => z.name().to_owned(),
        Err(_) => {
            errs.add("time_zone", "unknown_time_zone");
            String::new()
        }
    }
}

async fn load(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Calendar> {
    tx.fetch_one(
        &format!(
            "SELECT {COLS} FROM calendars WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        ),
        args![tenant_id, id],
    )
    .await
}

/// The job queued whenever a calendar is created, changed, imported into or deleted, in the
/// same transaction: whatever counts time on calendars (ticket SLAs) re-evaluates from it.
pub const CHANGED_JOB: &str = "calendar_changed";

async fn calendar_changed(tx: &mut Tx, tenant: Uuid) -> Result<()> {
    crate::jobs::enqueue(tx, tenant, CHANGED_JOB, &serde_json::json!({})).await
}

pub async fn list(
    db: &Db,
    ctx: &Ctx,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<Page<Calendar>> {
    ctx.require("calendars", Action::Read)?;
    Page::by_id(
        db,
        &format!("SELECT {COLS} FROM calendars WHERE tenant_id = $1 AND deleted_at IS NULL"),
        args![ctx.tenant_id],
        limit,
        cursor,
        |c: &Calendar| c.id,
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Calendar> {
    ctx.require("calendars", Action::Read)?;
    db.fetch_one(
        &format!(
            "SELECT {COLS} FROM calendars WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        ),
        args![ctx.tenant_id, id],
    )
    .await
}

/// The schedule of the calendar `calendar` if it is still there, else [`schedule_for`] the team
/// (a policy naming its own calendar: ticket SLAs).
pub async fn schedule_of(
    conn: impl Into<Conn<'_>>,
    tenant_id: Uuid,
    calendar: Option<Uuid>,
    team_id: Option<Uuid>,
) -> Result<Schedule> {
    let mut conn = conn.into();
    let key = format!(
        "{}:{}",
        calendar.map(|c| c.to_string()).unwrap_or_default(),
        team_id.map(|t| t.to_string()).unwrap_or_default()
    );
    conn.settings()
        .cached(
            &SCHEDULE,
            tenant_id,
            &key,
            read_schedule(&mut conn, tenant_id, calendar, team_id),
        )
        .await
}

/// The schedule deadlines of `team`'s work are measured on: the team's calendar, else the
/// company default, else Monday to Friday office hours in the company's time zone.
pub async fn schedule_for(
    conn: impl Into<Conn<'_>>,
    tenant_id: Uuid,
    team_id: Option<Uuid>,
) -> Result<Schedule> {
    schedule_of(conn, tenant_id, None, team_id).await
}

/// The calendar deadlines are counted on, read by every deadline (a new lead's, each ticket
/// evaluation's): cached in the process (a calendar, or the tenant's time zone when there is
/// none).
const SCHEDULE: crate::settings::Setting = crate::settings::Setting {
    name: "calendars.schedule_of",
    tables: &["calendars", "tenants"],
};

async fn read_schedule(
    conn: &mut Conn<'_>,
    tenant_id: Uuid,
    calendar: Option<Uuid>,
    team_id: Option<Uuid>,
) -> Result<Schedule> {
    if let Some(id) = calendar {
        let found: Option<Calendar> = conn
            .fetch_optional(
                &format!(
                    "SELECT {COLS} FROM calendars WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
                ),
                args![tenant_id, id],
            )
            .await?;
        if let Some(c) = found {
            return Ok(c.schedule());
        }
    }
    let found: Option<Calendar> = conn
        .fetch_optional(
            &format!(
                "SELECT {COLS} FROM calendars WHERE tenant_id = $1 AND deleted_at IS NULL
                   AND (team_id = $2 OR is_default = $3)
                 ORDER BY is_default ASC LIMIT 1"
            ),
            args![tenant_id, team_id.unwrap_or(Uuid::nil()), true],
        )
        .await?;
    if let Some(c) = found {
        return Ok(c.schedule());
    }
    let tz: String = conn
        .scalar(
            "SELECT time_zone FROM tenants WHERE id = $1",
            args![tenant_id],
        )
        .await?;
    Ok(Schedule::new(
        tz.parse().unwrap_or(chrono_tz::Asia::Shanghai),
        &Week::office(),
        &[],
    ))
}

async fn check_team(tx: &mut Tx, tenant_id: Uuid, team: Option<Uuid>) -> Result<()> {
    if let Some(team) = team {
        let n: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                args![tenant_id, team],
            )
            .await?;
        if n == 0 {
            return Err(Error::field("team_id", "unknown"));
        }
    }
    Ok(())
}

/// What a write found taken: the name, the team's calendar, the company default.
async fn check_taken(tx: &mut Tx, tenant_id: Uuid, c: &Calendar) -> Result<()> {
    let taken: Vec<(String, Option<Uuid>, bool)> = tx
        .fetch_all(
            "SELECT name, team_id, is_default FROM calendars WHERE tenant_id = $1 AND deleted_at IS NULL AND id <> $2
               AND (name = $3 OR team_id = $4)",
            args![tenant_id, c.id, &c.name, c.team_id.unwrap_or(Uuid::nil())],
        )
        .await?;
    let mut errs = Errors::default();
    if taken.iter().any(|t| t.0 == c.name) {
        errs.add("name", "taken");
    }
    if c.team_id.is_some() && taken.iter().any(|t| t.1 == c.team_id) {
        errs.add("team_id", "team_has_calendar");
    }
    errs.finish()
}

/// Applies `input` over `c` (a new calendar's defaults, or the stored one).
fn apply(c: &mut Calendar, input: &CalendarInput, creating: bool) -> Result<()> {
    let mut errs = Errors::default();
    if creating || input.name.is_some() {
        if let Some(n) = errs.required("name", &input.name) {
            match validate::name(n) {
                Ok(n) => c.name = n,
                Err(code) => errs.add("name", code),
            }
        }
    }
    if let Some(tz) = &input.time_zone {
        c.time_zone = check_zone(&mut errs, tz);
    }
    if let Some(team) = input.team_id {
        c.team_id = team;
    }
    if let Some(d) = input.is_default {
        c.is_default = d;
    }
    if c.is_default && c.team_id.is_some() {
        errs.add("is_default", "team_calendar_not_default");
    }
    if let Some(w) = &input.week {
        c.week.0 = parse_week(&mut errs, w);
    }
    if let Some(d) = &input.days {
        c.days.0 = parse_days(&mut errs, d);
    }
    errs.finish()
}

/// Creates a calendar. Made the default, it takes over from the previous default.
pub async fn create(db: &Db, ctx: &Ctx, input: CalendarInput) -> Result<Calendar> {
    ctx.require("calendars", Action::Create)?;
    let mut tx = db.begin().await?;
    let zone: String = tx
        .scalar(
            "SELECT time_zone FROM tenants WHERE id = $1",
            args![ctx.tenant_id],
        )
        .await?;
    let t = now();
    let mut c = Calendar {
        id: new_id(),
        name: String::new(),
        time_zone: zone,
        team_id: None,
        is_default: false,
        week: sqlx::types::Json(Week::office()),
        days: sqlx::types::Json(vec![]),
        created_at: t,
        updated_at: t,
        version: 1,
    };
    apply(&mut c, &input, true)?;
    check_team(&mut tx, ctx.tenant_id, c.team_id).await?;
    check_taken(&mut tx, ctx.tenant_id, &c).await?;
    if c.is_default {
        take_default(&mut tx, ctx, c.id).await?;
    }
    tx.execute(
        "INSERT INTO calendars (tenant_id, id, name, time_zone, team_id, is_default, week, days, created_at, updated_at, created_by, updated_by, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)",
        args![ctx.tenant_id, c.id, &c.name, &c.time_zone, c.team_id, c.is_default, json(&c.week.0)?, json(&c.days.0)?, t, t, ctx.user_id, ctx.user_id],
    )
    .await?;
    let c = load(&mut tx, ctx.tenant_id, c.id).await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "calendars",
        Some(c.id),
        None,
        Some(&c),
    )
    .await?;
    calendar_changed(&mut tx, ctx.tenant_id).await?;
    tx.commit().await?;
    Ok(c)
}

fn json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(v).map_err(anyhow::Error::from)?)
}

/// The previous default stops being one (audited), so `id` can take its place.
async fn take_default(tx: &mut Tx, ctx: &Ctx, id: Uuid) -> Result<()> {
    let before: Option<Calendar> = tx
        .fetch_optional(
            &format!("SELECT {COLS} FROM calendars WHERE tenant_id = $1 AND is_default = $2 AND deleted_at IS NULL AND id <> $3"),
            args![ctx.tenant_id, true, id],
        )
        .await?;
    if let Some(before) = before {
        // Another request making its own calendar the default at the same moment changed the
        // old default first: a conflict for this one (the unique index would refuse it anyway).
        version::update(
            &mut *tx,
            version::Row {
                table: "calendars",
                tenant_id: ctx.tenant_id,
                id: before.id,
            },
            before.version,
            "is_default = $1, updated_at = $2, updated_by = $3",
            args![false, now(), ctx.user_id],
        )
        .await
        .map_err(|e| match e {
            Error::PreconditionFailed { .. } => Error::Conflict(
                "another calendar became the company default at the same time".into(),
            ),
            e => e,
        })?;
        let after = load(tx, ctx.tenant_id, before.id).await?;
        audit::record(
            tx,
            ctx,
            "update",
            "calendars",
            Some(before.id),
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    Ok(())
}

/// Stores `after` over `before` (same id), version-checked and audited.
async fn save(
    tx: &mut Tx,
    ctx: &Ctx,
    before: &Calendar,
    after: &Calendar,
    expected: i64,
) -> Result<Calendar> {
    check_team(tx, ctx.tenant_id, after.team_id).await?;
    check_taken(tx, ctx.tenant_id, after).await?;
    if after.is_default && !before.is_default {
        take_default(tx, ctx, after.id).await?;
    }
    version::update(
        &mut *tx,
        version::Row {
            table: "calendars",
            tenant_id: ctx.tenant_id,
            id: after.id,
        },
        expected,
        "name = $1, time_zone = $2, team_id = $3, is_default = $4, week = $5, days = $6, updated_at = $7, updated_by = $8",
        args![&after.name, &after.time_zone, after.team_id, after.is_default, json(&after.week.0)?, json(&after.days.0)?, now(), ctx.user_id],
    )
    .await?;
    let stored = load(tx, ctx.tenant_id, after.id).await?;
    audit::record(
        tx,
        ctx,
        "update",
        "calendars",
        Some(after.id),
        Some(before),
        Some(&stored),
    )
    .await?;
    Ok(stored)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: CalendarInput,
) -> Result<Calendar> {
    ctx.require("calendars", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    let mut after = before.clone();
    apply(&mut after, &input, false)?;
    version::check(expected, before.version)?;
    let c = save(&mut tx, ctx, &before, &after, expected).await?;
    calendar_changed(&mut tx, ctx.tenant_id).await?;
    tx.commit().await?;
    Ok(c)
}

/// Moves a calendar to the trash. Deadlines then use the next calendar in line.
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    ctx.require("calendars", Action::Delete)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    version::update(
        &mut tx,
        version::Row {
            table: "calendars",
            tenant_id: ctx.tenant_id,
            id,
        },
        before.version,
        "deleted_at = $1, updated_at = $1, updated_by = $2",
        args![now(), ctx.user_id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "calendars",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    calendar_changed(&mut tx, ctx.tenant_id).await?;
    tx.commit().await
}

/// How `kind` is decided for each imported event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// A make-up working day when its title says so (`班`, `补班`, `上班`, `workday`,
    /// `working day`), otherwise a holiday.
    #[default]
    Auto,
    Holiday,
    Workday,
}

/// What an iCal import changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IcalImport {
    pub calendar: Calendar,
    /// Dates not in the calendar before.
    pub added: usize,
    /// Dates whose kind or name the file changed.
    pub changed: usize,
    /// Dates the file had as the calendar already did.
    pub unchanged: usize,
    /// Events not read as whole days (with a reason each), at most 100.
    pub skipped: Vec<String>,
}

/// Reads the whole-day events of an iCal file as dated exceptions (`VEVENT` with `DTSTART` as a
/// date, `DTEND` exclusive or `DURATION:P<n>D`; yearly recurrences for three years on).
pub fn read_ical(text: &str, kind: ImportKind, this_year: i32) -> Result<(Vec<Day>, Vec<String>)> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(Error::field("file", "control_characters"));
    }
    let mut days = Vec::new();
    let mut skipped = Vec::new();
    let mut found_calendar = false;
    for cal in ical::IcalParser::new(text.as_bytes()) {
        let cal = cal.map_err(|_| Error::field("file", "invalid_ical"))?;
        found_calendar = true;
        for ev in cal.events {
            let prop = |name: &str| {
                ev.properties
                    .iter()
                    .find(|p| p.name.eq_ignore_ascii_case(name))
                    .and_then(|p| p.value.clone())
            };
            let summary = unescape(&prop("SUMMARY").unwrap_or_default());
            let start = prop("DTSTART").as_deref().and_then(ical_date);
            let Some(start) = start else {
                push_skip(&mut skipped, format!("{summary}: no start date"));
                continue;
            };
            let len = match (
                prop("DTEND").as_deref().and_then(ical_date),
                prop("DURATION"),
            ) {
                (Some(end), _) => (end - start).num_days(),
                (None, Some(d)) => d
                    .trim()
                    .strip_prefix('P')
                    .and_then(|d| d.strip_suffix('D'))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
                (None, None) => 1,
            };
            if !(1..=31).contains(&len) {
                push_skip(&mut skipped, format!("{summary}: {len} days long"));
                continue;
            }
            let yearly =
                prop("RRULE").is_some_and(|r| r.to_ascii_uppercase().contains("FREQ=YEARLY"));
            if prop("RRULE").is_some() && !yearly {
                push_skip(
                    &mut skipped,
                    format!("{summary}: repeats other than yearly"),
                );
                continue;
            }
            let kind = match kind {
                ImportKind::Holiday => DayKind::Holiday,
                ImportKind::Workday => DayKind::Workday,
                ImportKind::Auto => {
                    let s = summary.to_lowercase();
                    if s.contains('班') || s.contains("workday") || s.contains("working day") {
                        DayKind::Workday
                    } else {
                        DayKind::Holiday
                    }
                }
            };
            let years = if yearly {
                start.year().max(this_year - 1)..=this_year + 3
            } else {
                start.year()..=start.year()
            };
            for y in years {
                let Some(first) = start.with_year(y) else {
                    continue;
                };
                if days.len() > 10 * MAX_DAYS {
                    return Err(Error::field("file", "too_many_days"));
                }
                for i in 0..len {
                    days.push(Day {
                        date: first + chrono::Duration::days(i),
                        kind,
                        name: summary.clone(),
                        periods: None,
                    });
                }
            }
        }
    }
    if !found_calendar {
        return Err(Error::field("file", "invalid_ical"));
    }
    Ok((days, skipped))
}

fn push_skip(skipped: &mut Vec<String>, why: String) {
    if skipped.len() < 100 {
        skipped.push(why);
    }
}

/// `20261001` or `20261001T000000[Z]` → the date as written.
fn ical_date(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v.trim().get(..8)?, "%Y%m%d").ok()
}

/// iCal text escapes: `\,` `\;` `\\` and `\n`.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') | Some('N') => out.push(' '),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out.trim().chars().take(200).collect()
}

/// Merges the whole-day events of an iCal file into a calendar: a date the file has is set as
/// the file says, the others stay (what an admin entered by hand survives a re-import).
pub async fn import_ical(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    text: &str,
    kind: ImportKind,
) -> Result<IcalImport> {
    ctx.require("calendars", Action::Update)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    let (read, skipped) = read_ical(text, kind, now().year())?;
    let expected = if_match.unwrap_or(before.version);
    version::check(expected, before.version)?;
    let mut days: BTreeMap<NaiveDate, Day> =
        before.days.0.iter().map(|d| (d.date, d.clone())).collect();
    let (mut added, mut changed, mut unchanged) = (0, 0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for d in read {
        if !seen.insert(d.date) {
            continue;
        }
        match days.get(&d.date) {
            None => added += 1,
            Some(old) if old.kind == d.kind && old.name == d.name => {
                unchanged += 1;
                continue;
            }
            Some(_) => changed += 1,
        }
        days.insert(d.date, d);
    }
    if days.len() > MAX_DAYS {
        return Err(Error::field("file", "too_many_days"));
    }
    let mut after = before.clone();
    after.days.0 = days.into_values().collect();
    let calendar = save(&mut tx, ctx, &before, &after, expected).await?;
    calendar_changed(&mut tx, ctx.tenant_id).await?;
    tx.commit().await?;
    Ok(IcalImport {
        calendar,
        added,
        changed,
        unchanged,
        skipped,
    })
}

/// Trial arithmetic on a calendar (`deadline` when `minutes` is given, `business_minutes` when
/// `end` is).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Trial {
    pub start: DateTime<Utc>,
    pub minutes: Option<i64>,
    /// `start` plus `minutes` working minutes; none when the calendar never works.
    pub deadline: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Working minutes from `start` to `end`.
    pub business_minutes: Option<i64>,
}

/// At most ten years of calendar time in one trial.
const MAX_TRIAL_DAYS: i64 = 3660;

pub async fn trial(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    start: Option<DateTime<Utc>>,
    minutes: Option<i64>,
    end: Option<DateTime<Utc>>,
) -> Result<Trial> {
    let c = get(db, ctx, id).await?;
    let start = start.ok_or_else(|| Error::field("start", "required"))?;
    let mut errs = Errors::default();
    if minutes.is_some_and(|m| !(0..=1_000_000).contains(&m)) {
        errs.add("minutes", "out_of_range");
    }
    if end.is_some_and(|e| (e - start).num_days().abs() > MAX_TRIAL_DAYS) {
        errs.add("end", "out_of_range");
    }
    if minutes.is_none() && end.is_none() {
        errs.add("minutes", "required");
    }
    errs.finish()?;
    let s = c.schedule();
    Ok(Trial {
        start,
        minutes,
        deadline: minutes.and_then(|m| s.deadline(start, m)),
        end,
        business_minutes: end.map(|e| s.business_minutes(start, e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ical_holidays_and_make_up_days() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20261001\r\nDTEND;VALUE=DATE:20261008\r\nSUMMARY:国庆节\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nDTSTART;VALUE=DATE:20261010\r\nSUMMARY:国庆节 补班\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:c\r\nDTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:元旦\\, New Year\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=WEEKLY\r\nSUMMARY:weekly\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let (days, skipped) = read_ical(text, ImportKind::Auto, 2026).unwrap();
        let holidays = days
            .iter()
            .filter(|d| d.kind == DayKind::Holiday && d.name == "国庆节")
            .count();
        assert_eq!(holidays, 7);
        let workday = days.iter().find(|d| d.kind == DayKind::Workday).unwrap();
        assert_eq!(workday.date, NaiveDate::from_ymd_opt(2026, 10, 10).unwrap());
        let new_year: Vec<i32> = days
            .iter()
            .filter(|d| d.name == "元旦, New Year")
            .map(|d| d.date.year())
            .collect();
        assert_eq!(new_year, vec![2026, 2027, 2028, 2029]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(read_ical("not a calendar", ImportKind::Auto, 2026).is_err());
    }

    #[test]
    fn typed_days_are_checked_and_named() {
        let mut errs = Errors::default();
        let days = parse_days(
            &mut errs,
            &[
                DayInput {
                    date: Some("2026-10-01".into()),
                    kind: Some("休".into()),
                    name: Some("国庆节".into()),
                    periods: None,
                },
                DayInput {
                    date: Some("2026-10-01".into()),
                    kind: Some("holiday".into()),
                    ..DayInput::default()
                },
                DayInput {
                    date: Some("2026-13-01".into()),
                    kind: Some("someday".into()),
                    ..DayInput::default()
                },
                DayInput {
                    date: Some("2026-10-10".into()),
                    kind: Some("班".into()),
                    periods: Some(vec!["09:00-12:00".into(), "11:00-13:00".into()]),
                    ..DayInput::default()
                },
            ],
        );
        let fields: Vec<(String, String)> = errs
            .0
            .iter()
            .map(|e| (e.field.clone(), e.code.clone()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("days.1.date".into(), "duplicate_date".into()),
                ("days.2.date".into(), "invalid_date".into()),
                ("days.2.kind".into(), "unknown_day_kind".into()),
                ("days.3.periods".into(), "periods_overlap".into()),
            ]
        );
        assert_eq!(days.len(), 2);
    }
}
