//! RFM: each customer scored 1–5 on recency (days since the last purchase to the end of the
//! window; fewer is better), frequency (orders) and monetary value (revenue), by quintile of
//! the customers analysed, and named by a segment from recency and the rounded mean of
//! frequency and monetary value (`FM`).
//!
//! Quintiles with ties: a customer's score is 1 + ⌊5 × (customers strictly worse) / n⌋, so
//! equal values always get the same score and each score holds a fifth of the customers when
//! values are distinct (a long tail of one-order customers all score F = 1).
//!
//! A stored run keeps every customer's scores as of a day; the analysis shows who moved from
//! the latest run before its window's end.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql, Val};
use guanxi_platform::error::Result;
use guanxi_platform::perms::Action;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{args, audit, Ctx, Error};

use crate::facts::{bp, company_scope, Fact, Party, Purchases, Window};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Champions,
    Loyal,
    Potential,
    New,
    AtRisk,
    CantLose,
    Hibernating,
    Lost,
}

pub const SEGMENTS: [Segment; 8] = [
    Segment::Champions,
    Segment::Loyal,
    Segment::Potential,
    Segment::New,
    Segment::AtRisk,
    Segment::CantLose,
    Segment::Hibernating,
    Segment::Lost,
];

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::Potential => "potential",
            Segment::New => "new",
            Segment::AtRisk => "at_risk",
            Segment::CantLose => "cant_lose",
            Segment::Hibernating => "hibernating",
            Segment::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Segment> {
        SEGMENTS.into_iter().find(|g| g.as_str() == s)
    }
}

/// The segment of recency score `r` and `fm`, the rounded mean of the frequency and monetary
/// scores (each 1–5):
///
/// | R \ FM | 1 | 2 | 3 | 4 | 5 |
/// |---|---|---|---|---|---|
/// | 5 | new | potential | potential | champions | champions |
/// | 4 | new | potential | potential | loyal | champions |
/// | 3 | hibernating | potential | potential | loyal | loyal |
/// | 2 | hibernating | hibernating | at risk | at risk | can't lose |
/// | 1 | lost | lost | lost | at risk | can't lose |
pub fn segment(r: u8, fm: u8) -> Segment {
    use Segment::*;
    const TABLE: [[Segment; 5]; 5] = [
        [Lost, Lost, Lost, AtRisk, CantLose],
        [Hibernating, Hibernating, AtRisk, AtRisk, CantLose],
        [Hibernating, Potential, Potential, Loyal, Loyal],
        [New, Potential, Potential, Loyal, Champions],
        [New, Potential, Potential, Champions, Champions],
    ];
    TABLE[(r.clamp(1, 5) - 1) as usize][(fm.clamp(1, 5) - 1) as usize]
}

/// The rounded mean of the frequency and monetary scores (halves round up).
pub fn fm(f: u8, m: u8) -> u8 {
    (f + m).div_ceil(2)
}

/// Quintile scores, higher values better: 1 + ⌊5 × (values strictly lower) / n⌋.
pub fn scores_high(values: &[i64]) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = values.len();
    values
        .iter()
        .map(|v| {
            let lower = sorted.partition_point(|x| x < v);
            1 + (5 * lower / n) as u8
        })
        .collect()
}

/// Quintile scores, lower values better (days since the last purchase).
pub fn scores_low(values: &[i64]) -> Vec<u8> {
    let negated: Vec<i64> = values.iter().map(|v| v.saturating_neg()).collect();
    scores_high(&negated)
}

/// One customer's RFM.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Scored {
    pub id: Uuid,
    pub name: Option<String>,
    pub recency_days: i64,
    pub frequency: i64,
    /// Minor units.
    pub monetary: i64,
    pub last_order_at: DateTime<Utc>,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: Segment,
}

/// Scores every customer against the others.
pub fn score(facts: &[Fact], w: &Window) -> Vec<Scored> {
    let rec: Vec<i64> = facts.iter().map(|f| w.days_before_end(f.last_at)).collect();
    let freq: Vec<i64> = facts.iter().map(|f| f.orders).collect();
    let mon: Vec<i64> = facts.iter().map(|f| f.revenue).collect();
    let (r, f, m) = (scores_low(&rec), scores_high(&freq), scores_high(&mon));
    facts
        .iter()
        .enumerate()
        .map(|(i, x)| Scored {
            id: x.id,
            name: None,
            recency_days: rec[i],
            frequency: freq[i],
            monetary: mon[i],
            last_order_at: x.last_at,
            r: r[i],
            f: f[i],
            m: m[i],
            segment: segment(r[i], fm(f[i], m[i])),
        })
        .collect()
}

pub const MAX_LIMIT: u32 = 500;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RfmQuery {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// First day counted (tenant's calendar); default: all history.
    pub from: Option<NaiveDate>,
    /// Last day counted, and the day recency is measured to; default today.
    pub to: Option<NaiveDate>,
    /// List only this segment's customers.
    pub segment: Option<Segment>,
    /// Customers to skip in the list (default 0).
    pub offset: Option<u32>,
    /// Customers listed, largest spend first (default 50, at most 500).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tally {
    pub segment: Segment,
    pub customers: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentSummary {
    pub segment: Segment,
    pub customers: i64,
    pub customer_share_bp: i64,
    /// Minor units.
    pub revenue: i64,
    pub revenue_share_bp: i64,
}

/// How many customers have recency score `r` and `fm`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GridCell {
    pub r: u8,
    pub fm: u8,
    pub customers: i64,
}

/// Customers who were in `from` at the earlier run (none: not in it — new since) and are in
/// `to` now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Move {
    pub from: Option<Segment>,
    pub to: Segment,
    pub customers: i64,
}

/// A stored run.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Run {
    pub id: Uuid,
    pub party: String,
    /// The window's first day, if bounded (`YYYY-MM-DD`).
    pub period_from: Option<String>,
    /// The window's last day (`YYYY-MM-DD`).
    pub as_of: String,
    pub customers: i64,
    #[schema(value_type = Vec<Tally>)]
    pub segments: sqlx::types::Json<Vec<Tally>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rfm {
    pub party: Party,
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub currency: String,
    pub customers: i64,
    pub segments: Vec<SegmentSummary>,
    /// 25 cells, recency 5 … 1 by FM 1 … 5.
    pub grid: Vec<GridCell>,
    /// The run the movement is measured from: the latest stored before `to`.
    pub compared_with: Option<Run>,
    /// Movement since that run, of the customers analysed now (non-zero cells only).
    pub moves: Vec<Move>,
    pub items: Vec<Scored>,
    pub next_offset: Option<u32>,
    pub other_currency_orders: i64,
}

/// Customers and spend per segment (in `SEGMENTS` order), in one pass.
fn per_segment(scored: &[Scored]) -> [(i64, i128); SEGMENTS.len()] {
    let mut out = [(0i64, 0i128); SEGMENTS.len()];
    for x in scored {
        let cell = &mut out[x.segment as usize];
        cell.0 += 1;
        cell.1 += x.monetary as i128;
    }
    out
}

fn tallies(scored: &[Scored]) -> Vec<Tally> {
    SEGMENTS
        .into_iter()
        .zip(per_segment(scored))
        .map(|(segment, (customers, _))| Tally { segment, customers })
        .collect()
}

const RUN_COLUMNS: &str =
    "id, party, period_from, as_of, customers, segments, created_at, created_by";

/// The RFM analysis of the customers the caller may read, with the movement since the latest
/// stored run before its end.
pub async fn rfm(db: &Db, ctx: &Ctx, q: &RfmQuery) -> Result<Rfm> {
    let party = q.party.unwrap_or_default();
    let p = Purchases::of(db, ctx, party, (q.from, q.to), None).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::field("limit", "out_of_range"));
    }
    let (facts, other) = p.facts(db).await?;
    let scored = score(&facts, &p.window);
    let n = scored.len() as i128;
    let revenue: i128 = scored.iter().map(|x| x.monetary.max(0) as i128).sum();
    let segments = SEGMENTS
        .into_iter()
        .zip(per_segment(&scored))
        .map(|(g, (k, m))| SegmentSummary {
            segment: g,
            customers: k,
            customer_share_bp: bp(k as i128, n),
            revenue: m.clamp(0, i64::MAX as i128) as i64,
            revenue_share_bp: bp(m.max(0), revenue),
        })
        .collect();
    // The grid in one pass: cell [5 − r][fm − 1].
    let mut counts = [[0i64; 5]; 5];
    for x in &scored {
        counts[(5 - x.r.clamp(1, 5)) as usize][(fm(x.f, x.m).clamp(1, 5) - 1) as usize] += 1;
    }
    let grid = (0..5u8)
        .flat_map(|i| (0..5u8).map(move |j| (i, j)))
        .map(|(i, j)| GridCell {
            r: 5 - i,
            fm: j + 1,
            customers: counts[i as usize][j as usize],
        })
        .collect();
    // The latest run before this window's end, and who moved since.
    let before: Option<Run> = db
        .fetch_optional(
            &format!(
                "SELECT {RUN_COLUMNS} FROM rfm_runs WHERE tenant_id = $1 AND party = $2 AND as_of < $3
                 ORDER BY as_of DESC LIMIT 1"
            ),
            args![ctx.tenant_id, party.as_str(), p.window.to.to_string()],
        )
        .await?;
    let mut moves = Vec::new();
    if let Some(run) = &before {
        let then: Vec<(Uuid, String)> = db
            .fetch_all(
                "SELECT customer_id, segment FROM rfm_scores WHERE tenant_id = $1 AND run_id = $2",
                args![ctx.tenant_id, run.id],
            )
            .await?;
        let then: HashMap<Uuid, Segment> = then
            .into_iter()
            .filter_map(|(id, g)| Segment::parse(&g).map(|g| (id, g)))
            .collect();
        let mut cells: HashMap<(Option<Segment>, Segment), i64> = HashMap::new();
        for x in &scored {
            *cells
                .entry((then.get(&x.id).copied(), x.segment))
                .or_default() += 1;
        }
        moves = cells
            .into_iter()
            .map(|((from, to), customers)| Move {
                from,
                to,
                customers,
            })
            .collect();
        moves.sort_by_key(|m| (m.from.map_or(-1, |g| g as i32), m.to));
    }
    // The list: the segment asked for, largest spend first.
    let mut listed: Vec<&Scored> = scored
        .iter()
        .filter(|x| q.segment.is_none_or(|g| g == x.segment))
        .collect();
    listed.sort_unstable_by(|x, y| y.monetary.cmp(&x.monetary).then(x.id.cmp(&y.id)));
    let offset = q.offset.unwrap_or(0) as usize;
    let mut items: Vec<Scored> = listed
        .iter()
        .skip(offset)
        .take(limit as usize)
        .map(|x| (*x).clone())
        .collect();
    let more = listed.len() > offset + items.len();
    let ids: Vec<Uuid> = items.iter().map(|x| x.id).collect();
    let names = p.names(db, &ids).await?;
    for x in &mut items {
        x.name = names.get(&x.id).cloned();
    }
    Ok(Rfm {
        party,
        from: p.window.from,
        to: p.window.to,
        other_currency_orders: other,
        currency: p.currency,
        customers: n as i64,
        segments,
        grid,
        compared_with: before,
        moves,
        next_offset: more.then_some((offset + items.len()) as u32),
        items,
    })
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// First day counted; default all history.
    pub from: Option<NaiveDate>,
    /// The day the run is as of; default today.
    pub to: Option<NaiveDate>,
}

async fn run_as_of(db: &Db, ctx: &Ctx, party: Party, as_of: &str) -> Result<Option<Run>> {
    db.fetch_optional(
        &format!(
            "SELECT {RUN_COLUMNS} FROM rfm_runs WHERE tenant_id = $1 AND party = $2 AND as_of = $3"
        ),
        args![ctx.tenant_id, party.as_str(), as_of],
    )
    .await
}

/// Stores a run as of `to`: every customer's scores. Storing a day already stored returns the
/// run kept (`false`), the same snapshot, not a second one; with another `from` it is refused.
pub async fn store_run(db: &Db, ctx: &Ctx, input: RunInput) -> Result<(Run, bool)> {
    let party = input.party.unwrap_or_default();
    company_scope(ctx, party, Action::Create)?;
    let p = Purchases::of(db, ctx, party, (input.from, input.to), None)
        .await?
        .of_everyone();
    let (from, as_of) = (
        p.window.from.map(|d| d.to_string()),
        p.window.to.to_string(),
    );
    let kept = |run: Run| {
        if run.period_from == from {
            Ok((run, false))
        } else {
            Err(Error::field("to", "run_exists"))
        }
    };
    if let Some(run) = run_as_of(db, ctx, party, &as_of).await? {
        return kept(run);
    }
    let scored = score(&p.facts(db).await?.0, &p.window);
    let tally = tallies(&scored);
    let run = Run {
        id: new_id(),
        party: party.as_str().to_owned(),
        period_from: from.clone(),
        as_of: as_of.clone(),
        customers: scored.len() as i64,
        segments: sqlx::types::Json(tally),
        created_at: now(),
        created_by: ctx.user_id,
    };
    let mut tx = db.begin().await?;
    let segments = serde_json::to_value(&run.segments.0).map_err(anyhow::Error::from)?;
    let inserted = tx
        .execute(
            "INSERT INTO rfm_runs (tenant_id, id, party, period_from, as_of, customers, segments, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, party, as_of) DO NOTHING",
            args![ctx.tenant_id, run.id, run.party.clone(), from.clone(), as_of.clone(),
                  run.customers, segments, run.created_at, run.created_by],
        )
        .await?;
    if inserted == 0 {
        // Stored by a request beside this one since the check.
        drop(tx);
        return match run_as_of(db, ctx, party, &as_of).await? {
            Some(r) => kept(r),
            None => Err(Error::Conflict("rfm run".into())),
        };
    }
    let rows: Vec<Vec<Val>> = scored
        .iter()
        .map(|x| {
            vec![
                ctx.tenant_id.into(),
                run.id.into(),
                x.id.into(),
                x.recency_days.into(),
                x.frequency.into(),
                x.monetary.into(),
                (x.r as i64).into(),
                (x.f as i64).into(),
                (x.m as i64).into(),
                x.segment.as_str().into(),
            ]
        })
        .collect();
    tx.insert_rows(
        "rfm_scores",
        &[
            "tenant_id",
            "run_id",
            "customer_id",
            "recency_days",
            "frequency",
            "monetary",
            "r",
            "f",
            "m",
            "segment",
        ],
        rows,
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        "create",
        "rfm_run",
        Some(run.id),
        None,
        Some(&run),
    )
    .await?;
    tx.commit().await?;
    Ok((run, true))
}

/// A customer's scores in the latest kept run of their party.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Latest {
    pub as_of: String,
    pub r: i64,
    pub f: i64,
    pub m: i64,
    pub segment: String,
}

/// The customer's line in the latest run, when the caller may see analyses.
pub async fn latest_for(
    db: &Db,
    ctx: &Ctx,
    party: Party,
    customer: Uuid,
) -> Result<Option<Latest>> {
    if ctx.can("analytics", Action::Read).is_none() {
        return Ok(None);
    }
    db.fetch_optional(
        "SELECT r.as_of, s.r, s.f, s.m, s.segment FROM rfm_runs r
         JOIN rfm_scores s ON s.tenant_id = r.tenant_id AND s.run_id = r.id AND s.customer_id = $3
         WHERE r.tenant_id = $1 AND r.party = $2 ORDER BY r.as_of DESC LIMIT 1",
        args![ctx.tenant_id, party.as_str(), customer],
    )
    .await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
}

/// The stored runs of a party, latest first.
pub async fn runs(db: &Db, ctx: &Ctx, q: &RunsQuery) -> Result<Vec<Run>> {
    let party = q.party.unwrap_or_default();
    company_scope(ctx, party, Action::Read)?;
    let mut sql = Sql::new(&format!(
        "SELECT {RUN_COLUMNS} FROM rfm_runs WHERE tenant_id = "
    ));
    sql.bind(ctx.tenant_id)
        .push(" AND party = ")
        .bind(party.as_str());
    sql.push(" ORDER BY as_of DESC LIMIT 200");
    db.fetch_sql(sql).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_cell_has_a_segment() {
        let mut seen = std::collections::BTreeSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                seen.insert(segment(r, f));
            }
        }
        assert_eq!(seen.len(), SEGMENTS.len(), "every segment is reachable");
        assert_eq!(segment(5, 5), Segment::Champions);
        assert_eq!(segment(1, 1), Segment::Lost);
        assert_eq!(segment(1, 5), Segment::CantLose);
        assert_eq!(segment(5, 1), Segment::New);
        assert_eq!(fm(4, 5), 5);
        assert_eq!(fm(1, 2), 2);
    }

    #[test]
    fn quintiles_of_distinct_values() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(scores_high(&v), vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        assert_eq!(scores_low(&v), vec![5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
        // A long tail of equal values scores alike.
        assert_eq!(
            scores_high(&[1, 1, 1, 1, 1, 1, 1, 2, 3, 9]),
            vec![1, 1, 1, 1, 1, 1, 1, 4, 5, 5]
        );
    }

    proptest! {
        /// Scores are 1–5, equal values score alike, better values never score lower, and with
        /// distinct values each score holds a fifth of the customers (±1).
        #[test]
        fn quintiles_with_ties(values in proptest::collection::vec(-50i64..50, 1..300)) {
            let s = scores_high(&values);
            for (i, a) in values.iter().enumerate() {
                prop_assert!((1..=5).contains(&s[i]));
                for (j, b) in values.iter().enumerate() {
                    if a == b { prop_assert_eq!(s[i], s[j]); }
                    if a < b { prop_assert!(s[i] <= s[j]); }
                }
            }
            let low = scores_low(&values);
            for (i, a) in values.iter().enumerate() {
                for (j, b) in values.iter().enumerate() {
                    if a < b { prop_assert!(low[i] >= low[j]); }
                }
            }
        }

        #[test]
        fn distinct_values_fill_quintiles(n in 5usize..400) {
            let v: Vec<i64> = (0..n as i64).collect();
            let s = scores_high(&v);
            for k in 1..=5u8 {
                let c = s.iter().filter(|x| **x == k).count();
                prop_assert!(c.abs_diff(n / 5) <= 1, "score {} holds {} of {}", k, c, n);
            }
        }
    }
}
