//! Imports run in the background from the web UI: the uploaded file is kept with its options
//! in `imports`, the import runs on a task, and its row count is written as it goes so the
//! import's page can show a progress bar. A restart finds imports still `running` and marks
//! them `interrupted`; running one again (same file, same options) doubles nothing, since
//! every row is saved in its own transaction and duplicates are skipped (orders are pushed by
//! number).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::Db;
use guanxi_platform::error::Result;
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, Ctx, Error};

use crate::import::{ImportReport, Target};

/// An import's state, as its page shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ImportRun {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `contacts`, `accounts` or `orders`.
    pub target: String,
    pub file_name: String,
    /// The file's size in bytes.
    pub size: i64,
    /// `checked` (a dry run's file, kept for the import that follows), `running`, `done`,
    /// `failed` or `interrupted`.
    pub status: String,
    pub rows_done: i64,
    /// How much of the file has been read, in bytes (of `size`).
    pub bytes_done: i64,
    #[schema(value_type = Option<Object>)]
    pub report: Option<sqlx::types::Json<serde_json::Value>>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a run needs to start again: the file and how to read it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub target: String,
    pub file_name: String,
    pub options: serde_json::Value,
    pub data: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    target: String,
    file_name: String,
    options: sqlx::types::Json<serde_json::Value>,
    data: Vec<u8>,
}

const SELECT: &str =
    "SELECT id, user_id, target, file_name, size, status, rows_done, bytes_done, report, error,
    created_at, updated_at FROM imports";

pub fn target_name(t: Target) -> &'static str {
    match t {
        Target::Contacts => "contacts",
        Target::Accounts => "accounts",
        Target::Orders => "orders",
    }
}

pub fn target_of(name: &str) -> Target {
    match name {
        "accounts" => Target::Accounts,
        "orders" => Target::Orders,
        _ => Target::Contacts,
    }
}

/// Keeps the file and starts the record of an import (status `running`).
pub async fn start(
    db: &Db,
    ctx: &Ctx,
    target: Target,
    file_name: &str,
    options: serde_json::Value,
    data: Vec<u8>,
) -> Result<Uuid> {
    ctx.require(target_name(target), Action::Create)?;
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let (id, t) = (new_id(), now());
    let size = data.len() as i64;
    db.execute(
        "INSERT INTO imports (tenant_id, id, user_id, target, file_name, options, data, size, status,
             rows_done, bytes_done, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', 0, 0, $9, $10)",
        args![ctx.tenant_id, id, user, target_name(target), file_name, options, data, size, t, t],
    )
    .await?;
    Ok(id)
}

/// Keeps a file the caller has just checked (a dry run), so the import that follows refers to
/// it by id instead of uploading it again or carrying it in the page (status `checked`). The
/// caller's checked files older than a day are let go.
pub async fn keep_checked(
    db: &Db,
    ctx: &Ctx,
    target: Target,
    file_name: &str,
    data: Vec<u8>,
) -> Result<Uuid> {
    ctx.require(target_name(target), Action::Create)?;
    let user = ctx.user_id.ok_or(Error::Forbidden)?;
    let (id, t) = (new_id(), now());
    let size = data.len() as i64;
    let mut tx = db.begin().await?;
    tx.execute(
        "DELETE FROM imports WHERE tenant_id = $1 AND user_id = $2 AND status = 'checked' AND created_at < $3",
        args![ctx.tenant_id, user, t - chrono::Duration::days(1)],
    )
    .await?;
    tx.execute(
        "INSERT INTO imports (tenant_id, id, user_id, target, file_name, options, data, size, status,
             rows_done, bytes_done, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'checked', 0, 0, $9, $10)",
        args![ctx.tenant_id, id, user, target_name(target), file_name, serde_json::json!({}), data, size, t, t],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A file the caller checked and has not imported yet.
pub async fn checked_file(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Stored> {
    let r: Option<StoredRow> = db
        .fetch_optional(
            "SELECT target, file_name, options, data FROM imports
             WHERE tenant_id = $1 AND id = $2 AND user_id = $3 AND status = 'checked'",
            args![ctx.tenant_id, id, ctx.user_id],
        )
        .await?;
    let r = r.ok_or(Error::NotFound)?;
    Ok(Stored {
        target: r.target,
        file_name: r.file_name,
        options: r.options.0,
        data: r.data,
    })
}

/// Starts the import of a checked file with the options now chosen. Only once: a second
/// submit of the same page finds it started (409).
pub async fn start_checked(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    target: Target,
    options: serde_json::Value,
) -> Result<()> {
    ctx.require(target_name(target), Action::Create)?;
    let n = db
        .execute(
            "UPDATE imports SET status = 'running', target = $1, options = $2, updated_at = $3
             WHERE tenant_id = $4 AND id = $5 AND user_id = $6 AND status = 'checked'",
            args![
                target_name(target),
                options,
                now(),
                ctx.tenant_id,
                id,
                ctx.user_id
            ],
        )
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(Error::Conflict(
            "this file's import has already started".into(),
        ))
    }
}

/// The stored file and options of an import the caller may see.
pub async fn stored(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Stored> {
    get(db, ctx, id).await?;
    let r: StoredRow = db
        .fetch_one(
            "SELECT target, file_name, options, data FROM imports WHERE tenant_id = $1 AND id = $2",
            args![ctx.tenant_id, id],
        )
        .await?;
    Ok(Stored {
        target: r.target,
        file_name: r.file_name,
        options: r.options.0,
        data: r.data,
    })
}

/// Marks an import running again (a re-run of an interrupted or failed one).
pub async fn restart(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    let run = get(db, ctx, id).await?;
    if run.status == "running" {
        return Err(Error::Conflict("the import is still running".into()));
    }
    ctx.require(&run.target, Action::Create)?;
    db.execute(
        "UPDATE imports SET status = 'running', rows_done = 0, bytes_done = 0, report = NULL, error = NULL, updated_at = $1
         WHERE tenant_id = $2 AND id = $3",
        args![now(), ctx.tenant_id, id],
    )
    .await?;
    Ok(())
}

pub async fn progress(db: &Db, tenant_id: Uuid, id: Uuid, rows: u64, bytes: u64) -> Result<()> {
    db.execute(
        "UPDATE imports SET rows_done = $1, bytes_done = $2, updated_at = $3
         WHERE tenant_id = $4 AND id = $5 AND status = 'running'",
        args![rows as i64, bytes as i64, now(), tenant_id, id],
    )
    .await?;
    Ok(())
}

/// Records how the import ended.
pub async fn finish(
    db: &Db,
    tenant_id: Uuid,
    id: Uuid,
    outcome: std::result::Result<&ImportReport, String>,
) -> Result<()> {
    let (status, rows, report, error) = match outcome {
        Ok(r) => ("done", r.rows as i64, serde_json::to_value(r).ok(), None),
        Err(e) => ("failed", 0, None, Some(e)),
    };
    db.execute(
        "UPDATE imports SET status = $1, rows_done = CASE WHEN $2 > 0 THEN $2 ELSE rows_done END,
             bytes_done = size, report = $3, error = $4, updated_at = $5
         WHERE tenant_id = $6 AND id = $7",
        args![status, rows, report, error, now(), tenant_id, id],
    )
    .await?;
    Ok(())
}

/// One import: its starter's, or any for those who may read the whole module.
pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<ImportRun> {
    let run: ImportRun = db
        .fetch_one(
            &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    let mine = Some(run.user_id) == ctx.user_id;
    if mine || ctx.can(&run.target, Action::Create) == Some(Scope::All) {
        Ok(run)
    } else {
        Err(Error::NotFound)
    }
}

/// The caller's latest imports.
pub async fn mine(db: &Db, ctx: &Ctx) -> Result<Vec<ImportRun>> {
    db.fetch_all(
        &format!(
            "{SELECT} WHERE tenant_id = $1 AND user_id = $2 AND status <> 'checked' ORDER BY created_at DESC LIMIT 20"
        ),
        args![ctx.tenant_id, ctx.user_id],
    )
    .await
}

/// At start-up: imports a crash or restart cut short are `interrupted` (run them again from
/// their page).
pub async fn mark_interrupted(db: &Db) -> Result<u64> {
    db.execute(
        "UPDATE imports SET status = 'interrupted', updated_at = $1 WHERE status = 'running'",
        args![now()],
    )
    .await
}
