//! What the customer's dependent records (orders, assets, activities) share: the customer
//! they belong to decides who may read and change them.

use guanxi_platform::db::{Conn, Sql};
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::{Ctx, Error};
use guanxi_records::record::get;
use uuid::Uuid;

/// The customer a dependent record (order, asset) belongs to — its account, else its contact —
/// as its owner and team; outside the caller's read scope it does not exist.
pub async fn customer_scope(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    account: Option<Uuid>,
    contact: Option<Uuid>,
) -> Result<(Option<Uuid>, Option<Uuid>)> {
    match (account, contact) {
        (Some(a), _) => {
            let a: crate::accounts::Account = get(conn, ctx, a).await?;
            Ok((a.owner_id, a.team_id))
        }
        (None, Some(c)) => {
            let c: crate::contacts::Contact = get(conn, ctx, c).await?;
            Ok((Some(c.owner_id), c.team_id))
        }
        (None, None) => Err(Error::NotFound),
    }
}

/// Checks the caller's `module` scope for `action` covers the customer's owner: dependent
/// records are changed by whoever may change them for that customer.
pub async fn check_customer_write(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    module: &str,
    action: Action,
    account: Option<Uuid>,
    contact: Option<Uuid>,
) -> Result<()> {
    let scope = ctx.require(module, action)?;
    let (owner, team) = customer_scope(conn, ctx, account, contact).await?;
    if ctx.covers(scope, owner, team) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Appends "the caller may read the record's customer" ([`Ctx::covers`] in SQL), for a query
/// joining the account as `a` and the contact as `c` (aliases given).
pub fn customer_visible_sql(q: &mut Sql, ctx: &Ctx, a: &str, c: &str) {
    q.push(" AND (");
    match ctx.can("accounts", Action::Read) {
        Some(scope) => {
            q.push(&format!("({a}.id IS NOT NULL"));
            ctx.scope_sql(q, scope, &format!("{a}.owner_id"), &format!("{a}.team_id"));
            q.push(")");
        }
        None => {
            q.push("1 = 0");
        }
    }
    q.push(" OR ");
    match ctx.can("contacts", Action::Read) {
        Some(scope) => {
            q.push(&format!("({a}.id IS NULL AND {c}.id IS NOT NULL"));
            ctx.scope_sql(q, scope, &format!("{c}.owner_id"), &format!("{c}.team_id"));
            q.push(")");
        }
        None => {
            q.push("1 = 0");
        }
    }
    q.push(")");
}
