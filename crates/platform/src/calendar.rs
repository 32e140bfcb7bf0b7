//! Business time: when a company works, and the clock arithmetic every deadline uses (leads'
//! first response now; ticket SLAs, reminders and workflow timers later).
//!
//! A [`Schedule`] is a time zone, working periods per weekday (several a day: a lunch break is
//! the gap between two), and dated exceptions: holidays (no work) and make-up working days
//! (调休: a Saturday that is worked). Everything here is pure and property-tested against a
//! minute-by-minute walk.
//!
//! **What counts as working time.** An instant is working time when its wall-clock time in the
//! schedule's zone, on its local date, falls in one of that date's periods. On a day whose
//! offset changes (daylight saving), the clock is read with the offset in force at each
//! instant: a period inside the skipped hour has no instants, one inside the repeated hour has
//! them twice. China keeps one offset all year, so there this is plain wall-clock time.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A working period of a day, in minutes after local midnight: `start < end ≤ 1440`. Written
/// `"09:00-12:00"`; `24:00` ends a period at midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    pub start: u16,
    pub end: u16,
}

impl Period {
    /// Parses `HH:MM-HH:MM` (full-width digits and colon, `–`/`~`/`～` as the dash accepted).
    pub fn parse(raw: &str) -> Result<Period, &'static str> {
        let s = crate::validate::fold_width(raw.trim());
        let s = s.replace(['–', '—', '~', '～', '至'], "-");
        let (a, b) = s.split_once('-').ok_or("invalid_period")?;
        let (start, end) = (minute_of_day(a.trim())?, minute_of_day(b.trim())?);
        if start >= end {
            return Err("period_ends_before_start");
        }
        Ok(Period { start, end })
    }

    fn minutes(self) -> i64 {
        i64::from(self.end - self.start)
    }
}

fn minute_of_day(s: &str) -> Result<u16, &'static str> {
    let (h, m) = s.split_once(':').ok_or("invalid_period")?;
    let (h, m): (u16, u16) = (
        h.parse().map_err(|_| "invalid_period")?,
        m.parse().map_err(|_| "invalid_period")?,
    );
    if m >= 60 || h > 24 || (h == 24 && m != 0) || h.to_string().len() > 2 {
        return Err("invalid_period");
    }
    Ok(h * 60 + m)
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Period::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Sorts a day's periods and refuses overlapping ones (touching is fine: `09:00-12:00`,
/// `12:00-13:00`).
pub fn check_periods(periods: &mut [Period]) -> Result<(), &'static str> {
    if periods.len() > MAX_PERIODS {
        return Err("too_many_periods");
    }
    periods.sort();
    if periods.windows(2).any(|w| w[1].start < w[0].end) {
        return Err("periods_overlap");
    }
    Ok(())
}

/// At most this many periods a day.
pub const MAX_PERIODS: usize = 8;

/// Working periods for each day of the week, Monday first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Week {
    #[schema(value_type = Vec<String>, example = json!(["09:00-12:00", "13:30-18:00"]))]
    #[serde(default)]
    pub mon: Vec<Period>,
    #[schema(value_type = Vec<String>)]
    #[serde(default)]
    pub tue: Vec<Period>,
    #[schema(value_type = Vec<String>)]
    #[serde(default)]
    pub wed: Vec<Period>,
    #[schema(value_type = Vec<String>)]
    #[serde(default)]
    pub thu: Vec<Period>,
    #[schema(value_type = Vec<String>)]
    #[serde(default)]
    pub fri: Vec<Period>,
    #[schema(value_type = Vec<String>)]
    #[serde(default)]
    pub sat: Vec<Period>,
    #[schema(value_type = Vec<String>)]
    #[serde(default)]
    pub sun: Vec<Period>,
}

/// The weekday keys, Monday first (the `week` object's fields and the form's).
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Week {
    /// Monday to Friday 09:00–12:00 and 13:30–18:00: a Chinese office's day with its lunch.
    pub fn office() -> Week {
        let day = vec![
            Period {
                start: 9 * 60,
                end: 12 * 60,
            },
            Period {
                start: 13 * 60 + 30,
                end: 18 * 60,
            },
        ];
        Week {
            mon: day.clone(),
            tue: day.clone(),
            wed: day.clone(),
            thu: day.clone(),
            fri: day,
            sat: vec![],
            sun: vec![],
        }
    }

    pub fn days(&self) -> [&Vec<Period>; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }

    pub fn days_mut(&mut self) -> [&mut Vec<Period>; 7] {
        [
            &mut self.mon,
            &mut self.tue,
            &mut self.wed,
            &mut self.thu,
            &mut self.fri,
            &mut self.sat,
            &mut self.sun,
        ]
    }

    /// The periods of a normal working day: the first weekday that has any. A make-up working
    /// day without periods of its own works these.
    pub fn workday(&self) -> &[Period] {
        self.days()
            .into_iter()
            .find(|d| !d.is_empty())
            .map(|d| d.as_slice())
            .unwrap_or(&[])
    }
}

/// What a dated exception does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// Nobody works (a public holiday, a company day off).
    Holiday,
    /// Worked although the week says otherwise (调休 make-up day).
    Workday,
}

/// A dated exception to the week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Day {
    /// `YYYY-MM-DD`, in the calendar's time zone.
    #[schema(value_type = String, example = "2026-10-01")]
    pub date: NaiveDate,
    pub kind: DayKind,
    /// What it is (`国庆节`, `国庆节调休`); may be empty.
    #[serde(default)]
    pub name: String,
    /// A working day's own periods; without them it works the week's normal day.
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<Vec<Period>>,
}

/// A calendar ready for arithmetic.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: Tz,
    week: [Vec<Period>; 7],
    days: BTreeMap<NaiveDate, Vec<Period>>,
    /// Working seconds in a normal week (0: the week never works).
    week_seconds: i64,
}

impl Schedule {
    /// Builds a schedule; periods are expected checked (`check_periods`).
    pub fn new(tz: Tz, week: &Week, days: &[Day]) -> Schedule {
        let workday = week.workday().to_vec();
        let days = days
            .iter()
            .map(|d| {
                let periods = match d.kind {
                    DayKind::Holiday => vec![],
                    DayKind::Workday => d.periods.clone().unwrap_or_else(|| workday.clone()),
                };
                (d.date, periods)
            })
            .collect();
        let week = week.days().map(|d| d.clone());
        let week_seconds = week.iter().flatten().map(|p| p.minutes() * 60).sum::<i64>();
        Schedule {
            tz,
            week,
            days,
            week_seconds,
        }
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The working periods of a local date: its exception's, or its weekday's.
    pub fn periods_on(&self, d: NaiveDate) -> &[Period] {
        match self.days.get(&d) {
            Some(p) => p,
            None => &self.week[d.weekday().num_days_from_monday() as usize],
        }
    }

    /// Seconds the zone's clock is ahead of UTC at `t`.
    fn offset(&self, t: DateTime<Utc>) -> i64 {
        i64::from(
            self.tz
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    }

    /// The first instant after `t`, up to `end`, whose offset is not `off` (a day holds at most
    /// one change; a binary search over seconds).
    fn change_after(&self, t: DateTime<Utc>, end: DateTime<Utc>, off: i64) -> DateTime<Utc> {
        // Zones change offset on a whole second; search whole seconds after `t`.
        let (mut lo, mut hi) = (0, (end - t).num_seconds().max(1));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset(t + Duration::seconds(mid)) == off {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (t + Duration::seconds(hi)).min(end)
    }

    /// Calls `f` with each working interval in `[from, to)`, in order, until it returns false.
    fn walk(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut f: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> bool,
    ) {
        let mut t = from;
        while t < to {
            // A stretch of constant offset: at most a day, cut where the offset changes.
            let off = self.offset(t);
            let day_on = (t + Duration::days(1)).min(to);
            let end = if self.offset(day_on) == off {
                day_on
            } else {
                self.change_after(t, day_on, off)
            };
            let shift = Duration::seconds(off);
            let (local_from, local_to) = (t.naive_utc() + shift, end.naive_utc() + shift);
            let mut d = local_from.date();
            while d.and_time(NaiveTime::MIN) < local_to {
                for p in self.periods_on(d) {
                    let at = |m: u16| {
                        (d.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(m)) - shift)
                            .and_utc()
                    };
                    let (a, b) = (at(p.start).max(t), at(p.end).min(end));
                    if a < b && !f(a, b) {
                        return;
                    }
                }
                match d.succ_opt() {
                    Some(n) => d = n,
                    None => return,
                }
            }
            t = end;
        }
    }

    /// Whether `t` is working time.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let local = t.naive_utc() + Duration::seconds(self.offset(t));
        let minute = local.time().signed_duration_since(NaiveTime::MIN);
        self.periods_on(local.date()).iter().any(|p| {
            minute >= Duration::minutes(i64::from(p.start))
                && minute < Duration::minutes(i64::from(p.end))
        })
    }

    /// Working seconds in `[from, to)`; 0 when `to` is not after `from`.
    pub fn business_seconds(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        // Summed exactly, truncated once: truncating each interval would lose up to a second at
        // every period boundary an instant with a fraction of a second crosses.
        let mut total = Duration::zero();
        self.walk(from, to, |a, b| {
            total += b - a;
            true
        });
        total.num_seconds()
    }

    /// Whole working minutes in `[from, to)`.
    pub fn business_minutes(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        self.business_seconds(from, to) / 60
    }

    /// The instant `minutes` working minutes after `start` (a deadline): `start` itself for 0,
    /// otherwise the end of the last working minute counted. `None` only when the week never
    /// works.
    pub fn deadline(&self, start: DateTime<Utc>, minutes: i64) -> Option<DateTime<Utc>> {
        self.deadline_seconds(start, minutes.checked_mul(60)?)
    }

    /// The instant `seconds` working seconds after `start`: [`Schedule::deadline`] for a clock
    /// that has already run part of its time.
    pub fn deadline_seconds(&self, start: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
        if seconds <= 0 {
            return Some(start);
        }
        if self.week_seconds == 0 {
            return None;
        }
        // Enough calendar time to hold the work: whole weeks of it, a week of slack, and a week
        // for every exception (a holiday can take away the week's only working day).
        let weeks = seconds / self.week_seconds + 2 + self.days.len() as i64;
        let span = Duration::try_weeks(weeks)?;
        let horizon = start.checked_add_signed(span)?;
        // Counted exactly (an interval's fraction of a second is not dropped at a boundary).
        let mut left = Duration::try_seconds(seconds)?;
        let mut found = None;
        self.walk(start, horizon, |a, b| {
            let len = b - a;
            if len >= left {
                found = Some(a + left);
                false
            } else {
                left -= len;
                true
            }
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    fn at(tz: Tz, s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn china(days: &[Day]) -> Schedule {
        Schedule::new(chrono_tz::Asia::Shanghai, &Week::office(), days)
    }

    /// A start with a fraction of a second keeps it across every period boundary crossed
    /// (it was dropped at each one: a ticket opened at 23:30:18.5 due at 00:30:19).
    #[test]
    fn fractions_of_a_second_survive_boundaries() {
        let all = vec![Period {
            start: 0,
            end: 1440,
        }];
        let week = Week {
            mon: all.clone(),
            tue: all.clone(),
            wed: all.clone(),
            thu: all.clone(),
            fri: all.clone(),
            sat: all.clone(),
            sun: all,
        };
        let s = Schedule::new(chrono_tz::Asia::Shanghai, &week, &[]);
        let start =
            at(chrono_tz::Asia::Shanghai, "2026-12-06 23:30") + Duration::milliseconds(18_594);
        let due = s.deadline(start, 60).unwrap();
        assert_eq!(due, start + Duration::minutes(60));
        assert_eq!(s.business_seconds(start, due), 3600);
        let office = china(&[]);
        let start = at(chrono_tz::Asia::Shanghai, "2026-12-07 11:59") + Duration::milliseconds(500);
        let due = office.deadline(start, 2).unwrap();
        // 11:59:00.5–12:00 and 13:30–13:31:00.5 (the lunch break between).
        assert_eq!(
            due,
            at(chrono_tz::Asia::Shanghai, "2026-12-07 13:31") + Duration::milliseconds(500)
        );
        assert_eq!(office.business_seconds(start, due), 120);
    }

    #[test]
    fn periods_parse_and_print() {
        assert_eq!(p("09:00-12:00").to_string(), "09:00-12:00");
        assert_eq!(p("９：００～１２：３０").to_string(), "09:00-12:30");
        assert_eq!(p("18:00-24:00").end, 1440);
        for bad in [
            "9-12",
            "12:00-09:00",
            "10:00-10:00",
            "24:30-25:00",
            "09:60-10:00",
            "x",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        let mut ps = vec![p("13:00-18:00"), p("09:00-12:00")];
        assert!(check_periods(&mut ps).is_ok());
        assert_eq!(ps[0], p("09:00-12:00"));
        let mut ps = vec![p("09:00-12:00"), p("11:00-13:00")];
        assert_eq!(check_periods(&mut ps), Err("periods_overlap"));
    }

    #[test]
    fn lunch_weekends_holidays_and_make_up_days() {
        let tz = chrono_tz::Asia::Shanghai;
        let s = china(&[]);
        // 2026-12-04 is a Friday. 11:00 + 4 working hours: 1 h before lunch, 3 after it.
        assert_eq!(
            s.deadline(at(tz, "2026-12-04 11:00"), 240),
            Some(at(tz, "2026-12-04 16:30"))
        );
        // Friday 17:00 + 2 h: one hour on Friday, the rest on Monday morning.
        assert_eq!(
            s.deadline(at(tz, "2026-12-04 17:00"), 120),
            Some(at(tz, "2026-12-07 10:00"))
        );
        // Friday 08:00 to Monday 08:00 holds one working day: 7.5 h.
        assert_eq!(
            s.business_minutes(at(tz, "2026-12-04 08:00"), at(tz, "2026-12-07 08:00")),
            450
        );
        // National Day: 1–7 October off, Saturday 10 October worked (调休).
        let days: Vec<Day> = (1..=7)
            .map(|d| Day {
                date: NaiveDate::from_ymd_opt(2026, 10, d).unwrap(),
                kind: DayKind::Holiday,
                name: "国庆节".into(),
                periods: None,
            })
            .chain([Day {
                date: NaiveDate::from_ymd_opt(2026, 10, 10).unwrap(),
                kind: DayKind::Workday,
                name: "国庆节调休".into(),
                periods: None,
            }])
            .collect();
        let s = china(&days);
        // Asked on the eve of the holiday at 17:30: half an hour that evening, the rest after
        // the seven days off; asked on Friday the 9th, the make-up Saturday counts.
        assert_eq!(
            s.deadline(at(tz, "2026-09-30 17:30"), 60),
            Some(at(tz, "2026-10-08 09:30"))
        );
        assert_eq!(
            s.deadline(at(tz, "2026-10-09 17:30"), 60),
            Some(at(tz, "2026-10-10 09:30"))
        );
        assert!(s.is_open(at(tz, "2026-10-10 10:00")));
        assert!(!s.is_open(at(tz, "2026-10-05 10:00")));
        assert!(!s.is_open(at(tz, "2026-10-12 12:30")), "lunch");
        // A week that never works has no deadline; zero minutes is now.
        let closed = Schedule::new(tz, &Week::default(), &[]);
        assert_eq!(closed.deadline(at(tz, "2026-12-04 11:00"), 1), None);
        assert_eq!(
            closed.deadline(at(tz, "2026-12-04 11:00"), 0),
            Some(at(tz, "2026-12-04 11:00"))
        );
    }

    /// Daylight saving: New York's clock jumps 02:00 → 03:00 on 2026-03-08 and repeats 01:00–02:00
    /// on 2026-11-01. A night shift 00:00–04:00 is three hours, then five.
    #[test]
    fn offset_changes_count_real_time() {
        let tz = chrono_tz::America::New_York;
        let night = vec![p("00:00-04:00")];
        let week = Week {
            sun: night,
            ..Week::default()
        };
        let s = Schedule::new(tz, &week, &[]);
        let day = |d: &str| {
            let a = at(tz, &format!("{d} 00:00"));
            s.business_minutes(a, a + Duration::days(1))
        };
        assert_eq!(day("2026-03-08"), 180);
        assert_eq!(day("2026-11-01"), 300);
        assert_eq!(day("2026-11-08"), 240);
    }

    /// The definition, one minute at a time.
    fn brute_minutes(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let mut n = 0;
        let mut t = from;
        while t < to {
            if s.is_open(t) {
                n += 1;
            }
            t += Duration::minutes(1);
        }
        n
    }

    fn arb_day_periods() -> impl Strategy<Value = Vec<Period>> {
        // Up to three periods on a grid of quarter hours, made disjoint by sorting the cuts.
        proptest::collection::btree_set(0u16..=96, 0..=6).prop_map(|cuts| {
            let cuts: Vec<u16> = cuts.into_iter().collect();
            cuts.chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| Period {
                    start: c[0] * 15,
                    end: c[1] * 15,
                })
                .collect()
        })
    }

    fn arb_schedule() -> impl Strategy<Value = Schedule> {
        let zones = prop_oneof![
            Just(chrono_tz::Asia::Shanghai),
            Just(chrono_tz::America::New_York),
            Just(chrono_tz::Europe::London),
            Just(chrono_tz::Australia::Lord_Howe),
            Just(chrono_tz::UTC),
        ];
        let week = proptest::collection::vec(arb_day_periods(), 7);
        let days = proptest::collection::vec(
            (
                0i64..40,
                any::<bool>(),
                proptest::option::of(arb_day_periods()),
            ),
            0..8,
        );
        (zones, week, days).prop_map(|(tz, w, days)| {
            let mut week = Week::default();
            for (slot, periods) in week.days_mut().into_iter().zip(w) {
                *slot = periods;
            }
            let base = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
            let days: Vec<Day> = days
                .into_iter()
                .map(|(off, holiday, periods)| Day {
                    date: base + Duration::days(off * 7 % 280),
                    kind: if holiday {
                        DayKind::Holiday
                    } else {
                        DayKind::Workday
                    },
                    name: String::new(),
                    periods,
                })
                .collect();
            Schedule::new(tz, &week, &days)
        })
    }

    fn instant(minute: i64) -> DateTime<Utc> {
        // From 2026-02-25, across the spring and autumn clock changes of both hemispheres.
        DateTime::from_timestamp(1_771_977_600, 0).unwrap() + Duration::minutes(minute)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn business_time_is_the_minute_walk(
            s in arb_schedule(),
            from in 0i64..(300 * 1440),
            len in 0i64..(6 * 1440),
        ) {
            let (a, b) = (instant(from), instant(from + len));
            prop_assert_eq!(s.business_minutes(a, b), brute_minutes(&s, a, b));
            prop_assert_eq!(s.business_seconds(a, b) % 60, 0);
        }

        #[test]
        fn a_deadline_holds_exactly_its_minutes(
            s in arb_schedule(),
            from in 0i64..(300 * 1440),
            minutes in 0i64..3000,
        ) {
            let start = instant(from);
            match s.deadline(start, minutes) {
                Some(d) => {
                    prop_assert_eq!(s.business_minutes(start, d), minutes);
                    if minutes > 0 {
                        // The last minute counted is working time: no deadline comes earlier.
                        prop_assert!(s.is_open(d - Duration::minutes(1)));
                    }
                }
                None => prop_assert!(minutes > 0 && s.week_seconds == 0),
            }
        }
    }
}
