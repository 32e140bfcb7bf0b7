//! ABC (Pareto) analysis: customers ranked by a measure in a window and classed by the share
//! of the measure ranked above them — A while less than `a_percent` (default 70) of it lies
//! above, B while less than `b_percent` (default 90), then C. The customer who crosses a
//! threshold belongs to the class below it, so class A alone always holds at least
//! `a_percent` of the measure and is the smallest set that does.
//!
//! Ties are broken by the customer's id (ascending), so a ranking is the same at every run.
//! Shares are of the positive total: a customer whose measure is zero or negative (a margin
//! below cost) is C and adds nothing to the base.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::Db;
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::Ctx;

use crate::facts::{bp, Fact, Party, Purchases};

/// What customers are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The orders' totals, minor units.
    #[default]
    Revenue,
    /// The lines' amounts less the products' cost, minor units.
    Margin,
    /// The number of orders.
    Orders,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Class {
    A,
    B,
    C,
}

pub const DEFAULT_A: u32 = 70;
pub const DEFAULT_B: u32 = 90;
pub const MAX_LIMIT: u32 = 500;

/// Classes of values ranked highest first: `ranked[i]`'s class, given the positive total.
pub fn classify(ranked: &[i64], a_percent: u32, b_percent: u32) -> Vec<Class> {
    let base: i128 = ranked.iter().map(|v| (*v).max(0) as i128).sum();
    let mut above: i128 = 0;
    ranked
        .iter()
        .map(|&v| {
            let class = if v <= 0 || base == 0 {
                Class::C
            } else if above * 100 < a_percent as i128 * base {
                Class::A
            } else if above * 100 < b_percent as i128 * base {
                Class::B
            } else {
                Class::C
            };
            above += v.max(0) as i128;
            class
        })
        .collect()
}

/// Ranks `(id, value)` highest value first, ties by id.
pub fn rank(rows: &mut [(Uuid, i64)]) {
    rows.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AbcQuery {
    /// `accounts` (default) or `contacts`.
    pub party: Option<Party>,
    /// `revenue` (default), `margin` or `orders`.
    pub measure: Option<Measure>,
    /// First day (tenant's calendar); default a year before `to`.
    pub from: Option<NaiveDate>,
    /// Last day, included; default today.
    pub to: Option<NaiveDate>,
    /// Class A holds this percentage of the measure (1–99, default 70).
    pub a_percent: Option<u32>,
    /// Classes A and B hold this percentage (above `a_percent`, up to 99; default 90).
    pub b_percent: Option<u32>,
    /// List only this class's customers.
    pub class: Option<Class>,
    /// Rank to start the list after (default 0).
    pub offset: Option<u32>,
    /// Customers listed (default 50, at most 500).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassSummary {
    pub class: Class,
    pub customers: i64,
    /// Of all customers ranked, basis points.
    pub customer_share_bp: i64,
    /// The class's measure (minor units for money).
    pub measure: i64,
    /// Of the positive total, basis points.
    pub measure_share_bp: i64,
}

/// One customer in the ranking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AbcRow {
    /// 1 for the largest.
    pub rank: i64,
    pub id: Uuid,
    pub name: Option<String>,
    pub class: Class,
    pub value: i64,
    /// Of the positive total, basis points.
    pub share_bp: i64,
    /// This customer's and everyone's above, basis points.
    pub cumulative_bp: i64,
    pub orders: i64,
    pub last_order_at: DateTime<Utc>,
}

/// A point of the Pareto curve: the top `customers_bp` of customers hold `measure_bp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct CurvePoint {
    pub customers_bp: i64,
    pub measure_bp: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Abc {
    pub party: Party,
    pub measure: Measure,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: String,
    pub a_percent: u32,
    pub b_percent: u32,
    /// Customers with purchases in the window.
    pub customers: i64,
    /// The measure over them all (minor units for money).
    pub total: i64,
    pub classes: Vec<ClassSummary>,
    /// At most 101 points from (0, 0) to (10000, 10000), for the chart.
    pub curve: Vec<CurvePoint>,
    /// The share of the measure held by each twentieth of the customers, in rank order, and
    /// the class of its first customer (the chart's bars).
    pub bins: Vec<Bin>,
    pub items: Vec<AbcRow>,
    /// The `offset` of the next page, if any.
    pub next_offset: Option<u32>,
    /// Orders in the window in another currency, left out.
    pub other_currency_orders: i64,
    /// For `margin`: order lines whose product has no cost (counted at their full amount).
    pub lines_without_cost: i64,
}

/// A twentieth of the ranked customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Bin {
    pub measure_bp: i64,
    pub class: Class,
}

/// The Pareto curve of values ranked highest first: cumulative share of the positive total at
/// each hundredth of the customers (every customer when fewer than 100).
pub fn curve(ranked: &[i64]) -> Vec<CurvePoint> {
    let n = ranked.len();
    let base: i128 = ranked.iter().map(|v| (*v).max(0) as i128).sum();
    let mut cum = Vec::with_capacity(n + 1);
    let mut s: i128 = 0;
    cum.push(0i128);
    for v in ranked {
        s += (*v).max(0) as i128;
        cum.push(s);
    }
    let steps = n.min(100);
    (0..=steps)
        .map(|k| {
            let i = if steps == 0 {
                0
            } else {
                (k * n).div_ceil(steps)
            };
            CurvePoint {
                customers_bp: if n == 0 { 0 } else { bp(i as i128, n as i128) },
                measure_bp: bp(cum[i], base),
            }
        })
        .collect()
}

fn bins(ranked: &[i64], classes: &[Class]) -> Vec<Bin> {
    let n = ranked.len();
    let base: i128 = ranked.iter().map(|v| (*v).max(0) as i128).sum();
    let parts = n.min(20);
    (0..parts)
        .map(|k| {
            let (lo, hi) = (k * n / parts, (k + 1) * n / parts);
            let sum: i128 = ranked[lo..hi].iter().map(|v| (*v).max(0) as i128).sum();
            Bin {
                measure_bp: bp(sum, base),
                class: classes[lo],
            }
        })
        .collect()
}

/// The ABC analysis of the customers the caller may read.
pub async fn abc(db: &Db, ctx: &Ctx, q: &AbcQuery) -> Result<Abc> {
    let party = q.party.unwrap_or_default();
    let measure = q.measure.unwrap_or_default();
    let purchases = Purchases::of(db, ctx, party, (q.from, q.to), Some(365)).await?;
    let (a, b) = (
        q.a_percent.unwrap_or(DEFAULT_A),
        q.b_percent.unwrap_or(DEFAULT_B),
    );
    let mut errs = Errors::default();
    if !(1..=99).contains(&a) {
        errs.add("a_percent", "out_of_range");
    }
    if !(1..=99).contains(&b) || b <= a {
        errs.add("b_percent", "out_of_range");
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errs.add("limit", "out_of_range");
    }
    errs.finish()?;
    let (facts, other) = purchases.facts(db).await?;
    let (margins, uncosted) = if measure == Measure::Margin {
        purchases.margins(db).await?
    } else {
        Default::default()
    };
    let mut rows: Vec<(Uuid, i64)> = facts
        .iter()
        .map(|f| {
            let v = match measure {
                Measure::Revenue => f.revenue,
                Measure::Orders => f.orders,
                Measure::Margin => margins.get(&f.id).copied().unwrap_or(0),
            };
            (f.id, v)
        })
        .collect();
    rank(&mut rows);
    let values: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let classes = classify(&values, a, b);
    let n = rows.len() as i128;
    let base: i128 = values.iter().map(|v| (*v).max(0) as i128).sum();
    let total: i128 = values.iter().map(|v| *v as i128).sum();
    let summary = [Class::A, Class::B, Class::C]
        .into_iter()
        .map(|c| {
            let (mut k, mut m) = (0i64, 0i128);
            for (v, cl) in values.iter().zip(&classes) {
                if *cl == c {
                    k += 1;
                    m += *v as i128;
                }
            }
            ClassSummary {
                class: c,
                customers: k,
                customer_share_bp: bp(k as i128, n),
                measure: clamp(m),
                measure_share_bp: bp(m.max(0), base),
            }
        })
        .collect();
    // The page: ranks after `offset` (of the class asked for).
    let by_id: std::collections::HashMap<Uuid, &Fact> = facts.iter().map(|f| (f.id, f)).collect();
    let offset = q.offset.unwrap_or(0) as usize;
    let mut above: i128 = 0;
    let mut chosen = Vec::new();
    let mut seen = 0usize;
    let mut more = false;
    for (i, ((id, v), cl)) in rows.iter().zip(&classes).enumerate() {
        above += (*v).max(0) as i128;
        if q.class.is_some_and(|c| c != *cl) {
            continue;
        }
        seen += 1;
        if seen <= offset {
            continue;
        }
        if chosen.len() == limit as usize {
            more = true;
            break;
        }
        let f = by_id.get(id);
        chosen.push(AbcRow {
            rank: i as i64 + 1,
            id: *id,
            name: None,
            class: *cl,
            value: *v,
            share_bp: bp((*v).max(0) as i128, base),
            cumulative_bp: bp(above, base),
            orders: f.map_or(0, |f| f.orders),
            last_order_at: f.map_or_else(guanxi_platform::time::now, |f| f.last_at),
        });
    }
    let ids: Vec<Uuid> = chosen.iter().map(|r| r.id).collect();
    let names = purchases.names(db, &ids).await?;
    for r in &mut chosen {
        r.name = names.get(&r.id).cloned();
    }
    Ok(Abc {
        party,
        measure,
        from: purchases.window.from.unwrap_or(purchases.window.to),
        to: purchases.window.to,
        currency: purchases.currency,
        a_percent: a,
        b_percent: b,
        customers: rows.len() as i64,
        total: clamp(total),
        classes: summary,
        curve: curve(&values),
        bins: bins(&values, &classes),
        next_offset: more.then_some((offset + chosen.len()) as u32),
        items: chosen,
        other_currency_orders: other,
        lines_without_cost: uncosted,
    })
}

fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_crossing_customer_is_in_the_class_above() {
        // 50 + 30 + 10 + 5 + 5: A holds the first two (80% ≥ 70%), B the third (90%).
        let c = classify(&[50, 30, 10, 5, 5], 70, 90);
        assert_eq!(c, vec![Class::A, Class::A, Class::B, Class::C, Class::C]);
        // One customer with nearly everything is A on their own.
        assert_eq!(classify(&[95, 5], 70, 90), vec![Class::A, Class::C]);
        // Nothing to share: all C.
        assert_eq!(classify(&[0, 0], 70, 90), vec![Class::C, Class::C]);
        assert_eq!(classify(&[10, -5], 70, 90), vec![Class::A, Class::C]);
    }

    #[test]
    fn the_curve_runs_from_nothing_to_everything() {
        let c = curve(&[60, 30, 10]);
        assert_eq!(
            c.first().map(|p| (p.customers_bp, p.measure_bp)),
            Some((0, 0))
        );
        assert_eq!(c[1].measure_bp, 6000);
        assert_eq!(
            c.last().map(|p| (p.customers_bp, p.measure_bp)),
            Some((10_000, 10_000))
        );
        assert_eq!(curve(&[]).len(), 1);
        assert_eq!(curve(&vec![1; 1000]).len(), 101);
    }

    proptest! {
        /// For any values and thresholds: classes run A…B…C down the ranking; A alone holds at
        /// least `a` percent of the positive total and is the smallest prefix that does; A and
        /// B together likewise for `b`.
        #[test]
        fn thresholds_hold(mut values in proptest::collection::vec(-1_000i64..1_000_000, 0..200),
                           a in 1u32..98, gap in 1u32..50) {
            let b = (a + gap).min(99);
            prop_assume!(b > a);
            values.sort_unstable_by(|x, y| y.cmp(x));
            let c = classify(&values, a, b);
            prop_assert!(c.windows(2).all(|w| w[0] <= w[1]));
            let base: i128 = values.iter().map(|v| (*v).max(0) as i128).sum();
            for (class, pct) in [(Class::A, a), (Class::B, b)] {
                let upto: Vec<i64> = values.iter().zip(&c).filter(|(_, k)| **k <= class).map(|(v, _)| *v).collect();
                let held: i128 = upto.iter().map(|v| (*v).max(0) as i128).sum();
                if base > 0 {
                    prop_assert!(held * 100 >= pct as i128 * base, "{:?} holds {} of {}", class, held, base);
                    if let Some(last) = upto.last() {
                        prop_assert!((held - (*last).max(0) as i128) * 100 < pct as i128 * base);
                    }
                } else {
                    prop_assert!(upto.is_empty());
                }
            }
        }

        /// The ranking does not depend on the order the customers were read in.
        #[test]
        fn ranking_is_deterministic(values in proptest::collection::vec(0i64..50, 1..60), seed in any::<u64>()) {
            let rows: Vec<(Uuid, i64)> = values.iter().enumerate()
                .map(|(i, v)| (Uuid::from_u128(i as u128 + 1), *v)).collect();
            let mut one = rows.clone();
            let mut two = rows;
            let k = (seed as usize) % two.len();
            two.rotate_left(k);
            two.reverse();
            rank(&mut one);
            rank(&mut two);
            prop_assert_eq!(one, two);
        }
    }
}
