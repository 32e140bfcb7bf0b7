//! 4V grading: every customer of a party scored on four values — economic, relational,
//! functional and development — each a weighted score of measures and custom fields an admin
//! configures (the [`Scheme`]), the total ranked, and the ranking split into grades A–E in the
//! proportion 1:4:10:4:1.
//!
//! **Scores.** A numeric input scores what share of the other customers it beats: 100 × (the
//! customers with a strictly lower value) ÷ (n − 1), so equal values score alike, the lowest
//! value scores 0 and the highest 100, whatever the unit (yuan, days, counts). A yes/no custom
//! field scores 100 or 0; a select field scores what the admin gave its option (0 when unset).
//! A dimension is the weighted mean of its inputs' scores, the total the weighted mean of the
//! dimensions. Scores are kept in hundredths (0–10000) as integers, so the same data ranks the
//! same way on both databases and on every machine.
//!
//! **The split.** n customers get n × 1/20, 4/20, 10/20, 4/20 and 1/20 places, rounded by
//! largest remainder: each grade takes the whole part, and the places left go to the largest
//! fractional parts; equal fractions go to the grade nearer the middle (C, then B before D,
//! then A before E). **Ties**: customers are ranked by total, then economic score, then the
//! earlier first purchase, then the record id (the older record first); a customer whose total
//! equals that of a customer in another grade is marked `tied`, and the page says which rule
//! placed them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use guanxi_platform::error::{Errors, Result};

use crate::facts::Party;

/// The grades, best first.
pub const GRADES: [&str; 5] = ["A", "B", "C", "D", "E"];
/// Their shares of the customers, in twentieths.
const SHARES: [usize; 5] = [1, 4, 10, 4, 1];
/// Equal remainders go to the grade nearer the middle: C, B, D, A, E.
const REMAINDER_ORDER: [usize; 5] = [2, 1, 3, 0, 4];
/// The most inputs in one dimension.
pub const MAX_INPUTS: usize = 20;
/// Full marks, in hundredths.
pub const FULL: i64 = 10_000;

/// The four values of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Economic,
    Relational,
    Functional,
    Development,
}

pub const DIMENSIONS: [Dimension; 4] = [
    Dimension::Economic,
    Dimension::Relational,
    Dimension::Functional,
    Dimension::Development,
];

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Economic => "economic",
            Dimension::Relational => "relational",
            Dimension::Functional => "functional",
            Dimension::Development => "development",
        }
    }
}

/// A measure the platform computes for every customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// Purchases in the period (minor units).
    Revenue,
    /// Gross margin in the period: lines less their quantity at cost.
    Margin,
    /// Orders in the period.
    Orders,
    /// Days from the first purchase ever to the day the run is as of.
    Tenure,
    /// Calls, emails, meetings and visits logged in the period.
    Touches,
    /// Distinct products bought in the period.
    Breadth,
    /// Purchases in the later half of the period less those in the earlier half.
    Growth,
    /// The account's contacts (accounts only).
    Contacts,
    /// Accounts whose parent is this one (accounts only).
    Related,
    /// The amount of open opportunities in the tenant's currency (accounts only).
    Pipeline,
}

pub const MEASURES: [Measure; 10] = [
    Measure::Revenue,
    Measure::Margin,
    Measure::Orders,
    Measure::Tenure,
    Measure::Touches,
    Measure::Breadth,
    Measure::Growth,
    Measure::Contacts,
    Measure::Related,
    Measure::Pipeline,
];

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Revenue => "revenue",
            Measure::Margin => "margin",
            Measure::Orders => "orders",
            Measure::Tenure => "tenure",
            Measure::Touches => "touches",
            Measure::Breadth => "breadth",
            Measure::Growth => "growth",
            Measure::Contacts => "contacts",
            Measure::Related => "related",
            Measure::Pipeline => "pipeline",
        }
    }

    pub fn parse(s: &str) -> Option<Measure> {
        MEASURES.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether customers of `party` have it (contacts have no contacts, subsidiaries or deals).
    pub fn applies_to(self, party: Party) -> bool {
        party == Party::Accounts
            || !matches!(
                self,
                Measure::Contacts | Measure::Related | Measure::Pipeline
            )
    }
}

/// What an input reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Measure(Measure),
    /// A custom field of the party, by key.
    Custom(String),
}

impl Source {
    pub fn parse(s: &str) -> Option<Source> {
        match s.strip_prefix("custom.") {
            Some(key) if !key.is_empty() => Some(Source::Custom(key.to_owned())),
            Some(_) => None,
            None => Measure::parse(s).map(Source::Measure),
        }
    }
}

/// One input of a dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// A measure (`revenue`, `margin`, `orders`, `tenure`, `touches`, `breadth`, `growth`;
    /// for accounts also `contacts`, `related`, `pipeline`) or a custom field (`custom.<key>`:
    /// number, money, yes/no or select).
    pub metric: String,
    /// Its weight within the dimension (0 or more).
    pub weight: i64,
    /// For a select field: each option's score, 0–100 (an option left out scores 0).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, i64>,
}

/// One dimension: its weight in the total and its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Its weight in the total (0 or more).
    pub weight: i64,
    pub inputs: Vec<Input>,
}

/// How a party's customers are graded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// Days of history the period measures cover, ending on the day a run is as of.
    pub period_days: i64,
    /// Whether the scheduler evaluates every quarter, as of its last day.
    pub quarterly: bool,
    pub economic: Part,
    pub relational: Part,
    pub functional: Part,
    pub development: Part,
}

/// A custom field as grading sees it.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub key: String,
    /// `number`, `money`, `boolean` or `select` (others cannot be scored).
    pub kind: String,
    pub options: Vec<String>,
}

fn input(metric: &str, weight: i64) -> Input {
    Input {
        metric: metric.into(),
        weight,
        scores: BTreeMap::new(),
    }
}

impl Scheme {
    /// The scheme a party starts with: economic 40 (revenue, margin, orders), relational 20
    /// (tenure, touches, contacts), functional 20 (product breadth), development 20 (growth,
    /// open pipeline), over a year, not scheduled.
    pub fn default_for(party: Party) -> Scheme {
        let accounts = party == Party::Accounts;
        let mut relational = vec![input("tenure", 50), input("touches", 30)];
        let mut development = vec![input("growth", 60)];
        if accounts {
            relational.push(input("contacts", 20));
            development.push(input("pipeline", 40));
        }
        Scheme {
            period_days: 365,
            quarterly: false,
            economic: Part {
                weight: 40,
                inputs: vec![
                    input("revenue", 50),
                    input("margin", 30),
                    input("orders", 20),
                ],
            },
            relational: Part {
                weight: 20,
                inputs: relational,
            },
            functional: Part {
                weight: 20,
                inputs: vec![input("breadth", 100)],
            },
            development: Part {
                weight: 20,
                inputs: development,
            },
        }
    }

    pub fn part(&self, d: Dimension) -> &Part {
        match d {
            Dimension::Economic => &self.economic,
            Dimension::Relational => &self.relational,
            Dimension::Functional => &self.functional,
            Dimension::Development => &self.development,
        }
    }

    /// Every source the scheme reads, once.
    pub fn sources(&self) -> Vec<Source> {
        let mut s: Vec<Source> = DIMENSIONS
            .iter()
            .flat_map(|d| self.part(*d).inputs.iter())
            .filter_map(|i| Source::parse(&i.metric))
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// Refuses a scheme that makes no sense, naming each field: negative or all-zero weights,
    /// an unknown measure or field, a field that cannot be scored, a select score out of 0–100.
    pub fn check(&self, party: Party, fields: &[FieldInfo]) -> Result<()> {
        let mut errs = Errors::default();
        if !(7..=3650).contains(&self.period_days) {
            errs.add("period_days", "out_of_range");
        }
        for d in DIMENSIONS {
            let (name, part) = (d.as_str(), self.part(d));
            if part.weight < 0 {
                errs.add(&format!("{name}.weight"), "negative");
            }
            if part.inputs.len() > MAX_INPUTS {
                errs.add(&format!("{name}.inputs"), "too_many");
            }
            for (i, input) in part.inputs.iter().enumerate() {
                let at = format!("{name}.inputs[{i}]");
                if input.weight < 0 {
                    errs.add(&format!("{at}.weight"), "negative");
                }
                match Source::parse(&input.metric) {
                    None => errs.add(&format!("{at}.metric"), "unknown"),
                    Some(Source::Measure(m)) if !m.applies_to(party) => {
                        errs.add(&format!("{at}.metric"), "not_for_party")
                    }
                    Some(Source::Measure(_)) => {}
                    Some(Source::Custom(key)) => match fields.iter().find(|f| f.key == key) {
                        None => errs.add(&format!("{at}.metric"), "unknown"),
                        Some(f)
                            if !["number", "money", "boolean", "select"].contains(&&*f.kind) =>
                        {
                            errs.add(&format!("{at}.metric"), "not_scorable")
                        }
                        Some(f) => {
                            for (option, score) in &input.scores {
                                if f.kind != "select" || !f.options.contains(option) {
                                    errs.add(&format!("{at}.scores.{option}"), "unknown_option");
                                } else if !(0..=100).contains(score) {
                                    errs.add(&format!("{at}.scores.{option}"), "out_of_range");
                                }
                            }
                        }
                    },
                }
                if !input.scores.is_empty() && !input.metric.starts_with("custom.") {
                    errs.add(&format!("{at}.scores"), "not_a_select");
                }
            }
            if part.weight > 0 && part.inputs.iter().map(|i| i.weight.max(0)).sum::<i64>() == 0 {
                errs.add(&format!("{name}.inputs"), "all_zero");
            }
        }
        if DIMENSIONS.iter().all(|d| self.part(*d).weight <= 0) {
            for d in DIMENSIONS {
                errs.add(&format!("{}.weight", d.as_str()), "all_zero");
            }
        }
        errs.finish()
    }
}

/// Each value's score in hundredths: the share of the other values strictly below it
/// (`None` — no value — counts as below every value and scores 0).
pub fn beat_scores(values: &[Option<f64>]) -> Vec<i64> {
    let n = values.len();
    if n <= 1 {
        return vec![0; n];
    }
    let mut order: Vec<usize> = (0..n).collect();
    let key = |i: usize| values[i].unwrap_or(f64::NEG_INFINITY);
    order.sort_unstable_by(|a, b| key(*a).total_cmp(&key(*b)));
    let mut out = vec![0; n];
    let mut start = 0;
    while start < n {
        let v = key(order[start]);
        let mut end = start;
        while end < n && key(order[end]).total_cmp(&v).is_eq() {
            end += 1;
        }
        let score = if values[order[start]].is_none() {
            0
        } else {
            (start as i64 * FULL + (n as i64 - 1) / 2) / (n as i64 - 1)
        };
        for i in &order[start..end] {
            out[*i] = score;
        }
        start = end;
    }
    out
}

/// The weighted mean of `(score, weight)` pairs, rounded half up; 0 with no weight.
pub fn weighted(pairs: impl IntoIterator<Item = (i64, i64)>) -> i64 {
    let (mut sum, mut weights) = (0i128, 0i128);
    for (s, w) in pairs {
        let w = w.max(0) as i128;
        sum += s as i128 * w;
        weights += w;
    }
    if weights == 0 {
        0
    } else {
        ((2 * sum + weights) / (2 * weights)) as i64
    }
}

/// How many of `n` customers each grade takes: 1:4:10:4:1 by largest remainder.
pub fn split(n: usize) -> [usize; 5] {
    let mut counts = [0usize; 5];
    let mut left = n;
    for g in 0..5 {
        counts[g] = n * SHARES[g] / 20;
        left -= counts[g];
    }
    // The places left go to the largest remainders (in twentieths), nearest the middle first.
    let mut by_remainder = REMAINDER_ORDER;
    by_remainder.sort_by_key(|g| std::cmp::Reverse(n * SHARES[*g] % 20));
    for g in by_remainder.iter().take(left) {
        counts[*g] += 1;
    }
    counts
}

/// What orders one customer in the ranking, best first: total, economic score, the earlier
/// first purchase (none is last), the record id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RankKey {
    pub total: std::cmp::Reverse<i64>,
    pub economic: std::cmp::Reverse<i64>,
    /// Days since the first purchase, most first (none: 0 days and `false` below).
    pub tenure: std::cmp::Reverse<i64>,
    pub id: uuid::Uuid,
}

/// Each customer's place (0-based rank), grade index (0 = A) and whether its total ties with a
/// customer of another grade, for customers in any order.
pub fn assign(keys: &[RankKey]) -> Vec<(usize, usize, bool)> {
    let n = keys.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|a, b| keys[*a].cmp(&keys[*b]));
    let counts = split(n);
    let mut grade_at = Vec::with_capacity(n);
    for (g, c) in counts.iter().enumerate() {
        grade_at.extend(std::iter::repeat_n(g, *c));
    }
    let mut out = vec![(0, 0, false); n];
    for (rank, i) in order.iter().enumerate() {
        out[*i] = (rank, grade_at[rank], false);
    }
    // Runs of equal totals that span a grade boundary are ties broken by the rule.
    let mut start = 0;
    while start < n {
        let total = keys[order[start]].total;
        let mut end = start;
        while end < n && keys[order[end]].total == total {
            end += 1;
        }
        if grade_at[start] != grade_at[end - 1] {
            for i in &order[start..end] {
                out[*i].2 = true;
            }
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;

    #[test]
    fn split_small_counts() {
        assert_eq!(split(0), [0, 0, 0, 0, 0]);
        assert_eq!(split(1), [0, 0, 1, 0, 0]);
        assert_eq!(split(2), [0, 1, 1, 0, 0]);
        assert_eq!(split(3), [0, 1, 1, 1, 0]);
        assert_eq!(split(20), [1, 4, 10, 4, 1]);
        assert_eq!(split(21), [1, 4, 11, 4, 1]);
        // 1.5 places each for A and E: the one left goes to A.
        assert_eq!(split(30), [2, 6, 15, 6, 1]);
        assert_eq!(
            split(1_000_000),
            [50_000, 200_000, 500_000, 200_000, 50_000]
        );
    }

    #[test]
    fn beat_scores_by_hand() {
        let v = [Some(5.0), Some(1.0), Some(5.0), None, Some(9.0)];
        // 5 beats two of the other four (1 and the empty one): 50.00.
        assert_eq!(beat_scores(&v), vec![5000, 2500, 5000, 0, 10_000]);
        assert_eq!(beat_scores(&[Some(3.0)]), vec![0]);
        assert_eq!(beat_scores(&[Some(3.0), Some(3.0)]), vec![0, 0]);
        assert_eq!(weighted([(10_000, 1), (0, 3)]), 2500);
        assert_eq!(weighted([(10_000, 0), (0, 0)]), 0);
        assert_eq!(weighted([(1, 1), (2, 1)]), 2, "half up");
    }

    #[test]
    fn default_schemes_are_valid() {
        for party in [Party::Accounts, Party::Contacts] {
            assert!(Scheme::default_for(party).check(party, &[]).is_ok());
        }
    }

    #[test]
    fn nonsense_weights_are_named() {
        let mut s = Scheme::default_for(Party::Accounts);
        s.economic.weight = 0;
        s.relational.weight = 0;
        s.functional.weight = 0;
        s.development.weight = 0;
        s.functional.inputs[0].weight = -1;
        s.development.inputs[0].metric = "custom.nope".into();
        let Err(guanxi_platform::Error::Validation(errs)) = s.check(Party::Contacts, &[]) else {
            panic!("refused");
        };
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "economic.weight",
            "development.weight",
            "functional.inputs[0].weight",
            "development.inputs[0].metric",
            "relational.inputs[2].metric",
        ] {
            assert!(fields.contains(&f), "{f} named in {fields:?}");
        }
    }

    proptest! {
        /// Every count: the places add up, each grade is within one of its exact share (the
        /// largest-remainder bound), B and D — A and E — differ by at most one, and adding a
        /// customer never takes a place from a grade.
        #[test]
        fn split_is_largest_remainder(n in 0usize..5000) {
            let c = split(n);
            prop_assert_eq!(c.iter().sum::<usize>(), n);
            for g in 0..5 {
                let exact = n as f64 * SHARES[g] as f64 / 20.0;
                prop_assert!((c[g] as f64 - exact).abs() < 1.0, "{:?} for {}", c, n);
            }
            prop_assert!(c[1].abs_diff(c[3]) <= 1 && c[0].abs_diff(c[4]) <= 1);
            let next = split(n + 1);
            for g in 0..5 {
                prop_assert!(next[g] + 1 >= c[g]);
            }
        }

        /// Grades follow the ranking, the counts are the split's, and the result does not
        /// depend on the order the customers come in, whatever the ties.
        #[test]
        fn assign_with_any_ties(
            totals in proptest::collection::vec((0i64..6, 0i64..3, 0i64..3), 0..200),
            rotate in 0usize..200,
        ) {
            let keys: Vec<RankKey> = totals
                .iter()
                .enumerate()
                .map(|(i, (t, e, d))| RankKey {
                    total: Reverse(*t),
                    economic: Reverse(*e),
                    tenure: Reverse(*d),
                    id: uuid::Uuid::from_u128(i as u128),
                })
                .collect();
            let got = assign(&keys);
            let n = keys.len();
            let mut counts = [0usize; 5];
            for (_, g, _) in &got {
                counts[*g] += 1;
            }
            prop_assert_eq!(counts, split(n));
            for i in 0..n {
                for j in 0..n {
                    if keys[i] < keys[j] {
                        prop_assert!(got[i].0 < got[j].0 && got[i].1 <= got[j].1);
                    }
                }
                // Tied means an equal total sits in another grade.
                let other = (0..n).any(|j| keys[j].total == keys[i].total && got[j].1 != got[i].1);
                prop_assert_eq!(got[i].2, other);
            }
            // The same customers in another order get the same places.
            if n > 0 {
                let mut shuffled = keys.clone();
                shuffled.rotate_left(rotate % n);
                let again = assign(&shuffled);
                for (k, key) in shuffled.iter().enumerate() {
                    let i = keys.iter().position(|x| x == key).unwrap_or(usize::MAX);
                    prop_assert_eq!(again[k], got[i]);
                }
            }
        }

        /// Scores are 0–100, equal values score alike, higher values never score lower, and
        /// the highest distinct value scores full marks.
        #[test]
        fn beat_scores_order(values in proptest::collection::vec(proptest::option::of(-20i64..20), 2..100)) {
            let v: Vec<Option<f64>> = values.iter().map(|x| x.map(|x| x as f64)).collect();
            let s = beat_scores(&v);
            for i in 0..v.len() {
                prop_assert!((0..=FULL).contains(&s[i]));
                for j in 0..v.len() {
                    let (a, b) = (values[i].unwrap_or(i64::MIN), values[j].unwrap_or(i64::MIN));
                    if a == b { prop_assert_eq!(s[i], s[j]); }
                    if a < b { prop_assert!(s[i] <= s[j]); }
                }
            }
            let max = values.iter().flatten().max();
            if let Some(m) = max {
                let top = values.iter().filter(|x| x.as_ref() == Some(m)).count();
                if top == 1 {
                    let i = values.iter().position(|x| x.as_ref() == Some(m)).unwrap_or(0);
                    prop_assert_eq!(s[i], FULL);
                }
            }
        }
    }
}
