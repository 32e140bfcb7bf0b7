//! SLA clocks as a pure function of a ticket's event log: what a policy's targets say about a
//! ticket, given when it was created, how its status moved, when an agent replied publicly and
//! when the customer wrote — on a business calendar, up to `now`.
//!
//! **What runs the clock.** A target counts working time (the calendar's periods, holidays and
//! 调休) while the ticket's status is `new`, `open` or `waiting_third_party`; it pauses while
//! waiting on the customer and stops while `resolved` or `closed`. A reopened ticket's
//! resolution clock goes on from what it had used.
//!
//! **The targets.** *First response* runs from creation to the first public reply (or the first
//! resolution, for a ticket solved without writing). *Next response* starts again each time
//! the customer writes after the first response while no answer is owed, and ends at the next
//! public reply (or resolution) — so a reply never makes the first-response clock look late
//! (Zammad's "update time overrules first response"). *Resolution* runs from creation to the
//! latest resolution. A target is met when it ends within its time, missed once its time has
//! run out unended; the breach instant is when it ran out.
//!
//! Because clocks are recomputed from the log, changing a policy or a calendar re-evaluates open
//! tickets exactly (tested against a minute-by-minute walk).

use chrono::{DateTime, Utc};
use guanxi_platform::calendar::Schedule;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const STATUSES: &[&str] = &[
    "new",
    "open",
    "waiting_customer",
    "waiting_third_party",
    "resolved",
    "closed",
];

/// Whether the SLA clock runs in this status.
pub fn runs(status: &str) -> bool {
    matches!(status, "new" | "open" | "waiting_third_party")
}

/// Whether the ticket counts as solved in this status.
pub fn done(status: &str) -> bool {
    matches!(status, "resolved" | "closed")
}

/// What happened to a ticket, as far as its clocks are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    /// The status became this one (one of [`STATUSES`]).
    Status(String),
    /// An agent's public reply.
    AgentReply,
    /// The customer wrote.
    CustomerReply,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub what: Happening,
}

/// A policy's targets, in business minutes (`None`: no such target).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    pub first_response: Option<i64>,
    pub next_response: Option<i64>,
    pub resolution: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SlaTarget)]
pub enum Target {
    FirstResponse,
    NextResponse,
    Resolution,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::NextResponse => "next_response",
            Target::Resolution => "resolution",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        [
            Target::FirstResponse,
            Target::NextResponse,
            Target::Resolution,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Counting now.
    Running,
    /// Waiting on the customer: not counting.
    Paused,
    /// Ended within its time.
    Met,
    /// Its time ran out before it ended (it may have ended since).
    Missed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "paused",
            State::Met => "met",
            State::Missed => "missed",
        }
    }
}

/// One target of one ticket, as evaluated at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    pub target: Target,
    /// 1 for first response and resolution; the next-response cycles count up.
    pub cycle: i64,
    pub minutes: i64,
    pub started_at: DateTime<Utc>,
    /// Working seconds counted so far (to its end, if it ended).
    pub elapsed_seconds: i64,
    pub state: State,
    /// When its time runs out: for a running clock, if nothing changes; for a missed one, when
    /// it ran out. `None` while paused, for a met one, or on a calendar that never works.
    pub due_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Clock {
    /// Met by this many seconds to spare (positive) or missed by this many (negative).
    pub fn margin_seconds(&self) -> i64 {
        self.minutes * 60 - self.elapsed_seconds
    }
}

/// Stretches of the ticket's life, each with whether the clock ran.
fn stretches(
    created: DateTime<Utc>,
    events: &[Event],
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, bool)> {
    let mut out = Vec::new();
    let (mut from, mut status) = (created, "new".to_owned());
    for e in events {
        if let Happening::Status(s) = &e.what {
            let at = e.at.clamp(created, now);
            if at > from {
                out.push((from, at, runs(&status)));
            }
            from = from.max(at);
            status = s.clone();
        }
    }
    if now > from {
        out.push((from, now, runs(&status)));
    }
    out
}

/// The status at `now` (after every event).
fn status_now(events: &[Event]) -> &str {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.what {
            Happening::Status(s) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("new")
}

struct Line<'a> {
    schedule: &'a Schedule,
    stretches: Vec<(DateTime<Utc>, DateTime<Utc>, bool)>,
    /// Whether the clock runs in the status at `now` (also when no time has passed yet).
    running_now: bool,
}

impl Line<'_> {
    /// Working seconds the clock ran in `[a, b)`.
    fn ran(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        self.stretches
            .iter()
            .filter(|(_, _, on)| *on)
            .map(|(x, y, _)| self.schedule.business_seconds((*x).max(a), (*y).min(b)))
            .sum()
    }

    /// The instant after `a`, before `b`, at which the clock has run `seconds` (if it has).
    fn reaches(&self, a: DateTime<Utc>, b: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
        let mut left = seconds;
        for (x, y, on) in &self.stretches {
            let (x, y) = ((*x).max(a), (*y).min(b));
            if !on || x >= y {
                continue;
            }
            let here = self.schedule.business_seconds(x, y);
            if here >= left {
                return self.schedule.deadline_seconds(x, left);
            }
            left -= here;
        }
        None
    }

    fn running_at_end(&self) -> bool {
        self.running_now
    }
}

fn clock(
    line: &Line,
    target: Target,
    cycle: i64,
    minutes: i64,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Clock {
    let limit = minutes * 60;
    let until = end.unwrap_or(now);
    let elapsed = line.ran(start, until);
    let (state, due_at) = match end {
        Some(_) if elapsed <= limit => (State::Met, None),
        Some(e) => (State::Missed, line.reaches(start, e, limit)),
        None if elapsed >= limit => (State::Missed, line.reaches(start, now, limit)),
        None if line.running_at_end() => (
            State::Running,
            line.schedule.deadline_seconds(now, limit - elapsed),
        ),
        None => (State::Paused, None),
    };
    Clock {
        target,
        cycle,
        minutes,
        started_at: start,
        elapsed_seconds: elapsed,
        state,
        due_at,
        completed_at: end,
    }
}

/// Every clock of a ticket created at `created` with `events` (in time order), at `now`.
pub fn clocks(
    created: DateTime<Utc>,
    events: &[Event],
    targets: Targets,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Vec<Clock> {
    let events: Vec<&Event> = events.iter().filter(|e| e.at <= now).collect();
    let owned: Vec<Event> = events.iter().map(|e| (*e).clone()).collect();
    let line = Line {
        schedule,
        stretches: stretches(created, &owned, now),
        running_now: runs(status_now(&owned)),
    };
    let at = |e: &Event| e.at.max(created);
    let mut out = Vec::new();
    // First response: the first public reply or resolution.
    let first_end = owned
        .iter()
        .find(|e| match &e.what {
            Happening::AgentReply => true,
            Happening::Status(s) => done(s),
            Happening::CustomerReply => false,
        })
        .map(at);
    if let Some(m) = targets.first_response {
        out.push(clock(
            &line,
            Target::FirstResponse,
            1,
            m,
            created,
            first_end,
            now,
        ));
    }
    // Next response: cycles opened by the customer once an answer is no longer owed.
    if let Some(m) = targets.next_response {
        let mut open: Option<DateTime<Utc>> = None;
        let mut cycle = 0;
        for e in &owned {
            let t = at(e);
            let answered_first = first_end.is_some_and(|f| f <= t);
            match &e.what {
                // A customer writing in the very instant of the first answer is answered.
                Happening::CustomerReply
                    if answered_first && open.is_none() && first_end != Some(t) =>
                {
                    open = Some(t);
                }
                Happening::AgentReply => {
                    if let Some(s) = open.take() {
                        cycle += 1;
                        out.push(clock(
                            &line,
                            Target::NextResponse,
                            cycle,
                            m,
                            s,
                            Some(t),
                            now,
                        ));
                    }
                }
                Happening::Status(s) if done(s) => {
                    if let Some(st) = open.take() {
                        cycle += 1;
                        out.push(clock(
                            &line,
                            Target::NextResponse,
                            cycle,
                            m,
                            st,
                            Some(t),
                            now,
                        ));
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = open {
            out.push(clock(
                &line,
                Target::NextResponse,
                cycle + 1,
                m,
                s,
                None,
                now,
            ));
        }
    }
    // Resolution: to the latest resolution, if the ticket is solved now.
    if let Some(m) = targets.resolution {
        // The moment it became solved in its latest stretch (resolved → closed keeps it).
        let end = if done(status_now(&owned)) {
            let mut since = None;
            for e in owned.iter().rev() {
                if let Happening::Status(s) = &e.what {
                    if done(s) {
                        since = Some(at(e));
                    } else {
                        break;
                    }
                }
            }
            since
        } else {
            None
        };
        out.push(clock(&line, Target::Resolution, 1, m, created, end, now));
    }
    out
}

/// The clock that falls due first among those counting (what the queue sorts by).
pub fn next_due(clocks: &[Clock]) -> Option<DateTime<Utc>> {
    clocks
        .iter()
        .filter(|c| c.state == State::Running)
        .filter_map(|c| c.due_at)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate, TimeZone};
    use guanxi_platform::calendar::{Day, DayKind, Period, Week};
    use proptest::prelude::*;

    fn base() -> DateTime<Utc> {
        // Monday 2026-09-28 00:00 in Shanghai.
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 9, 28, 0, 0, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .expect("a valid instant")
    }

    fn china() -> Schedule {
        // Office hours with a lunch break, National Day off, a Saturday make-up day.
        let days = vec![
            Day {
                date: NaiveDate::from_ymd_opt(2026, 10, 1).expect("date"),
                kind: DayKind::Holiday,
                name: "国庆节".into(),
                periods: None,
            },
            Day {
                date: NaiveDate::from_ymd_opt(2026, 10, 10).expect("date"),
                kind: DayKind::Workday,
                name: "调休".into(),
                periods: None,
            },
        ];
        Schedule::new(chrono_tz::Asia::Shanghai, &Week::office(), &days)
    }

    fn m(minutes: i64) -> DateTime<Utc> {
        base() + Duration::minutes(minutes)
    }

    #[test]
    fn a_reply_in_the_morning_meets_a_four_hour_first_response() {
        // Created Monday 08:00 (before work), answered 11:00: 2 working hours used.
        let events = vec![Event {
            at: m(11 * 60),
            what: Happening::AgentReply,
        }];
        let t = Targets {
            first_response: Some(240),
            ..Default::default()
        };
        let c = clocks(m(8 * 60), &events, t, &china(), m(12 * 60));
        assert_eq!(c[0].state, State::Met);
        assert_eq!(c[0].elapsed_seconds, 2 * 3600);
        assert_eq!(c[0].margin_seconds(), 2 * 3600);
    }

    #[test]
    fn waiting_on_the_customer_pauses_and_lunch_does_not_count() {
        // Created Mon 09:00; waiting on the customer 10:00–15:00; now Mon 16:00.
        let events = vec![
            Event {
                at: m(10 * 60),
                what: Happening::Status("waiting_customer".into()),
            },
            Event {
                at: m(15 * 60),
                what: Happening::Status("open".into()),
            },
        ];
        let t = Targets {
            resolution: Some(8 * 60),
            ..Default::default()
        };
        let c = clocks(m(9 * 60), &events, t, &china(), m(16 * 60));
        assert_eq!(c[0].state, State::Running);
        assert_eq!(c[0].elapsed_seconds, 2 * 3600);
        // 6 hours left from Mon 16:00: 2 today (to 18:00), 4 on Tuesday (09–12, 13:30–14:30).
        let due = c[0].due_at.expect("a due time");
        assert_eq!(due, m(24 * 60 + 14 * 60 + 30));
    }

    #[test]
    fn a_customer_reply_after_the_answer_starts_a_next_response_cycle() {
        let events = vec![
            Event {
                at: m(9 * 60 + 30),
                what: Happening::AgentReply,
            },
            Event {
                at: m(10 * 60),
                what: Happening::CustomerReply,
            },
            Event {
                at: m(10 * 60 + 5),
                what: Happening::CustomerReply,
            },
        ];
        let t = Targets {
            first_response: Some(60),
            next_response: Some(30),
            ..Default::default()
        };
        let c = clocks(m(9 * 60), &events, t, &china(), m(11 * 60));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].state, State::Met);
        assert_eq!(
            (c[1].target, c[1].cycle, c[1].state),
            (Target::NextResponse, 1, State::Missed)
        );
        assert_eq!(c[1].due_at, Some(m(10 * 60 + 30)));
    }

    /// The clocks worked out minute by minute: each minute of `[start, end)` counts when the
    /// calendar is open and the status at that minute runs the clock.
    fn walk(
        created: i64,
        statuses: &[(i64, &str)],
        sched: &Schedule,
        start: i64,
        end: i64,
        limit_minutes: i64,
    ) -> (i64, Option<i64>) {
        let status_at = |t: i64| {
            statuses
                .iter()
                .rev()
                .find(|(at, _)| *at <= t)
                .map(|(_, s)| *s)
                .unwrap_or("new")
        };
        let (mut n, mut reached) = (0, None);
        for t in start.max(created)..end {
            if sched.is_open(m(t)) && runs(status_at(t)) {
                n += 1;
                if n == limit_minutes && reached.is_none() {
                    reached = Some(t + 1);
                }
            }
        }
        (n * 60, reached)
    }

    fn schedule_strategy() -> impl Strategy<Value = Schedule> {
        (
            prop::collection::vec((0u16..24, 1u16..6), 1..3),
            prop::collection::vec((0i64..14, any::<bool>()), 0..3),
            any::<bool>(),
        )
            .prop_map(|(raw, exceptions, ny)| {
                let mut periods: Vec<Period> = Vec::new();
                for (h, len) in raw {
                    let start = h * 60;
                    let end = (start + len * 60).min(1440);
                    if periods.iter().all(|p| end <= p.start || start >= p.end) {
                        periods.push(Period { start, end });
                    }
                }
                periods.sort();
                let mut week = Week::office();
                for (i, d) in week.days_mut().into_iter().enumerate() {
                    *d = if i < 5 { periods.clone() } else { vec![] };
                }
                let days: Vec<Day> = exceptions
                    .into_iter()
                    .map(|(offset, holiday)| Day {
                        date: NaiveDate::from_ymd_opt(2026, 9, 28).expect("date")
                            + Duration::days(offset),
                        kind: if holiday {
                            DayKind::Holiday
                        } else {
                            DayKind::Workday
                        },
                        name: String::new(),
                        periods: None,
                    })
                    .collect();
                let tz = if ny {
                    chrono_tz::America::New_York
                } else {
                    chrono_tz::Asia::Shanghai
                };
                Schedule::new(tz, &week, &days)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Every clock agrees with the minute walk: the time used, met or missed, and when it
        /// ran out — with pauses, resolutions, reopenings and replies in any order, any targets
        /// (a policy changed mid-ticket is the same log read with other targets).
        #[test]
        fn clocks_agree_with_a_minute_walk(
            sched in schedule_strategy(),
            created in 0i64..3000,
            steps in prop::collection::vec((1i64..900, 0usize..9), 0..8),
            fr in 1i64..900, nr in 1i64..600, res in 1i64..3000,
            tail in prop::sample::select(vec![0i64, 1, 59, 600, 5999]),
        ) {
            let mut t = created;
            let mut events = Vec::new();
            let mut statuses = Vec::new();
            for (gap, what) in steps {
                t += gap;
                let w = match what {
                    0..=5 => {
                        let s = STATUSES[what];
                        statuses.push((t, s));
                        Happening::Status(s.to_owned())
                    }
                    6 | 7 => Happening::AgentReply,
                    _ => Happening::CustomerReply,
                };
                events.push(Event { at: m(t), what: w });
            }
            // `tail` 0 included: a clock read in the instant of the last change.
            let now = t + tail;
            let targets = Targets { first_response: Some(fr), next_response: Some(nr), resolution: Some(res) };
            let cs = clocks(m(created), &events, targets, &sched, m(now));
            for c in &cs {
                let start = (c.started_at - base()).num_minutes();
                let end = c.completed_at.map(|e| (e - base()).num_minutes()).unwrap_or(now);
                let (used, reached) = walk(created, &statuses, &sched, start, end, c.minutes);
                prop_assert_eq!(c.elapsed_seconds, used, "{:?}", c);
                let missed = match c.completed_at {
                    Some(_) => used > c.minutes * 60,
                    None => used >= c.minutes * 60,
                };
                prop_assert_eq!(c.state == State::Missed, missed, "{:?}", c);
                if missed {
                    prop_assert_eq!(c.due_at, reached.map(m), "{:?}", c);
                }
                if c.state == State::Running {
                    let due = c.due_at.map(|d| (d - m(now)).num_seconds());
                    let left = c.minutes * 60 - used;
                    let expect = sched.deadline_seconds(m(now), left).map(|d| (d - m(now)).num_seconds());
                    prop_assert_eq!(due, expect);
                }
            }
            // Exactly one first-response and one resolution clock; next-response cycles only
            // after a first answer.
            prop_assert_eq!(cs.iter().filter(|c| c.target == Target::FirstResponse).count(), 1);
            prop_assert_eq!(cs.iter().filter(|c| c.target == Target::Resolution).count(), 1);
            let first_end = cs[0].completed_at;
            for c in cs.iter().filter(|c| c.target == Target::NextResponse) {
                prop_assert!(first_end.is_some_and(|f| f < c.started_at));
            }
        }
    }
}
