//! A tenant's settings kept in the process between requests.
//!
//! Every write of a record reads some of its tenant's settings — the custom fields it may
//! carry, assignment and scoring rules, the learned models, the response policy and the
//! calendar its deadline is counted on, the form it came through — and they change a few times
//! a month. A module caches such a read as a [`Setting`] naming the tables it reads; an entry
//! serves while
//! - no write to a settings table ([`crate::db`]'s `SETTINGS_TABLES`) or a callers' table was
//!   committed in this process since it was read (the database layer sees every statement, so
//!   an admin's change takes effect at the next request, whatever the entry's age), and
//! - it is younger than [`TTL`]: a change made by another process (a second app node, a
//!   command-line `guanxi admin`) reaches this one within that long — the bound written down
//!   for several nodes, as for the callers ([`crate::auth::CALLER_TTL`]).
//!
//! Inside a transaction that wrote a settings table itself nothing is served or kept (what it
//! reads is not yet everyone's). Usage — the generation is taken before the read, and the
//! read (a future, so nothing runs until awaited) runs only when no entry serves:
//! ```ignore
//! let rules: Vec<Rule> = tx.settings().cached(&RULES, tenant, "", tx.fetch_all(SQL, args)).await?;
//! ```
//! A write committed between the generation and the read makes the entry stale at once
//! rather than keep what it replaced.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a cached setting serves without asking the database again (see the module).
pub const TTL: Duration = crate::auth::CALLER_TTL;

/// Entries beyond this are dropped all at once (a cold start of the cache, not a leak).
const MAX: usize = 10_000;

/// One kind of cached setting: a name unique in the product and every table its read touches
/// — each must be one the database layer watches, or the cache could serve a stale value.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    pub tables: &'static [&'static str],
}

impl Setting {
    /// Whether every table the setting reads is one whose writes invalidate it.
    pub fn watched(&self) -> bool {
        self.tables
            .iter()
            .all(|t| crate::db::SETTINGS_TABLES.contains(t) || crate::db::CALLER_TABLES.contains(t))
    }
}

struct Entry {
    generation: u64,
    fetched: Instant,
    value: Arc<dyn Any + Send + Sync>,
}

/// The process's cached settings, keyed by setting, tenant and the setting's own key.
#[derive(Default)]
pub struct Cache {
    map: Mutex<HashMap<(&'static str, Uuid, String), Entry>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("Cache").field("entries", &n).finish()
    }
}

/// The cache as of one moment (`Db::settings`, `Tx::settings`, `Conn::settings`): what it
/// serves was read under the current generation; what is put is kept under the generation
/// taken here, before the caller's read.
pub struct Settings {
    cache: Arc<Cache>,
    generation: u64,
    bypass: bool,
}

impl Settings {
    pub(crate) fn new(cache: Arc<Cache>, generation: u64, bypass: bool) -> Settings {
        Settings {
            cache,
            generation,
            bypass,
        }
    }

    /// The cached value of `setting` for `tenant` and `key`, else what `read` gives — kept for
    /// the next request. `read` is awaited only when no entry serves.
    pub async fn cached<T: Clone + Send + Sync + 'static>(
        &self,
        setting: &Setting,
        tenant: Uuid,
        key: &str,
        read: impl std::future::Future<Output = crate::error::Result<T>>,
    ) -> crate::error::Result<T> {
        if let Some(v) = self.get(setting, tenant, key) {
            return Ok(v);
        }
        let v = read.await?;
        self.put(setting, tenant, key, v.clone());
        Ok(v)
    }

    /// The cached value of `setting` for `tenant` and `key`, if one serves.
    pub fn get<T: Clone + Send + Sync + 'static>(
        &self,
        setting: &Setting,
        tenant: Uuid,
        key: &str,
    ) -> Option<T> {
        debug_assert!(
            setting.watched(),
            "setting {} reads an unwatched table",
            setting.name
        );
        if self.bypass {
            return None;
        }
        let map = self.cache.map.lock().ok()?;
        let e = map.get(&(setting.name, tenant, key.to_owned()))?;
        (e.generation == self.generation && e.fetched.elapsed() < TTL)
            .then(|| e.value.downcast_ref::<T>().cloned())
            .flatten()
    }

    /// Keeps `value`, read after this snapshot was taken, as `setting` for `tenant` and `key`.
    pub fn put<T: Clone + Send + Sync + 'static>(
        &self,
        setting: &Setting,
        tenant: Uuid,
        key: &str,
        value: T,
    ) {
        if self.bypass {
            return;
        }
        if let Ok(mut map) = self.cache.map.lock() {
            let k = (setting.name, tenant, key.to_owned());
            if map.len() >= MAX && !map.contains_key(&k) {
                map.clear();
            }
            map.insert(
                k,
                Entry {
                    generation: self.generation,
                    fetched: Instant::now(),
                    value: Arc::new(value),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Setting = Setting {
        name: "test_rules",
        tables: &["scoring_rules"],
    };

    fn at(cache: &Arc<Cache>, generation: u64, bypass: bool) -> Settings {
        Settings::new(cache.clone(), generation, bypass)
    }

    #[test]
    fn an_entry_serves_only_its_generation_tenant_and_key() {
        let cache = Arc::new(Cache::default());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        at(&cache, 1, false).put(&RULES, a, "k", vec![1, 2]);
        assert_eq!(
            at(&cache, 1, false).get::<Vec<i32>>(&RULES, a, "k"),
            Some(vec![1, 2])
        );
        // A write committed since: stale.
        assert_eq!(at(&cache, 2, false).get::<Vec<i32>>(&RULES, a, "k"), None);
        // Another tenant, another key, another type: nothing.
        assert_eq!(at(&cache, 1, false).get::<Vec<i32>>(&RULES, b, "k"), None);
        assert_eq!(at(&cache, 1, false).get::<Vec<i32>>(&RULES, a, "j"), None);
        assert_eq!(at(&cache, 1, false).get::<String>(&RULES, a, "k"), None);
        // A transaction that wrote settings neither reads nor keeps.
        assert_eq!(at(&cache, 1, true).get::<Vec<i32>>(&RULES, a, "k"), None);
        at(&cache, 1, true).put(&RULES, a, "k", vec![9]);
        assert_eq!(
            at(&cache, 1, false).get::<Vec<i32>>(&RULES, a, "k"),
            Some(vec![1, 2])
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = Arc::new(Cache::default());
        let s = at(&cache, 0, false);
        for i in 0..MAX + 5 {
            s.put(&RULES, Uuid::nil(), &i.to_string(), i);
        }
        let n = cache.map.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(n <= MAX, "{n}");
    }

    #[test]
    fn a_setting_over_an_unwatched_table_is_told_apart() {
        assert!(RULES.watched());
        let leads = Setting {
            name: "x",
            tables: &["leads"],
        };
        assert!(!leads.watched());
    }
}
