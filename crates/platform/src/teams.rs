//! Teams: groups of users; the unit of "team" record scope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::args;
use crate::audit;
use crate::ctx::Ctx;
use crate::db::{Db, Sql, Tx};
use crate::error::{Error, Errors, Result};
use crate::page::{Page, PageReq, SortField, SortKind};
use crate::perms::Action;
use crate::time::{new_id, now};
use crate::{validate, version};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Team {
    pub id: Uuid,
    pub name: String,
    /// Active users in the team.
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    /// Required on update (or send `If-Match`); ignored on create.
    pub version: Option<i64>,
    pub name: Option<String>,
}

const SELECT: &str = "SELECT t.id, t.name,
    (SELECT COUNT(*) FROM users u WHERE u.tenant_id = t.tenant_id AND u.team_id = t.id AND u.active = $2 AND u.deleted_at IS NULL) AS member_count,
    t.created_at, t.updated_at, t.version FROM teams t WHERE t.tenant_id = $1 AND t.deleted_at IS NULL";

const SORTS: &[SortField] = &[
    ("name", "t.name", SortKind::Text),
    ("created_at", "t.created_at", SortKind::Time),
];

pub async fn list(
    db: &Db,
    ctx: &Ctx,
    limit: Option<i64>,
    cursor: Option<String>,
    sort: Option<String>,
) -> Result<Page<Team>> {
    ctx.require("teams", Action::Read)?;
    let page = PageReq {
        limit,
        cursor,
        sort,
    };
    let s = page.sort(SORTS)?;
    let mut q = Sql {
        sql: SELECT.to_owned(),
        args: args![ctx.tenant_id, true],
        plan_with_values: false,
    };
    let limit = page.apply(&mut q, &s, "t.id")?;
    let rows: Vec<Team> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |t| {
        s.cursor(
            if s.field == "name" {
                t.name.clone()
            } else {
                crate::db::sqlite_time(&t.created_at)
            },
            t.id,
        )
    }))
}

async fn load(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Team> {
    tx.fetch_one(
        &format!("{SELECT} AND t.id = $3"),
        args![tenant_id, true, id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Team> {
    ctx.require("teams", Action::Read)?;
    db.fetch_one(
        &format!("{SELECT} AND t.id = $3"),
        args![ctx.tenant_id, true, id],
    )
    .await
}

fn check_name(input: &TeamInput) -> Result<String> {
    let mut errs = Errors::default();
    let name = errs
        .required("name", &input.name)
        .and_then(|n| validate::name(n).map_err(|c| errs.add("name", c)).ok());
    errs.finish()?;
    Ok(name.unwrap_or_default())
}

async fn name_taken(tx: &mut Tx, tenant_id: Uuid, name: &str, except: Option<Uuid>) -> Result<()> {
    let n: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM teams WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL AND id <> $3",
            args![tenant_id, name, except.unwrap_or(Uuid::nil())],
        )
        .await?;
    if n > 0 {
        Err(Error::field("name", "taken"))
    } else {
        Ok(())
    }
}

pub async fn create(db: &Db, ctx: &Ctx, input: TeamInput) -> Result<Team> {
    ctx.require("teams", Action::Create)?;
    let name = check_name(&input)?;
    let mut tx = db.begin().await?;
    name_taken(&mut tx, ctx.tenant_id, &name, None).await?;
    let id = new_id();
    let t = now();
    tx.execute(
        "INSERT INTO teams (tenant_id, id, name, created_at, updated_at, created_by, updated_by, version, custom)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)",
        args![ctx.tenant_id, id, &name, t, t, ctx.user_id, ctx.user_id, serde_json::json!({})],
    )
    .await?;
    let team = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(&mut tx, ctx, "create", "teams", Some(id), None, Some(&team)).await?;
    tx.commit().await?;
    Ok(team)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: TeamInput,
) -> Result<Team> {
    ctx.require("teams", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    // An absent team is a 404 whatever the body says.
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    let name = check_name(&input)?;
    version::check(expected, before.version)?;
    name_taken(&mut tx, ctx.tenant_id, &name, Some(id)).await?;
    version::update(
        &mut tx,
        version::Row {
            table: "teams",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, updated_at = $2, updated_by = $3",
        args![&name, now(), ctx.user_id],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "teams",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes an empty team; a team with members is refused (move them first).
pub async fn delete(db: &Db, ctx: &Ctx, id: Uuid) -> Result<()> {
    ctx.require("teams", Action::Delete)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    let members: i64 =
        tx.scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND team_id = $2 AND deleted_at IS NULL", args![ctx.tenant_id, id]).await?;
    if members > 0 {
        return Err(Error::Conflict("the team still has members".into()));
    }
    tx.execute(
        "UPDATE teams SET deleted_at = $1, updated_at = $1, updated_by = $2, version = version + 1 WHERE tenant_id = $3 AND id = $4",
        args![now(), ctx.user_id, ctx.tenant_id, id],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "delete",
        "teams",
        Some(id),
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await
}

/// The active users holding the role `key` (with their teams), the longest-standing first.
async fn holding(tx: &mut Tx, tenant: Uuid, key: &str) -> Result<Vec<(Uuid, Option<Uuid>)>> {
    tx.fetch_all(
        "SELECT u.id, u.team_id FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
         WHERE u.tenant_id = $1 AND r.key = $2 AND u.active = $3 AND u.deleted_at IS NULL
         ORDER BY u.created_at, u.id",
        args![tenant, key, true],
    )
    .await
}

/// The company's administrators (active users with the admin role, the longest-standing
/// first) and their teams: who stands in for an owner who left (a form's).
pub async fn admins(tx: &mut Tx, tenant: Uuid) -> Result<Vec<(Uuid, Option<Uuid>)>> {
    holding(tx, tenant, "admin").await
}

/// The managers of `team` (active users with the manager role in it), else every manager: who
/// is told about a team's missed deadline, who approves for its members.
pub async fn managers(tx: &mut Tx, tenant: Uuid, team: Option<Uuid>) -> Result<Vec<Uuid>> {
    let all = holding(tx, tenant, "manager").await?;
    let of_team: Vec<Uuid> = all
        .iter()
        .filter(|(_, t)| team.is_some() && *t == team)
        .map(|(u, _)| *u)
        .collect();
    Ok(if of_team.is_empty() {
        all.into_iter().map(|(u, _)| u).collect()
    } else {
        of_team
    })
}
