//! The learned part of a lead's score: a naive-Bayes frequency model of the tenant's won
//! (converted) and lost (disqualified) leads over their categorical fields — source,
//! industry, province, city, product interest, title — one for the company and one for each
//! team with enough outcomes of its own (a lead is scored by its team's model, else the
//! company's). It is as explainable as the rules: the probability of winning it gives, the
//! points that makes (`weight × probability`), and for each field how many times likelier a
//! win is with the lead's value ("industry = 制造 ×2.3: won 30, lost 8").
//!
//! An admin trains it on demand (`POST /api/v1/scoring-rules/model`); training counts the
//! outcomes in one grouped query per field, replaces the stored models and re-scores every
//! lead in the background. Removing it re-scores without it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use guanxi_platform::db::{Conn, Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::settings::Setting;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, Ctx};

/// The fields the model learns from.
pub const FEATURES: &[&str] = &[
    "source",
    "industry",
    "province",
    "city",
    "product_interest",
    "title",
];

/// Outcomes a model needs of each kind (won and lost) before it is trusted.
pub const MIN_OUTCOMES: i64 = 10;

/// Field → value → `[won, lost]`.
pub type Counts = BTreeMap<String, BTreeMap<String, [i64; 2]>>;

/// A trained model: the outcome counts, overall and per field value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[schema(as = LearnedModel)]
pub struct Model {
    /// The team it was trained on; absent: the company's (every team's leads).
    pub team_id: Option<Uuid>,
    /// Points a certain win would add (`weight × probability`), 1–100.
    pub weight: i64,
    /// Converted leads counted.
    pub won: i64,
    /// Disqualified leads counted.
    pub lost: i64,
    /// Field → value → `[won, lost]`.
    #[schema(value_type = Object)]
    pub counts: Counts,
    pub trained_at: DateTime<Utc>,
}

/// How much one of the lead's values moves the odds of a win.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Lift {
    pub field: String,
    pub value: String,
    /// How many times likelier a win is with this value than without knowing it (below 1:
    /// less likely).
    pub ratio: f64,
    /// Leads with this value won and lost.
    pub won: i64,
    pub lost: i64,
}

/// What the model says of one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The probability of a win, 0–1.
    pub probability: f64,
    /// Each known field's lift, strongest first.
    pub lifts: Vec<Lift>,
}

impl Model {
    /// The probability that a lead with these facts is won, with Laplace smoothing (a value
    /// never seen counts as seen once each way); fields the lead leaves empty say nothing.
    pub fn predict(&self, facts: &serde_json::Value) -> Prediction {
        let (won, lost) = (self.won as f64, self.lost as f64);
        let mut log_odds = ((won + 1.0) / (lost + 1.0)).ln();
        let mut lifts = Vec::new();
        for field in FEATURES {
            let Some(value) = facts
                .get(field)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            let values = self.counts.get(*field);
            // Distinct values seen, plus one for the unseen.
            let k = values.map_or(0, BTreeMap::len) as f64 + 1.0;
            let [w, l] = values.and_then(|v| v.get(value)).copied().unwrap_or([0, 0]);
            let ratio = ((w as f64 + 1.0) / (won + k)) / ((l as f64 + 1.0) / (lost + k));
            log_odds += ratio.ln();
            lifts.push(Lift {
                field: (*field).to_owned(),
                value: value.to_owned(),
                ratio: (ratio * 100.0).round() / 100.0,
                won: w,
                lost: l,
            });
        }
        lifts.sort_by(|a, b| {
            b.ratio
                .ln()
                .abs()
                .total_cmp(&a.ratio.ln().abs())
                .then_with(|| a.field.cmp(&b.field))
        });
        Prediction {
            probability: 1.0 / (1.0 + (-log_odds).exp()),
            lifts,
        }
    }

    /// The points this prediction adds to a score.
    pub fn points(&self, p: &Prediction) -> i64 {
        (self.weight as f64 * p.probability).round() as i64
    }
}

/// The models stored for the tenant: the company's first, then the teams'.
pub async fn stored(conn: impl Into<Conn<'_>>, tenant: Uuid) -> Result<Vec<Model>> {
    let mut conn = conn.into();
    let cache = conn.settings();
    let read = async {
        let rows: Vec<(sqlx::types::Json<Model>,)> = conn
            .fetch_all(
                "SELECT model FROM lead_models WHERE tenant_id = $1 ORDER BY team_key",
                args![tenant],
            )
            .await?;
        Ok(rows.into_iter().map(|(m,)| m.0).collect())
    };
    cache.cached(&STORED, tenant, "", read).await
}

/// A tenant's trained models, read by every scored lead: cached in the process.
const STORED: Setting = Setting {
    name: "lead_models.stored",
    tables: &["lead_models"],
};

/// The model that scores a lead of `team`: its team's, else the company's.
pub fn for_team(models: &[Model], team: Option<Uuid>) -> Option<&Model> {
    models
        .iter()
        .find(|m| m.team_id.is_some() && m.team_id == team)
        .or_else(|| models.iter().find(|m| m.team_id.is_none()))
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainInput {
    /// Points a certain win adds, 1–100 (default 40).
    pub weight: Option<i64>,
}

/// The stored models (none until trained).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LearnedModelList)]
pub struct ModelList {
    pub items: Vec<Model>,
}

/// The stored models, to whoever may read leads (as the scoring rules).
pub async fn list(db: &Db, ctx: &Ctx) -> Result<ModelList> {
    ctx.require("leads", Action::Read)?;
    Ok(ModelList {
        items: stored(db, ctx.tenant_id).await?,
    })
}

/// Counts the won and lost leads, replaces the stored models (the company's, and each team's
/// with at least [`MIN_OUTCOMES`] of each) and plans re-scoring every lead. Refused while the
/// company has fewer outcomes than that (`outcomes: not_enough`).
pub async fn train(db: &Db, ctx: &Ctx, input: TrainInput) -> Result<ModelList> {
    ctx.require("scoring_rules", Action::Update)?;
    let mut errs = Errors::default();
    let weight = input.weight.unwrap_or(40);
    if !(1..=100).contains(&weight) {
        errs.add("weight", "out_of_range");
    }
    errs.finish()?;
    let mut tx = db.begin().await?;
    // team → [won, lost], and team → field → value → [won, lost]; `None` is the company.
    let mut totals: BTreeMap<Option<Uuid>, [i64; 2]> = BTreeMap::new();
    let mut counts: BTreeMap<Option<Uuid>, Counts> = BTreeMap::new();
    const OUTCOMES: &str = "tenant_id = $1 AND deleted_at IS NULL
        AND status IN ('converted', 'disqualified')";
    let rows: Vec<(Option<Uuid>, String, i64)> = tx
        .fetch_all(
            &format!("SELECT team_id, status, COUNT(*) FROM leads WHERE {OUTCOMES} GROUP BY team_id, status"),
            args![ctx.tenant_id],
        )
        .await?;
    for (team, status, n) in rows {
        let i = usize::from(status != "converted");
        for key in [None, team]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
        {
            totals.entry(key).or_default()[i] += n;
        }
    }
    for field in FEATURES {
        let rows: Vec<(Option<Uuid>, Option<String>, String, i64)> = tx
            .fetch_all(
                &format!(
                    "SELECT team_id, {field}, status, COUNT(*) FROM leads WHERE {OUTCOMES}
                       AND {field} IS NOT NULL GROUP BY team_id, {field}, status"
                ),
                args![ctx.tenant_id],
            )
            .await?;
        for (team, value, status, n) in rows {
            let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
                continue;
            };
            let i = usize::from(status != "converted");
            for key in [None, team]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
            {
                counts
                    .entry(key)
                    .or_default()
                    .entry((*field).to_owned())
                    .or_default()
                    .entry(value.clone())
                    .or_default()[i] += n;
            }
        }
    }
    let [won, lost] = totals.get(&None).copied().unwrap_or_default();
    if won < MIN_OUTCOMES || lost < MIN_OUTCOMES {
        return Err(guanxi_platform::Error::field("outcomes", "not_enough"));
    }
    let t = now();
    let models: Vec<Model> = totals
        .iter()
        .filter(|(_, [w, l])| *w >= MIN_OUTCOMES && *l >= MIN_OUTCOMES)
        .map(|(team, [w, l])| Model {
            team_id: *team,
            weight,
            won: *w,
            lost: *l,
            counts: counts.remove(team).unwrap_or_default(),
            trained_at: t,
        })
        .collect();
    replace(&mut tx, ctx, &models).await?;
    tx.commit().await?;
    Ok(ModelList { items: models })
}

/// Removes the models: scores are the rules' alone again.
pub async fn forget(db: &Db, ctx: &Ctx) -> Result<()> {
    ctx.require("scoring_rules", Action::Update)?;
    let mut tx = db.begin().await?;
    replace(&mut tx, ctx, &[]).await?;
    tx.commit().await
}

async fn replace(tx: &mut Tx, ctx: &Ctx, models: &[Model]) -> Result<()> {
    tx.execute(
        "DELETE FROM lead_models WHERE tenant_id = $1",
        args![ctx.tenant_id],
    )
    .await?;
    for m in models {
        let key = m.team_id.map(|t| t.to_string()).unwrap_or_default();
        tx.execute(
            "INSERT INTO lead_models (tenant_id, team_key, model, trained_at) VALUES ($1, $2, $3, $4)",
            args![ctx.tenant_id, key, serde_json::json!(m), m.trained_at],
        )
        .await?;
    }
    let summary: Vec<serde_json::Value> = models
        .iter()
        .map(|m| serde_json::json!({"team_id": m.team_id, "won": m.won, "lost": m.lost, "weight": m.weight}))
        .collect();
    audit::record(
        tx,
        ctx,
        if models.is_empty() { "delete" } else { "train" },
        "lead_models",
        None,
        None,
        Some(&summary),
    )
    .await?;
    crate::scoring::rescore_all_later(tx, ctx.tenant_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn model(counts: &[(&str, &str, i64, i64)], won: i64, lost: i64) -> Model {
        let mut m = Model {
            team_id: None,
            weight: 40,
            won,
            lost,
            counts: BTreeMap::new(),
            trained_at: now(),
        };
        for (f, v, w, l) in counts {
            m.counts
                .entry((*f).into())
                .or_default()
                .insert((*v).into(), [*w, *l]);
        }
        m
    }

    #[test]
    fn a_value_seen_mostly_in_wins_raises_the_odds_and_says_why() {
        let m = model(
            &[
                ("industry", "制造", 30, 8),
                ("industry", "餐饮", 5, 40),
                ("source", "form", 20, 20),
            ],
            40,
            50,
        );
        let made = m.predict(&json!({"industry": "制造", "source": "form"}));
        let food = m.predict(&json!({"industry": "餐饮", "source": "form"}));
        let none = m.predict(&json!({}));
        assert!(made.probability > none.probability && none.probability > food.probability);
        assert_eq!(
            made.lifts[0].field, "industry",
            "the strongest reason first"
        );
        assert!(made.lifts[0].ratio > 2.0, "{:?}", made.lifts);
        assert_eq!((made.lifts[0].won, made.lifts[0].lost), (30, 8));
        // With no fields known, the prior: (40 + 1) / (50 + 1) odds.
        assert!((none.probability - 41.0 / 92.0).abs() < 1e-9);
        assert_eq!(m.points(&none), 18);
    }

    proptest! {
        /// Whatever the counts, a probability is a probability, and one more win with a value
        /// never makes that value less promising.
        #[test]
        fn probabilities_stay_in_range_and_wins_only_help(
            w in 0i64..500, l in 0i64..500, extra_w in 0i64..500, extra_l in 0i64..500,
            other in 0i64..50,
        ) {
            let before = model(&[("industry", "制造", w, l), ("industry", "其他", other, other)],
                w + other + extra_w, l + other + extra_l);
            let after = model(&[("industry", "制造", w + 1, l), ("industry", "其他", other, other)],
                w + other + extra_w + 1, l + other + extra_l);
            let facts = json!({"industry": "制造"});
            let (p0, p1) = (before.predict(&facts).probability, after.predict(&facts).probability);
            prop_assert!((0.0..=1.0).contains(&p0) && (0.0..=1.0).contains(&p1));
            prop_assert!(p1 >= p0 - 1e-12, "{} then {}", p0, p1);
            prop_assert!((0..=40).contains(&before.points(&before.predict(&facts))));
        }
    }
}
