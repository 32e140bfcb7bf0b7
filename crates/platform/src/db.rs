//! One query codebase for SQLite and PostgreSQL.
//!
//! Every query is written once, with `$1, $2, …` placeholders (sqlx binds those by number on
//! SQLite too). Values are bound through [`Val`], which knows how each type is stored on each
//! backend; rows decode into ordinary `#[derive(sqlx::FromRow)]` structs, which sqlx makes
//! generic over the backend. Where SQL truly differs (row locking, upserts with special
//! operators, full-text search) the fork is an explicit `match db.backend()` in one named place.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{FromRow, PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database: its connection pool and what every connection of this process shares.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    shared: Arc<Shared>,
}

#[derive(Clone, Debug)]
enum Pool {
    /// SQLite has one writer per file. Reads share `read`; every write — a transaction, a
    /// writing statement — goes through `write`, a pool of one connection, whose waiters queue
    /// in order without holding a connection (instead of each holding a pooled connection
    /// while SQLite's busy handler sleeps and retries, which left a core idle and p99 at
    /// seconds under 64 concurrent creates). Because nobody else writes through it, the
    /// writer's page cache stays warm: SQLite empties a connection's cache whenever another
    /// connection has written. With a pool of one connection in all, both are the same pool.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// How long a write waits for SQLite's one writer before the request is answered 503 (busy):
/// the writer connection of this process, and SQLite's busy timeout for a writer of another
/// process (a command-line import).
const WRITER_WAIT: Duration = Duration::from_secs(10);

/// SQLite's page cache: the writer's, and each reader's. A reader's cache is emptied by every
/// write, so a big one buys little and costs memory: with 16 connections of 8 MB each a
/// server under load peaked at 238 MB, with 1 MB readers and a 16 MB writer at 150 MB, with
/// five readers and an 8 MB writer at 108 MB, and point reads, lists, searches and creates ran
/// as fast (docs/benchmarks.md). The writer's cache stays warm; a command's (a command-line
/// import) is bigger, as bulk writes at a million rows re-read pages from the OS with a small
/// one.
const WRITER_CACHE_KB: u32 = 8 * 1024;
const COMMAND_WRITER_CACHE_KB: u32 = 64 * 1024;
const READER_CACHE_KB: u32 = 1024;

/// A server's SQLite log is copied into the database file by a task and connection of its own
/// ([`checkpointer`]), never by the writer inside a commit: SQLite's automatic checkpoint runs
/// in the connection that commits, so every request queued behind the writer waited for its
/// writes to the file and its `fsync` (the first one after a start, 4 MB spread over an
/// 850 MB file, held 16 creates ~400 ms; under 64 concurrent creates a core sat idle and a
/// tenth of the machine's time was I/O wait). The task checkpoints after this many commits.
const CHECKPOINT_COMMITS: u32 = 64;

/// A log this long (frames of a page, 64 MB) after the task's checkpoint is checkpointed
/// again in the writer's turn ([`checkpoint_in_turn`]). The task's checkpoint runs beside the writer, so while writes
/// never pause it cannot copy the whole log, and SQLite starts the log again from its
/// beginning only after a checkpoint that copied all of it: a million generated contacts grew
/// it to 27 GB, until the disk was full. In the writer's turn nothing is appended meanwhile and
/// little is left to copy (the task copied the rest); the next transaction starts the log
/// again, truncated to [`LOG_LIMIT_BYTES`].
const WRITER_CHECKPOINT_FRAMES: i64 = 16_384;
const LOG_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// A pooled connection idle this long is pinged before use (a PostgreSQL server restarted
/// meanwhile); a fresher one is used as it is, without the extra round trip per statement.
const PING_IDLE: Duration = Duration::from_secs(10);

/// The tables that say who a caller is and what they may do ([`crate::auth`] reads them for
/// every request): a committed write to any of them invalidates every cached caller.
pub(crate) const CALLER_TABLES: &[&str] = &[
    "users",
    "roles",
    "teams",
    "tenants",
    "api_tokens",
    "sessions",
];

/// Writes to those tables that change nothing a cached caller holds.
/// (A new session or the once-a-minute note of a token's use.)
const NOT_CALLER_CHANGES: &[&str] = &[
    "UPDATE api_tokens SET last_used_at ",
    "INSERT INTO sessions ",
];

/// The tables of a tenant's settings that requests read on every write of a record (custom
/// fields, assignment and scoring rules, learned models, response policies, calendars, forms,
/// ticket SLA policies):
/// a committed write to any of them invalidates every cached setting ([`crate::settings`]).
/// A setting cached from any other table is refused in debug builds (`Setting::tables`).
pub(crate) const SETTINGS_TABLES: &[&str] = &[
    "custom_fields",
    "assignment_rules",
    "scoring_rules",
    "lead_models",
    "lead_response_sla",
    "calendars",
    "forms",
    "sla_policies",
];

/// Writes to those tables that change nothing a cached setting holds (a round-robin rule's
/// turn, re-read under its lock by the one who moves it).
const NOT_SETTINGS_CHANGES: &[&str] = &["UPDATE assignment_rules SET last_user_id "];

/// What the connections of one process share.
#[derive(Debug, Default)]
struct Shared {
    /// Bumped after every committed write to a [`CALLER_TABLES`] table.
    callers: AtomicU64,
    /// Bumped after every committed write to a [`SETTINGS_TABLES`] table.
    settings: AtomicU64,
    /// Cached settings ([`crate::settings`]).
    settings_cache: Arc<crate::settings::Cache>,
    /// Resolved sessions and API tokens ([`crate::auth`]).
    auth: crate::auth::Cache,
    /// A command's small pool (an import, the generator; [`Db::is_command`]): on SQLite its
    /// bulk loads may grow the writer's page cache to 1 GiB and let the log grow to 64 MB
    /// between checkpoints ([`Tx::bulk_load`]). A server's never does — the settings outlive
    /// the transaction on its connection, and an import from the web page would have left the
    /// server's writer a 1 GiB cache.
    command: bool,
    /// A SQLite server's checkpoints ([`CHECKPOINT_COMMITS`]); `None` on PostgreSQL, for a
    /// command and in memory.
    checkpoints: Option<Checkpointing>,
}

/// The writer's side of the checkpointer: dropped with the database's last handle, it ends
/// the checkpointer.
#[derive(Debug)]
struct Checkpointing {
    state: Arc<Checkpoints>,
    /// The checkpointer's connection.
    pool: SqlitePool,
}

impl Drop for Checkpointing {
    fn drop(&mut self) {
        self.state.wake.notify_one();
    }
}

impl Shared {
    /// A write was committed on SQLite: every [`CHECKPOINT_COMMITS`] the checkpointer is woken,
    /// and after every `bulk` one (a batch of an import).
    /// Tells the caches what a committed write changed.
    fn changed(&self, c: Changes) {
        if c.callers {
            self.callers.fetch_add(1, Ordering::SeqCst);
        }
        if c.settings {
            self.settings.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The generation cached settings are read under: it changes after every committed write
    /// to a settings table or a callers' one (a form's owner, a calendar's time zone).
    fn settings_generation(&self) -> u64 {
        self.settings.load(Ordering::SeqCst) + self.callers.load(Ordering::SeqCst)
    }

    fn committed(&self, bulk: bool) {
        if let Some(Checkpointing { state: c, .. }) = &self.checkpoints {
            if c.commits.fetch_add(1, Ordering::Relaxed) + 1 == CHECKPOINT_COMMITS || bulk {
                c.wake.notify_one();
            }
        }
    }
}

/// What the writer and the checkpointer share.
#[derive(Debug, Default)]
struct Checkpoints {
    /// Commits since the checkpointer last started one.
    commits: AtomicU32,
    wake: tokio::sync::Notify,
    /// Checkpoints done, and a signal at each (tests wait on it).
    done: AtomicU64,
    finished: tokio::sync::Notify,
    /// The log is past [`WRITER_CHECKPOINT_FRAMES`]: the next writer checkpoints it in its
    /// turn, before it writes (the pool's `before_acquire`), and the task waits for that.
    in_writers_turn: std::sync::atomic::AtomicBool,
}

/// The checkpoint of the writer's turn ([`Checkpoints::in_writers_turn`]), on the writer
/// connection before it is handed out: nothing can be appended meanwhile, so unless a reader
/// still reads an older state it copies the whole log, and the transaction that follows starts
/// the log again. A reader in the way leaves it to the next writer.
async fn checkpoint_in_turn(conn: &mut sqlx::SqliteConnection, c: &Checkpoints) {
    if !c.in_writers_turn.load(Ordering::SeqCst) {
        return;
    }
    let done: sqlx::Result<(i64, i64, i64)> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await;
    match done {
        Ok((0, log, copied)) if copied >= log => c.in_writers_turn.store(false, Ordering::SeqCst),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "SQLite checkpoint in the writer's turn failed"),
    }
}

/// Copies a server's SQLite log into the database file after every [`CHECKPOINT_COMMITS`]
/// commits (and each batch of a bulk load), on its own connection (`pool`), while the writer
/// goes on writing: a `PASSIVE` checkpoint takes no lock a writer or reader waits for. Ends
/// when the database's last handle is dropped or its pools are closed.
async fn checkpointer(pool: SqlitePool, c: Arc<Checkpoints>, alive: Weak<Shared>) {
    loop {
        c.wake.notified().await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        c.commits.store(0, Ordering::Relaxed);
        if !c.in_writers_turn.load(Ordering::SeqCst) {
            let step: sqlx::Result<(i64, i64, i64)> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&pool)
                    .await;
            match step {
                Ok((_, log, _)) if log >= WRITER_CHECKPOINT_FRAMES => {
                    c.in_writers_turn.store(true, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) if pool.is_closed() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite checkpoint failed; retried after more commits")
                }
            }
        }
        c.done.fetch_add(1, Ordering::SeqCst);
        c.finished.notify_waiters();
    }
}

/// Whether a statement may write (anything but a `SELECT`, `WITH` or `EXPLAIN` read). Asked of
/// every statement, so it allocates nothing.
fn writes(sql: &str) -> bool {
    let mut words = sql
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty());
    let first = words.next().unwrap_or("");
    if first.eq_ignore_ascii_case("WITH") {
        // `WITH … INSERT/UPDATE/DELETE` writes: a word of its own anywhere sends it to the
        // writer (a literal that says so only costs a read the writer's turn).
        return words.any(|w| {
            ["INSERT", "UPDATE", "DELETE"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
        });
    }
    !["SELECT", "EXPLAIN"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
}

/// What a write changes that the process caches: the callers ([`CALLER_TABLES`]) or the
/// settings ([`SETTINGS_TABLES`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Changes {
    callers: bool,
    settings: bool,
}

impl Changes {
    const ALL: Changes = Changes {
        callers: true,
        settings: true,
    };
}

/// What a (writing) statement changes of the cached tables: the table it writes, after a
/// `WITH …` prefix too.
fn changes(sql: &str) -> Changes {
    let s = sql.trim_start();
    let mut words = s
        .split_ascii_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '(' || c == '"'));
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let mut first = words.next().unwrap_or("");
    if is(first, "WITH") {
        first = words
            .find(|w| {
                ["INSERT", "UPDATE", "DELETE", "REPLACE"]
                    .iter()
                    .any(|k| is(w, k))
            })
            .unwrap_or("");
    }
    let table = if is(first, "UPDATE") {
        words.next()
    } else if ["DELETE", "INSERT", "REPLACE"].iter().any(|k| is(first, k)) {
        words.find(|w| {
            !["INTO", "FROM", "OR", "REPLACE", "IGNORE"]
                .iter()
                .any(|k| is(w, k))
        })
    } else if ["CREATE", "DROP", "ALTER"].iter().any(|k| is(first, k)) {
        // Schema changes (migrations) and anything unforeseen: assume the worst.
        return Changes::ALL;
    } else {
        None
    };
    let Some(table) = table.map(|t| t.split('(').next().unwrap_or(t)) else {
        return Changes::default();
    };
    let listed = |tables: &[&str], except: &[&str]| {
        tables.iter().any(|c| table.eq_ignore_ascii_case(c))
            && !except.iter().any(|p| s.starts_with(p))
    };
    Changes {
        callers: listed(CALLER_TABLES, NOT_CALLER_CHANGES),
        settings: listed(SETTINGS_TABLES, NOT_SETTINGS_CHANGES),
    }
}

/// What is known of a statement before it runs: whether it writes (on SQLite it then goes
/// through the writer), and, run on the pool and changing callers, the process state to tell
/// once it is done.
struct Turn {
    write: bool,
    tell: Option<Tell>,
}

/// What a statement run on the pool tells the process once it is done.
struct Tell {
    shared: Arc<Shared>,
    /// What it wrote of the cached tables.
    changes: Changes,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(t) = &self.tell {
            t.shared.changed(t.changes);
            t.shared.committed(false);
        }
    }
}

/// A bound value. Each variant carries an `Option` so a NULL keeps its SQL type (PostgreSQL
/// refuses an untyped NULL compared with a uuid column).
#[derive(Clone, Debug)]
pub enum Val {
    Bool(Option<bool>),
    I64(Option<i64>),
    F64(Option<f64>),
    Text(Option<String>),
    Uuid(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    Json(Option<serde_json::Value>),
    /// A JSON document already serialized (an audit event's record, written straight from
    /// the record without building a `Value` first).
    RawJson(Option<Box<serde_json::value::RawValue>>),
    Bytes(Option<Vec<u8>>),
}

macro_rules! val_from {
    ($t:ty, $v:ident) => {
        impl From<$t> for Val {
            fn from(x: $t) -> Self {
                Val::$v(Some(x.into()))
            }
        }
        impl From<Option<$t>> for Val {
            fn from(x: Option<$t>) -> Self {
                Val::$v(x.map(Into::into))
            }
        }
    };
}
val_from!(bool, Bool);
val_from!(i64, I64);
val_from!(f64, F64);
val_from!(String, Text);
val_from!(&str, Text);
val_from!(Uuid, Uuid);
val_from!(DateTime<Utc>, Time);
val_from!(serde_json::Value, Json);
val_from!(Box<serde_json::value::RawValue>, RawJson);
val_from!(Vec<u8>, Bytes);

impl From<&String> for Val {
    fn from(x: &String) -> Self {
        Val::Text(Some(x.clone()))
    }
}

/// Instants are stored on SQLite as fixed-width UTC text so that string order is time order.
pub fn sqlite_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Builds `vec![Val::from(a), Val::from(b), …]`.
#[macro_export]
macro_rules! args {
    () => { Vec::<$crate::db::Val>::new() };
    ($($x:expr),+ $(,)?) => { vec![$($crate::db::Val::from($x)),+] };
}

/// A row type that decodes from both backends.
pub trait DbRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> DbRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

type SqliteQ<'q, T> = sqlx::query::QueryAs<'q, Sqlite, T, sqlx::sqlite::SqliteArguments<'q>>;
type PgQ<'q, T> = sqlx::query::QueryAs<'q, Postgres, T, sqlx::postgres::PgArguments>;

fn bind_sqlite<'q, T>(mut q: SqliteQ<'q, T>, args: Vec<Val>) -> SqliteQ<'q, T> {
    for a in args {
        q = match a {
            Val::Bool(v) => q.bind(v),
            Val::I64(v) => q.bind(v),
            Val::F64(v) => q.bind(v),
            Val::Bytes(v) => q.bind(v),
            Val::Text(v) => q.bind(v),
            Val::Uuid(v) => q.bind(v),
            Val::Time(v) => q.bind(v.as_ref().map(sqlite_time)),
            Val::Json(v) => q.bind(v.map(|j| j.to_string())),
            Val::RawJson(v) => q.bind(v.map(|j| String::from(Box::<str>::from(j)))),
        };
    }
    q
}

fn bind_pg<'q, T>(mut q: PgQ<'q, T>, args: Vec<Val>) -> PgQ<'q, T> {
    for a in args {
        q = match a {
            Val::Bool(v) => q.bind(v),
            Val::I64(v) => q.bind(v),
            Val::F64(v) => q.bind(v),
            Val::Bytes(v) => q.bind(v),
            Val::Text(v) => q.bind(v),
            Val::Uuid(v) => q.bind(v),
            Val::Time(v) => q.bind(v),
            Val::Json(v) => q.bind(v.map(sqlx::types::Json)),
            Val::RawJson(v) => q.bind(v.map(sqlx::types::Json)),
        };
    }
    q
}

type SqliteX<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
type PgX<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_sqlite_x(mut q: SqliteX<'_>, args: Vec<Val>) -> SqliteX<'_> {
    for a in args {
        q = match a {
            Val::Bool(v) => q.bind(v),
            Val::I64(v) => q.bind(v),
            Val::F64(v) => q.bind(v),
            Val::Bytes(v) => q.bind(v),
            Val::Text(v) => q.bind(v),
            Val::Uuid(v) => q.bind(v),
            Val::Time(v) => q.bind(v.as_ref().map(sqlite_time)),
            Val::Json(v) => q.bind(v.map(|j| j.to_string())),
            Val::RawJson(v) => q.bind(v.map(|j| String::from(Box::<str>::from(j)))),
        };
    }
    q
}

fn bind_pg_x(mut q: PgX<'_>, args: Vec<Val>) -> PgX<'_> {
    for a in args {
        q = match a {
            Val::Bool(v) => q.bind(v),
            Val::I64(v) => q.bind(v),
            Val::F64(v) => q.bind(v),
            Val::Bytes(v) => q.bind(v),
            Val::Text(v) => q.bind(v),
            Val::Uuid(v) => q.bind(v),
            Val::Time(v) => q.bind(v),
            Val::Json(v) => q.bind(v.map(sqlx::types::Json)),
            Val::RawJson(v) => q.bind(v.map(sqlx::types::Json)),
        };
    }
    q
}

/// Runs `$method` of a bound query on whichever pool or transaction `$conns` is.
macro_rules! dispatch {
    ($conns:expr, $sqlite:expr, $pg:expr, $method:ident) => {
        match $conns {
            Conns::SqlitePool(p) => $sqlite.$method(p).await?,
            Conns::SqliteTx(t) => $sqlite.$method(&mut **t).await?,
            Conns::PgPool(p) => $pg.$method(p).await?,
            Conns::PgTx(t) => $pg.$method(&mut **t).await?,
        }
    };
}

/// `$1, $2, …` as anonymous `?` when they appear exactly once each, in order (all SQL built
/// with [`Sql`]); otherwise the text unchanged. SQLite resolves a *named* parameter by a linear
/// walk of the statement's names, and sqlx asks that name for every parameter, so a
/// multi-row INSERT with `$N` placeholders costs the square of its parameters to bind —
/// anonymous ones cost nothing to look up.
fn positional(sql: &str) -> std::borrow::Cow<'_, str> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut i, mut from, mut next, mut quoted) = (0, 0, 1u64, false);
    while i < b.len() {
        match b[i] {
            b'\'' => quoted = !quoted,
            b'$' if !quoted => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                if end == start {
                    return std::borrow::Cow::Borrowed(sql);
                }
                match sql[start..end].parse::<u64>() {
                    Ok(n) if n == next => next += 1,
                    _ => return std::borrow::Cow::Borrowed(sql),
                }
                out.push_str(&sql[from..i]);
                out.push('?');
                from = end;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if next == 1 {
        return std::borrow::Cow::Borrowed(sql);
    }
    out.push_str(&sql[from..]);
    std::borrow::Cow::Owned(out)
}

/// Generates the query methods once for the pool and once for a transaction.
macro_rules! query_methods {
    (($($recv:tt)+), $s:ident) => {
        /// Runs a statement; returns the number of rows it touched.
        pub async fn execute($($recv)+, sql: &str, args: Vec<Val>) -> Result<u64> {
            let sql = match $s.backend() {
                Backend::Sqlite => positional(sql),
                Backend::Postgres => std::borrow::Cow::Borrowed(sql),
            };
            let sql = &*sql;
            let turn = $s.turn(sql);
            let n = match $s.conns(turn.write) {
                Conns::SqlitePool(p) => bind_sqlite_x(sqlx::query(sql), args).execute(p).await?.rows_affected(),
                Conns::SqliteTx(t) => bind_sqlite_x(sqlx::query(sql), args).execute(&mut **t).await?.rows_affected(),
                Conns::PgPool(p) => bind_pg_x(sqlx::query(sql), args).execute(p).await?.rows_affected(),
                Conns::PgTx(t) => bind_pg_x(sqlx::query(sql), args).execute(&mut **t).await?.rows_affected(),
            };
            Ok(n)
        }
        pub async fn fetch_all<T: DbRow>($($recv)+, sql: &str, args: Vec<Val>) -> Result<Vec<T>> {
            $s.fetch_all_planned(sql, args, false).await
        }
        /// [`Self::fetch_all`]; `plan_with_values` sends the statement unnamed on PostgreSQL
        /// (see [`Sql::plan_with_values`]).
        async fn fetch_all_planned<T: DbRow>($($recv)+, sql: &str, args: Vec<Val>, plan_with_values: bool) -> Result<Vec<T>> {
            let sql = match $s.backend() {
                Backend::Sqlite => positional(sql),
                Backend::Postgres => std::borrow::Cow::Borrowed(sql),
            };
            let sql = &*sql;
            let turn = $s.turn(sql);
            Ok(dispatch!(
                $s.conns(turn.write),
                bind_sqlite(sqlx::query_as(sql), args),
                bind_pg(sqlx::query_as(sql).persistent(!plan_with_values), args),
                fetch_all
            ))
        }
        pub async fn fetch_optional<T: DbRow>($($recv)+, sql: &str, args: Vec<Val>) -> Result<Option<T>> {
            let sql = match $s.backend() {
                Backend::Sqlite => positional(sql),
                Backend::Postgres => std::borrow::Cow::Borrowed(sql),
            };
            let sql = &*sql;
            let turn = $s.turn(sql);
            Ok(dispatch!($s.conns(turn.write), bind_sqlite(sqlx::query_as(sql), args), bind_pg(sqlx::query_as(sql), args), fetch_optional))
        }
        /// One row or [`Error::NotFound`].
        pub async fn fetch_one<T: DbRow>($($recv)+, sql: &str, args: Vec<Val>) -> Result<T> {
            $s.fetch_optional(sql, args).await?.ok_or(Error::NotFound)
        }
        /// The first column of one row, e.g. `SELECT COUNT(*)`.
        pub async fn scalar<T>($($recv)+, sql: &str, args: Vec<Val>) -> Result<T>
        where
            (T,): DbRow,
        {
            let (v,): (T,) = $s.fetch_one(sql, args).await?;
            Ok(v)
        }
        /// Runs a [`Sql`] built at run time.
        pub async fn fetch_sql<T: DbRow>($($recv)+, q: Sql) -> Result<Vec<T>> {
            $s.fetch_all_planned(&q.sql, q.args, q.plan_with_values).await
        }
    };
}

/// A pooled connection still inside a transaction nobody holds is never handed out again: it
/// is closed (which rolls the transaction back) and another taken. sqlx leaves one so when a
/// future is dropped between its `BEGIN` being done and the transaction being handed over
/// (on SQLite, a custom `BEGIN IMMEDIATE` is checked under a lock after it ran): a request
/// cancelled there — a client gone — made every later write on SQLite's one writer connection
/// fail with "begin_with at non-zero transaction depth" until a restart. Asked when a
/// connection is taken, after its release has flushed the rollbacks of dropped transactions.
fn left_in_transaction<C: sqlx::Connection>(conn: &C) -> bool {
    let left = conn.is_in_transaction();
    if left {
        tracing::warn!("a pooled connection was left inside a transaction: closed");
    }
    left
}

enum Conns<'a> {
    SqlitePool(&'a SqlitePool),
    SqliteTx(&'a mut Transaction<'static, Sqlite>),
    PgPool(&'a PgPool),
    PgTx(&'a mut Transaction<'static, Postgres>),
}

impl Db {
    /// Opens (creating if needed) the database: a `postgres://` URL, or a SQLite file path.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
        // A command's pool (an import, the generator), not a server's: `Shared::command`.
        let command = max_connections <= 2;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // GIN indexes (the search index) queue new entries in a pending list that every
            // search reads through: at PostgreSQL's default 4 MB that is ~2 ms more per search
            // at a million contacts (5-digit phone search: 4.3 ms → 1.0 ms for the index scan
            // once merged). 256 kB bounds it; bulk loads raise it (`Tx::bulk_load`).
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| Error::Unavailable(e.to_string()))?
                .options([("gin_pending_list_limit", "256kB")]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if left_in_transaction(&*conn) {
                            return Ok(false);
                        }
                        if meta.idle_for >= PING_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(opts)
                .await
                .map_err(|e| Error::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
            Ok(Db {
                pool: Pool::Postgres(pool),
                shared: Arc::new(Shared {
                    command,
                    ..Shared::default()
                }),
            })
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            // A server's checkpoints are the checkpointer's (`CHECKPOINT_COMMITS`); a command
            // (nobody waits behind its writer) keeps SQLite's own, and so does a pool of one.
            let checkpoints = !command && path != ":memory:";
            let opts = |cache_kb: u32| {
                let o = SqliteConnectOptions::new()
                    .filename(Path::new(path))
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(WRITER_WAIT)
                    .foreign_keys(true)
                    .pragma("cache_size", format!("-{cache_kb}"));
                if checkpoints {
                    o.pragma("wal_autocheckpoint", "0")
                        .pragma("journal_size_limit", LOG_LIMIT_BYTES.to_string())
                } else {
                    o
                }
            };
            let state: Option<Arc<Checkpoints>> = checkpoints.then(Arc::default);
            let open = |n: u32, cache_kb: u32, turn: Option<Arc<Checkpoints>>| {
                // A SQLite connection cannot go stale: no ping before use.
                SqlitePoolOptions::new()
                    .max_connections(n)
                    .acquire_timeout(WRITER_WAIT)
                    .test_before_acquire(false)
                    .before_acquire(move |conn, _| {
                        let turn = turn.clone();
                        Box::pin(async move {
                            if left_in_transaction(&*conn) {
                                return Ok(false);
                            }
                            if let Some(c) = turn {
                                checkpoint_in_turn(conn, &c).await;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(opts(cache_kb))
            };
            let failed = |e: sqlx::Error| {
                Error::Unavailable(format!("cannot open SQLite database {path}: {e}"))
            };
            // The writer first: it creates the file and switches it to WAL.
            let write = open(
                1,
                if command {
                    COMMAND_WRITER_CACHE_KB
                } else {
                    WRITER_CACHE_KB
                },
                state.clone(),
            )
            .await
            .map_err(failed)?;
            let read = if max_connections <= 1 || path == ":memory:" {
                write.clone()
            } else {
                open(max_connections - 1, READER_CACHE_KB, None)
                    .await
                    .map_err(failed)?
            };
            let checkpoints = if let Some(state) = state {
                // Its own connection, so it never waits for a reader's.
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(opts(256))
                    .await
                    .map_err(failed)?;
                Some(Checkpointing { state, pool })
            } else {
                None
            };
            let shared = Arc::new(Shared {
                command,
                checkpoints,
                ..Shared::default()
            });
            if let Some(c) = &shared.checkpoints {
                tokio::spawn(checkpointer(
                    c.pool.clone(),
                    c.state.clone(),
                    Arc::downgrade(&shared),
                ));
            }
            Ok(Db {
                pool: Pool::Sqlite { read, write },
                shared,
            })
        }
    }

    /// A command's pool (two connections or fewer: an import, the generator), not a
    /// server's: its bulk loads may hold the writer longer and use more memory.
    pub fn is_command(&self) -> bool {
        self.shared.command
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.pool {
            // The writer connection (see `Pool::Sqlite`), then BEGIN IMMEDIATE: SQLite's write
            // lock up front, so a writer of another process queues on busy_timeout instead of
            // one failing when it upgrades a read lock.
            Pool::Sqlite { write, .. } => {
                TxInner::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?)
            }
            // BEGIN in a task of its own, so it always finishes: sqlx (0.8) returns a
            // connection whose BEGIN future was dropped between sending BEGIN and reading the
            // answer (a client gone mid-request) to the pool inside a transaction it does not
            // know of — its rollback guard sees depth 0 — and every later statement on it,
            // autocommits too, would run uncommitted in that transaction, holding its locks.
            // Finished, an abandoned transaction is dropped and rolled back as any other.
            Pool::Postgres(p) => {
                let p = p.clone();
                let begun = tokio::spawn(async move { p.begin().await })
                    .await
                    .map_err(|e| Error::Internal(anyhow::anyhow!("BEGIN task: {e}")))?;
                TxInner::Postgres(begun?)
            }
        };
        Ok(Tx {
            inner,
            shared: self.shared.clone(),
            changed: Changes::default(),
            bulk: false,
        })
    }

    /// A statement on the pool: a write to the callers' tables invalidates the cached callers
    /// when it is done.
    fn turn(&self, sql: &str) -> Turn {
        let write = writes(sql);
        Turn {
            write,
            tell: write.then(|| Tell {
                shared: self.shared.clone(),
                changes: changes(sql),
            }),
        }
    }

    /// The generation of the callers' tables: it changes after every committed write to them.
    pub(crate) fn callers_generation(&self) -> u64 {
        self.shared.callers.load(Ordering::SeqCst)
    }

    pub(crate) fn auth_cache(&self) -> &crate::auth::Cache {
        &self.shared.auth
    }

    /// The process's cached settings as of now ([`crate::settings`]).
    pub fn settings(&self) -> crate::settings::Settings {
        crate::settings::Settings::new(
            self.shared.settings_cache.clone(),
            self.shared.settings_generation(),
            false,
        )
    }

    /// Refreshes the planner's statistics. SQLite keeps none until asked (without them it
    /// walks a tenant's rows where an index on another column would serve): `thorough` runs a
    /// full `ANALYZE` (after a bulk load); otherwise `PRAGMA optimize=0x10002` analyses, with
    /// a bounded sample, only the tables that changed enough since — cheap enough for every
    /// start. PostgreSQL's autovacuum keeps its own; `thorough` runs `ANALYZE` at once.
    pub async fn analyze(&self, thorough: bool) -> Result<()> {
        let sql = match (self.backend(), thorough) {
            (Backend::Sqlite, true) => "ANALYZE",
            (Backend::Sqlite, false) => "PRAGMA optimize=0x10002",
            (Backend::Postgres, true) => "ANALYZE",
            (Backend::Postgres, false) => return Ok(()),
        };
        self.execute(sql, vec![]).await?;
        Ok(())
    }

    /// Ends a bulk load ([`Tx::bulk_load`]): PostgreSQL merges the search-index entries the
    /// load left pending into the index, so searches do not read through them. Nothing to do
    /// on SQLite.
    pub async fn finish_bulk_load(&self) -> Result<()> {
        if self.backend() == Backend::Sqlite && self.shared.command {
            // The log left by a bulk load is copied into the file and emptied now, not by the
            // first writes of the server that opens it next (they stalled ~0.4 s after a
            // million generated rows). A reader still in it makes this a partial checkpoint
            // (a result row, not an error).
            self.execute("PRAGMA wal_checkpoint(TRUNCATE)", vec![])
                .await?;
        }
        if self.backend() == Backend::Postgres {
            self.execute(
                "SELECT gin_clean_pending_list(i.oid) FROM pg_class i JOIN pg_am am ON am.oid = i.relam
                 WHERE am.amname = 'gin' AND i.relkind = 'i' AND i.relnamespace = current_schema()::text::regnamespace",
                vec![],
            )
            .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
                if let Some(c) = &self.shared.checkpoints {
                    c.pool.close().await;
                }
            }
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Where a statement on the pool runs: on SQLite a write goes through the writer.
    fn conns(&self, write: bool) -> Conns<'_> {
        match &self.pool {
            Pool::Sqlite {
                read,
                write: writer,
            } => Conns::SqlitePool(if write { writer } else { read }),
            Pool::Postgres(p) => Conns::PgPool(p),
        }
    }

    query_methods!((&self), self);
}

/// A transaction. On SQLite it holds the writer connection until it ends.
pub struct Tx {
    inner: TxInner,
    shared: Arc<Shared>,
    /// What it wrote of the cached tables: its commit invalidates those caches.
    changed: Changes,
    /// Part of a bulk load ([`Tx::bulk_load`]): its commit wakes SQLite's checkpointer at
    /// once, as one such transaction writes as many pages as hundreds of requests.
    bulk: bool,
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }
    /// Runs a script of several statements without parameters (migrations).
    pub async fn execute_script(&mut self, sql: &str) -> Result<()> {
        self.changed = Changes::ALL;
        match &mut self.inner {
            TxInner::Sqlite(t) => {
                sqlx::raw_sql(sql).execute(&mut **t).await?;
            }
            TxInner::Postgres(t) => {
                sqlx::raw_sql(sql).execute(&mut **t).await?;
            }
        }
        Ok(())
    }

    /// Inside a transaction a write to the callers' tables is remembered for the commit (the
    /// statement runs on the transaction's own connection either way).
    fn turn(&mut self, sql: &str) -> Turn {
        let write = writes(sql);
        if write {
            let c = changes(sql);
            self.changed.callers |= c.callers;
            self.changed.settings |= c.settings;
        }
        Turn { write, tell: None }
    }

    /// Marks this transaction as part of a bulk load (an import, the generator): PostgreSQL
    /// queues its search-index entries in a pending list of up to 4 MB instead of 256 kB and
    /// merges them in larger, cheaper batches (100,000 contacts generated: 62 s against 83 s).
    /// The load ends with [`Db::finish_bulk_load`].
    /// The process's cached settings as of now, for reads in this transaction: none served
    /// or kept once it wrote a settings table itself (what it reads is not yet everyone's).
    pub fn settings(&self) -> crate::settings::Settings {
        crate::settings::Settings::new(
            self.shared.settings_cache.clone(),
            self.shared.settings_generation(),
            self.changed.settings || self.changed.callers,
        )
    }

    pub async fn bulk_load(&mut self) -> Result<()> {
        self.bulk = true;
        match self.backend() {
            Backend::Postgres => {
                self.execute("SET LOCAL gin_pending_list_limit = '4MB'", vec![])
                    .await?;
            }
            // A command's connection keeps a 1 GiB page cache: past a few hundred thousand rows
            // a table's random-key indexes and search index outgrow 64 MB, and each batch
            // re-reads them from the OS (a million deals: over 40 minutes instead of minutes).
            // Its log is checkpointed every 64 MB instead of 4 MB: a page written by many
            // transactions is copied to the file once per checkpoint, and checkpoints were a
            // sixth of an order import (`Db::finish_bulk_load` checkpoints what is left).
            Backend::Sqlite if self.shared.command => {
                self.execute("PRAGMA cache_size = -1048576", vec![]).await?;
                self.execute("PRAGMA wal_autocheckpoint = 16384", vec![])
                    .await?;
            }
            Backend::Sqlite => {}
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        self.shared.changed(self.changed);
        self.shared.committed(self.bulk);
        Ok(())
    }
    /// Writes many rows into `table` at once: `COPY … FROM STDIN` on PostgreSQL, multi-row
    /// `INSERT`s of about 2,000 parameters each on SQLite. For bulk loads (the scale generator):
    /// no `RETURNING`, no conflict handling — a row that breaks a constraint fails the whole call.
    pub async fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Val>>,
    ) -> Result<u64> {
        let cols = columns.join(", ");
        match &mut self.inner {
            TxInner::Sqlite(_) => {
                let per = (2000 / columns.len().max(1)).max(1);
                let mut n = 0;
                let mut rows = rows.into_iter().peekable();
                while rows.peek().is_some() {
                    let mut q = Sql::new(&format!("INSERT INTO {table} ({cols}) VALUES "));
                    for (i, row) in rows.by_ref().take(per).enumerate() {
                        q.push(if i == 0 { "(" } else { ", (" });
                        for (j, v) in row.into_iter().enumerate() {
                            if j > 0 {
                                q.push(", ");
                            }
                            q.bind(v);
                        }
                        q.push(")");
                    }
                    n += self.execute(&q.sql, q.args).await?;
                }
                Ok(n)
            }
            TxInner::Postgres(t) => {
                let mut copy = t
                    .copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN"))
                    .await?;
                let mut buf = String::with_capacity(1 << 20);
                for row in rows {
                    for (j, v) in row.iter().enumerate() {
                        if j > 0 {
                            buf.push('\t');
                        }
                        copy_text(v, &mut buf);
                    }
                    buf.push('\n');
                    if buf.len() >= 1 << 20 {
                        copy.send(std::mem::take(&mut buf).into_bytes()).await?;
                    }
                }
                if !buf.is_empty() {
                    copy.send(buf.into_bytes()).await?;
                }
                Ok(copy.finish().await?)
            }
        }
    }
    fn conns(&mut self, _write: bool) -> Conns<'_> {
        match &mut self.inner {
            TxInner::Sqlite(t) => Conns::SqliteTx(t),
            TxInner::Postgres(t) => Conns::PgTx(t),
        }
    }
    query_methods!((&mut self), self);
}

/// Where a statement runs: the pool, or the caller's open transaction. Code that holds a
/// transaction reads through it — never through the pool beside it: a second connection taken
/// while one is held deadlocks a small pool under load (and on SQLite waits on the writer's
/// lock it holds itself). Functions used both inside and outside transactions take
/// `impl Into<Conn>`.
pub enum Conn<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for Conn<'a> {
    fn from(db: &'a Db) -> Self {
        Conn::Db(db)
    }
}

impl<'a> From<&'a mut Tx> for Conn<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Conn::Tx(tx)
    }
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Db(d) => d.backend(),
            Conn::Tx(t) => t.backend(),
        }
    }
    /// The same connection again, for one more call (`Conn` is not `Copy`: it may hold `&mut Tx`).
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Db(d) => Conn::Db(d),
            Conn::Tx(t) => Conn::Tx(t),
        }
    }
    fn conns(&mut self, write: bool) -> Conns<'_> {
        match self {
            Conn::Db(d) => d.conns(write),
            Conn::Tx(t) => t.conns(write),
        }
    }
    fn turn(&mut self, sql: &str) -> Turn {
        match self {
            Conn::Db(d) => d.turn(sql),
            Conn::Tx(t) => t.turn(sql),
        }
    }
    /// The process's cached settings as of now ([`Db::settings`], [`Tx::settings`]).
    pub fn settings(&self) -> crate::settings::Settings {
        match self {
            Conn::Db(d) => d.settings(),
            Conn::Tx(t) => t.settings(),
        }
    }
    query_methods!((&mut self), self);
}

/// One value in PostgreSQL's COPY text format: `\N` for NULL, backslash escapes for the
/// characters that separate columns and rows.
fn copy_text(v: &Val, out: &mut String) {
    use std::fmt::Write;
    fn escaped(s: &str, out: &mut String) {
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    }
    // Writing to a String cannot fail.
    let _ = match v {
        Val::Bool(Some(b)) => write!(out, "{}", if *b { 't' } else { 'f' }),
        Val::I64(Some(n)) => write!(out, "{n}"),
        Val::F64(Some(x)) => write!(out, "{x}"),
        Val::Text(Some(s)) => {
            escaped(s, out);
            Ok(())
        }
        Val::Uuid(Some(u)) => write!(out, "{u}"),
        Val::Time(Some(t)) => write!(out, "{}", t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        Val::Json(Some(j)) => {
            escaped(&j.to_string(), out);
            Ok(())
        }
        Val::RawJson(Some(j)) => {
            escaped(j.get(), out);
            Ok(())
        }
        Val::Bytes(Some(b)) => {
            out.push_str("\\\\x");
            b.iter().try_for_each(|x| write!(out, "{x:02x}"))
        }
        _ => {
            out.push_str("\\N");
            Ok(())
        }
    };
}

/// Dynamic SQL with numbered placeholders: `push` text, `bind` a value (appends `$n`).
#[derive(Default, Debug)]
pub struct Sql {
    pub sql: String,
    pub args: Vec<Val>,
    /// See [`Sql::plan_with_values`].
    pub plan_with_values: bool,
}

impl Sql {
    pub fn new(s: &str) -> Self {
        Sql {
            sql: s.to_owned(),
            args: Vec::new(),
            plan_with_values: false,
        }
    }
    /// Has PostgreSQL plan this statement with its values at every run (sent unnamed), never
    /// with the generic plan it caches for a prepared statement after five runs. For statements
    /// whose best plan depends on the values: a search term's frequency decides between walking
    /// the id index and sorting the term's matches, and a generic plan chosen while a connection
    /// ran one term served every later term (建华 at a million contacts: 270 ms sorting 28,000
    /// matches instead of 3 ms walking). Costs the planning, a fraction of a millisecond.
    pub fn plan_with_values(&mut self) -> &mut Self {
        self.plan_with_values = true;
        self
    }
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }
    pub fn bind(&mut self, v: impl Into<Val>) -> &mut Self {
        self.args.push(v.into());
        self.sql.push('$');
        self.sql.push_str(&self.args.len().to_string());
        self
    }
    /// Binds each value, comma-separated in parentheses (`… IN ` then `bind_list(ids)`). An
    /// empty list binds nothing (`()`): callers decide what an empty filter means first.
    pub fn bind_list<V: Into<Val>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        self.sql.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(v);
        }
        self.sql.push(')');
        self
    }
    /// Appends another statement built on its own (a subquery): its `$k` become `$(k + n)`,
    /// `n` this one's values so far (`$` inside quoted text is left alone).
    pub fn append(&mut self, other: Sql) -> &mut Self {
        let offset = self.args.len();
        let b = other.sql.as_bytes();
        let (mut i, mut from, mut quoted) = (0, 0, false);
        while i < b.len() {
            match b[i] {
                b'\'' => quoted = !quoted,
                b'$' if !quoted => {
                    let mut end = i + 1;
                    while end < b.len() && b[end].is_ascii_digit() {
                        end += 1;
                    }
                    if let Ok(k) = other.sql[i + 1..end].parse::<usize>() {
                        self.sql.push_str(&other.sql[from..i]);
                        self.sql.push('$');
                        self.sql.push_str(&(k + offset).to_string());
                        from = end;
                        i = end;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.sql.push_str(&other.sql[from..]);
        self.args.extend(other.args);
        self.plan_with_values |= other.plan_with_values;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::{changes, positional, writes, Changes};

    fn changes_callers(sql: &str) -> bool {
        changes(sql).callers
    }
    use std::time::Duration;

    /// A server's SQLite database (four connections: the checkpointer runs) in a new temporary
    /// directory, with `table` created; the directory and the file.
    async fn server_sqlite(table: &str) -> (std::path::PathBuf, std::path::PathBuf, super::Db) {
        let dir = std::env::temp_dir().join(format!("gx-db-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("t.db");
        let db = super::Db::connect(&file.to_string_lossy(), 4)
            .await
            .expect("sqlite");
        db.execute(&format!("CREATE TABLE {table}"), vec![])
            .await
            .expect("table");
        (dir, file, db)
    }

    #[test]
    fn writes_to_the_callers_tables_are_seen() {
        for sql in [
            "UPDATE users SET active = $1 WHERE tenant_id = $2",
            "  update roles set permissions = $1",
            "DELETE FROM sessions WHERE tenant_id = $1",
            "DELETE FROM teams WHERE id = $1",
            "UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2",
            "INSERT INTO users (id) VALUES ($1)",
            "INSERT OR REPLACE INTO roles (id) VALUES ($1)",
            "UPDATE tenants SET locale = $1",
            "ALTER TABLE users ADD COLUMN x TEXT",
        ] {
            assert!(writes(sql) && changes_callers(sql), "{sql}");
        }
        for sql in [
            "UPDATE contacts SET name = $1",
            "INSERT INTO user_tokens (id) VALUES ($1)",
            "DELETE FROM users_x WHERE id = $1",
            "UPDATE api_tokens SET last_used_at = $1 WHERE tenant_id = $2 AND token_hash = $3",
            "INSERT INTO sessions (tenant_id, token_hash) VALUES ($1, $2)",
            "SELECT * FROM users",
        ] {
            assert!(!changes_callers(sql), "{sql}");
        }
        assert!(
            !writes("SELECT 1") && !writes(" WITH RECURSIVE up AS (SELECT 1) SELECT * FROM up")
        );
        assert!(changes_callers(
            "WITH x AS (SELECT 1) UPDATE users SET active = $1"
        ));
    }

    #[test]
    fn writes_to_the_settings_tables_are_seen() {
        for sql in [
            "UPDATE custom_fields SET label = $1 WHERE tenant_id = $2",
            "INSERT INTO scoring_rules(tenant_id, id) VALUES ($1, $2)",
            "DELETE FROM lead_models WHERE tenant_id = $1",
            "INSERT INTO lead_response_sla (tenant_id) VALUES ($1)",
            "UPDATE forms SET active = $1",
            "UPDATE calendars SET weeks = $1",
            "UPDATE assignment_rules SET active = $1",
            "WITH o AS (SELECT 1) DELETE FROM forms WHERE id = $1",
            "CREATE TABLE x (a INT)",
        ] {
            assert!(writes(sql) && changes(sql).settings, "{sql}");
        }
        for sql in [
            "UPDATE assignment_rules SET last_user_id = $1 WHERE tenant_id = $2 AND id = $3",
            "INSERT INTO form_submissions (tenant_id) VALUES ($1)",
            "UPDATE leads SET score = $1",
            "SELECT * FROM custom_fields",
        ] {
            assert!(!changes(sql).settings, "{sql}");
        }
        assert!(!changes("UPDATE users SET name = $1").settings);
        assert_eq!(changes("ALTER TABLE forms ADD COLUMN x TEXT"), Changes::ALL);
        assert!(writes("PRAGMA optimize") && writes("insert into t values (1)"));
        // A common table expression in front of a write is a write.
        assert!(writes("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"));
        assert!(writes(
            "with v(n) as (values ($1)) update t set a = v.n from v"
        ));
        assert!(writes(
            " WITH old AS (SELECT id FROM t) DELETE FROM t WHERE id IN old"
        ));
        assert!(!writes(
            "WITH v(name) AS (VALUES ($1)) SELECT v.name, (SELECT updated_at FROM t) FROM v"
        ));
    }

    /// A server's SQLite log is copied into the database file by the checkpointer, not by the
    /// writer inside a commit: the writer's automatic checkpoint is off, and once
    /// `CHECKPOINT_COMMITS` writes are committed the file itself — read with the log ignored —
    /// holds them.
    ///
    /// The test holds the checkpointer's one connection while it writes and while it reads the
    /// file alone: a checkpoint woken earlier (by the setup's commits) can neither end the wait
    /// too soon nor write the file under the read (an immutable reader sees a torn file as
    /// "malformed").
    #[tokio::test]
    async fn a_servers_log_is_checkpointed_off_the_writer() {
        use sqlx::sqlite::SqliteConnectOptions;
        use sqlx::Connection;
        let (dir, file, db) = server_sqlite("ck (n BIGINT)").await;
        let super::Pool::Sqlite { write, .. } = &db.pool else {
            panic!("a SQLite pool");
        };
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(write)
            .await
            .expect("pragma");
        assert_eq!(auto, 0, "the writer never checkpoints inside a commit");
        let checkpointing = db
            .shared
            .checkpoints
            .as_ref()
            .expect("a server's checkpointer");
        let (state, checkpointer) = (&checkpointing.state, &checkpointing.pool);
        // Rows of `ck` in the database file read alone, the log ignored, while no checkpoint
        // can run.
        let in_file = |filter: &'static str| {
            let file = file.clone();
            async move {
                let _no_checkpoint = checkpointer.acquire().await.expect("checkpointer");
                let mut file_only = sqlx::SqliteConnection::connect_with(
                    &SqliteConnectOptions::new().filename(&file).immutable(true),
                )
                .await
                .expect("the file alone");
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ck {filter}"))
                    .fetch_one(&mut file_only)
                    .await
                    .expect("count");
                n
            }
        };
        let held = checkpointer.acquire().await.expect("checkpointer");
        let finished = state.finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        for n in 0..i64::from(super::CHECKPOINT_COMMITS) {
            let mut tx = db.begin().await.expect("begin");
            tx.execute("INSERT INTO ck VALUES ($1)", crate::args![n])
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
        }
        drop(held);
        tokio::time::timeout(Duration::from_secs(60), finished)
            .await
            .expect("a checkpoint after CHECKPOINT_COMMITS commits");
        assert_eq!(
            in_file("").await,
            i64::from(super::CHECKPOINT_COMMITS),
            "every row committed before the checkpointer was woken is in the file"
        );
        // One batch of a bulk load (an import through the server) wakes it at once: its
        // rows are in the file without 63 more commits.
        let held = checkpointer.acquire().await.expect("checkpointer");
        let finished = state.finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        let mut tx = db.begin().await.expect("begin");
        tx.bulk_load().await.expect("bulk");
        tx.execute("INSERT INTO ck VALUES (-1)", crate::args![])
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        drop(held);
        tokio::time::timeout(Duration::from_secs(60), finished)
            .await
            .expect("a checkpoint after a bulk load's commit");
        assert_eq!(
            in_file("WHERE n = -1").await,
            1,
            "the bulk load's row is in the file"
        );
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The log is started again from its beginning in the writer's turn: while writes never
    /// pause the checkpointer beside the writer cannot copy all of it (a generator's log grew
    /// to 27 GB), so past 64 MB it leaves the copy to the next writer, who checkpoints before
    /// it writes — and the transaction after it writes at the start of the log again.
    #[tokio::test]
    async fn the_log_starts_again_after_a_checkpoint_in_the_writers_turn() {
        use std::sync::atomic::Ordering;
        let (dir, _, db) = server_sqlite("big (b BLOB)").await;
        let log = dir.join("t.db-wal");
        let size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let write = |mb: usize| {
            let db = db.clone();
            async move {
                for _ in 0..mb {
                    let mut tx = db.begin().await.expect("begin");
                    tx.execute(
                        "INSERT INTO big VALUES ($1)",
                        crate::args![vec![7u8; 1 << 20]],
                    )
                    .await
                    .expect("insert");
                    tx.commit().await.expect("commit");
                }
            }
        };
        write(20).await;
        let grown = size();
        assert!(grown >= 20 << 20, "{grown}");
        // As the checkpointer does past WRITER_CHECKPOINT_FRAMES.
        let state = &db.shared.checkpoints.as_ref().expect("checkpointer").state;
        state.in_writers_turn.store(true, Ordering::SeqCst);
        write(1).await;
        assert!(
            !state.in_writers_turn.load(Ordering::SeqCst),
            "the writer copied the whole log in its turn"
        );
        // Ten more megabytes go to the start of the log: the file does not grow.
        write(10).await;
        assert!(size() <= grown, "{} > {grown}", size());
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A connection given back to the pool inside a transaction (as a `BEGIN` whose future was
    /// dropped before it handed the transaction over leaves it) is not handed out again: the
    /// next writer gets a working connection and the abandoned transaction is rolled back.
    #[tokio::test]
    async fn a_begin_dropped_before_its_answer_leaves_no_transaction_behind() {
        let dir = std::env::temp_dir().join(format!("gx-dropped-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("t.db").to_string_lossy().into_owned();
        let mut urls = vec![file];
        if let Ok(url) = std::env::var("GUANXI_TEST_DATABASE_URL") {
            urls.push(url);
        }
        for url in urls {
            // One connection: whatever a dropped BEGIN leaves on it, the next statement meets.
            let db = super::Db::connect(&url, 1).await.expect("database");
            let other = super::Db::connect(&url, 1).await.expect("database");
            let table = format!("dropped_{}", uuid::Uuid::now_v7().simple());
            db.execute(&format!("CREATE TABLE {table} (n BIGINT)"), vec![])
                .await
                .expect("table");
            for n in 0..40_i64 {
                // Polled a few times — the connection taken, BEGIN sent, its answer perhaps
                // not read yet — then dropped, as a request is when its client goes.
                let mut begin = Box::pin(db.begin());
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                for _ in 0..n / 2 {
                    if std::future::Future::poll(begin.as_mut(), &mut cx).is_ready() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                drop(begin);
                db.execute(&format!("INSERT INTO {table} VALUES ($1)"), crate::args![n])
                    .await
                    .expect("insert");
                let seen: i64 = other
                    .scalar(&format!("SELECT COUNT(*) FROM {table}"), vec![])
                    .await
                    .expect("count");
                assert_eq!(
                    seen,
                    n + 1,
                    "{url}: the insert after a dropped BEGIN committed"
                );
            }
            db.execute(&format!("DROP TABLE {table}"), vec![])
                .await
                .expect("drop");
            db.close().await;
            other.close().await;
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn a_connection_left_in_a_transaction_is_never_handed_out() {
        let dir = std::env::temp_dir().join(format!("gx-left-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("t.db");
        let mut dbs = vec![super::Db::connect(&file.to_string_lossy(), 4)
            .await
            .expect("sqlite")];
        if let Ok(url) = std::env::var("GUANXI_TEST_DATABASE_URL") {
            dbs.push(super::Db::connect(&url, 1).await.expect("postgres"));
        }
        for db in dbs {
            let table = format!("left_{}", uuid::Uuid::now_v7().simple());
            db.execute(&format!("CREATE TABLE {table} (n BIGINT)"), vec![])
                .await
                .expect("table");
            {
                use sqlx::Connection;
                match &db.pool {
                    super::Pool::Sqlite { write, .. } => {
                        let mut c = write.acquire().await.expect("writer");
                        let mut tx = c.begin_with("BEGIN IMMEDIATE").await.expect("begin");
                        sqlx::query(&format!("INSERT INTO {table} VALUES (1)"))
                            .execute(&mut *tx)
                            .await
                            .expect("insert");
                        std::mem::forget(tx);
                    }
                    super::Pool::Postgres(p) => {
                        let mut c = p.acquire().await.expect("connection");
                        let mut tx = c.begin().await.expect("begin");
                        sqlx::query(&format!("INSERT INTO {table} VALUES (1)"))
                            .execute(&mut *tx)
                            .await
                            .expect("insert");
                        std::mem::forget(tx);
                    }
                }
            }
            for _ in 0..3 {
                let mut tx = db.begin().await.expect("a writer after the abandoned one");
                tx.execute(&format!("INSERT INTO {table} VALUES (2)"), vec![])
                    .await
                    .expect("insert");
                tx.commit().await.expect("commit");
            }
            let rows: Vec<(i64,)> = db
                .fetch_all(&format!("SELECT n FROM {table} ORDER BY n"), vec![])
                .await
                .expect("rows");
            assert_eq!(
                rows,
                vec![(2,), (2,), (2,)],
                "the abandoned insert rolled back"
            );
            db.execute(&format!("DROP TABLE {table}"), vec![])
                .await
                .expect("drop");
            db.close().await;
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The build leaves SQLite's STAT4 out (`.cargo/config.toml`): with it every statement is
    /// re-planned at each run, a third of the point-read rate.
    #[tokio::test]
    async fn sqlite_is_built_without_stat4() {
        let db = super::Db::connect(":memory:", 1).await.expect("sqlite");
        let used: i64 = db
            .scalar("SELECT sqlite_compileoption_used('ENABLE_STAT4')", vec![])
            .await
            .expect("compile options");
        assert_eq!(used, 0);
    }

    #[test]
    fn sequential_placeholders_become_anonymous() {
        assert_eq!(
            positional("INSERT INTO t VALUES ($1, $2), ($3, 'a$4', $4)"),
            "INSERT INTO t VALUES (?, ?), (?, 'a$4', ?)"
        );
        assert_eq!(positional("SELECT 1"), "SELECT 1");
        assert_eq!(positional("SELECT $1 ESCAPE '\\'"), "SELECT ? ESCAPE '\\'");
    }

    #[test]
    fn an_appended_statement_numbers_on() {
        let mut q = super::Sql::new("SELECT * FROM (");
        q.bind(1i64);
        let mut sub = super::Sql::new("SELECT '$1' WHERE a = ");
        sub.bind(2i64).push(" AND b = ").bind(3i64);
        sub.plan_with_values();
        q.append(sub).push(") x WHERE c = ").bind(4i64);
        assert!(
            q.plan_with_values,
            "a subquery planned with its values makes the whole so"
        );
        assert_eq!(
            q.sql,
            "SELECT * FROM ($1SELECT '$1' WHERE a = $2 AND b = $3) x WHERE c = $4"
        );
        assert_eq!(q.args.len(), 4);
    }

    #[test]
    fn reused_or_reordered_placeholders_stay_named() {
        for sql in [
            "SELECT * FROM t WHERE a = $1 OR b = $1",
            "SELECT * FROM t WHERE a = $2 AND b = $1",
            "SELECT * FROM t WHERE a = $1 AND b = $3",
            "SELECT $ FROM t WHERE a = $1",
        ] {
            assert_eq!(positional(sql), sql);
        }
    }
}
