//! The arithmetic of prices and quotes, as pure functions (property-tested): which price book's
//! price a customer gets for a product on a day, and a quote's totals — line discounts, a
//! discount on the total spread over the lines, VAT per line — in integer minor units, rounded
//! half up to the fen, so the lines always add up to the totals exactly.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Who a price book is for, from the most specific to the least: one customer (a negotiated
/// price, 协议价), a customer grade (A–E), an industry, a sales channel, everyone. When several
/// books price a product for a customer, the most specific wins; among equals, the one valid
/// from the latest day, then the lower price, then the book's id — the same customer, product,
/// quantity and day always give the same price, whoever asks.
pub const AUDIENCES: &[&str] = &["account", "grade", "industry", "channel", "all"];

/// 100% in basis points.
pub const FULL: i64 = 10_000;

/// A price book's entry for one product, with what decides whether it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub book_id: Uuid,
    pub book_name: String,
    /// Index into [`AUDIENCES`]: smaller is more specific.
    pub rank: usize,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// The smallest quantity this tier's price is for.
    pub min_quantity: i64,
    pub unit_price: i64,
}

/// A price and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Price {
    /// Minor units.
    pub unit_price: i64,
    /// The price book; `null` for the product's list price.
    pub book_id: Option<Uuid>,
    pub book_name: Option<String>,
    /// The volume tier (smallest quantity) the price is for; 1 for the list price.
    pub min_quantity: i64,
}

/// The price of `quantity` units on `day` among `candidates` (entries of books whose audience
/// matches the customer, for this product), or the list price when none applies.
pub fn pick(candidates: &[Candidate], quantity: i64, day: NaiveDate, list_price: i64) -> Price {
    let applies = |c: &&Candidate| {
        c.min_quantity <= quantity
            && c.valid_from.is_none_or(|f| f <= day)
            && c.valid_to.is_none_or(|t| day <= t)
    };
    // Each book's price is its highest tier reached …
    let mut tops: Vec<&Candidate> = Vec::new();
    for c in candidates.iter().filter(applies) {
        match tops.iter_mut().find(|t| t.book_id == c.book_id) {
            Some(t) if t.min_quantity < c.min_quantity => *t = c,
            Some(_) => {}
            None => tops.push(c),
        }
    }
    // … and the books are ordered as stated on [`AUDIENCES`].
    let best = tops.into_iter().min_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then(b.valid_from.cmp(&a.valid_from))
            .then(a.unit_price.cmp(&b.unit_price))
            .then(a.book_id.cmp(&b.book_id))
    });
    match best {
        Some(c) => Price {
            unit_price: c.unit_price,
            book_id: Some(c.book_id),
            book_name: Some(c.book_name.clone()),
            min_quantity: c.min_quantity,
        },
        None => Price {
            unit_price: list_price,
            book_id: None,
            book_name: None,
            min_quantity: 1,
        },
    }
}

/// One line as entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineIn {
    pub quantity: i64,
    /// Minor units.
    pub unit_price: i64,
    /// The line's discount, basis points (0–10000).
    pub discount_bp: i64,
    /// VAT, basis points (0–10000).
    pub tax_rate: i64,
}

/// One line's money, minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineMoney {
    /// `quantity × unit_price`.
    pub gross: i64,
    /// The line's own discount plus its share of the discount on the total.
    pub discount: i64,
    /// `gross − discount`, before VAT.
    pub net: i64,
    /// VAT on `net`.
    pub tax: i64,
    /// `net + tax`.
    pub total: i64,
}

/// A quote's totals, minor units: each the sum of its lines'.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = QuoteTotals)]
pub struct Totals {
    /// Σ quantity × unit price.
    pub gross: i64,
    /// Σ discounts (lines' own and the total's).
    pub discount: i64,
    /// Σ net, before VAT.
    pub net: i64,
    pub tax: i64,
    /// What the customer pays: Σ (net + tax).
    pub total: i64,
}

/// Why a quote's numbers were refused (the field's error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A line (index) has a quantity, price or rate out of range.
    Line(usize),
    /// The discount on the total is out of range.
    Discount,
    /// A sum passed what a 64-bit amount holds.
    Overflow,
}

/// `a × bp / 10000`, rounded half up (a ≥ 0, 0 ≤ bp ≤ 10000).
fn share(a: i64, bp: i64) -> i64 {
    let r = (i128::from(a) * i128::from(bp) + 5_000) / 10_000;
    r as i64
}

/// Works out every line and the totals. The discount on the total (`discount_bp` of the lines'
/// net after their own discounts, rounded half up) is spread over the lines in proportion to
/// their net by largest remainder (ties to the earlier line), so the spread parts add up to it
/// exactly; each line's VAT is then taken on its final net.
pub fn compute(lines: &[LineIn], discount_bp: i64) -> Result<(Vec<LineMoney>, Totals), Refused> {
    if !(0..=FULL).contains(&discount_bp) {
        return Err(Refused::Discount);
    }
    let mut firsts = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if l.quantity < 1
            || l.unit_price < 0
            || !(0..=FULL).contains(&l.discount_bp)
            || !(0..=FULL).contains(&l.tax_rate)
        {
            return Err(Refused::Line(i));
        }
        let gross = l
            .quantity
            .checked_mul(l.unit_price)
            .ok_or(Refused::Overflow)?;
        let own = share(gross, l.discount_bp);
        firsts.push((gross, own, gross - own));
    }
    let base: i128 = firsts.iter().map(|&(_, _, n)| i128::from(n)).sum();
    let base_i64 = i64::try_from(base).map_err(|_| Refused::Overflow)?;
    let off = share(base_i64, discount_bp);
    // Largest remainder: each line's exact share is off × net / base.
    let mut parts: Vec<i64> = Vec::with_capacity(lines.len());
    let mut rests: Vec<(i128, usize)> = Vec::with_capacity(lines.len());
    if base > 0 {
        for (i, &(_, _, n)) in firsts.iter().enumerate() {
            let exact = i128::from(off) * i128::from(n);
            parts.push((exact / base) as i64);
            rests.push((exact % base, i));
        }
        let given: i64 = parts.iter().sum();
        rests.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in rests.iter().take((off - given) as usize) {
            parts[i] += 1;
        }
    } else {
        parts.resize(lines.len(), 0);
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut t = Totals::default();
    for ((l, &(gross, own, first)), part) in lines.iter().zip(&firsts).zip(parts) {
        let net = first - part;
        let tax = share(net, l.tax_rate);
        let m = LineMoney {
            gross,
            discount: own + part,
            net,
            tax,
            total: net.checked_add(tax).ok_or(Refused::Overflow)?,
        };
        let add = |a: i64, b: i64| a.checked_add(b).ok_or(Refused::Overflow);
        t.gross = add(t.gross, m.gross)?;
        t.discount = add(t.discount, m.discount)?;
        t.net = add(t.net, m.net)?;
        t.tax = add(t.tax, m.tax)?;
        t.total = add(t.total, m.total)?;
        out.push(m);
    }
    Ok((out, t))
}

/// How far below the book prices a quote is, in basis points: `1 − net ÷ Σ(quantity × book
/// price)`, rounded half up; 0 when the book prices sum to nothing or the quote is above them.
/// Approval rules read this (a rep typing a lower unit price is discounting too).
pub fn effective_discount(book_gross: i64, net: i64) -> i64 {
    if book_gross <= 0 || net >= book_gross {
        return 0;
    }
    let off = i128::from(book_gross - net) * 10_000;
    ((off + i128::from(book_gross) / 2) / i128::from(book_gross)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn cand(book: u128, rank: usize, min_q: i64, price: i64) -> Candidate {
        Candidate {
            book_id: Uuid::from_u128(book),
            book_name: format!("book {book}"),
            rank,
            valid_from: None,
            valid_to: None,
            min_quantity: min_q,
            unit_price: price,
        }
    }

    #[test]
    fn the_most_specific_book_and_the_highest_tier_reached_win() {
        let today = day(2026, 12, 4);
        let all = cand(1, 4, 1, 1000);
        let all_tier = cand(1, 4, 100, 800);
        let grade = cand(2, 1, 1, 950);
        let customer = Candidate {
            valid_to: Some(day(2026, 11, 30)),
            ..cand(3, 0, 1, 700)
        };
        let cs = vec![
            all.clone(),
            all_tier.clone(),
            grade.clone(),
            customer.clone(),
        ];
        // The customer's negotiated price expired: the grade book beats the general one, even
        // though the general one's volume tier is cheaper.
        assert_eq!(pick(&cs, 150, today, 1200).unit_price, 950);
        // Before it expired, it wins.
        assert_eq!(pick(&cs, 150, day(2026, 11, 30), 1200).unit_price, 700);
        // Only the general book: its tier at 100 and above.
        assert_eq!(
            pick(&[all.clone(), all_tier.clone()], 99, today, 1200).unit_price,
            1000
        );
        let p = pick(&[all, all_tier], 100, today, 1200);
        assert_eq!((p.unit_price, p.min_quantity), (800, 100));
        // Nothing applies: the list price, from no book.
        let p = pick(&[], 1, today, 1200);
        assert_eq!((p.unit_price, p.book_id), (1200, None));
    }

    #[test]
    fn totals_spread_the_discount_and_round_to_the_fen() {
        let lines = [
            LineIn {
                quantity: 3,
                unit_price: 333,
                discount_bp: 1000,
                tax_rate: 1300,
            },
            LineIn {
                quantity: 1,
                unit_price: 1,
                discount_bp: 0,
                tax_rate: 600,
            },
            LineIn {
                quantity: 7,
                unit_price: 14_286,
                discount_bp: 0,
                tax_rate: 1300,
            },
        ];
        let (ls, t) = compute(&lines, 500).unwrap_or_default();
        // 3 × 3.33 = 9.99, −10% = 0.999 → 1.00 off; 8.99 + 0.01 + 1000.02 = 1009.02;
        // 5% of it is 50.451 → 50.45, spread 0.45 / 0.00 / 50.00.
        assert_eq!(ls[0].discount, 100 + 45);
        assert_eq!(ls[1].discount, 0);
        assert_eq!(ls[2].discount, 5000);
        assert_eq!(t.discount, 100 + 5045);
        assert_eq!(t.net, 100_902 - 5045);
        assert_eq!(t.total, ls.iter().map(|l| l.total).sum::<i64>());
        assert_eq!(compute(&lines, 10_001), Err(Refused::Discount));
        let huge = [LineIn {
            quantity: i64::MAX,
            unit_price: 2,
            discount_bp: 0,
            tax_rate: 0,
        }];
        assert_eq!(compute(&huge, 0), Err(Refused::Overflow));
        let bad = [LineIn {
            quantity: 0,
            unit_price: 2,
            discount_bp: 0,
            tax_rate: 0,
        }];
        assert_eq!(compute(&bad, 0), Err(Refused::Line(0)));
        assert_eq!(effective_discount(10_000, 8_500), 1500);
        assert_eq!(effective_discount(0, 8_500), 0);
        assert_eq!(effective_discount(10_000, 12_000), 0);
    }

    fn line() -> impl Strategy<Value = LineIn> {
        (
            1i64..10_000,
            0i64..100_000_000,
            0i64..=10_000,
            prop::sample::select(vec![0i64, 300, 600, 900, 1300]),
        )
            .prop_map(|(quantity, unit_price, discount_bp, tax_rate)| LineIn {
                quantity,
                unit_price,
                discount_bp,
                tax_rate,
            })
    }

    /// How the brute force orders entries: rank, latest start, price, book (then the tier).
    type Order = (usize, std::cmp::Reverse<Option<NaiveDate>>, i64, Uuid, i64);

    proptest! {
        #[test]
        fn lines_always_add_up_to_the_totals(lines in prop::collection::vec(line(), 0..30), bp in 0i64..=10_000) {
            let (ls, t) = compute(&lines, bp).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(ls.len(), lines.len());
            prop_assert_eq!(t.gross, ls.iter().map(|l| l.gross).sum::<i64>());
            prop_assert_eq!(t.discount, ls.iter().map(|l| l.discount).sum::<i64>());
            prop_assert_eq!(t.net, ls.iter().map(|l| l.net).sum::<i64>());
            prop_assert_eq!(t.tax, ls.iter().map(|l| l.tax).sum::<i64>());
            prop_assert_eq!(t.total, t.net + t.tax);
            prop_assert_eq!(t.gross, t.net + t.discount);
            // The discount on the total is exactly its rounded share of the lines' nets.
            let own: i64 = lines.iter().zip(&ls).map(|(l, m)| share(m.gross, l.discount_bp)).sum();
            prop_assert_eq!(t.discount - own, share(t.gross - own, bp));
            for (l, m) in lines.iter().zip(&ls) {
                prop_assert!(m.net >= 0 && m.net <= m.gross);
                prop_assert_eq!(m.gross, l.quantity * l.unit_price);
                prop_assert_eq!(m.tax, share(m.net, l.tax_rate));
            }
        }

        #[test]
        fn the_picked_price_is_the_stated_rule(
            books in prop::collection::vec((0usize..5, prop::option::of(0u32..20), prop::option::of(0u32..20)), 1..5),
            entries in prop::collection::vec((0usize..5, 1i64..50, 0i64..10_000), 0..14),
            quantity in 1i64..60,
            d in 0u32..20,
        ) {
            let base = day(2026, 1, 1);
            let at = |n: u32| base + chrono::Days::new(u64::from(n));
            // Audience and validity are the book's; tiers are its entries (one per quantity).
            let mut cs: Vec<Candidate> = Vec::new();
            for &(b, q, p) in &entries {
                let b = b % books.len();
                let (rank, f, t) = books[b];
                if cs.iter().any(|c| c.book_id == Uuid::from_u128(b as u128) && c.min_quantity == q) {
                    continue;
                }
                cs.push(Candidate { rank, valid_from: f.map(at), valid_to: t.map(at), ..cand(b as u128, 0, q, p) });
            }
            let today = at(d);
            let got = pick(&cs, quantity, today, 99_999);
            let applicable: Vec<&Candidate> = cs.iter().filter(|c| c.min_quantity <= quantity
                && c.valid_from.is_none_or(|f| f <= today) && c.valid_to.is_none_or(|t| today <= t)).collect();
            // Brute force: each applicable book's top tier, then the stated order.
            let mut best: Option<Order> = None;
            for c in &applicable {
                let top = applicable.iter().filter(|o| o.book_id == c.book_id).map(|o| o.min_quantity).max();
                if top != Some(c.min_quantity) {
                    continue;
                }
                let key = (c.rank, std::cmp::Reverse(c.valid_from), c.unit_price, c.book_id, c.min_quantity);
                if best.as_ref().is_none_or(|b| key < *b) {
                    best = Some(key);
                }
            }
            match best {
                None => prop_assert_eq!(got, Price { unit_price: 99_999, book_id: None, book_name: None, min_quantity: 1 }),
                Some((_, _, price, id, q)) => {
                    prop_assert_eq!(got.book_id, Some(id));
                    prop_assert_eq!(got.unit_price, price);
                    prop_assert_eq!(got.min_quantity, q);
                }
            }
            // The order the entries come in does not matter.
            let mut reversed = cs.clone();
            reversed.reverse();
            prop_assert_eq!(pick(&reversed, quantity, today, 99_999), pick(&cs, quantity, today, 99_999));
        }
    }
}
