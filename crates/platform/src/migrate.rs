//! Schema migrations, embedded in the binary: one ordered list per backend, applied in order,
//! each in its own transaction and recorded in `schema_migrations`. Both trees must describe the
//! same tables and columns (the parity test checks it).

use crate::args;
use crate::db::{Backend, Db};
use crate::error::Result;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

macro_rules! migration {
    ($v:expr, $name:literal) => {
        Migration {
            version: $v,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }
    };
}

pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_platform"),
    migration!(2, "0002_saved_views"),
    migration!(3, "0003_recent_views"),
    migration!(4, "0004_calendars"),
    migration!(5, "0005_scheduled_jobs"),
    migration!(6, "0006_notifications"),
    migration!(7, "0007_key_locks"),
    migration!(8, "0008_numbering"),
    migration!(9, "0009_approvals"),
    migration!(10, "0010_approval_links"),
    migration!(11, "0011_record_shares"),
    migration!(12, "0012_files"),
];

/// Applies every migration of `sets` not yet applied, set by set (the platform's first, then
/// each module's; versions are unique across sets: platform 1–999, customers 1001–1999, …);
/// returns how many ran. Safe to run from several nodes at once on PostgreSQL (an advisory lock
/// serialises them).
pub async fn run(db: &Db, sets: &[&[Migration]]) -> Result<usize> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
        args![],
    )
    .await?;
    let mut applied = 0;
    for m in sets.iter().flat_map(|s| s.iter()) {
        let mut tx = db.begin().await?;
        if tx.backend() == Backend::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(4747001)", args![])
                .await?;
        }
        let done: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM schema_migrations WHERE version = $1",
                args![m.version],
            )
            .await?;
        if done == 0 {
            let sql = match tx.backend() {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            tx.execute_script(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                args![m.version, m.name],
            )
            .await?;
            applied += 1;
        }
        tx.commit().await?;
    }
    sync_builtin_roles(db).await?;
    Ok(applied)
}

/// Built-in roles are read-only and follow the code: a release that adds a module grants it to
/// them in every tenant at the next start. Rows already equal are not touched.
async fn sync_builtin_roles(db: &Db) -> Result<()> {
    for (key, _, _) in crate::perms::BUILTIN_ROLES {
        let perms = serde_json::to_value(crate::perms::builtin_permissions(key))
            .map_err(|e| crate::Error::Internal(e.into()))?;
        db.execute(
            "UPDATE roles SET permissions = $1 WHERE key = $2 AND builtin = $3 AND permissions <> $4",
            args![perms.clone(), *key, true, perms],
        )
        .await?;
    }
    Ok(())
}
