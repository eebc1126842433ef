//! One MNIST digit decided exactly (Table 1's exact column; the `exact` and `table1`
//! binaries): per target `t`, PGD on the margin `f_y - f_t` (a point with proven margin
//! `<= 0` is an attack), the WK and CROWN bounds (a proven margin `> 0` certifies), and
//! what neither settles goes to branch and bound (crate `exact`) with threshold 0. The
//! digit is robust when every target's margin is proven positive, attacked when some
//! point of the ball has margin `<= 0`, else undecided.
//!
//! Checked as it runs (an error names the digit): every proven lower bound (WK, CROWN,
//! branch and bound) lies below the proven value at every attack point.

use network::DVector;
use std::time::Instant;

use anyhow::{bail, Result};
use dual::{algorithm1, bound_given, crown_bounds, dual_objective};
use dual::{AlphaOptions, AlphaRule, InputDomain, Margins, Method, Targets};
use exact::{BabOptions, BabStatus, PgdOptions};
use network::Model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The settings of [`decide_digit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DigitOptions {
    /// Radius of the l-infinity ball; pixels stay in [0, 1].
    pub eps: f64,
    /// Branch and bound's time limit per target, in seconds.
    pub timeout: f64,
    /// Branch and bound's node budget per target.
    pub max_nodes: usize,
    /// Seed of PGD's random starts and branch and bound's sampling (mixed with the digit).
    pub seed: u64,
}

/// How a digit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Misclassified,
    /// Every target certified by WK's bound.
    Wk,
    /// Certified by CROWN where WK was not.
    Crown,
    /// Proven robust by branch and bound where both bounds failed on some target.
    Bab,
    /// PGD found a point with margin <= 0.
    Pgd,
    /// Branch and bound found such a point where PGD did not.
    BabAttack,
    /// Some target still open.
    Undecided,
}

impl Outcome {
    /// The outcome as written in the CSVs.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Misclassified => "misclassified",
            Outcome::Wk => "certified by WK",
            Outcome::Crown => "certified by CROWN",
            Outcome::Bab => "proven by branch and bound",
            Outcome::Pgd => "attacked by PGD",
            Outcome::BabAttack => "attacked by branch and bound",
            Outcome::Undecided => "undecided",
        }
    }
}

/// One digit of one model, decided.
pub struct DigitRow {
    /// Index of the model in the caller's list.
    pub model: usize,
    pub digit: usize,
    pub label: usize,
    pub predicted: usize,
    pub outcome: Outcome,
    /// Smallest proven margin bound over targets: WK, CROWN, and branch and bound's
    /// lower end (the best of the three per target).
    pub wk_min: f64,
    pub crown_min: f64,
    pub exact_lower_min: f64,
    /// Smallest proven margin at a point found (PGD or branch and bound).
    pub attack_min: f64,
    pub bab_targets: usize,
    pub nodes: usize,
    pub lps: usize,
    pub ms: f64,
}

/// Decides test digit `digit` (`x`, `label`) of model `mi` (see the module docs).
///
/// Errors: the bound and search errors of `dual` and `exact`, and a proven lower bound
/// above an attack's proven value (a soundness failure, naming the digit).
pub fn decide_digit(
    a: &DigitOptions,
    mi: usize,
    model: &Model,
    digit: usize,
    x: &[f64],
    label: usize,
) -> Result<DigitRow> {
    let t0 = Instant::now();
    let predicted = model.predict(x)?;
    let what = format!("model {mi}, test digit {digit}");
    let mut row = DigitRow {
        model: mi,
        digit,
        label,
        predicted,
        outcome: Outcome::Misclassified,
        wk_min: f64::NAN,
        crown_min: f64::NAN,
        exact_lower_min: f64::NAN,
        attack_min: f64::NAN,
        bab_targets: 0,
        nodes: 0,
        lps: 0,
        ms: 0.0,
    };
    if predicted != label {
        row.ms = t0.elapsed().as_secs_f64() * 1e3;
        return Ok(row);
    }
    let n = model.output_len();
    let dom = InputDomain::new(x, a.eps, Some((0.0, 1.0)))?;
    let Margins { targets, c, .. } = Margins::new(n, label, Targets::All)?;
    let wk = dual_objective(
        model,
        &dom,
        &algorithm1(model, &dom)?,
        &c,
        &AlphaRule::Paper,
    )?
    .values;
    // PGD first, every target until one is attacked (an attacked digit needs no more).
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ digit as u64);
    let mut attack = f64::INFINITY;
    for k in 0..targets.len() {
        let ck = &c.row(k).transpose();
        let (xp, _) = exact::pgd(
            model,
            &dom,
            ck,
            std::slice::from_ref(&dom.center),
            &PgdOptions::default(),
            &mut rng,
        )?;
        attack = attack.min(dual::value_upper_bound(model, &xp, ck)?);
        if attack <= 0.0 {
            break;
        }
    }
    let mut bab_attack = false;
    let mut exact_lower = wk.clone();
    let mut open = false;
    // An attacked digit: CROWN and branch and bound cannot certify it (WK is checked).
    let crown: DVector<f64> = if attack <= 0.0 {
        DVector::from_element(targets.len(), f64::NAN)
    } else {
        bound_given(
            model,
            &dom,
            crown_bounds(model, &dom)?,
            &c,
            Method::Crown,
            &AlphaOptions::default(),
        )?
        .values
    };
    for k in 0..targets.len() {
        if attack <= 0.0 {
            break;
        }
        let ck = &c.row(k).transpose();
        let mut lower = wk[k].max(crown[k]);
        if lower <= 0.0 {
            row.bab_targets += 1;
            let e = exact::minimise(
                model,
                &dom,
                ck,
                &BabOptions {
                    timeout: Some(a.timeout),
                    max_nodes: a.max_nodes,
                    threshold: Some(0.0),
                    seed: a.seed ^ (digit as u64) << 8 ^ k as u64,
                    ..BabOptions::default()
                },
            )?;
            row.nodes += e.nodes;
            row.lps += e.lps;
            lower = lower.max(e.lower);
            attack = attack.min(e.upper);
            match e.status {
                BabStatus::Counterexample => bab_attack |= e.upper <= 0.0,
                BabStatus::Proved => {}
                _ => open = true,
            }
        }
        exact_lower[k] = lower;
    }
    let min = |v: &DVector<f64>| v.iter().copied().fold(f64::INFINITY, f64::min);
    row.wk_min = min(&wk);
    // NaN for an attacked digit (not computed).
    row.crown_min = crown.iter().copied().fold(f64::INFINITY, f64::min);
    if crown.iter().any(|v| v.is_nan()) {
        row.crown_min = f64::NAN;
    }
    row.exact_lower_min = min(&exact_lower);
    row.attack_min = attack;
    // Soundness: a proven lower bound never exceeds the proven value at a point.
    if row.wk_min > attack || row.crown_min > attack || row.exact_lower_min > attack {
        // (NaN compares false: an uncomputed bound is not checked.)
        bail!(
            "{what}: a proven margin bound (WK {}, CROWN {}, exact {}) exceeds the margin {} at an attack point",
            row.wk_min, row.crown_min, row.exact_lower_min, attack
        );
    }
    row.outcome = if attack <= 0.0 {
        if bab_attack {
            Outcome::BabAttack
        } else {
            Outcome::Pgd
        }
    } else if row.wk_min > 0.0 {
        Outcome::Wk
    } else if row.crown_min > 0.0 {
        Outcome::Crown
    } else if row.exact_lower_min > 0.0 {
        Outcome::Bab
    } else {
        debug_assert!(open || row.exact_lower_min <= 0.0);
        Outcome::Undecided
    };
    row.ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(row)
}

/// The counts of Table 1's columns over decided digits of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExactSummary {
    pub digits: usize,
    /// Misclassified at the centre.
    pub wrong: usize,
    /// Attacked by PGD.
    pub attacked_pgd: usize,
    /// Attacked by PGD or by branch and bound.
    pub attacked: usize,
    pub undecided: usize,
    /// Not certified by WK's bound (an error of the WK bound column).
    pub not_wk: usize,
    /// Not certified by CROWN's bound.
    pub not_crown: usize,
    /// Targets sent to branch and bound.
    pub bab_targets: usize,
    /// Mean wall time per digit, milliseconds.
    pub mean_ms: f64,
}

impl ExactSummary {
    /// The summary of `rows` (the digits of one model).
    pub fn of<'r>(rows: impl IntoIterator<Item = &'r DigitRow>) -> ExactSummary {
        let rs: Vec<&DigitRow> = rows.into_iter().collect();
        let count = |f: &dyn Fn(&DigitRow) -> bool| rs.iter().filter(|r| f(r)).count();
        let attacked_pgd = count(&|r| r.outcome == Outcome::Pgd);
        ExactSummary {
            digits: rs.len(),
            wrong: count(&|r| r.outcome == Outcome::Misclassified),
            attacked_pgd,
            attacked: attacked_pgd + count(&|r| r.outcome == Outcome::BabAttack),
            undecided: count(&|r| r.outcome == Outcome::Undecided),
            not_wk: rs.len() - count(&|r| r.wk_min > 0.0),
            not_crown: rs.len() - count(&|r| r.crown_min > 0.0),
            bab_targets: rs.iter().map(|r| r.bab_targets).sum(),
            mean_ms: rs.iter().map(|r| r.ms).sum::<f64>() / rs.len().max(1) as f64,
        }
    }

    /// `100 k / digits` with one decimal and a `%`.
    pub fn pct(&self, k: usize) -> String {
        format!("{:.1}%", 100.0 * k as f64 / self.digits.max(1) as f64)
    }

    /// The exact robust error's range as fractions: proven errors (misclassified or
    /// attacked) over all digits, and that plus the undecided ones.
    pub fn exact_range(&self) -> (f64, f64) {
        let n = self.digits.max(1) as f64;
        let lo = self.wrong + self.attacked;
        (lo as f64 / n, (lo + self.undecided) as f64 / n)
    }

    /// The exact robust error as printed: `a%` when every digit was decided, else
    /// `a% to b%`.
    pub fn exact_text(&self) -> String {
        let lo = self.wrong + self.attacked;
        if self.undecided == 0 {
            self.pct(lo)
        } else {
            format!("{} to {}", self.pct(lo), self.pct(lo + self.undecided))
        }
    }
}
