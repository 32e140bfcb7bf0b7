//! First response: "I wrote through your website a month ago and nobody answered" must not
//! happen silently. A policy per source (or `*`) gives a new lead a deadline in business
//! minutes on its team's calendar (lunch breaks, weekends, holidays and 调休 counted by
//! [`guanxi_platform::calendar`]); the scheduler warns the owner before it and, at it, marks
//! the lead breached, tells the team's managers, and — as the policy says — gives the lead to
//! someone else by the assignment rules or returns it to the pool. A lead is answered when its
//! status first leaves `new` (working, nurturing, qualified, disqualified, converted). Each
//! deadline is planned once under its lead's key, so it fires once on any number of nodes.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use guanxi_platform::perms::Action;
use guanxi_platform::settings::Setting;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, calendars, notifications, Ctx};

use crate::leads::{Lead, SOURCES};

pub const JOB: &str = "lead_sla";
pub const ON_BREACH: &[&str] = &["notify", "reassign", "pool"];

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub struct ResponsePolicy {
    /// A lead source, or `*` for any source without its own policy.
    pub source: String,
    /// Business minutes to answer a new lead.
    pub minutes: i64,
    /// The owner is warned this many minutes (of clock time) before the deadline; 0: no warning.
    #[serde(default)]
    pub warn_minutes: i64,
    /// `notify` (the managers), `reassign` (also to someone else, by the assignment rules) or
    /// `pool` (also back to the pool).
    pub on_breach: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResponsePolicies {
    pub items: Vec<ResponsePolicy>,
}

pub async fn policies(db: &Db, ctx: &Ctx) -> Result<Vec<ResponsePolicy>> {
    ctx.require("leads", Action::Read)?;
    db.fetch_all(
        "SELECT source, minutes, warn_minutes, on_breach FROM lead_response_sla
         WHERE tenant_id = $1 ORDER BY source",
        args![ctx.tenant_id],
    )
    .await
}

/// Replaces the tenant's policies (one per source at most).
pub async fn set_policies(
    db: &Db,
    ctx: &Ctx,
    items: Vec<ResponsePolicy>,
) -> Result<Vec<ResponsePolicy>> {
    ctx.require("assignment_rules", Action::Update)?;
    let mut errs = Errors::default();
    let mut seen = std::collections::HashSet::new();
    for (i, p) in items.iter().enumerate() {
        if p.source != "*" && !SOURCES.contains(&p.source.as_str()) {
            errs.add(&format!("items.{i}.source"), "invalid");
        } else if !seen.insert(p.source.clone()) {
            errs.add(&format!("items.{i}.source"), "duplicate");
        }
        if !(1..=525_600).contains(&p.minutes) {
            errs.add(&format!("items.{i}.minutes"), "out_of_range");
        }
        if !(0..=10_080).contains(&p.warn_minutes) {
            errs.add(&format!("items.{i}.warn_minutes"), "out_of_range");
        }
        if !ON_BREACH.contains(&p.on_breach.as_str()) {
            errs.add(&format!("items.{i}.on_breach"), "invalid");
        }
    }
    errs.finish()?;
    let mut tx = db.begin().await?;
    let before: Vec<ResponsePolicy> = tx
        .fetch_all(
            "SELECT source, minutes, warn_minutes, on_breach FROM lead_response_sla
             WHERE tenant_id = $1 ORDER BY source",
            args![ctx.tenant_id],
        )
        .await?;
    tx.execute(
        "DELETE FROM lead_response_sla WHERE tenant_id = $1",
        args![ctx.tenant_id],
    )
    .await?;
    let t = now();
    for p in &items {
        tx.execute(
            "INSERT INTO lead_response_sla (tenant_id, source, minutes, warn_minutes, on_breach, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            args![ctx.tenant_id, p.source.as_str(), p.minutes, p.warn_minutes, p.on_breach.as_str(), t],
        )
        .await?;
    }
    audit::record(
        &mut tx,
        ctx,
        "update",
        "lead_response_sla",
        None,
        Some(&serde_json::json!({ "items": before })),
        Some(&serde_json::json!({ "items": items })),
    )
    .await?;
    tx.commit().await?;
    Ok(items)
}

/// A new lead's first-response deadline and the policy that set it.
pub(crate) struct Deadline {
    pub due: DateTime<Utc>,
    policy: ResponsePolicy,
}

/// The deadline of a lead created at `created` from `source` for `team`: by its source's
/// policy, on its team's calendar. None without a policy or on a calendar with no working time
/// (no deadline can then be met or missed). Read before the lead is inserted, so it is stored
/// with its deadline in one statement.
/// A tenant's response policies, read by every new lead: cached in the process.
const POLICIES: Setting = Setting {
    name: "lead_response_sla.all",
    tables: &["lead_response_sla"],
};

pub(crate) async fn deadline(
    tx: &mut Tx,
    tenant: Uuid,
    source: &str,
    team: Option<Uuid>,
    created: DateTime<Utc>,
) -> Result<Option<Deadline>> {
    let policies: Vec<ResponsePolicy> = tx
        .settings()
        .cached(
            &POLICIES,
            tenant,
            "",
            tx.fetch_all(
                "SELECT source, minutes, warn_minutes, on_breach FROM lead_response_sla
                 WHERE tenant_id = $1",
                args![tenant],
            ),
        )
        .await?;
    // The source's own policy, else the one for every source (`*`).
    let Some(policy) = policies
        .iter()
        .find(|p| p.source == source)
        .or_else(|| policies.iter().find(|p| p.source == "*"))
        .cloned()
    else {
        return Ok(None);
    };
    let schedule = calendars::schedule_for(&mut *tx, tenant, team).await?;
    Ok(schedule
        .deadline(created, policy.minutes)
        .map(|due| Deadline { due, policy }))
}

/// Plans the warning and the breach of the lead `id` (created at `created`) with `deadline`.
pub(crate) async fn plan(
    tx: &mut Tx,
    tenant: Uuid,
    id: Uuid,
    created: DateTime<Utc>,
    deadline: &Deadline,
) -> Result<()> {
    let (due, policy) = (deadline.due, &deadline.policy);
    let warn_at = due - Duration::minutes(policy.warn_minutes);
    if policy.warn_minutes > 0 && warn_at > created {
        jobs::schedule(
            tx,
            tenant,
            JOB,
            &format!("warn:{id}"),
            &serde_json::json!({"lead_id": id, "stage": "warn"}),
            warn_at,
        )
        .await?;
    }
    jobs::schedule(
        tx,
        tenant,
        JOB,
        &format!("breach:{id}"),
        &serde_json::json!({"lead_id": id, "stage": "breach", "on_breach": policy.on_breach}),
        due,
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Open {
    name: String,
    owner_id: Option<Uuid>,
    team_id: Option<Uuid>,
    status: String,
    responded_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    response_due_at: Option<DateTime<Utc>>,
}

/// The `lead_sla` job: at the warning, tell the owner; at the deadline, if the lead is still
/// unanswered, mark it breached, tell the managers and act as the policy says.
pub fn handler() -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync {
    |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        Box::pin(async move {
            let tenant = due.tenant_id;
            let Some(id) = due.payload["lead_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
            else {
                return Ok(());
            };
            let lead: Option<Open> = tx
                .fetch_optional(
                    "SELECT name, owner_id, team_id, status, responded_at, deleted_at, response_due_at
                     FROM leads WHERE tenant_id = $1 AND id = $2",
                    args![tenant, id],
                )
                .await?;
            let Some(lead) = lead else { return Ok(()) };
            if lead.responded_at.is_some() || lead.status != "new" || lead.deleted_at.is_some() {
                return Ok(());
            }
            let ctx = Ctx::system(tenant);
            let link = Some(crate::leads::ENTITY.link(id));
            let params = serde_json::json!({"name": lead.name, "due": lead.response_due_at});
            if due.payload["stage"] == "warn" {
                if let Some(owner) = lead.owner_id {
                    notifications::notify(
                        tx,
                        &ctx,
                        owner,
                        notifications::Notice {
                            kind: "sla_warning",
                            params,
                            link,
                            entity: Some("leads"),
                            entity_id: Some(id),
                        },
                    )
                    .await?;
                }
                return Ok(());
            }
            tx.execute(
                "UPDATE leads SET sla_breached_at = $1 WHERE tenant_id = $2 AND id = $3",
                args![due.at, tenant, id],
            )
            .await?;
            audit::record(
                tx,
                &ctx,
                "sla_breach",
                "leads",
                Some(id),
                None,
                Some(&serde_json::json!({"owner_id": lead.owner_id, "due": lead.response_due_at})),
            )
            .await?;
            for m in guanxi_platform::teams::managers(tx, tenant, lead.team_id).await? {
                notifications::notify(
                    tx,
                    &ctx,
                    m,
                    notifications::Notice {
                        kind: "sla_breached",
                        params: params.clone(),
                        link: link.clone(),
                        entity: Some("leads"),
                        entity_id: Some(id),
                    },
                )
                .await?;
            }
            match due.payload["on_breach"].as_str() {
                Some("reassign") => reassign(tx, &ctx, id, &lead).await?,
                Some("pool") => to_pool(tx, &ctx, id, &lead, due.at).await?,
                _ => {}
            }
            Ok(())
        })
    }
}

/// Takes the lead from its owner and gives it by the assignment rules to someone else (who is
/// told); nobody available: it stays.
async fn reassign(tx: &mut Tx, ctx: &Ctx, id: Uuid, lead: &Open) -> Result<()> {
    let facts: Option<Lead> = tx
        .fetch_optional(&crate::leads::select_one(), args![ctx.tenant_id, id])
        .await?;
    let Some(l) = facts else { return Ok(()) };
    let facts = crate::leads::facts_of(&l);
    let Some((user, team)) =
        crate::assignment::decide(tx, ctx.tenant_id, &facts, lead.owner_id).await?
    else {
        return Ok(());
    };
    // Still unanswered and still its owner's (read in this job's transaction, changed by no
    // one since): else the lead stays as it is now.
    let moved = tx
        .execute(
            "UPDATE leads SET owner_id = $1, team_id = $2, version = version + 1, updated_at = $3
             WHERE tenant_id = $4 AND id = $5 AND responded_at IS NULL AND status = 'new'
               AND owner_id = $6",
            args![user, team, now(), ctx.tenant_id, id, lead.owner_id],
        )
        .await?;
    if moved == 0 {
        return Ok(());
    }
    audit::record(
        tx,
        ctx,
        "transfer",
        "leads",
        Some(id),
        Some(&serde_json::json!({"owner_id": lead.owner_id})),
        Some(&serde_json::json!({"owner_id": user, "reason": "sla"})),
    )
    .await?;
    notifications::notify(
        tx,
        ctx,
        user,
        notifications::Notice {
            kind: "lead_assigned",
            params: serde_json::json!({"name": l.name, "source": l.source,
                "company": l.company.clone().unwrap_or_default()}),
            link: Some(crate::leads::ENTITY.link(id)),
            entity: Some("leads"),
            entity_id: Some(id),
        },
    )
    .await?;
    Ok(())
}

/// Returns the lead to its team's pool (else the company's); no pool: it stays.
async fn to_pool(tx: &mut Tx, ctx: &Ctx, id: Uuid, lead: &Open, at: DateTime<Utc>) -> Result<()> {
    let pools: Vec<(Uuid, Option<Uuid>)> = tx
        .fetch_all(
            "SELECT id, team_id FROM pools WHERE tenant_id = $1 AND active = $2
               AND (team_id = $3 OR team_id IS NULL)",
            args![ctx.tenant_id, true, lead.team_id],
        )
        .await?;
    let pool = pools
        .iter()
        .find(|(_, t)| t.is_some() && *t == lead.team_id)
        .or_else(|| pools.iter().find(|(_, t)| t.is_none()));
    let Some((pool, _)) = pool else { return Ok(()) };
    let moved = tx
        .execute(
            "UPDATE leads SET owner_id = NULL, pool_id = $1, version = version + 1, updated_at = $2
             WHERE tenant_id = $3 AND id = $4 AND responded_at IS NULL AND status = 'new'
               AND owner_id IS NOT NULL",
            args![*pool, at, ctx.tenant_id, id],
        )
        .await?;
    if moved == 0 {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO pool_events (tenant_id, id, pool_id, lead_id, user_id, action, reason, at)
         VALUES ($1, $2, $3, $4, $5, 'return', 'sla', $6)",
        args![ctx.tenant_id, new_id(), *pool, id, lead.owner_id, at],
    )
    .await?;
    audit::record(
        tx,
        ctx,
        "return",
        "leads",
        Some(id),
        None,
        Some(&serde_json::json!({"pool_id": pool, "user_id": lead.owner_id, "reason": "sla"})),
    )
    .await
}
