//! Keyed rate limits in memory: `n` events per `period` for a key (a form's posts from one
//! address in an hour, a form's posts in a minute), by the generic cell rate algorithm — a
//! burst of up to `n`, then one more each `period / n`: over any stretch of time `d` at most
//! `n + d·n/period` events (so at most `2n − 1` in any one window of a `period`). Constant work and one small entry per
//! key, whatever the rate: a flood costs no more to refuse than a trickle (counting stored
//! rows cost a read of every post in the window, 0.8 ms at 4,700 posts).
//!
//! Memory is bounded: keys whose schedule has recovered are dropped once there are
//! [`PRUNE_AT`] (at most once a second), and past [`MAX_KEYS`] a new key is refused until
//! old ones recover — a flood from more addresses than that is refused, not remembered.
//!
//! Kept in memory like the sign-in limiter (`auth::Limiter`): a restart forgets, and with
//! several app nodes each counts its own, so a client spread over `k` nodes may reach `k`
//! times a limit (documented trade-off).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before the recovered ones are dropped (at most once a second).
const PRUNE_AT: usize = 100_000;
/// Entries at most: past it a new key is refused until old ones recover, so a flood from
/// more addresses than that cannot grow memory without bound.
const MAX_KEYS: usize = 400_000;

/// One limit: `n` events per `period` for `key`.
#[derive(Debug, Clone)]
pub struct Limit {
    pub key: String,
    pub n: i64,
    pub period: Duration,
}

/// An event refused: the first limit it would break and how long until that limit would
/// admit it (what `Retry-After` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub index: usize,
    pub wait: Duration,
}

#[derive(Debug, Default)]
pub struct Limits {
    cells: Mutex<Cells>,
}

#[derive(Debug, Default)]
struct Cells {
    /// Each key's theoretical arrival time: when its next event would be on schedule.
    tat: HashMap<String, Instant>,
    pruned: Option<Instant>,
}

impl Limits {
    /// Takes one event under every limit at `now`, or none: the first limit the event would
    /// break and when it would admit it, nothing counted.
    pub fn take(&self, limits: &[Limit], now: Instant) -> Result<(), Refused> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let cells = &mut *cells;
        if cells.tat.len() >= PRUNE_AT
            && cells
                .pruned
                .is_none_or(|p| now.saturating_duration_since(p) >= Duration::from_secs(1))
        {
            cells.tat.retain(|_, tat| *tat > now);
            cells.pruned = Some(now);
        }
        let mut next = Vec::with_capacity(limits.len());
        for (i, l) in limits.iter().enumerate() {
            let known = cells.tat.get(&l.key).copied();
            if l.n <= 0 || (known.is_none() && cells.tat.len() + i >= MAX_KEYS) {
                // Nothing to wait for but the whole period (old keys recovering).
                return Err(Refused {
                    index: i,
                    wait: l.period,
                });
            }
            let interval = l.period / u32::try_from(l.n).unwrap_or(u32::MAX);
            let tat = known.unwrap_or(now).max(now);
            // A burst of `n`: the schedule may run ahead of now by up to `period - interval`.
            let ahead = tat.duration_since(now) + interval;
            if ahead > l.period {
                return Err(Refused {
                    index: i,
                    wait: ahead - l.period,
                });
            }
            next.push(tat + interval);
        }
        for (l, tat) in limits.iter().zip(next) {
            cells.tat.insert(l.key.clone(), tat);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Which limit refused, if one did.
    fn index(l: &Limits, limits: &[Limit], now: Instant) -> Result<(), usize> {
        l.take(limits, now).map_err(|r| r.index)
    }

    fn limit(n: i64, secs: u64) -> Limit {
        Limit {
            key: "k".into(),
            n,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_burst_of_n_then_one_each_interval() {
        let l = Limits::default();
        let t0 = Instant::now();
        let hour = [limit(2, 3600)];
        assert_eq!(index(&l, &hour, t0), Ok(()));
        assert_eq!(index(&l, &hour, t0), Ok(()));
        assert_eq!(index(&l, &hour, t0), Err(0));
        // Half an hour on, one more is on schedule; not two.
        let later = t0 + Duration::from_secs(1800);
        assert_eq!(index(&l, &hour, later), Ok(()));
        assert_eq!(index(&l, &hour, later), Err(0));
    }

    #[test]
    fn a_refused_event_counts_under_no_limit() {
        let l = Limits::default();
        let t0 = Instant::now();
        let ip = Limit {
            key: "ip".into(),
            n: 10,
            period: Duration::from_secs(3600),
        };
        let minute = Limit {
            key: "minute".into(),
            n: 1,
            period: Duration::from_secs(60),
        };
        assert_eq!(index(&l, &[ip.clone(), minute.clone()], t0), Ok(()));
        for _ in 0..20 {
            assert_eq!(index(&l, &[ip.clone(), minute.clone()], t0), Err(1));
        }
        // The address's hour was not spent by the refused posts: nine more.
        for _ in 0..9 {
            assert_eq!(index(&l, std::slice::from_ref(&ip), t0), Ok(()));
        }
        assert_eq!(index(&l, std::slice::from_ref(&ip), t0), Err(0));
    }

    #[test]
    fn memory_is_bounded_however_many_keys() {
        let l = Limits::default();
        let t0 = Instant::now();
        let one = |k: usize| Limit {
            key: format!("ip:{k}"),
            n: 5,
            period: Duration::from_secs(3600),
        };
        for k in 0..MAX_KEYS {
            assert_eq!(index(&l, &[one(k)], t0), Ok(()));
        }
        // Full of addresses still within their hour: a new one is refused, a known one served.
        assert_eq!(index(&l, &[one(MAX_KEYS)], t0), Err(0));
        assert_eq!(index(&l, &[one(7)], t0), Ok(()));
        // An hour on, they have all recovered and are dropped: room again.
        let later = t0 + Duration::from_secs(3601);
        assert_eq!(index(&l, &[one(MAX_KEYS)], later), Ok(()));
        assert_eq!(l.cells.lock().map(|c| c.tat.len()).unwrap_or(0), 1);
    }

    proptest! {
        /// Over any arrival pattern, no stretch of time `d` admits more than the burst and the
        /// rate allow (`n + d·n/period`), and a key that waits a whole period gets its whole
        /// burst back.
        #[test]
        fn never_more_than_the_burst_and_the_rate(
            n in 1i64..20,
            gaps in proptest::collection::vec(0u64..400, 1..300),
        ) {
            let l = Limits::default();
            let period = Duration::from_secs(1000);
            let lim = [Limit { key: "k".into(), n, period }];
            let t0 = Instant::now();
            let mut t = t0;
            let mut admitted: Vec<Instant> = Vec::new();
            for g in gaps {
                t += Duration::from_secs(g);
                if index(&l, &lim, t).is_ok() {
                    admitted.push(t);
                }
            }
            for (i, a) in admitted.iter().enumerate() {
                for (j, b) in admitted.iter().enumerate().skip(i) {
                    let d = b.duration_since(*a).as_secs_f64();
                    let allowed = n as f64 + d * n as f64 / period.as_secs_f64();
                    prop_assert!((j - i + 1) as f64 <= allowed + 1e-9,
                        "{} events in {d} s", j - i + 1);
                }
            }
            // A refused event is admitted exactly after the wait it was told, not before.
            let last = t + Duration::from_secs(1);
            if let Err(r) = l.take(&lim, last) {
                prop_assert!(r.wait > Duration::ZERO);
                if r.wait > Duration::from_millis(1) {
                    prop_assert!(l.take(&lim, last + r.wait - Duration::from_millis(1)).is_err());
                }
                prop_assert!(l.take(&lim, last + r.wait).is_ok());
            }
            let rested = t + period * 3;
            for _ in 0..n {
                prop_assert!(index(&l, &lim, rested).is_ok());
            }
            prop_assert!(index(&l, &lim, rested).is_err());
        }
    }
}
