//! Churn risk and win-back: the valuable customers who may be leaving, for a manager to act
//! on. A customer is listed when, in the latest fitted lifetime-value model, they were in
//! class A or B by revenue over its calibration period and their probability of still being
//! a customer is below the threshold; or when between the two latest RFM runs they fell from
//! champions, loyal, potential or new to at risk, can't lose, hibernating or lost. Only
//! customers the caller may read are listed. Win-back opens a follow-up task for each chosen
//! customer, assigned to its owner, unless one is already open.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_customers::activities::{self, ActivityInput};
use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, Ctx, Error};

use crate::abc::{self, Class};
use crate::facts::{Party, Purchases};
use crate::rfm::Segment;

const GOOD: [Segment; 4] = [
    Segment::Champions,
    Segment::Loyal,
    Segment::Potential,
    Segment::New,
];

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChurnQuery {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// Listed below this probability of still being a customer, basis points (default 5000).
    pub threshold_bp: Option<i64>,
    pub offset: Option<u32>,
    /// At most 500, default 50.
    pub limit: Option<u32>,
}

/// A customer who may be leaving, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AtRisk {
    pub id: Uuid,
    pub name: String,
    pub owner_id: Option<Uuid>,
    /// Revenue in the model's calibration period, minor units (0 when listed by RFM alone).
    pub revenue: i64,
    pub class: Option<Class>,
    /// From the lifetime-value model.
    pub p_alive: Option<f64>,
    /// From the two latest RFM runs.
    pub segment_before: Option<Segment>,
    pub segment_now: Option<Segment>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Churn {
    pub party: Party,
    /// The model the probabilities come from.
    pub model_id: Option<Uuid>,
    /// The RFM runs compared: the earlier's and the later's day.
    pub run_before: Option<String>,
    pub run_after: Option<String>,
    pub customers: i64,
    pub items: Vec<AtRisk>,
    pub next_offset: Option<u32>,
}

/// The valuable customers who may be leaving, largest revenue first.
pub async fn at_risk(db: &Db, ctx: &Ctx, q: &ChurnQuery) -> Result<Churn> {
    ctx.require("analytics", Action::Read)?;
    let party = q.party.unwrap_or_default();
    let mut errs = Errors::default();
    let threshold = q.threshold_bp.unwrap_or(5000);
    if !(1..=10_000).contains(&threshold) {
        errs.add("threshold_bp", "out_of_range");
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        errs.add("limit", "out_of_range");
    }
    errs.finish()?;
    let mut found: BTreeMap<Uuid, AtRisk> = BTreeMap::new();
    let blank = |id: Uuid| AtRisk {
        id,
        name: String::new(),
        owner_id: None,
        revenue: 0,
        class: None,
        p_alive: None,
        segment_before: None,
        segment_now: None,
    };
    // The model: A and B customers of its calibration period, below the threshold.
    let model: Option<(Uuid, String, String)> = db
        .fetch_optional(
            "SELECT id, calibration_from, calibration_to FROM clv_models WHERE tenant_id = $1
             AND party = $2 AND status = 'fitted' ORDER BY created_at DESC, id DESC LIMIT 1",
            args![ctx.tenant_id, party.as_str()],
        )
        .await?;
    let mut model_id = None;
    if let Some((id, from, to)) = model {
        model_id = Some(id);
        let day = |s: &str| s.parse::<NaiveDate>().ok();
        let p = Purchases::of(db, ctx, party, (day(&from), day(&to)), None).await?;
        let mut rows: Vec<(Uuid, i64)> = p
            .facts(db)
            .await?
            .0
            .into_iter()
            .map(|f| (f.id, f.revenue))
            .collect();
        abc::rank(&mut rows);
        let values: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let classes = abc::classify(&values, abc::DEFAULT_A, abc::DEFAULT_B);
        let valuable: BTreeMap<Uuid, (i64, Class)> = rows
            .iter()
            .zip(&classes)
            .filter(|(_, c)| **c != Class::C)
            .map(|((id, v), c)| (*id, (*v, *c)))
            .collect();
        let low: Vec<(Uuid, f64)> = db
            .fetch_all(
                "SELECT customer_id, p_alive FROM clv_predictions WHERE tenant_id = $1
                 AND model_id = $2 AND p_alive < $3",
                args![ctx.tenant_id, id, threshold as f64 / 10_000.0],
            )
            .await?;
        for (c, p_alive) in low {
            if let Some((revenue, class)) = valuable.get(&c) {
                let e = found.entry(c).or_insert_with(|| blank(c));
                e.revenue = *revenue;
                e.class = Some(*class);
                e.p_alive = Some(p_alive);
            }
        }
    }
    // The two latest runs: who fell from a good segment to a bad one.
    let runs: Vec<(Uuid, String)> = db
        .fetch_all(
            "SELECT id, as_of FROM rfm_runs WHERE tenant_id = $1 AND party = $2
             ORDER BY as_of DESC LIMIT 2",
            args![ctx.tenant_id, party.as_str()],
        )
        .await?;
    let mut compared = None;
    if let [(later, later_day), (earlier, earlier_day)] = runs.as_slice() {
        compared = Some((earlier_day.clone(), later_day.clone()));
        let moved: Vec<(Uuid, String, String)> = db
            .fetch_all(
                "SELECT n.customer_id, o.segment, n.segment FROM rfm_scores n
                 JOIN rfm_scores o ON o.tenant_id = n.tenant_id AND o.run_id = $2
                     AND o.customer_id = n.customer_id
                 WHERE n.tenant_id = $1 AND n.run_id = $3",
                args![ctx.tenant_id, *earlier, *later],
            )
            .await?;
        for (c, before, now) in moved {
            let (Some(before), Some(now)) = (Segment::parse(&before), Segment::parse(&now)) else {
                continue;
            };
            if GOOD.contains(&before) && !GOOD.contains(&now) {
                let e = found.entry(c).or_insert_with(|| blank(c));
                e.segment_before = Some(before);
                e.segment_now = Some(now);
            }
        }
    }
    // Names and owners of those the caller may read.
    let scope = ctx.require(party.as_str(), Action::Read)?;
    let ids: Vec<Uuid> = found.keys().copied().collect();
    let mut visible: BTreeMap<Uuid, (String, Option<Uuid>)> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new(&format!(
            "SELECT k.id, k.name, k.owner_id FROM {} k WHERE k.tenant_id = ",
            party.as_str()
        ));
        sql.bind(ctx.tenant_id)
            .push(" AND k.deleted_at IS NULL AND k.id IN ")
            .bind_list(chunk.iter().copied());
        ctx.scope_sql(&mut sql, scope, "k.owner_id", "k.team_id");
        let rows: Vec<(Uuid, String, Option<Uuid>)> = db.fetch_sql(sql).await?;
        visible.extend(rows.into_iter().map(|(id, n, o)| (id, (n, o))));
    }
    let mut items: Vec<AtRisk> = found
        .into_values()
        .filter_map(|mut x| {
            let (name, owner) = visible.get(&x.id)?;
            x.name = name.clone();
            x.owner_id = *owner;
            Some(x)
        })
        .collect();
    items.sort_by(|a, b| b.revenue.cmp(&a.revenue).then(a.id.cmp(&b.id)));
    let customers = items.len() as i64;
    let offset = q.offset.unwrap_or(0) as usize;
    let more = items.len() > offset + limit as usize;
    let items: Vec<AtRisk> = items
        .into_iter()
        .skip(offset)
        .take(limit as usize)
        .collect();
    Ok(Churn {
        party,
        model_id,
        run_before: compared.as_ref().map(|c| c.0.clone()),
        run_after: compared.map(|c| c.1),
        customers,
        next_offset: more.then_some((offset + limit as usize) as u32),
        items,
    })
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WinBackInput {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// 1–200 customers.
    pub customer_ids: Vec<Uuid>,
    /// The task's subject.
    pub subject: String,
    /// Due in this many days (1–90, default 7).
    pub due_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WinBack {
    /// Tasks opened.
    pub created: i64,
    /// Customers that already had this task open.
    pub already_open: i64,
}

/// Opens a win-back task per customer, assigned to its owner, in one transaction; a customer
/// with the same task still open is left alone.
pub async fn win_back(db: &Db, ctx: &Ctx, input: WinBackInput) -> Result<WinBack> {
    ctx.require("analytics", Action::Read)?;
    let party = input.party.unwrap_or_default();
    let mut errs = Errors::default();
    let unique: BTreeSet<Uuid> = input.customer_ids.iter().copied().collect();
    if unique.is_empty() || unique.len() > 200 {
        errs.add("customer_ids", "out_of_range");
    }
    let subject = input.subject.trim();
    if subject.is_empty() {
        errs.add("subject", "required");
    }
    let days = input.due_days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        errs.add("due_days", "out_of_range");
    }
    errs.finish()?;
    let (col, table) = match party {
        Party::Accounts => ("account_id", "accounts"),
        Party::Contacts => ("contact_id", "contacts"),
    };
    let due = now() + Duration::days(days);
    let mut tx = db.begin().await?;
    let (mut created, mut open) = (0, 0);
    for id in unique {
        let owner: Option<Option<Uuid>> = tx
            .fetch_optional::<(Option<Uuid>,)>(
                &format!("SELECT owner_id FROM {table} WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
                args![ctx.tenant_id, id],
            )
            .await?
            .map(|r| r.0);
        let Some(owner) = owner else {
            return Err(Error::field("customer_ids", "unknown"));
        };
        let already: i64 = tx
            .scalar(
                &format!(
                    "SELECT COUNT(*) FROM activities WHERE tenant_id = $1 AND {col} = $2 AND kind = 'task'
                     AND done_at IS NULL AND deleted_at IS NULL AND subject = $3"
                ),
                args![ctx.tenant_id, id, subject],
            )
            .await?;
        if already > 0 {
            open += 1;
            continue;
        }
        let (account_id, contact_id) = match party {
            Party::Accounts => (Some(id), None),
            Party::Contacts => (None, Some(id)),
        };
        activities::create_in(
            &mut tx,
            ctx,
            None,
            ActivityInput {
                kind: Some("task".into()),
                subject: Some(subject.to_owned()),
                account_id,
                contact_id,
                due_at: Some(Some(due)),
                assignee_id: owner.or(ctx.user_id),
                ..Default::default()
            },
        )
        .await?;
        created += 1;
    }
    tx.commit().await?;
    Ok(WinBack {
        created,
        already_open: open,
    })
}
