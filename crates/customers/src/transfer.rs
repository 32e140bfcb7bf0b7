//! Handing a departing rep's customers to colleagues in one action: every account, contact
//! and open task they own moves to one or several reps (round-robin by account, a contact
//! following its account), in one transaction, each move audited as a `transfer` so the
//! history stays with the records.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::{Action, Scope};
use guanxi_platform::time::now;
use guanxi_platform::{args, notifications, Ctx, Error};

use guanxi_records::record;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    /// Whose customers move.
    pub from_user_id: Option<Uuid>,
    /// Who receives them, shared out in turn.
    pub to_user_ids: Option<Vec<Uuid>>,
    /// Count what would move without moving anything.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct TransferShare {
    pub user_id: Uuid,
    pub user_name: String,
    pub accounts: i64,
    pub contacts: i64,
    pub tasks: i64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct TransferResult {
    pub dry_run: bool,
    pub shares: Vec<TransferShare>,
}

#[derive(sqlx::FromRow)]
struct Person {
    id: Uuid,
    name: String,
    team_id: Option<Uuid>,
    active: bool,
}

async fn person(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<Option<Person>> {
    tx.fetch_optional(
        "SELECT id, name, team_id, active FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        args![tenant_id, id],
    )
    .await
}

pub async fn transfer(db: &Db, ctx: &Ctx, input: TransferInput) -> Result<TransferResult> {
    // Moving someone's whole book needs update rights over all of it: every customer module at
    // `all` scope, or `team` scope when the rep is in the caller's team.
    let mut errs = Errors::default();
    let Some(from) = input.from_user_id else {
        return Err(Error::field("from_user_id", "required"));
    };
    let to: Vec<Uuid> = input.to_user_ids.clone().unwrap_or_default();
    if to.is_empty() {
        errs.add("to_user_ids", "required");
    }
    if to.contains(&from) {
        errs.add("to_user_ids", "invalid");
    }
    let mut tx = db.begin().await?;
    let Some(source) = person(&mut tx, ctx.tenant_id, from).await? else {
        return Err(Error::field("from_user_id", "unknown"));
    };
    // Without update rights on customers at all, this is not the caller's to do (403); with
    // team rights over another team's rep, the form says why (a field error), beside any other.
    let mut other_team = false;
    for module in ["accounts", "contacts", "activities"] {
        let scope = ctx.require(module, Action::Update)?;
        if scope == Scope::Own {
            return Err(Error::Forbidden);
        }
        let covered = scope == Scope::All
            || scope == Scope::Team && ctx.team_id.is_some() && source.team_id == ctx.team_id;
        other_team |= !covered;
    }
    if other_team {
        errs.add("from_user_id", "not_your_team");
    }
    let mut targets = Vec::new();
    for (i, id) in to.iter().enumerate() {
        match person(&mut tx, ctx.tenant_id, *id).await? {
            Some(p) if p.active => targets.push(p),
            _ => errs.add(&format!("to_user_ids[{i}]"), "unknown"),
        }
    }
    errs.finish()?;

    let mut shares: Vec<TransferShare> = targets
        .iter()
        .map(|p| TransferShare {
            user_id: p.id,
            user_name: p.name.clone(),
            ..Default::default()
        })
        .collect();
    // Accounts in name order, dealt out in turn; remember who got which.
    let accounts: Vec<(Uuid,)> = tx
        .fetch_all(
            "SELECT id FROM accounts WHERE tenant_id = $1 AND owner_id = $2 ORDER BY name, id",
            args![ctx.tenant_id, from],
        )
        .await?;
    let mut account_to: HashMap<Uuid, usize> = HashMap::new();
    for (n, (id,)) in accounts.iter().enumerate() {
        let k = n % targets.len();
        account_to.insert(*id, k);
        shares[k].accounts += 1;
    }
    let contacts: Vec<(Uuid, Option<Uuid>)> = tx
        .fetch_all(
            "SELECT id, account_id FROM contacts WHERE tenant_id = $1 AND owner_id = $2 ORDER BY name, id",
            args![ctx.tenant_id, from],
        )
        .await?;
    let mut turn = accounts.len();
    let mut contact_to = Vec::with_capacity(contacts.len());
    for (id, account) in &contacts {
        let k = match account.and_then(|a| account_to.get(&a)) {
            Some(k) => *k,
            None => {
                turn += 1;
                (turn - 1) % targets.len()
            }
        };
        contact_to.push((*id, k));
        shares[k].contacts += 1;
    }
    let tasks: Vec<(Uuid, Option<Uuid>)> = tx
        .fetch_all(
            "SELECT id, account_id FROM activities WHERE tenant_id = $1 AND kind = 'task' AND assignee_id = $2
                 AND done_at IS NULL AND deleted_at IS NULL ORDER BY id",
            args![ctx.tenant_id, from],
        )
        .await?;
    let mut task_to = Vec::with_capacity(tasks.len());
    for (id, account) in &tasks {
        let k = match account.and_then(|a| account_to.get(&a)) {
            Some(k) => *k,
            None => {
                turn += 1;
                (turn - 1) % targets.len()
            }
        };
        task_to.push((*id, k));
        shares[k].tasks += 1;
    }
    if input.dry_run {
        return Ok(TransferResult {
            dry_run: true,
            shares,
        });
    }

    let t = now();
    for (id, k) in account_to {
        let p = &targets[k];
        tx.execute(
            // The new holder's clock (a customer pool's "no order since taken") starts now.
            "UPDATE accounts SET owner_id = $1, team_id = $2, updated_at = $3, held_since = $3,
                 updated_by = $4, version = version + 1
             WHERE tenant_id = $5 AND id = $6",
            args![p.id, p.team_id, t, ctx.user_id, ctx.tenant_id, id],
        )
        .await?;
        record::audit_transfer(
            &mut tx,
            ctx,
            crate::accounts::ENTITY,
            id,
            (source.id, &source.name),
            (p.id, &p.name),
            None,
        )
        .await?;
    }
    for (id, k) in contact_to {
        let p = &targets[k];
        tx.execute(
            "UPDATE contacts SET owner_id = $1, team_id = $2, updated_at = $3, updated_by = $4, version = version + 1
             WHERE tenant_id = $5 AND id = $6",
            args![p.id, p.team_id, t, ctx.user_id, ctx.tenant_id, id],
        )
        .await?;
        record::audit_transfer(
            &mut tx,
            ctx,
            crate::contacts::ENTITY,
            id,
            (source.id, &source.name),
            (p.id, &p.name),
            None,
        )
        .await?;
    }
    for (id, k) in task_to {
        crate::activities::reassign_task(&mut tx, ctx, id, targets[k].id).await?;
    }
    // Each colleague is told once what they received.
    for (p, share) in targets.iter().zip(&shares) {
        if share.accounts + share.contacts + share.tasks == 0 {
            continue;
        }
        notifications::notify(
            &mut tx,
            ctx,
            p.id,
            notifications::Notice {
                kind: "book_transferred",
                params: serde_json::json!({"from": source.name, "accounts": share.accounts,
                    "contacts": share.contacts, "tasks": share.tasks}),
                link: Some(format!("/customers/accounts?owner_id={}", p.id)),
                entity: None,
                entity_id: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(TransferResult {
        dry_run: false,
        shares,
    })
}
