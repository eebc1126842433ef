//! LP (19) of appendix A.1, built sparsely from the model.
//!
//! Variables: `z_1` (the input, within the box `center +- radius`), every pre-activation
//! `zhat_i` (free) except those of stably-off units, and one `z` per unstable unit
//! (`z >= 0`). For unit `j` of a hidden layer with bounds `l, u`: `z = 0` if `u <= 0`
//! (no variable; its `zhat` and defining row are dropped too, since a free variable that
//! appears in one equality row only constrains nothing, so the optimum is unchanged),
//! `z = zhat` if `l >= 0` (the `zhat` variable is reused), else the three constraints
//! `z >= 0`, `z >= zhat`, `(u - l) z - u zhat <= -u l`. Equality rows
//! `zhat_{i+1} - W_i z_i = b_i` are built row by row from the dense weights or from the
//! convolution kernel's taps (never a dense matrix for a conv). The objective
//! `c^T zhat_k` is supplied at solve time, so one build serves every target.

use network::AsVector;
use std::time::{Duration, Instant};

use dual::{unit_stability, InputDomain, LayerBounds, Phase, Relaxation, Split, Stability};
use network::{LinearOp, Model};

use crate::error::Result;

/// How a hidden unit's post-activation `z` appears in the LP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZVar {
    /// Stably off: `z = 0`, no variable.
    Zero,
    /// A variable: the unit's own `z` (unstable) or its `zhat` (stably on).
    Var(usize),
}

/// What a row of the LP stands for (for reports and feasibility checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// `zhat_{i+1,k} - (W_i z_i)_k = b_k` for affine layer `layer`.
    Affine { layer: usize, unit: usize },
    /// `zhat - z <= 0` for unstable unit `unit` of hidden layer `layer`.
    ReluAboveInput { layer: usize, unit: usize },
    /// `(u - l) z - u zhat <= -u l` for unstable unit `unit` of hidden layer `layer`.
    ReluUpper { layer: usize, unit: usize },
}

/// Size of a built LP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LpSize {
    pub variables: usize,
    pub rows: usize,
    pub nonzeros: usize,
}

/// LP (19) for one model, input set and set of intermediate bounds.
#[derive(Debug, Clone)]
pub struct Lp19<'m> {
    pub model: &'m Model,
    pub domain: InputDomain,
    /// The hidden-layer bounds the relaxation is built from (with their source).
    pub bounds: LayerBounds,
    pub var_lo: Vec<f64>,
    pub var_hi: Vec<f64>,
    /// Finite, proven bounds on every variable, valid for every point of the relaxation
    /// (the outward-rounded input box; `l <= zhat <= u` from the bounds the LP was built
    /// with; `0 <= z <= max(u, 0)`; proven interval bounds on the logits). The solvers do
    /// not see them; the proven lower bound of [`crate::verified`] ranges over them.
    pub proof_lo: Vec<f64>,
    pub proof_hi: Vec<f64>,
    /// Rows in CSR form: row `r` is `row_idx/row_val[row_start[r]..row_start[r+1]]`.
    pub row_start: Vec<usize>,
    pub row_idx: Vec<usize>,
    pub row_val: Vec<f64>,
    pub row_lo: Vec<f64>,
    pub row_hi: Vec<f64>,
    pub row_kind: Vec<RowKind>,
    /// Variables of `z_1`.
    pub z1: Vec<usize>,
    /// Variables of `zhat_{t+2}` for each affine layer `t` (the last is the logits);
    /// `None` for a stably-off hidden unit (dropped, see the module docs).
    pub zhat: Vec<Vec<Option<usize>>>,
    /// `z` of each hidden unit.
    pub z: Vec<Vec<ZVar>>,
    pub build_time: Duration,
}

impl<'m> Lp19<'m> {
    /// Builds LP (19). `bounds` must cover every hidden layer (extra output-layer bounds
    /// are ignored) and satisfy `l <= u`; inconsistent bounds are refused here, before
    /// any solver sees them.
    pub fn new(model: &'m Model, domain: &InputDomain, bounds: &LayerBounds) -> Result<Lp19<'m>> {
        Lp19::with_splits(model, domain, bounds, &[])
    }

    /// LP (19) over the sub-domain of `domain` where the ReLU `splits` hold (branch and
    /// bound): an Active split's `zhat >= 0` and an Inactive split's `zhat <= 0` become
    /// bounds of the `zhat` variable that the solver sees (an Inactive unit keeps its
    /// `zhat` and defining row, unlike a unit stably off by its bounds), and the split
    /// units' bounds are clamped to that side. With every unstable unit split, the LP is
    /// the network itself on the sub-domain: its optimum is the exact minimum there.
    ///
    /// A split may also name a unit of the output layer (`layer` = the number of hidden
    /// layers): its sign constraint becomes a bound of that logit's variable (used to
    /// prove a set of splits infeasible one layer at a time, on a truncated model).
    ///
    /// Errors: as [`Lp19::new`]; a split outside the model; a split whose clamped bounds
    /// are empty (`dual::split_bounds` reports those sub-domains as empty first).
    pub fn with_splits(
        model: &'m Model,
        domain: &InputDomain,
        bounds: &LayerBounds,
        splits: &[Split],
    ) -> Result<Lp19<'m>> {
        let t0 = Instant::now();
        model
            .check_input(&domain.x)
            .map_err(dual::DualError::from)?;
        bounds.validate(model)?;
        let aff = model.affine();
        let nh = aff.len() - 1;
        if let Some(s) = splits
            .iter()
            .find(|s| s.layer > nh || s.unit >= aff[s.layer].op.n_out())
        {
            return Err(dual::DualError::Bounds {
                layer: s.layer,
                msg: format!(
                    "split of unit {} of layer {}, outside a model of {} affine layers",
                    s.unit,
                    s.layer,
                    aff.len()
                ),
            }
            .into());
        }
        let mut hidden = LayerBounds {
            lower: bounds.lower[..nh].to_vec(),
            upper: bounds.upper[..nh].to_vec(),
            source: bounds.source,
        };
        let mut phase: Vec<Vec<Option<Phase>>> =
            aff.iter().map(|a| vec![None; a.op.n_out()]).collect();
        for s in splits.iter().filter(|s| s.layer == nh) {
            phase[nh][s.unit] = Some(s.phase);
        }
        for s in splits.iter().filter(|s| s.layer < nh) {
            let (l, u) = (
                &mut hidden.lower[s.layer][s.unit],
                &mut hidden.upper[s.layer][s.unit],
            );
            match s.phase {
                Phase::Active => *l = l.max(0.0),
                Phase::Inactive => *u = u.min(0.0),
            }
            if *l > *u {
                return Err(dual::DualError::Bounds {
                    layer: s.layer,
                    msg: format!(
                        "unit {} split {:?} has empty bounds [{l}, {u}]: the sub-domain is empty",
                        s.unit, s.phase
                    ),
                }
                .into());
            }
            phase[s.layer][s.unit] = Some(s.phase);
        }
        let mut lp = Lp19 {
            model,
            domain: domain.clone(),
            bounds: hidden,
            var_lo: Vec::new(),
            var_hi: Vec::new(),
            proof_lo: Vec::new(),
            proof_hi: Vec::new(),
            row_start: vec![0],
            row_idx: Vec::new(),
            row_val: Vec::new(),
            row_lo: Vec::new(),
            row_hi: Vec::new(),
            row_kind: Vec::new(),
            z1: Vec::new(),
            zhat: Vec::new(),
            z: Vec::new(),
            build_time: Duration::ZERO,
        };
        let (lo, hi) = (domain.lower(), domain.upper());
        let (plo, phi) = domain.enclosing_box();
        lp.z1 = (0..lo.len())
            .map(|i| lp.add_var(lo[i], hi[i], (plo[i], phi[i])))
            .collect();
        let out_box = output_bounds(model, bounds, (plo.as_slice(), phi.as_slice()))?;
        let mut prev: Vec<ZVar> = lp.z1.iter().map(|&v| ZVar::Var(v)).collect();
        for (t, a) in aff.iter().enumerate() {
            let n = a.op.n_out();
            let st: Vec<Stability> = (0..n)
                .map(|j| {
                    if t < nh {
                        unit_stability(
                            model.relu_units(t),
                            j,
                            lp.bounds.lower[t][j],
                            lp.bounds.upper[t][j],
                        )
                    } else {
                        Stability::Unstable
                    }
                })
                .collect();
            let zh: Vec<Option<usize>> = st
                .iter()
                .enumerate()
                .map(|(j, s)| {
                    let proof = if t < nh {
                        (lp.bounds.lower[t][j], lp.bounds.upper[t][j])
                    } else {
                        match phase[t][j] {
                            Some(Phase::Active) => (out_box.0[j].max(0.0), out_box.1[j]),
                            Some(Phase::Inactive) => (out_box.0[j], out_box.1[j].min(0.0)),
                            None => (out_box.0[j], out_box.1[j]),
                        }
                    };
                    match phase[t][j] {
                        Some(Phase::Active) => Some(lp.add_var(0.0, f64::INFINITY, proof)),
                        Some(Phase::Inactive) => Some(lp.add_var(f64::NEG_INFINITY, 0.0, proof)),
                        None => (*s != Stability::Off)
                            .then(|| lp.add_var(f64::NEG_INFINITY, f64::INFINITY, proof)),
                    }
                })
                .collect();
            lp.add_affine_rows(t, &a.op, &a.bias, &prev, &zh);
            if t < nh {
                let (l, u) = (&lp.bounds.lower[t].clone(), &lp.bounds.upper[t].clone());
                let mut zs = Vec::with_capacity(n);
                for j in 0..n {
                    zs.push(match (st[j], zh[j]) {
                        // (An Inactive split's unit is Off: clamped to u <= 0, it keeps
                        // its zhat only for the sign constraint, and z = 0.)
                        (Stability::Off, _) | (_, None) => ZVar::Zero,
                        // A linear unit of a graph model: z = zhat, like an active ReLU.
                        (Stability::On | Stability::Linear, Some(v)) => ZVar::Var(v),
                        (Stability::Unstable, Some(zhj)) => {
                            // z <= u is implied by the triangle, but stated as the
                            // variable's bound: with bounds of a few ulps (a unit that is
                            // 0 up to rounding) the upper row's coefficients underflow
                            // in the solver and z would be free above (Clarabel and
                            // microlp then report a bounded LP as unbounded).
                            let z = lp.add_var(0.0, u[j].max(0.0), (0.0, u[j].max(0.0)));
                            lp.add_row(
                                &[(zhj, 1.0), (z, -1.0)],
                                f64::NEG_INFINITY,
                                0.0,
                                RowKind::ReluAboveInput { layer: t, unit: j },
                            );
                            let [cz, czh, rhs] = Relaxation::relu(l[j], u[j])
                                .upper_row()
                                .expect("an unstable unit has an upper line");
                            lp.add_row(
                                &[(z, cz), (zhj, czh)],
                                f64::NEG_INFINITY,
                                rhs,
                                RowKind::ReluUpper { layer: t, unit: j },
                            );
                            ZVar::Var(z)
                        }
                    });
                }
                lp.z.push(zs.clone());
                prev = zs;
            }
            lp.zhat.push(zh);
        }
        lp.build_time = t0.elapsed();
        Ok(lp)
    }

    fn add_var(&mut self, lo: f64, hi: f64, proof: (f64, f64)) -> usize {
        self.var_lo.push(lo);
        self.var_hi.push(hi);
        self.proof_lo.push(proof.0);
        self.proof_hi.push(proof.1);
        self.var_lo.len() - 1
    }

    fn add_row(&mut self, entries: &[(usize, f64)], lo: f64, hi: f64, kind: RowKind) {
        for &(i, v) in entries {
            self.row_idx.push(i);
            self.row_val.push(v);
        }
        self.row_start.push(self.row_idx.len());
        self.row_lo.push(lo);
        self.row_hi.push(hi);
        self.row_kind.push(kind);
    }

    /// `zhat_k - sum_j W_kj z_j = b_k`, skipping stably-off inputs and the rows of dropped
    /// (stably-off) units; a conv row holds only its kernel's taps
    /// (`LinearOp::for_each_in_row`).
    fn add_affine_rows(
        &mut self,
        t: usize,
        op: &LinearOp,
        bias: &[f64],
        prev: &[ZVar],
        zh: &[Option<usize>],
    ) {
        let mut entries: Vec<(usize, f64)> = Vec::new();
        for (k, zk) in zh.iter().enumerate() {
            let Some(zk) = *zk else { continue };
            entries.clear();
            entries.push((zk, 1.0));
            op.for_each_in_row(k, |j, w| {
                if let ZVar::Var(v) = prev[j] {
                    if w != 0.0 {
                        entries.push((v, -w));
                    }
                }
            });
            self.add_row(
                &entries,
                bias[k],
                bias[k],
                RowKind::Affine { layer: t, unit: k },
            );
        }
    }

    /// The row's right-hand side for a multiplier `y` (shadow price): the upper end for
    /// `y < 0`, the lower end otherwise (see [`crate::verified`]).
    pub fn row_rhs(&self, r: usize, y: f64) -> f64 {
        if y < 0.0 {
            self.row_hi[r]
        } else {
            self.row_lo[r]
        }
    }

    /// Number of variables, rows and nonzeros.
    pub fn size(&self) -> LpSize {
        LpSize {
            variables: self.var_lo.len(),
            rows: self.row_lo.len(),
            nonzeros: self.row_idx.len(),
        }
    }

    /// The objective as coefficients per variable for `c^T zhat_k`.
    pub fn objective_coefficients(&self, c: impl AsVector) -> Vec<(usize, f64)> {
        let c = c.as_values();
        let out = self
            .zhat
            .last()
            .expect("a model has at least one affine layer");
        out.iter()
            .zip(c)
            .filter(|(_, &v)| v != 0.0)
            .map(|(&i, &v)| (i.expect("every logit has a variable"), v))
            .collect()
    }

    /// The largest violation of any variable bound or row of (19) at `values`, scaled
    /// per row by `max(1, |rhs|, max |coef * value|)` so it reads as a relative error.
    pub fn max_violation(&self, values: impl AsVector) -> f64 {
        let values = values.as_values();
        let mut worst: f64 = 0.0;
        for (i, &v) in values.iter().enumerate() {
            let scale = v.abs().max(1.0);
            worst = worst.max((self.var_lo[i] - v).max(v - self.var_hi[i]).max(0.0) / scale);
        }
        for r in 0..self.row_lo.len() {
            let (s, e) = (self.row_start[r], self.row_start[r + 1]);
            let mut act = 0.0;
            let mut scale: f64 = 1.0;
            for k in s..e {
                let term = self.row_val[k] * values[self.row_idx[k]];
                act += term;
                scale = scale.max(term.abs());
            }
            let rhs = if self.row_hi[r].is_finite() {
                self.row_hi[r]
            } else {
                self.row_lo[r]
            };
            scale = scale.max(rhs.abs());
            let viol = (self.row_lo[r] - act).max(act - self.row_hi[r]).max(0.0);
            worst = worst.max(viol / scale);
        }
        worst
    }
}

/// Proven bounds on the logits: the output-layer entry of `bounds` if it has one,
/// intersected with the proven interval image of the last hidden layer's bounds.
fn output_bounds(
    model: &Model,
    bounds: &LayerBounds,
    input: (&[f64], &[f64]),
) -> Result<(Vec<f64>, Vec<f64>)> {
    let aff = model.affine();
    let nh = aff.len() - 1;
    let last = &aff[nh];
    let (lo, hi): (Vec<f64>, Vec<f64>) = if nh == 0 {
        (input.0.to_vec(), input.1.to_vec())
    } else {
        (
            bounds.lower[nh - 1].iter().map(|v| v.max(0.0)).collect(),
            bounds.upper[nh - 1].iter().map(|v| v.max(0.0)).collect(),
        )
    };
    let (mut l, mut u) = dual::affine_over_box(last, &lo, &hi)?;
    if bounds.lower.len() == aff.len() {
        for j in 0..l.len() {
            l[j] = l[j].max(bounds.lower[nh][j]);
            u[j] = u[j].min(bounds.upper[nh][j]);
        }
    }
    Ok((l.as_slice().to_vec(), u.as_slice().to_vec()))
}
