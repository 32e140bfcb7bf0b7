//! The lifetime-value models, as pure functions: BG/NBD (Fader, Hardie & Lee, "Counting Your
//! Customers the Easy Way", 2005) for how many purchases a customer will make and whether they
//! are still a customer, and Gamma-Gamma (Fader, Hardie & Lee, "RFM and CLV", 2005) for what
//! a purchase is worth — each fitted by maximum likelihood with Nelder-Mead over the
//! logarithms of the parameters (which keeps them positive).
//!
//! A customer is summarised as in the papers: `x` repeat purchases (days with a purchase after
//! the first), `t_x` the time of the last purchase and `t` the time observed, both in weeks
//! from the first purchase, and `mean` the mean value of the repeat purchases.

use libm::lgamma;

/// One customer in a calibration period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Repeat purchases.
    pub x: f64,
    /// Weeks from the first purchase to the last.
    pub t_x: f64,
    /// Weeks from the first purchase to the end of the period.
    pub t: f64,
    /// Mean value of the repeat purchases (0 without any).
    pub mean: f64,
}

/// BG/NBD parameters: purchase rates Gamma(r, α) while alive, dropout after each purchase
/// with probability Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Gamma-Gamma parameters of spend per purchase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

fn ln_beta(a: f64, b: f64) -> f64 {
    lgamma(a) + lgamma(b) - lgamma(a + b)
}

/// ln(e^x + e^y) without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    if m == f64::NEG_INFINITY {
        m
    } else {
        m + ((x - m).exp() + (y - m).exp()).ln()
    }
}

impl BgNbd {
    /// One customer's log-likelihood (the paper's equation 6).
    pub fn ll_one(&self, s: &Summary) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = s.x;
        let a1 = lgamma(r + x) - lgamma(r) + r * alpha.ln();
        let a2 = ln_beta(a, b + x) - ln_beta(a, b);
        let a3 = -(r + x) * (alpha + s.t).ln();
        let rest = if x > 0.0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + s.t_x).ln();
            log_add(a3, a4)
        } else {
            a3
        };
        a1 + a2 + rest
    }

    /// The log-likelihood of everyone.
    pub fn ll(&self, data: &[Summary]) -> f64 {
        data.iter().map(|s| self.ll_one(s)).sum()
    }

    /// The probability the customer is still a customer at the end of the period.
    pub fn p_alive(&self, s: &Summary) -> f64 {
        if s.x == 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let ln_odds =
            a.ln() - (b + s.x - 1.0).ln() + (r + s.x) * ((alpha + s.t) / (alpha + s.t_x)).ln();
        1.0 / (1.0 + ln_odds.exp())
    }

    /// Purchases expected in the next `t` weeks (the paper's equation 10).
    pub fn expected(&self, s: &Summary, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = s.x;
        if (a - 1.0).abs() < 1e-9 {
            // The formula's first factor divides by a − 1 (a < 1 is fine: both factors turn
            // negative); exactly 1 is nudged.
            return BgNbd {
                a: a + 1e-6,
                ..*self
            }
            .expected(s, t);
        }
        let z = t / (alpha + s.t + t);
        let head = (a + b + x - 1.0) / (a - 1.0);
        let body = 1.0
            - ((alpha + s.t) / (alpha + s.t + t)).powf(r + x)
                * hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let tail = if x > 0.0 {
            1.0 + a / (b + x - 1.0) * ((alpha + s.t) / (alpha + s.t_x)).powf(r + x)
        } else {
            1.0
        };
        head * body / tail
    }
}

impl GammaGamma {
    /// One repeat buyer's log-likelihood of their mean spend.
    pub fn ll_one(&self, s: &Summary) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let (x, m) = (s.x, s.mean);
        lgamma(p * x + q) - lgamma(p * x) - lgamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (gamma + x * m).ln()
    }

    /// The log-likelihood of the repeat buyers (`x > 0`, `mean > 0`).
    pub fn ll(&self, data: &[Summary]) -> f64 {
        data.iter()
            .filter(|s| s.x > 0.0 && s.mean > 0.0)
            .map(|s| self.ll_one(s))
            .sum()
    }

    /// The spend per purchase to expect of a repeat buyer; `None` without repeat purchases
    /// (no spend of their own to go on) or when `q ≤ 1` (no finite mean).
    pub fn expected_spend(&self, s: &Summary) -> Option<f64> {
        let GammaGamma { p, q, gamma } = *self;
        (s.x > 0.0 && s.mean > 0.0 && q > 1.0)
            .then(|| p * (gamma + s.x * s.mean) / (p * s.x + q - 1.0))
    }
}

/// Gauss's hypergeometric ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its series.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for k in 0..100_000 {
        let k = k as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

/// What a minimisation found.
#[derive(Debug, Clone)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Nelder-Mead minimisation of `f` from `start` (a simplex of steps of 1 — the parameters'
/// logarithms here), restarted at its result until a restart no longer improves it.
pub fn minimise(f: &dyn Fn(&[f64]) -> f64, start: &[f64], max_iterations: usize) -> Minimum {
    let mut best = nelder_mead(f, start, max_iterations);
    let mut total = best.iterations;
    for _ in 0..5 {
        let again = nelder_mead(f, &best.x, max_iterations);
        total += again.iterations;
        let improved = again.value < best.value - 1e-10 * best.value.abs().max(1.0);
        best = Minimum {
            converged: again.converged,
            ..again
        };
        if !improved {
            break;
        }
    }
    best.iterations = total;
    best
}

fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, start: &[f64], max_iterations: usize) -> Minimum {
    let n = start.len();
    let eval = |x: &[f64]| {
        let v = f(x);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = (0..=n)
        .map(|i| {
            let mut x = start.to_vec();
            if i > 0 {
                x[i - 1] += 1.0;
            }
            let v = eval(&x);
            (x, v)
        })
        .collect();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations {
        iterations += 1;
        simplex.sort_by(|p, q| p.1.total_cmp(&q.1));
        let (lo, hi) = (simplex[0].1, simplex[n].1);
        let spread = simplex
            .iter()
            .flat_map(|(x, _)| x.iter().zip(&simplex[0].0).map(|(a, b)| (a - b).abs()))
            .fold(0.0f64, f64::max);
        if (hi - lo).abs() <= 1e-12 * lo.abs().max(1e-12) && spread <= 1e-9 {
            converged = true;
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / n as f64)
            .collect();
        let towards = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (w - c))
                .collect()
        };
        let reflected = towards(-1.0);
        let fr = eval(&reflected);
        if fr < simplex[0].1 {
            let expanded = towards(-2.0);
            let fe = eval(&expanded);
            simplex[n] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let contracted = if fr < simplex[n].1 {
                towards(-0.5)
            } else {
                towards(0.5)
            };
            let fc = eval(&contracted);
            if fc < fr.min(simplex[n].1) {
                simplex[n] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for p in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> =
                        p.0.iter()
                            .zip(&best)
                            .map(|(v, b)| b + 0.5 * (v - b))
                            .collect();
                    let v = eval(&x);
                    *p = (x, v);
                }
            }
        }
    }
    simplex.sort_by(|p, q| p.1.total_cmp(&q.1));
    let (x, value) = simplex.swap_remove(0);
    Minimum {
        x,
        value,
        iterations,
        converged,
    }
}

/// The distinct summaries by `key` and how many customers share each: customers observed by
/// the day share a few thousand histories however many they are, so a fit evaluates each once.
fn distinct(data: &[Summary], key: impl Fn(&Summary) -> [u64; 3]) -> Vec<(Summary, f64)> {
    let mut seen: std::collections::HashMap<[u64; 3], (Summary, f64)> =
        std::collections::HashMap::new();
    for s in data {
        seen.entry(key(s)).or_insert((*s, 0.0)).1 += 1.0;
    }
    let mut out: Vec<(Summary, f64)> = seen.into_values().collect();
    // A fixed order: the sum's rounding does not depend on the hash.
    out.sort_by(|a, b| {
        (a.0.x, a.0.t_x, a.0.t, a.0.mean)
            .partial_cmp(&(b.0.x, b.0.t_x, b.0.t, b.0.mean))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

/// The BG/NBD fit: the parameters and the maximised log-likelihood.
pub fn fit_bgnbd(data: &[Summary]) -> (BgNbd, f64, Minimum) {
    let params = |v: &[f64]| BgNbd {
        r: v[0].exp(),
        alpha: v[1].exp(),
        a: v[2].exp(),
        b: v[3].exp(),
    };
    let groups = BgNbdGroups::new(&distinct(data, |s| {
        [s.x.to_bits(), s.t_x.to_bits(), s.t.to_bits()]
    }));
    let m = minimise(&|v| -groups.ll(&params(v)), &[0.0; 4], 20_000);
    (params(&m.x), -m.value, m)
}

/// The position of `v` among `distinct`'s sorted values, adding it at first sight.
fn index_of(values: &mut Vec<f64>, v: f64) -> u32 {
    match values.binary_search_by(|p| p.total_cmp(&v)) {
        Ok(i) => i as u32,
        Err(i) => {
            values.insert(i, v);
            i as u32
        }
    }
}

/// Grouped histories arranged for the thousands of likelihood evaluations of a fit: the
/// Gamma and Beta functions of [`BgNbd::ll_one`] depend only on the repeat purchases `x`, so
/// they are computed once per distinct `x`; `ln(α + t)` once per distinct time. Each history
/// then costs two table reads and a log-sum instead of six log-Gamma functions (a million
/// customers' fit took most of its 90 s in them).
struct BgNbdGroups {
    /// The distinct repeat-purchase counts and times, sorted.
    xs: Vec<f64>,
    times: Vec<f64>,
    /// Each history: its `x`, `t_x` and `T` as indexes into those, and how many share it.
    rows: Vec<(u32, u32, u32, f64)>,
}

impl BgNbdGroups {
    fn new(groups: &[(Summary, f64)]) -> BgNbdGroups {
        let (mut xs, mut times) = (Vec::new(), Vec::new());
        for (s, _) in groups {
            index_of(&mut xs, s.x);
            index_of(&mut times, s.t_x);
            index_of(&mut times, s.t);
        }
        let rows = groups
            .iter()
            .map(|(s, w)| {
                (
                    index_of(&mut xs, s.x),
                    index_of(&mut times, s.t_x),
                    index_of(&mut times, s.t),
                    *w,
                )
            })
            .collect();
        BgNbdGroups { xs, times, rows }
    }

    /// The log-likelihood of every history: [`BgNbd::ll_one`] times its count, summed.
    fn ll(&self, m: &BgNbd) -> f64 {
        let BgNbd { r, alpha, a, b } = *m;
        let ln_t: Vec<f64> = self.times.iter().map(|t| (alpha + t).ln()).collect();
        let (ln_alpha, ln_a, beta_ab) = (alpha.ln(), a.ln(), ln_beta(a, b));
        // Per x: the terms of x alone (a1 + a2 of `ll_one`), and a4's without its time.
        let per_x: Vec<(f64, f64)> = self
            .xs
            .iter()
            .map(|&x| {
                let head = lgamma(r + x) - lgamma(r) + r * ln_alpha + ln_beta(a, b + x) - beta_ab;
                let drop = if x > 0.0 {
                    ln_a - (b + x - 1.0).ln()
                } else {
                    0.0
                };
                (head, drop)
            })
            .collect();
        self.rows
            .iter()
            .map(|&(ix, itx, it, w)| {
                let x = self.xs[ix as usize];
                let (head, drop) = per_x[ix as usize];
                let a3 = -(r + x) * ln_t[it as usize];
                let rest = if x > 0.0 {
                    log_add(a3, drop - (r + x) * ln_t[itx as usize])
                } else {
                    a3
                };
                w * (head + rest)
            })
            .sum()
    }
}

/// The Gamma-Gamma fit on the repeat buyers.
pub fn fit_gamma_gamma(data: &[Summary]) -> (GammaGamma, f64, Minimum) {
    let params = |v: &[f64]| GammaGamma {
        p: v[0].exp(),
        q: v[1].exp(),
        gamma: v[2].exp(),
    };
    let repeat: Vec<Summary> = data
        .iter()
        .filter(|s| s.x > 0.0 && s.mean > 0.0)
        .copied()
        .collect();
    let groups =
        GammaGammaGroups::new(&distinct(&repeat, |s| [s.x.to_bits(), s.mean.to_bits(), 0]));
    let m = minimise(&|v| -groups.ll(&params(v)), &[0.0; 3], 20_000);
    (params(&m.x), -m.value, m)
}

/// Repeat buyers' grouped spends arranged for a fit, as [`BgNbdGroups`]: the log-Gamma terms
/// once per distinct `x`, the logarithms of the data once for the whole fit.
struct GammaGammaGroups {
    xs: Vec<f64>,
    /// Each: its `x` as an index, `x · m`, `ln m`, `x · ln x`, and how many share it.
    rows: Vec<(u32, f64, f64, f64, f64)>,
}

impl GammaGammaGroups {
    fn new(groups: &[(Summary, f64)]) -> GammaGammaGroups {
        let mut xs = Vec::new();
        for (s, _) in groups {
            index_of(&mut xs, s.x);
        }
        let rows = groups
            .iter()
            .map(|(s, w)| {
                (
                    index_of(&mut xs, s.x),
                    s.x * s.mean,
                    s.mean.ln(),
                    s.x * s.x.ln(),
                    *w,
                )
            })
            .collect();
        GammaGammaGroups { xs, rows }
    }

    /// The log-likelihood of every repeat buyer: [`GammaGamma::ll_one`] times its count.
    fn ll(&self, m: &GammaGamma) -> f64 {
        let GammaGamma { p, q, gamma } = *m;
        let q_ln_gamma = q * gamma.ln();
        let per_x: Vec<f64> = self
            .xs
            .iter()
            .map(|&x| lgamma(p * x + q) - lgamma(p * x) - lgamma(q))
            .collect();
        self.rows
            .iter()
            .map(|&(ix, xm, ln_m, x_ln_x, w)| {
                let x = self.xs[ix as usize];
                w * (per_x[ix as usize] + q_ln_gamma + (p * x - 1.0) * ln_m + p * x_ln_x
                    - (p * x + q) * (gamma + xm).ln())
            })
            .sum()
    }
}

/// The value of the next `months` months, discounted monthly at `monthly_rate`: for each
/// month, the purchases expected in it times the expected spend, discounted to today.
pub fn lifetime_value(
    model: &BgNbd,
    s: &Summary,
    spend: f64,
    months: u32,
    monthly_rate: f64,
) -> f64 {
    let weeks_per_month = 365.25 / 7.0 / 12.0;
    let mut value = 0.0;
    let mut before = 0.0;
    for i in 1..=months {
        let upto = model.expected(s, weeks_per_month * i as f64);
        value += (upto - before) * spend / (1.0 + monthly_rate).powi(i as i32);
        before = upto;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The CDNOW sample's summary as the papers use it.
    pub(crate) fn cdnow() -> Vec<Summary> {
        include_str!("../testdata/cdnow_customers_summary_with_transactions.csv")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let v: Vec<f64> = l.split(',').filter_map(|x| x.parse().ok()).collect();
                (v.len() == 5).then(|| Summary {
                    x: v[1],
                    t_x: v[2],
                    t: v[3],
                    mean: v[4],
                })
            })
            .collect()
    }

    fn three(v: f64) -> String {
        format!("{:.2e}", v).replace("e0", "")
    }

    #[test]
    fn cdnow_reproduces_the_published_parameters() {
        let data = cdnow();
        assert_eq!(data.len(), 2357);
        let (m, ll, min) = fit_bgnbd(&data);
        assert!(min.converged, "{min:?}");
        // r = 0.243, α = 4.414 (4.41), a = 0.793, b = 2.426 (2.43); LL −9582.4.
        assert_eq!(
            [three(m.r), three(m.alpha), three(m.a), three(m.b)],
            ["2.430e-1", "4.414", "7.930e-1", "2.426"].map(|s| three(s.parse().unwrap_or(0.0)))
        );
        assert!((ll - -9582.4).abs() < 0.1, "{ll}");
        let (g, _, min) = fit_gamma_gamma(&data);
        assert!(min.converged);
        assert_eq!(
            [three(g.p), three(g.q), three(g.gamma)],
            ["6.25", "3.74", "15.44"].map(|s| three(s.parse().unwrap_or(0.0)))
        );
    }

    proptest! {
        /// The fit's arranged likelihoods are the customers' own, summed: any histories,
        /// any parameters.
        #[test]
        fn arranged_likelihoods_are_the_sum_of_each_customers(
            hist in proptest::collection::vec((0u32..40, 0u32..400, 0u32..400, 1u32..5000), 1..60),
            r in -3.0f64..3.0, alpha in -3.0f64..4.0, a in -3.0f64..3.0, b in -3.0f64..3.0,
            q in -2.0f64..3.0, gamma in -2.0f64..5.0,
        ) {
            let data: Vec<Summary> = hist
                .iter()
                .map(|&(x, tx, extra, cents)| {
                    let t_x = if x == 0 { 0.0 } else { f64::from(tx) / 7.0 };
                    Summary {
                        x: f64::from(x),
                        t_x,
                        t: t_x + f64::from(extra) / 7.0,
                        mean: if x == 0 { 0.0 } else { f64::from(cents) / 100.0 },
                    }
                })
                .collect();
            let m = BgNbd { r: r.exp(), alpha: alpha.exp(), a: a.exp(), b: b.exp() };
            let grouped = distinct(&data, |s| [s.x.to_bits(), s.t_x.to_bits(), s.t.to_bits()]);
            let (fast, each) = (BgNbdGroups::new(&grouped).ll(&m), m.ll(&data));
            prop_assert!((fast - each).abs() <= 1e-9 * each.abs().max(1.0), "{fast} {each}");
            let g = GammaGamma { p: (r / 2.0).exp(), q: q.exp(), gamma: gamma.exp() };
            let repeat: Vec<Summary> =
                data.iter().filter(|s| s.x > 0.0 && s.mean > 0.0).copied().collect();
            let grouped = distinct(&repeat, |s| [s.x.to_bits(), s.mean.to_bits(), 0]);
            let (fast, each) = (GammaGammaGroups::new(&grouped).ll(&g), g.ll(&data));
            prop_assert!((fast - each).abs() <= 1e-9 * each.abs().max(1.0), "{fast} {each}");
        }
    }

    #[test]
    fn grouping_equal_histories_changes_nothing() {
        let data = cdnow();
        let m = BgNbd {
            r: 0.3,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        let groups = distinct(&data, |s| [s.x.to_bits(), s.t_x.to_bits(), s.t.to_bits()]);
        assert!(groups.len() < data.len());
        let grouped: f64 = groups.iter().map(|(s, w)| w * m.ll_one(s)).sum();
        assert!((grouped - m.ll(&data)).abs() < 1e-6);
    }

    #[test]
    fn log_likelihoods_match_closed_forms() {
        // x = 0: ln (α/(α+T))^r — with no purchase after the first there was no chance to
        // drop out.
        let m = BgNbd {
            r: 0.5,
            alpha: 2.0,
            a: 0.8,
            b: 2.5,
        };
        let s = Summary {
            x: 0.0,
            t_x: 0.0,
            t: 10.0,
            mean: 0.0,
        };
        let closed = 0.5 * (2.0f64 / 12.0).ln();
        assert!((m.ll_one(&s) - closed).abs() < 1e-12);
        // x = 1: Γ(r+1)/Γ(r) = r; B(a, b+1)/B(a, b) = b/(a+b); then the two terms.
        let s = Summary {
            x: 1.0,
            t_x: 4.0,
            t: 10.0,
            mean: 5.0,
        };
        let l = 0.5
            * 2.0f64.powf(0.5)
            * (2.5 / 3.3)
            * ((12.0f64).powf(-1.5) + 0.8 / 2.5 * 6.0f64.powf(-1.5));
        assert!((m.ll_one(&s) - l.ln()).abs() < 1e-12);
        // Gamma-Gamma, x = 1: the density of m under Gamma(p, ν) mixed over ν ~ Gamma(q, γ).
        let g = GammaGamma {
            p: 2.0,
            q: 3.0,
            gamma: 4.0,
        };
        let (p, q, gm, mm) = (2.0f64, 3.0f64, 4.0f64, 5.0f64);
        let closed = (lgamma(p + q) - lgamma(p) - lgamma(q)) + q * gm.ln() + (p - 1.0) * mm.ln()
            - (p + q) * (gm + mm).ln();
        assert!((g.ll_one(&s) - closed).abs() < 1e-12);
        // ₂F₁ against known values: ₂F₁(1, 1; 2; z) = −ln(1−z)/z.
        let z = 0.7;
        assert!((hyp2f1(1.0, 1.0, 2.0, z) - -(1.0f64 - z).ln() / z).abs() < 1e-12);
    }

    #[test]
    fn predictions_match_the_reference_implementation() {
        // `lifetimes`' quick start on the same data: the customers expected to buy most in
        // the next week, and their values there.
        let (m, _, _) = fit_bgnbd(&cdnow());
        for (x, t_x, t, expected) in [
            (18.0, 35.14, 35.86, 0.424877),
            (19.0, 34.00, 34.14, 0.474738),
            (17.0, 28.43, 28.86, 0.486526),
            (29.0, 37.71, 38.00, 0.662396),
            (26.0, 30.86, 31.00, 0.710623),
        ] {
            let s = Summary {
                x,
                t_x,
                t,
                mean: 0.0,
            };
            let e = m.expected(&s, 1.0);
            assert!((e - expected).abs() < 1e-4, "{x}: {e} vs {expected}");
        }
    }

    proptest! {
        /// Whatever a customer's history: alive with a probability in (0, 1], expecting a
        /// non-negative number of purchases that grows with the horizon.
        #[test]
        fn predictions_are_sane(x in 0u32..30, tx in 0.0f64..50.0, extra in 0.0f64..50.0, t in 1.0f64..60.0) {
            let m = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
            let s = Summary { x: x as f64, t_x: if x == 0 { 0.0 } else { tx }, t: tx + extra, mean: 10.0 };
            let p = m.p_alive(&s);
            prop_assert!(p > 0.0 && p <= 1.0);
            let (e1, e2) = (m.expected(&s, t), m.expected(&s, t * 2.0));
            prop_assert!(e1 >= 0.0 && e2 >= e1 - 1e-9, "{} {}", e1, e2);
        }
    }
}
