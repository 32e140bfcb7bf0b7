//! What the customer's dependent records (orders, assets, activities) share: the customer
//! they belong to decides who may read and change them.

use std::collections::HashMap;

use guanxi_platform::db::{Conn, Sql, Tx};
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::{Ctx, Error};
use guanxi_records::record;

use crate::accounts::Account;
use crate::contacts::Contact;
use uuid::Uuid;

/// The customer a dependent record (order, asset) belongs to — its account, else its contact —
/// as its owner and team; outside the caller's read scope it does not exist.
pub async fn customer_scope(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    account: Option<Uuid>,
    contact: Option<Uuid>,
) -> Result<(Option<Uuid>, Option<Uuid>)> {
    Customers::default()
        .scope(conn, ctx, account, contact)
        .await
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
    Customers::default()
        .check_write(conn, ctx, module, action, account, contact)
        .await
}

/// The customers a batch of dependent records names, read once: an import fills it with one
/// query per kind ([`Customers::fill`]) and every record of the batch is then checked against
/// it as [`customer_scope`] checks one — a customer the caller's scope covers is answered from
/// memory, anything else (a share, one not filled) is read as for a single record.
#[derive(Default)]
pub struct Customers {
    accounts: HashMap<Uuid, Account>,
    contacts: HashMap<Uuid, Contact>,
}

impl Customers {
    /// Reads these accounts and contacts, and the contacts' accounts (missing ones are left
    /// out).
    pub async fn fill(
        &mut self,
        tx: &mut Tx,
        tenant_id: Uuid,
        accounts: &[Uuid],
        contacts: &[Uuid],
    ) -> Result<()> {
        let mut accounts = accounts.to_vec();
        for c in record::load_many::<Contact>(tx, tenant_id, contacts).await? {
            accounts.extend(c.account_id);
            self.contacts.insert(c.id, c);
        }
        accounts.sort_unstable();
        accounts.dedup();
        for a in record::load_many::<Account>(tx, tenant_id, &accounts).await? {
            self.accounts.insert(a.id, a);
        }
        Ok(())
    }

    /// The account, as [`record::get`] answers.
    pub async fn account(
        &mut self,
        conn: impl Into<Conn<'_>>,
        ctx: &Ctx,
        id: Uuid,
    ) -> Result<Account> {
        cached(&mut self.accounts, conn, ctx, id).await
    }

    /// The contact, as [`record::get`] answers.
    pub async fn contact(
        &mut self,
        conn: impl Into<Conn<'_>>,
        ctx: &Ctx,
        id: Uuid,
    ) -> Result<Contact> {
        cached(&mut self.contacts, conn, ctx, id).await
    }

    /// The name of an account read before (`None` when it was not).
    pub fn account_name(&self, id: Uuid) -> Option<String> {
        self.accounts.get(&id).map(|a| a.name.clone())
    }

    /// The name of a contact read before (`None` when it was not).
    pub fn contact_name(&self, id: Uuid) -> Option<String> {
        self.contacts.get(&id).map(|c| c.name.clone())
    }

    /// See [`customer_scope`].
    pub async fn scope(
        &mut self,
        conn: impl Into<Conn<'_>>,
        ctx: &Ctx,
        account: Option<Uuid>,
        contact: Option<Uuid>,
    ) -> Result<(Option<Uuid>, Option<Uuid>)> {
        match (account, contact) {
            (Some(a), _) => {
                let a = self.account(conn, ctx, a).await?;
                Ok((a.owner_id, a.team_id))
            }
            (None, Some(c)) => {
                let c = self.contact(conn, ctx, c).await?;
                Ok((Some(c.owner_id), c.team_id))
            }
            (None, None) => Err(Error::NotFound),
        }
    }

    /// See [`check_customer_write`].
    pub async fn check_write(
        &mut self,
        conn: impl Into<Conn<'_>>,
        ctx: &Ctx,
        module: &str,
        action: Action,
        account: Option<Uuid>,
        contact: Option<Uuid>,
    ) -> Result<()> {
        let scope = ctx.require(module, action)?;
        let (owner, team) = self.scope(conn, ctx, account, contact).await?;
        if ctx.covers(scope, owner, team) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// A record as [`record::get`] answers: from `known` when the caller's read scope covers it
/// (what `get` decides first), else read — a share, or one not read before — and kept.
async fn cached<R: record::Record + Clone>(
    known: &mut HashMap<Uuid, R>,
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    id: Uuid,
) -> Result<R> {
    match known.get(&id) {
        Some(r) if covered(ctx, r) => Ok(r.clone()),
        _ => {
            let r: R = record::get(conn, ctx, id).await?;
            known.insert(id, r.clone());
            Ok(r)
        }
    }
}

/// Whether the caller's read scope covers the record (what [`record::get`] decides first).
fn covered<R: record::Record>(ctx: &Ctx, r: &R) -> bool {
    ctx.can(R::TABLE, Action::Read)
        .is_some_and(|scope| ctx.covers(scope, r.owner(), r.team()))
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
