//! Cross-sell: products bought together. Over every customer of the party (a basket is a
//! customer's products in the window, not one order — "bought by 38% of the customers who
//! bought X"), the rule X → Y has support n(X∧Y)/N, confidence n(X∧Y)/n(X) and lift
//! confidence / (n(Y)/N). For a customer, each product they have not bought is suggested by
//! the strongest rule from a product they have (confidence, then lift), when at least
//! `min_customers` bought both and the lift is above 1.
//!
//! The counts are aggregates over the company's customers — how many bought what together —
//! never a customer's record, so they are counted over every customer whoever asks; the
//! customer asked about must be one the caller may read.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Sql};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::{Ctx, Error};

use crate::facts::{Party, Purchases};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecommendationQuery {
    /// The company to suggest to (or `contact_id`).
    pub account_id: Option<Uuid>,
    /// A person buying for themselves.
    pub contact_id: Option<Uuid>,
    /// Product ids to leave out too, comma-separated (the lines already on a quote).
    pub exclude: Option<String>,
    /// Fewest customers who bought both (default 3, at least 2).
    pub min_customers: Option<i64>,
    /// First day of purchases counted; default two years before `to`.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Suggestions (default 5, at most 50).
    pub limit: Option<u32>,
}

/// A product to suggest and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Recommendation {
    pub product_id: Uuid,
    pub sku: Option<String>,
    pub name: String,
    /// The product the customer bought that suggests it.
    pub because_product_id: Uuid,
    pub because_name: String,
    /// Customers who bought both.
    pub customers_with_both: i64,
    /// Customers who bought `because_product_id`.
    pub customers_with_because: i64,
    /// Of those, the share who also bought this, basis points.
    pub confidence_bp: i64,
    /// How much likelier than any customer (1 = no more).
    pub lift: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recommendations {
    pub items: Vec<Recommendation>,
    /// Customers whose purchases the rules were counted on.
    pub customers: i64,
}

/// Counts of a rule X → Y: n(X), n(Y), n(X∧Y) and N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub x: i64,
    pub y: i64,
    pub both: i64,
    pub customers: i64,
}

impl Counts {
    pub fn confidence_bp(&self) -> i64 {
        if self.x == 0 {
            0
        } else {
            self.both * 10_000 / self.x
        }
    }
    pub fn lift(&self) -> f64 {
        if self.x == 0 || self.y == 0 {
            0.0
        } else {
            (self.both as f64 * self.customers as f64) / (self.x as f64 * self.y as f64)
        }
    }
}

/// The best rule for each product not in `have`: from the products in `have`, given each
/// product's customer count and the pair counts; strongest first (confidence, lift, then the
/// products' ids), at most `limit`.
pub fn suggest(
    have: &BTreeSet<Uuid>,
    singles: &BTreeMap<Uuid, i64>,
    pairs: &BTreeMap<(Uuid, Uuid), i64>,
    customers: i64,
    min_customers: i64,
    limit: usize,
) -> Vec<(Uuid, Uuid, Counts)> {
    let mut best: BTreeMap<Uuid, (Uuid, Counts)> = BTreeMap::new();
    for (&(x, y), &both) in pairs {
        if !have.contains(&x) || have.contains(&y) || both < min_customers {
            continue;
        }
        let c = Counts {
            x: singles.get(&x).copied().unwrap_or(0),
            y: singles.get(&y).copied().unwrap_or(0),
            both,
            customers,
        };
        if c.lift() <= 1.0 {
            continue;
        }
        let better = match best.get(&y) {
            None => true,
            Some((bx, b)) => {
                (c.confidence_bp(), c.lift(), std::cmp::Reverse(x)).partial_cmp(&(
                    b.confidence_bp(),
                    b.lift(),
                    std::cmp::Reverse(*bx),
                )) == Some(std::cmp::Ordering::Greater)
            }
        };
        if better {
            best.insert(y, (x, c));
        }
    }
    let mut out: Vec<(Uuid, Uuid, Counts)> =
        best.into_iter().map(|(y, (x, c))| (y, x, c)).collect();
    out.sort_by(|a, b| {
        b.2.confidence_bp()
            .cmp(&a.2.confidence_bp())
            .then(b.2.lift().total_cmp(&a.2.lift()))
            .then(a.0.cmp(&b.0))
    });
    out.truncate(limit);
    out
}

/// Products to suggest to a customer the caller may read.
pub async fn recommend(db: &Db, ctx: &Ctx, q: &RecommendationQuery) -> Result<Recommendations> {
    let (party, id) = match (q.account_id, q.contact_id) {
        (Some(a), None) => (Party::Accounts, a),
        (None, Some(c)) => (Party::Contacts, c),
        _ => return Err(Error::field("account_id", "account_or_contact")),
    };
    let mut errs = Errors::default();
    let min = q.min_customers.unwrap_or(3);
    if !(2..=1_000_000).contains(&min) {
        errs.add("min_customers", "out_of_range");
    }
    let limit = q.limit.unwrap_or(5);
    if !(1..=50).contains(&limit) {
        errs.add("limit", "out_of_range");
    }
    let mut exclude = Vec::new();
    for part in q.exclude.as_deref().unwrap_or("").split(',').map(str::trim) {
        match part.parse::<Uuid>() {
            _ if part.is_empty() => {}
            Ok(id) if exclude.len() < 500 => exclude.push(id),
            Ok(_) => {
                errs.add("exclude", "too_many");
                break;
            }
            Err(_) => {
                errs.add("exclude", "invalid");
                break;
            }
        }
    }
    errs.finish()?;
    // The customer must be one the caller may read (404 otherwise).
    let (account, contact) = match party {
        Party::Accounts => (Some(id), None),
        Party::Contacts => (None, Some(id)),
    };
    guanxi_customers::dependents::customer_scope(db, ctx, account, contact).await?;
    let p = Purchases::of(db, ctx, party, (q.from, q.to), Some(730))
        .await?
        .of_everyone();
    // Each customer's products once: (customer, product).
    let cp = p.customer_products();
    // The customer's own products: the same subquery narrowed to them (no company scan).
    let mut have_q = p.customer_products();
    have_q
        .push(&format!(" AND {} = ", p.customer_column()))
        .bind(id);
    let have: Vec<(Uuid, Uuid)> = db.fetch_sql(have_q).await?;
    let mut have: BTreeSet<Uuid> = have.into_iter().map(|r| r.1).collect();
    if have.is_empty() {
        return Ok(Recommendations {
            items: vec![],
            customers: 0,
        });
    }
    let mut n = Sql::new("SELECT COUNT(DISTINCT cp.c) FROM (");
    n.append(p.customer_products());
    n.push(") cp");
    let n: Vec<(i64,)> = db.fetch_sql(n).await?;
    let customers = n.first().map_or(0, |r| r.0);
    let mut singles_q = Sql::new("SELECT cp.p, COUNT(*) FROM (");
    singles_q.append(p.customer_products());
    singles_q.push(") cp GROUP BY cp.p");
    let singles: Vec<(Uuid, i64)> = db.fetch_sql(singles_q).await?;
    let singles: BTreeMap<Uuid, i64> = singles.into_iter().collect();
    let mut pairs_q = Sql::new("SELECT a.p, b.p, COUNT(*) FROM (");
    pairs_q.append(cp);
    pairs_q.push(") a JOIN (");
    pairs_q.append(p.customer_products());
    pairs_q.push(") b ON b.c = a.c AND b.p <> a.p WHERE a.p IN ");
    pairs_q.bind_list(have.iter().copied());
    pairs_q.push(" GROUP BY a.p, b.p");
    let pairs: Vec<(Uuid, Uuid, i64)> = db.fetch_sql(pairs_q).await?;
    let pairs: BTreeMap<(Uuid, Uuid), i64> =
        pairs.into_iter().map(|(x, y, k)| ((x, y), k)).collect();
    let bought = have.clone();
    have.extend(exclude);
    let picked = suggest(&have, &singles, &pairs, customers, min, limit as usize);
    // Names of the products shown.
    let ids: BTreeSet<Uuid> = picked.iter().flat_map(|(y, x, _)| [*y, *x]).collect();
    let mut names = Sql::new("SELECT id, sku, name FROM products WHERE tenant_id = ");
    names.bind(ctx.tenant_id).push(" AND id IN ");
    names.bind_list(ids.iter().copied());
    let names: Vec<(Uuid, Option<String>, String)> = if ids.is_empty() {
        vec![]
    } else {
        db.fetch_sql(names).await?
    };
    let name = |id: Uuid| names.iter().find(|n| n.0 == id);
    let items = picked
        .into_iter()
        .filter(|(_, x, _)| bought.contains(x))
        .filter_map(|(y, x, c)| {
            let (ny, nx) = (name(y)?, name(x)?);
            Some(Recommendation {
                product_id: y,
                sku: ny.1.clone(),
                name: ny.2.clone(),
                because_product_id: x,
                because_name: nx.2.clone(),
                customers_with_both: c.both,
                customers_with_because: c.x,
                confidence_bp: c.confidence_bp(),
                lift: (c.lift() * 100.0).round() / 100.0,
            })
        })
        .collect();
    Ok(Recommendations { items, customers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Counts by brute force: every pair of products over every basket.
    fn brute(baskets: &[BTreeSet<Uuid>]) -> (BTreeMap<Uuid, i64>, BTreeMap<(Uuid, Uuid), i64>) {
        let mut singles = BTreeMap::new();
        let mut pairs = BTreeMap::new();
        for b in baskets {
            for x in b {
                *singles.entry(*x).or_insert(0) += 1;
                for y in b {
                    if x != y {
                        *pairs.entry((*x, *y)).or_insert(0) += 1;
                    }
                }
            }
        }
        (singles, pairs)
    }

    proptest! {
        /// Every suggestion is a product the customer lacks, from one they have, backed by at
        /// least `min` customers, with lift above 1, its confidence and lift as counted by
        /// brute force — and no stronger rule exists for that product.
        #[test]
        fn suggestions_follow_the_counts(
            raw in proptest::collection::vec(proptest::collection::btree_set(0u128..8, 0..6), 1..60),
            have_raw in proptest::collection::btree_set(0u128..8, 1..4),
            min in 2i64..5,
        ) {
            let baskets: Vec<BTreeSet<Uuid>> = raw.iter()
                .map(|b| b.iter().map(|p| Uuid::from_u128(*p + 1)).collect()).collect();
            let have: BTreeSet<Uuid> = have_raw.iter().map(|p| Uuid::from_u128(*p + 1)).collect();
            let (singles, pairs) = brute(&baskets);
            let n = baskets.len() as i64;
            let got = suggest(&have, &singles, &pairs, n, min, 100);
            for (y, x, c) in &got {
                prop_assert!(have.contains(x) && !have.contains(y));
                let both = baskets.iter().filter(|b| b.contains(x) && b.contains(y)).count() as i64;
                let nx = baskets.iter().filter(|b| b.contains(x)).count() as i64;
                let ny = baskets.iter().filter(|b| b.contains(y)).count() as i64;
                prop_assert_eq!(*c, Counts { x: nx, y: ny, both, customers: n });
                prop_assert!(both >= min && c.lift() > 1.0);
                for x2 in &have {
                    let b2 = baskets.iter().filter(|b| b.contains(x2) && b.contains(y)).count() as i64;
                    let n2 = baskets.iter().filter(|b| b.contains(x2)).count() as i64;
                    if b2 >= min && n2 > 0 && (b2 as f64 * n as f64) / (n2 as f64 * ny as f64) > 1.0 {
                        prop_assert!(b2 * 10_000 / n2 <= c.confidence_bp());
                    }
                }
            }
            // Every product with a qualifying rule is suggested.
            let ys: BTreeSet<Uuid> = got.iter().map(|g| g.0).collect();
            for (&(x, y), &both) in &pairs {
                let c = Counts { x: singles[&x], y: singles[&y], both, customers: n };
                if have.contains(&x) && !have.contains(&y) && both >= min && c.lift() > 1.0 {
                    prop_assert!(ys.contains(&y));
                }
            }
        }
    }

    #[test]
    fn lift_and_confidence() {
        let c = Counts {
            x: 10,
            y: 20,
            both: 8,
            customers: 100,
        };
        assert_eq!(c.confidence_bp(), 8000);
        assert!((c.lift() - 4.0).abs() < 1e-12);
    }
}
