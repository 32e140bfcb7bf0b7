//! Lead scoring: rules an admin sets — conditions on the lead's profile (industry, region,
//! title, product interest, custom fields…) and on its engagement (`touches`: how often the
//! person reached out; `logged`: the calls, emails, meetings and visits logged with them) — each adding (or taking away) points. A lead's score is the sum,
//! between 0 and 100, kept with its reasons (which rules matched, for how much), so "why
//! 82?" has an answer. Recomputed whenever the lead changes or the person reaches out; a
//! change of rules re-scores every lead in the background (`lead_rescore` jobs, a batch at a
//! time).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::jobs::{self, Due, HandlerFuture};
use guanxi_platform::perms::Action;
use guanxi_platform::settings::Setting;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, validate, version, Ctx};
use guanxi_records::custom_fields;

use crate::learned::{self, Model};
use crate::rules::{self, Condition};

pub const RESCORE_JOB: &str = "lead_rescore";
/// Leads re-scored per job run.
const BATCH: i64 = 500;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ScoringRule {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Vec<Condition>)]
    pub conditions: sqlx::types::Json<Vec<Condition>>,
    /// Added when every condition holds (negative takes away); −100 to 100.
    pub points: i64,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoringRuleInput {
    pub version: Option<i64>,
    pub name: Option<String>,
    pub conditions: Option<Vec<Condition>>,
    pub points: Option<i64>,
    pub active: Option<bool>,
}

/// One reason for a score: a rule that matched, or the learned model (`learned`).
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Reason {
    /// The rule's name; `learned` for the model.
    pub rule: String,
    pub points: i64,
    /// The model's probability of a win (its points are `weight × probability`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// The model's reasons: each known field's lift, strongest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifts: Vec<crate::learned::Lift>,
}

const SELECT: &str = "SELECT id, name, conditions, points, active, created_at, updated_at, version
    FROM scoring_rules";

pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<ScoringRule>> {
    ctx.require("leads", Action::Read)?;
    db.fetch_all(
        &format!("{SELECT} WHERE tenant_id = $1 ORDER BY name, id LIMIT 500"),
        args![ctx.tenant_id],
    )
    .await
}

async fn load(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<ScoringRule> {
    tx.fetch_one(
        &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
        args![tenant, id],
    )
    .await
}

async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &ScoringRuleInput,
    r: &mut ScoringRule,
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    match &input.name {
        Some(n) => match validate::name(n) {
            Ok(n) => r.name = n,
            Err(c) => errs.add("name", c),
        },
        None if creating => errs.add("name", "required"),
        None => {}
    }
    if let Some(conds) = &input.conditions {
        let keys: Vec<String> = custom_fields::active(tx, ctx.tenant_id, crate::leads::ENTITY)
            .await?
            .into_iter()
            .map(|d| d.key)
            .collect();
        rules::check(&mut errs, "conditions", conds, &keys);
        r.conditions = sqlx::types::Json(conds.clone());
    }
    match input.points {
        Some(p) if (-100..=100).contains(&p) => r.points = p,
        Some(_) => errs.add("points", "out_of_range"),
        None if creating => errs.add("points", "required"),
        None => {}
    }
    if let Some(a) = input.active {
        r.active = a;
    }
    errs.finish()
}

/// Plans re-scoring every lead of the tenant (rules or the model changed).
pub(crate) async fn rescore_all_later(tx: &mut Tx, tenant: Uuid) -> Result<()> {
    let key = format!("all:{}", new_id());
    jobs::schedule(
        tx,
        tenant,
        RESCORE_JOB,
        &key,
        &serde_json::json!({"after": null}),
        now(),
    )
    .await?;
    Ok(())
}

pub async fn create(db: &Db, ctx: &Ctx, input: ScoringRuleInput) -> Result<ScoringRule> {
    ctx.require("scoring_rules", Action::Create)?;
    let t = now();
    let mut r = ScoringRule {
        id: new_id(),
        name: String::new(),
        conditions: sqlx::types::Json(vec![]),
        points: 0,
        active: true,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let mut tx = db.begin().await?;
    apply(&mut tx, ctx, &input, &mut r, true).await?;
    tx.execute(
        "INSERT INTO scoring_rules (tenant_id, id, name, conditions, points, active, created_at,
             updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)",
        args![
            ctx.tenant_id,
            r.id,
            r.name.as_str(),
            serde_json::json!(r.conditions.0),
            r.points,
            r.active,
            t,
            t
        ],
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "scoring_rules",
        Some(r.id),
        None,
        Some(&r),
    )
    .await?;
    rescore_all_later(&mut tx, ctx.tenant_id).await?;
    tx.commit().await?;
    Ok(r)
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: ScoringRuleInput,
) -> Result<ScoringRule> {
    ctx.require("scoring_rules", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    version::check(expected, before.version)?;
    let mut r = before.clone();
    apply(&mut tx, ctx, &input, &mut r, false).await?;
    version::update(
        &mut tx,
        version::Row {
            table: "scoring_rules",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, conditions = $2, points = $3, active = $4, updated_at = $5",
        args![
            r.name.as_str(),
            serde_json::json!(r.conditions.0),
            r.points,
            r.active,
            now()
        ],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "scoring_rules",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    rescore_all_later(&mut tx, ctx.tenant_id).await?;
    tx.commit().await?;
    Ok(after)
}

/// The score of a lead with these facts under `rules` and the learned model (if trained), with
/// its reasons.
pub fn score(
    rules: &[ScoringRule],
    model: Option<&Model>,
    facts: &serde_json::Value,
) -> (i64, Vec<Reason>) {
    let mut reasons: Vec<Reason> = rules
        .iter()
        .filter(|r| r.active && rules::all_hold(&r.conditions.0, facts))
        .map(|r| Reason {
            rule: r.name.clone(),
            points: r.points,
            ..Default::default()
        })
        .collect();
    if let Some(m) = model {
        let p = m.predict(facts);
        reasons.push(Reason {
            rule: "learned".into(),
            points: m.points(&p),
            probability: Some((p.probability * 1000.0).round() / 1000.0),
            lifts: p.lifts,
        });
    }
    let total = reasons.iter().map(|r| r.points).sum::<i64>().clamp(0, 100);
    (total, reasons)
}

/// A tenant's active rules, read by every new or changed lead: cached in the process.
const ACTIVE: Setting = Setting {
    name: "scoring_rules.active",
    tables: &["scoring_rules"],
};

async fn active_rules(tx: &mut Tx, tenant: Uuid) -> Result<Vec<ScoringRule>> {
    tx.settings()
        .cached(
            &ACTIVE,
            tenant,
            "",
            tx.fetch_all(
                &format!("{SELECT} WHERE tenant_id = $1 AND active = $2 ORDER BY name, id"),
                args![tenant, true],
            ),
        )
        .await
}

/// A stored lead's facts: its fields, custom values and how often the person reached out.
#[derive(sqlx::FromRow)]
struct FactRow {
    id: Uuid,
    team_id: Option<Uuid>,
    source: String,
    source_detail: Option<String>,
    status: String,
    company: Option<String>,
    title: Option<String>,
    industry: Option<String>,
    province: Option<String>,
    city: Option<String>,
    product_interest: Option<String>,
    tags: sqlx::types::Json<serde_json::Value>,
    custom: sqlx::types::Json<serde_json::Value>,
    touches: i64,
    logged: i64,
}

const FACTS: &str = "SELECT l.id, l.team_id, l.source, l.source_detail, l.status, l.company, l.title,
    l.industry, l.province, l.city, l.product_interest, l.tags, l.custom,
    (SELECT COUNT(*) FROM audit_events e WHERE e.tenant_id = l.tenant_id AND e.entity = 'leads'
        AND e.entity_id = l.id AND e.action = 'touch') AS touches,
    (SELECT COUNT(*) FROM activities ac WHERE ac.tenant_id = l.tenant_id AND ac.record_type = 'leads'
        AND ac.record_id = l.id AND ac.kind IN ('call', 'email', 'meeting', 'visit')
        AND ac.deleted_at IS NULL) AS logged
    FROM leads l";

/// A lead's facts before it is stored (its fields; no touches, nothing logged): the same
/// facts [`rescore`] reads back once it is.
pub(crate) fn new_lead_facts(f: &crate::leads::Fields) -> serde_json::Value {
    facts_of(&FactRow {
        id: Uuid::nil(),
        team_id: f.team_id,
        source: f.source.clone(),
        source_detail: f.source_detail.clone(),
        status: f.status.clone(),
        company: f.company.clone(),
        title: f.title.clone(),
        industry: f.industry.clone(),
        province: f.province.clone(),
        city: f.city.clone(),
        product_interest: f.product_interest.clone(),
        tags: sqlx::types::Json(serde_json::json!(f.tags)),
        custom: sqlx::types::Json(serde_json::Value::Object(f.custom.clone())),
        touches: 0,
        logged: 0,
    })
}

fn facts_of(r: &FactRow) -> serde_json::Value {
    serde_json::json!({
        "source": r.source, "source_detail": r.source_detail, "status": r.status,
        "company": r.company, "title": r.title, "industry": r.industry, "province": r.province,
        "city": r.city, "product_interest": r.product_interest, "tags": r.tags.0,
        "custom": r.custom.0, "touches": r.touches, "logged": r.logged,
    })
}

async fn store(tx: &mut Tx, tenant: Uuid, id: Uuid, score: i64, reasons: &[Reason]) -> Result<()> {
    // Derived, not typed by anyone: the version stays (an open edit form is not made stale).
    tx.execute(
        "UPDATE leads SET score = $1, score_reasons = $2 WHERE tenant_id = $3 AND id = $4",
        args![score, serde_json::json!(reasons), tenant, id],
    )
    .await?;
    Ok(())
}

/// The score of a lead about to be inserted with `facts` (its fields; no touches, nothing
/// logged) for `team`: what [`rescore`] would store right after the insert, without writing
/// the lead twice.
pub(crate) async fn for_new(
    tx: &mut Tx,
    tenant: Uuid,
    team: Option<Uuid>,
    facts: &serde_json::Value,
) -> Result<(i64, Vec<Reason>)> {
    let rules = active_rules(tx, tenant).await?;
    let models = learned::stored(&mut *tx, tenant).await?;
    Ok(score(&rules, learned::for_team(&models, team), facts))
}

/// Re-scores one lead from what is stored (after a change or a touch).
pub async fn rescore(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<()> {
    let rules = active_rules(tx, tenant).await?;
    let models = learned::stored(&mut *tx, tenant).await?;
    let row: Option<FactRow> = tx
        .fetch_optional(
            &format!("{FACTS} WHERE l.tenant_id = $1 AND l.id = $2"),
            args![tenant, id],
        )
        .await?;
    if let Some(row) = row {
        let model = learned::for_team(&models, row.team_id);
        let (s, reasons) = score(&rules, model, &facts_of(&row));
        store(tx, tenant, id, s, &reasons).await?;
    }
    Ok(())
}

/// The `lead_rescore` job: the next batch of the tenant's leads after `after`, then the next
/// job for the rest.
pub fn rescore_handler() -> impl for<'a> Fn(&'a mut Tx, Due<'a>) -> HandlerFuture<'a> + Send + Sync
{
    |tx: &mut Tx, due: Due<'_>| -> HandlerFuture<'_> {
        Box::pin(async move {
            let tenant = due.tenant_id;
            let after = due.payload["after"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .unwrap_or(Uuid::nil());
            let rules = active_rules(tx, tenant).await?;
            let models = learned::stored(&mut *tx, tenant).await?;
            let rows: Vec<FactRow> = tx
                .fetch_all(
                    &format!(
                        "{FACTS} WHERE l.tenant_id = $1 AND l.id > $2 ORDER BY l.id LIMIT {BATCH}"
                    ),
                    args![tenant, after],
                )
                .await?;
            for row in &rows {
                let model = learned::for_team(&models, row.team_id);
                let (s, reasons) = score(&rules, model, &facts_of(row));
                store(tx, tenant, row.id, s, &reasons).await?;
            }
            if rows.len() as i64 == BATCH {
                if let Some(last) = rows.last() {
                    jobs::schedule(
                        tx,
                        tenant,
                        RESCORE_JOB,
                        &format!("{}:{}", due.job_id, last.id),
                        &serde_json::json!({"after": last.id}),
                        due.at,
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(name: &str, conds: Value, points: i64) -> ScoringRule {
        // A condition list the test writes itself; a typo in it fails the test's assertions.
        let conditions: Vec<Condition> = serde_json::from_value(conds).unwrap_or_default();
        assert!(!conditions.is_empty(), "{name}: conditions");
        ScoringRule {
            id: Uuid::nil(),
            name: name.into(),
            conditions: sqlx::types::Json(conditions),
            points,
            active: true,
            created_at: now(),
            updated_at: now(),
            version: 1,
        }
    }
    use serde_json::Value;

    #[test]
    fn scores_add_up_within_0_and_100_with_reasons() {
        let rules = vec![
            rule(
                "制造业",
                json!([{"field": "industry", "op": "eq", "value": "制造"}]),
                40,
            ),
            rule(
                "华南",
                json!([{"field": "province", "op": "in", "value": ["广东", "广西"]}]),
                30,
            ),
            rule(
                "常来问",
                json!([{"field": "touches", "op": "gte", "value": 2}]),
                50,
            ),
            rule(
                "学生",
                json!([{"field": "title", "op": "contains", "value": "学生"}]),
                -100,
            ),
        ];
        let (s, why) = score(
            &rules,
            None,
            &json!({"industry": "制造", "province": "广东", "touches": 3}),
        );
        assert_eq!(s, 100, "120 is capped");
        assert_eq!(why.len(), 3);
        let (s, why) = score(&rules, None, &json!({"industry": "制造", "title": "学生"}));
        assert_eq!(s, 0, "below zero is 0");
        assert_eq!(why.iter().map(|r| r.points).sum::<i64>(), -60);
        let (s, why) = score(&rules, None, &json!({"province": "广西"}));
        assert_eq!(
            (s, why),
            (
                30,
                vec![Reason {
                    rule: "华南".into(),
                    points: 30,
                    ..Default::default()
                }]
            )
        );
    }
}
