//! A pipeline's funnel: of the deals created in a month or a quarter (a cohort), how many
//! reached each stage — a deal counts at every stage up to the furthest it reached
//! (`opportunities.reached_stage_id`, kept by every stage change), a won deal at every open
//! stage and its won stage — with the amount and the conversion from the stage before. One
//! grouped read of the deals the caller may read; the counting is [`funnel_of`], pure.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::Ctx;

use crate::forecast::{instant, period_of, tenant_facts};
use crate::pipelines::{self, Stage};

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FunnelQuery {
    /// The cohort: deals created in `2026-12` or `2026-Q4`; default this quarter.
    pub period: Option<String>,
    /// Only this team's reps' deals.
    pub team_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FunnelStep {
    pub stage_id: Uuid,
    pub name: String,
    /// `pipeline`, `best_case`, `commit` or `won`.
    pub category: String,
    /// Deals of the cohort that reached the stage (or one after it).
    pub deals: i64,
    /// Their amounts (minor units).
    pub amount: i64,
    /// `deals` ÷ the step before's, in basis points; `null` on the first step or after an
    /// empty one.
    pub conversion_bp: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Funnel {
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    pub period: String,
    pub from: String,
    pub until: String,
    /// Deals created in the period, and how they stand now.
    pub created: i64,
    pub open: i64,
    pub won: i64,
    pub lost: i64,
    /// Stages in order, lost stages left out.
    pub steps: Vec<FunnelStep>,
}

/// Deals of the cohort grouped by the furthest stage they reached and their status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reach {
    pub reached_stage_id: Option<Uuid>,
    pub status: String,
    pub deals: i64,
    pub amount: i64,
}

/// The funnel's steps from the pipeline's stages and the cohort's reach (pure). A group
/// whose furthest stage is not one of the pipeline's open or won stages is counted nowhere.
pub fn funnel_of(stages: &[Stage], reach: &[Reach]) -> Vec<FunnelStep> {
    let mut steps: Vec<&Stage> = stages.iter().filter(|s| s.category != "lost").collect();
    steps.sort_by_key(|s| s.position);
    let mut out: Vec<FunnelStep> = steps
        .iter()
        .map(|s| FunnelStep {
            stage_id: s.id,
            name: s.name.clone(),
            category: s.category.clone(),
            deals: 0,
            amount: 0,
            conversion_bp: None,
        })
        .collect();
    for r in reach {
        let Some(furthest) = steps.iter().find(|s| Some(s.id) == r.reached_stage_id) else {
            continue;
        };
        for (step, s) in out.iter_mut().zip(&steps) {
            let counts = if s.category == "won" {
                r.status == "won" && s.position <= furthest.position
            } else {
                r.status == "won" || s.position <= furthest.position
            };
            if counts {
                step.deals += r.deals;
                step.amount = step.amount.saturating_add(r.amount);
            }
        }
    }
    for i in 1..out.len() {
        let before = out[i - 1].deals;
        out[i].conversion_bp = (before > 0).then(|| out[i].deals * 10_000 / before);
    }
    out
}

/// The funnel of a pipeline for the deals created in the period that the caller may read.
pub async fn funnel(db: &Db, ctx: &Ctx, pipeline: Uuid, q: &FunnelQuery) -> Result<Funnel> {
    let scope = ctx.require("opportunities", Action::Read)?;
    let p = pipelines::get(db, ctx, pipeline).await?;
    let (_, tz) = tenant_facts(db, ctx.tenant_id).await?;
    let (name, period) = period_of(q.period.as_deref(), tz)?;
    let mut sql = Sql::new(
        "SELECT d.reached_stage_id, d.status, COUNT(*) AS deals,
             CAST(COALESCE(SUM(d.amount), 0) AS BIGINT) AS amount
         FROM opportunities d WHERE d.tenant_id = ",
    );
    sql.bind(ctx.tenant_id);
    sql.push(" AND d.pipeline_id = ").bind(p.id);
    sql.push(" AND d.deleted_at IS NULL AND d.created_at >= ")
        .bind(instant(tz, period.from));
    sql.push(" AND d.created_at < ")
        .bind(instant(tz, period.until));
    ctx.scope_sql(&mut sql, scope, "d.owner_id", "d.team_id");
    if let Some(t) = q.team_id {
        sql.push(" AND d.owner_id IN (SELECT id FROM users WHERE tenant_id = ")
            .bind(ctx.tenant_id);
        sql.push(" AND team_id = ").bind(t);
        sql.push(")");
    }
    sql.push(" GROUP BY d.reached_stage_id, d.status");
    let reach: Vec<Reach> = db.fetch_sql(sql).await?;
    let by = |status: &str| -> i64 {
        reach
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.deals)
            .sum()
    };
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    Ok(Funnel {
        pipeline_id: p.id,
        pipeline_name: p.name.clone(),
        period: name,
        from: day(period.from),
        until: day(period.until),
        created: reach.iter().map(|r| r.deals).sum(),
        open: by("open"),
        won: by("won"),
        lost: by("lost"),
        steps: funnel_of(&p.stages, &reach),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stages() -> Vec<Stage> {
        [
            ("lead", "pipeline"),
            ("qualified", "best_case"),
            ("lost", "lost"),
            ("proposal", "commit"),
            ("won", "won"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, category))| Stage {
            id: Uuid::from_u128(i as u128 + 1),
            pipeline_id: Uuid::nil(),
            name: (*name).into(),
            position: i as i64,
            probability: 0,
            category: (*category).into(),
            required_fields: sqlx::types::Json(vec![]),
        })
        .collect()
    }

    fn reach(stage: u128, status: &str, deals: i64) -> Reach {
        Reach {
            reached_stage_id: Some(Uuid::from_u128(stage)),
            status: status.into(),
            deals,
            amount: deals * 100,
        }
    }

    #[test]
    fn deals_count_up_to_the_furthest_stage_and_won_deals_everywhere() {
        let steps = funnel_of(
            &stages(),
            &[
                reach(1, "open", 4), // still at the first stage
                reach(2, "lost", 3), // lost after qualifying
                reach(4, "open", 2), // at proposal
                reach(5, "won", 1),  // won
                reach(5, "open", 1), // won, then reopened: reached every open stage
                reach(3, "lost", 9), // reached only a lost stage: nowhere
            ],
        );
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["lead", "qualified", "proposal", "won"]);
        let deals: Vec<i64> = steps.iter().map(|s| s.deals).collect();
        assert_eq!(deals, [11, 7, 4, 1]);
        let conv: Vec<Option<i64>> = steps.iter().map(|s| s.conversion_bp).collect();
        assert_eq!(conv, [None, Some(6_363), Some(5_714), Some(2_500)]);
        assert_eq!(steps[1].amount, 700);
    }

    proptest! {
        #[test]
        fn a_funnel_never_widens(groups in proptest::collection::vec((1u128..=5, 0usize..3, 0i64..1_000), 0..30)) {
            let statuses = ["open", "won", "lost"];
            let reach: Vec<Reach> = groups.iter().map(|(s, st, n)| reach(*s, statuses[*st], *n)).collect();
            let steps = funnel_of(&stages(), &reach);
            for w in steps.windows(2) {
                prop_assert!(w[1].deals <= w[0].deals);
                prop_assert!(w[1].conversion_bp.is_none_or(|c| (0..=10_000).contains(&c)));
            }
            let won: i64 = reach.iter().filter(|r| r.status == "won" && r.reached_stage_id != Some(Uuid::from_u128(3))).map(|r| r.deals).sum();
            prop_assert!(steps.iter().all(|s| s.deals >= won || s.category == "won"));
        }
    }
}
