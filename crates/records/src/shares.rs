//! Record sharing: a record of an entity that declares it ([`crate::EntityDef::shared`] — deals,
//! whose collaborators these are) opened to named colleagues beyond what their role's scope
//! covers, to read it or to read and edit it (platform migration 0011).
//!
//! A share widens the scope, never the role: a colleague whose role cannot read the module
//! gains nothing, and editing needs the role's update permission. A share never lets anyone
//! delete the record, hand it to another owner or share it on — those stay with whoever the
//! scope covers (the owner, their manager). The machinery consults shares wherever it applies a
//! scope: one record ([`crate::record::get`], [`crate::record::load_for`],
//! [`crate::record::readable`]) and lists, boards and search ([`scope_sql`]).
//!
//! The shares are part of the record: replaced as a whole at its version, which the change
//! advances (a concurrent edit is refused, never overwritten), and audited with it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::notifications::{self, Notice};
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, version, Ctx, Error};

use crate::bulk::Editable;
use crate::record::{self, Record};
use crate::Entity;

/// The most colleagues one record is shared with.
pub const MAX: usize = 50;

/// What a share allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// See the record, its timeline and what hangs off it.
    Read,
    /// Also change it (not delete it, hand it over or share it on).
    Edit,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Edit => "edit",
        }
    }

    fn parse(s: &str) -> Access {
        if s == "edit" {
            Access::Edit
        } else {
            Access::Read
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Share {
    pub user_id: Uuid,
    pub name: String,
    pub access: Access,
    /// Who shared it.
    pub granted_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Shares {
    /// In the order they were added.
    pub shares: Vec<Share>,
    /// The record's version (send it back to change the shares).
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareInput {
    pub user_id: Uuid,
    pub access: Access,
}

/// The shares to set: the list replaces the record's.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharesInput {
    /// The record's version as read (or send `If-Match`).
    pub version: Option<i64>,
    /// Every colleague to share with (at most 50, each once, not the owner): the list
    /// replaces the record's; empty or left out shares it with no one.
    #[serde(default)]
    pub shares: Vec<ShareInput>,
}

/// The caller's share of record `id` of `entity`, if it has one.
pub async fn mine(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    entity: Entity,
    id: Uuid,
) -> Result<Option<Access>> {
    if !entity.shared() {
        return Ok(None);
    }
    held(conn, ctx, entity.table(), id).await
}

/// The caller's share of row `id` of `table` (a declared entity's table: only a shared one
/// has any), for checks that know the record by its table alone ([`record::readable`]).
pub async fn held(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    table: &str,
    id: Uuid,
) -> Result<Option<Access>> {
    let Some(user) = ctx.user_id else {
        return Ok(None);
    };
    let row: Option<(String,)> = conn
        .into()
        .fetch_optional(
            "SELECT access FROM record_shares
             WHERE tenant_id = $1 AND entity = $2 AND record_id = $3 AND user_id = $4",
            args![ctx.tenant_id, table, id, user],
        )
        .await?;
    Ok(row.map(|(a,)| Access::parse(&a)))
}

/// Whether a share of `access` lets its holder do `action`.
pub fn grants(access: Option<Access>, action: Action) -> bool {
    matches!(
        (access, action),
        (Some(_), Action::Read) | (Some(Access::Edit), Action::Update)
    )
}

/// Whether the caller may do `action` to `r` (record `id`, already read): the role's scope
/// over its owner and team, or a share. For pages deciding which buttons to show.
pub async fn may<R: Record>(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    id: Uuid,
    r: &R,
    action: Action,
) -> Result<bool> {
    let Some(scope) = ctx.can(R::TABLE, action) else {
        return Ok(false);
    };
    if ctx.covers(scope, r.owner(), r.team()) {
        return Ok(true);
    }
    Ok(grants(mine(conn, ctx, R::ENTITY, id).await?, action))
}

/// Whether the caller's own scope (not a share) covers `r` for updates: who may share it and
/// hand it to another owner.
pub fn manages<R: Record>(ctx: &Ctx, r: &R) -> bool {
    ctx.can(R::TABLE, Action::Update)
        .is_some_and(|scope| ctx.covers(scope, r.owner(), r.team()))
}

/// Appends (`AND …`) the condition limiting a query to the records of `entity` (alias
/// `alias`, with `owner_id` and `team_id`) that `scope` covers or that are shared with the
/// caller: [`Ctx::scope_sql`] widened by the caller's shares, for lists, boards and search.
pub fn scope_sql(ctx: &Ctx, q: &mut Sql, scope: Scope, entity: Entity, alias: &str) {
    scoped(ctx, q, scope, alias, entity, &format!("{alias}.id"));
}

/// [`scope_sql`] for the records read through another's shares
/// ([`crate::record::Record::shared_through`]: a quote through its deal's): widened by the
/// caller's shares of the record `parent` names in `via` (`q.opportunity_id`), as reading one
/// by id is.
pub fn scope_sql_through(
    ctx: &Ctx,
    q: &mut Sql,
    scope: Scope,
    alias: &str,
    parent: Entity,
    via: &str,
) {
    scoped(ctx, q, scope, alias, parent, via);
}

fn scoped(ctx: &Ctx, q: &mut Sql, scope: Scope, alias: &str, entity: Entity, id: &str) {
    let (owner, team) = (format!("{alias}.owner_id"), format!("{alias}.team_id"));
    match ctx.user_id {
        Some(user) if entity.shared() && scope != Scope::All => {
            q.push(" AND (");
            ctx.scope_cond(q, scope, &owner, &team);
            q.push(&format!(
                " OR {id} IN (SELECT s.record_id FROM record_shares s WHERE s.tenant_id = "
            ))
            .bind(ctx.tenant_id)
            .push(" AND s.user_id = ")
            .bind(user)
            .push(&format!(" AND s.entity = '{}'))", entity.table()));
        }
        _ => ctx.scope_sql(q, scope, &owner, &team),
    }
}

/// The shares of record `id` of `entity`, in the order they were added (no permission check).
pub async fn list(
    conn: impl Into<Conn<'_>>,
    tenant: Uuid,
    entity: Entity,
    id: Uuid,
) -> Result<Vec<Share>> {
    type Row = (Uuid, String, String, Option<Uuid>, DateTime<Utc>);
    let rows: Vec<Row> = conn
        .into()
        .fetch_all(
            "SELECT s.user_id, u.name, s.access, s.granted_by, s.created_at
             FROM record_shares s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
             WHERE s.tenant_id = $1 AND s.entity = $2 AND s.record_id = $3
             ORDER BY s.created_at, u.name",
            args![tenant, entity.table(), id],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(user_id, name, access, granted_by, created_at)| Share {
            user_id,
            name,
            access: Access::parse(&access),
            granted_by,
            created_at,
        })
        .collect())
}

/// The shares of record `id` of `entity` at the record's `version`, for a caller who has read
/// it.
pub async fn of(db: &Db, ctx: &Ctx, entity: Entity, id: Uuid, version: i64) -> Result<Shares> {
    if !entity.shared() {
        return Err(Error::NotFound);
    }
    Ok(Shares {
        shares: list(db, ctx.tenant_id, entity, id).await?,
        version,
    })
}

/// What is wrong with the input, field by field, given the record's owner (pure).
pub fn check(input: &SharesInput, owner: Option<Uuid>) -> Result<()> {
    let mut errs = Errors::default();
    if input.shares.len() > MAX {
        errs.add("shares", "too_many");
    }
    for (i, s) in input.shares.iter().enumerate() {
        if Some(s.user_id) == owner {
            errs.add(&format!("shares[{i}].user_id"), "owner");
        } else if input.shares[..i].iter().any(|o| o.user_id == s.user_id) {
            errs.add(&format!("shares[{i}].user_id"), "duplicate");
        }
    }
    errs.finish()
}

/// Replaces the shares of record `id` at its version (advanced; audited as `share` with the
/// shares before and after). Only a caller whose scope covers the record may; each colleague
/// newly added is told (`shared_with_you`).
pub async fn set<R: Record + Editable>(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: SharesInput,
    name_of: impl Fn(&R) -> String,
) -> Result<Shares> {
    let entity = R::ENTITY;
    if !entity.shared() {
        return Err(Error::NotFound);
    }
    let mut tx = db.begin().await?;
    let r: R = record::load_for(&mut tx, ctx, id, Action::Update).await?;
    if !manages(ctx, &r) {
        return Err(Error::Forbidden);
    }
    let expected = version::expected(if_match, input.version)?;
    if r.in_trash() {
        return Err(Error::Conflict("the record is in the trash".into()));
    }
    version::check(expected, r.version())?;
    check(&input, r.owner())?;
    if !input.shares.is_empty() {
        let mut q = Sql::new("SELECT id FROM users WHERE tenant_id = ");
        q.bind(ctx.tenant_id);
        q.push(" AND active = ")
            .bind(true)
            .push(" AND deleted_at IS NULL AND id IN ")
            .bind_list(input.shares.iter().map(|s| s.user_id));
        let known: Vec<(Uuid,)> = tx.fetch_sql(q).await?;
        let mut errs = Errors::default();
        for (i, s) in input.shares.iter().enumerate() {
            if !known.iter().any(|k| k.0 == s.user_id) {
                errs.add(&format!("shares[{i}].user_id"), "unknown");
            }
        }
        errs.finish()?;
    }
    let before = Shares {
        shares: list(&mut tx, ctx.tenant_id, entity, id).await?,
        version: r.version(),
    };
    let version = version::update(
        &mut tx,
        version::Row {
            table: entity.table(),
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "updated_at = $1, updated_by = $2",
        args![now(), ctx.user_id],
    )
    .await?;
    tx.execute(
        "DELETE FROM record_shares WHERE tenant_id = $1 AND entity = $2 AND record_id = $3",
        args![ctx.tenant_id, entity.table(), id],
    )
    .await?;
    let t = now();
    let rows: Vec<_> = input
        .shares
        .iter()
        .map(|s| {
            // A colleague who stays keeps when and by whom they were first added.
            let kept = before.shares.iter().find(|b| b.user_id == s.user_id);
            args![
                ctx.tenant_id,
                entity.table(),
                id,
                s.user_id,
                s.access.as_str(),
                kept.map_or(ctx.user_id, |k| k.granted_by),
                kept.map_or(t, |k| k.created_at)
            ]
        })
        .collect();
    if !rows.is_empty() {
        tx.insert_rows(
            "record_shares",
            &[
                "tenant_id",
                "entity",
                "record_id",
                "user_id",
                "access",
                "granted_by",
                "created_at",
            ],
            rows,
        )
        .await?;
    }
    let after = Shares {
        shares: list(&mut tx, ctx.tenant_id, entity, id).await?,
        version,
    };
    let name = name_of(&r);
    for s in &after.shares {
        if !before.shares.iter().any(|b| b.user_id == s.user_id) {
            notifications::notify(
                &mut tx,
                ctx,
                s.user_id,
                Notice {
                    kind: "shared_with_you",
                    params: serde_json::json!({
                        "name": name,
                        "entity": entity.table(),
                        "access": s.access.as_str(),
                    }),
                    link: Some(entity.link(id)),
                    entity: Some(entity.table()),
                    entity_id: Some(id),
                },
            )
            .await?;
        }
    }
    audit::record(
        &mut tx,
        ctx,
        "share",
        entity.table(),
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_grants_reading_and_editing_never_more() {
        use Access::*;
        for (access, action, granted) in [
            (None, Action::Read, false),
            (Some(Read), Action::Read, true),
            (Some(Read), Action::Update, false),
            (Some(Edit), Action::Read, true),
            (Some(Edit), Action::Update, true),
            (Some(Edit), Action::Delete, false),
            (Some(Edit), Action::Create, false),
        ] {
            assert_eq!(grants(access, action), granted, "{access:?} {action:?}");
        }
    }

    #[test]
    fn the_list_is_checked_field_by_field() {
        let (owner, other) = (Uuid::now_v7(), Uuid::now_v7());
        let share = |user_id| ShareInput {
            user_id,
            access: Access::Read,
        };
        let input = SharesInput {
            version: Some(1),
            shares: vec![share(owner), share(other), share(other)],
        };
        let Err(Error::Validation(errs)) = check(&input, Some(owner)) else {
            panic!("refused");
        };
        let got: Vec<_> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("shares[0].user_id", "owner"),
                ("shares[2].user_id", "duplicate")
            ]
        );
        let many = SharesInput {
            version: Some(1),
            shares: (0..=MAX).map(|_| share(Uuid::now_v7())).collect(),
        };
        assert!(check(&many, None).is_err());
        assert!(check(&SharesInput::default(), None).is_ok());
    }
}
