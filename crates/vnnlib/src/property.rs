//! From the forms of a file to a [`Property`]: declarations, linear terms, the formula in
//! disjunctive normal form, and each disjunct split into an input box and a conjunction
//! of output constraints.

use nalgebra::DVector;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::decimal::Decimal;
use crate::error::{Result, VnnlibError};
use crate::sexpr::{parse_all, Sexp};

/// At most this many disjuncts after expanding the formula (a guard against a file whose
/// `and` of `or`s multiplies out beyond memory).
const MAX_DISJUNCTS: usize = 1_000_000;

/// A box of inputs, rounded outwards: it contains the file's exact box. Its inner box
/// (`inner_lower`, `inner_upper`, rounded inwards) lies inside the file's exact box:
/// a counterexample must be taken from it. Both are equal when the file's bounds are
/// doubles.
#[derive(Debug, Clone, PartialEq)]
pub struct InputBox {
    /// Lower corner (one entry per `X_i`), rounded down.
    pub lower: DVector<f64>,
    /// Upper corner, rounded up.
    pub upper: DVector<f64>,
    /// Lower corner of the inner box, rounded up.
    pub inner_lower: DVector<f64>,
    /// Upper corner of the inner box, rounded down.
    pub inner_upper: DVector<f64>,
}

impl InputBox {
    /// True when some `lower[i] > upper[i]` (no input: the case holds vacuously).
    pub fn is_empty(&self) -> bool {
        self.lower.iter().zip(&self.upper).any(|(l, u)| l > u)
    }
}

/// `sum_j coef[j] Y_j <= rhs` where the file's exact right-hand side lies in
/// `[rhs_lo, rhs_hi]` (equal when it is a double). To prove the region unreachable use
/// `rhs_hi` (the region can only grow); to confirm that a point is in it, check
/// `coef . y <= rhs_lo` with `y` exact.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputConstraint {
    /// One coefficient per output `Y_j` (exact: the file's coefficients are doubles).
    pub coef: DVector<f64>,
    pub rhs_lo: f64,
    pub rhs_hi: f64,
    /// Where the atom is in the file.
    pub line: usize,
    pub col: usize,
}

/// One input box and the outputs it must not reach: `unsafe_region` is a disjunction of
/// conjunctions (an empty conjunction: every output is unsafe).
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub input: InputBox,
    pub unsafe_region: Vec<Vec<OutputConstraint>>,
}

/// A parsed property: it holds when no case's box reaches its unsafe region.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The file it came from.
    pub name: String,
    pub n_inputs: usize,
    pub n_outputs: usize,
    /// The input boxes with their unsafe regions, in the order of the file's disjuncts
    /// (disjuncts with the same box merged).
    pub cases: Vec<Case>,
}

/// Reads a `.vnnlib` file (gzipped if it starts with the gzip magic or ends in `.gz`).
pub fn read_property(path: impl AsRef<Path>) -> Result<Property> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io = |err| VnnlibError::Io {
        file: name.clone(),
        err,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let text = if bytes.starts_with(&[0x1f, 0x8b]) || name.ends_with(".gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .map_err(io)?;
        s
    } else {
        String::from_utf8(bytes)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?
    };
    parse_property(&text, &name)
}

/// A linear term `sum a_i X_i + sum b_j Y_j + k`, exact.
#[derive(Debug, Clone, Default)]
struct Linear {
    x: BTreeMap<usize, Decimal>,
    y: BTreeMap<usize, Decimal>,
    k: Option<Decimal>,
}

impl Linear {
    fn constant(d: Decimal) -> Linear {
        Linear {
            k: Some(d),
            ..Default::default()
        }
    }
    fn k(&self) -> Decimal {
        self.k.clone().unwrap_or_else(Decimal::zero)
    }
    /// `None` when a number leaves [`Decimal::LIMIT`].
    fn add(mut self, o: &Linear) -> Option<Linear> {
        for (map, other) in [(&mut self.x, &o.x), (&mut self.y, &o.y)] {
            for (i, c) in other {
                let v = match map.get(i) {
                    Some(a) => a.add(c)?,
                    None => c.clone(),
                };
                if v.is_zero() {
                    map.remove(i);
                } else {
                    map.insert(*i, v);
                }
            }
        }
        self.k = Some(self.k().add(&o.k())?);
        Some(self)
    }
    /// `None` when a number leaves [`Decimal::LIMIT`].
    fn scale(mut self, s: &Decimal) -> Option<Linear> {
        for map in [&mut self.x, &mut self.y] {
            for v in map.values_mut() {
                *v = v.mul(s)?;
            }
            map.retain(|_, v| !v.is_zero());
        }
        self.k = Some(self.k().mul(s)?);
        Some(self)
    }
    fn is_constant(&self) -> bool {
        self.x.is_empty() && self.y.is_empty()
    }
}

/// `lin <= 0`, from the atom at (line, col).
#[derive(Debug, Clone)]
struct Atom {
    lin: Linear,
    line: usize,
    col: usize,
}

struct Parser<'a> {
    file: &'a str,
    n_x: usize,
    n_y: usize,
}

impl Parser<'_> {
    fn dialect(&self, (line, col): (usize, usize), msg: impl Into<String>) -> VnnlibError {
        VnnlibError::Dialect {
            file: self.file.to_string(),
            line,
            col,
            msg: msg.into(),
        }
    }

    fn term(&self, e: &Sexp) -> Result<Linear> {
        match e {
            Sexp::Atom(s, ..) => {
                if let Some(v) = variable(s) {
                    let (kind, i) = v;
                    let (n, map_x) = if kind == 'X' {
                        (self.n_x, true)
                    } else {
                        (self.n_y, false)
                    };
                    if i >= n {
                        return Err(self.dialect(e.pos(), format!("{s} is not declared")));
                    }
                    let mut l = Linear::default();
                    if map_x {
                        l.x.insert(i, one());
                    } else {
                        l.y.insert(i, one());
                    }
                    return Ok(l);
                }
                match Decimal::parse(s) {
                    Some(d) => Ok(Linear::constant(d)),
                    None => Err(self.dialect(
                        e.pos(),
                        format!("{s:?} is neither a number nor a declared X_i / Y_j"),
                    )),
                }
            }
            Sexp::List(items, ..) => {
                let (op, args) = match items.split_first() {
                    Some((Sexp::Atom(op, ..), args)) => (op.as_str(), args),
                    _ => return Err(self.dialect(e.pos(), "a term must start with +, - or *")),
                };
                let ts: Vec<Linear> = args.iter().map(|a| self.term(a)).collect::<Result<_>>()?;
                let range = || {
                    self.dialect(
                        e.pos(),
                        format!(
                            "a number beyond the supported range (powers of ten up to {} and as many digits)",
                            Decimal::LIMIT
                        ),
                    )
                };
                match (op, ts.len()) {
                    ("+", n) if n >= 1 => {
                        let mut acc = ts[0].clone();
                        for t in &ts[1..] {
                            acc = acc.add(t).ok_or_else(range)?;
                        }
                        Ok(acc)
                    }
                    ("-", 1) => ts[0].clone().scale(&minus_one()).ok_or_else(range),
                    ("-", n) if n >= 2 => {
                        let mut acc = ts[0].clone();
                        for t in &ts[1..] {
                            let neg = t.clone().scale(&minus_one()).ok_or_else(range)?;
                            acc = acc.add(&neg).ok_or_else(range)?;
                        }
                        Ok(acc)
                    }
                    ("*", n) if n >= 1 => {
                        // A product must be linear: at most one factor is not a number.
                        let mut acc = Linear::constant(one());
                        for t in &ts {
                            acc = if t.is_constant() {
                                acc.scale(&t.k()).ok_or_else(range)?
                            } else if acc.is_constant() {
                                t.clone().scale(&acc.k()).ok_or_else(range)?
                            } else {
                                return Err(self.dialect(e.pos(), "a product of two variables is not linear"));
                            };
                        }
                        Ok(acc)
                    }
                    _ => Err(self.dialect(
                        e.pos(),
                        format!("operator {op:?} with {} arguments is outside the dialect (terms: numbers, X_i, Y_j, +, -, * by a number)", ts.len()),
                    )),
                }
            }
        }
    }

    /// The disjunctive normal form of the conjunction of `parts`: the product of theirs.
    fn conjunction<'s>(&self, parts: impl IntoIterator<Item = &'s Sexp>) -> Result<Vec<Vec<Atom>>> {
        let mut acc: Vec<Vec<Atom>> = vec![Vec::new()];
        for a in parts {
            let d = self.dnf(a)?;
            if acc.len().saturating_mul(d.len()) > MAX_DISJUNCTS {
                return Err(self.dialect(
                    a.pos(),
                    format!("the formula expands to more than {MAX_DISJUNCTS} disjuncts here"),
                ));
            }
            acc = acc
                .iter()
                .flat_map(|c| {
                    d.iter().map(move |c2| {
                        let mut v = c.clone();
                        v.extend(c2.iter().cloned());
                        v
                    })
                })
                .collect();
        }
        Ok(acc)
    }

    /// The formula as a disjunction of conjunctions of atoms.
    fn dnf(&self, e: &Sexp) -> Result<Vec<Vec<Atom>>> {
        let Sexp::List(items, ..) = e else {
            return Err(self.dialect(e.pos(), "a formula must be a list such as (<= X_0 1)"));
        };
        let Some((Sexp::Atom(op, ..), args)) = items.split_first() else {
            return Err(self.dialect(e.pos(), "a formula must start with and, or, <= or >="));
        };
        match op.as_str() {
            "and" => self.conjunction(args),
            "or" => {
                let mut acc = Vec::new();
                for a in args {
                    acc.extend(self.dnf(a)?);
                    if acc.len() > MAX_DISJUNCTS {
                        return Err(self.dialect(
                            e.pos(),
                            format!("the formula expands to more than {MAX_DISJUNCTS} disjuncts"),
                        ));
                    }
                }
                Ok(acc)
            }
            "<=" | ">=" => {
                if args.len() != 2 {
                    return Err(
                        self.dialect(e.pos(), format!("{op} takes two terms, got {}", args.len()))
                    );
                }
                let (a, b) = (self.term(&args[0])?, self.term(&args[1])?);
                // a <= b  ->  a - b <= 0;  a >= b  ->  b - a <= 0.
                let (a, b) = if op == "<=" { (a, b) } else { (b, a) };
                let lin = b
                    .scale(&minus_one())
                    .and_then(|nb| a.add(&nb))
                    .ok_or_else(|| {
                        self.dialect(
                            e.pos(),
                            format!(
                                "a number beyond the supported range (powers of ten up to {})",
                                Decimal::LIMIT
                            ),
                        )
                    })?;
                let (line, col) = e.pos();
                Ok(vec![vec![Atom { lin, line, col }]])
            }
            "<" | ">" => Err(self.dialect(
                e.pos(),
                format!("strict comparison {op:?} is outside the dialect (use <= or >=)"),
            )),
            o => Err(self.dialect(
                e.pos(),
                format!("{o:?} is outside the dialect (formulas: and, or, <=, >=)"),
            )),
        }
    }
}

fn one() -> Decimal {
    Decimal::parse("1").expect("a number")
}

fn minus_one() -> Decimal {
    Decimal::parse("-1").expect("a number")
}

/// `X_12` -> ('X', 12).
fn variable(s: &str) -> Option<(char, usize)> {
    let kind = s.chars().next()?;
    if (kind != 'X' && kind != 'Y') || s.as_bytes().get(1) != Some(&b'_') {
        return None;
    }
    let idx = &s[2..];
    if idx.is_empty()
        || !idx.bytes().all(|b| b.is_ascii_digit())
        || (idx.len() > 1 && idx.starts_with('0'))
    {
        return None;
    }
    Some((kind, idx.parse().ok()?))
}

/// Parses the text of a VNNLIB file (`name` is used in errors).
pub fn parse_property(text: &str, name: &str) -> Result<Property> {
    let forms = parse_all(text).map_err(|(line, col, msg)| VnnlibError::Syntax {
        file: name.to_string(),
        line,
        col,
        msg,
    })?;
    let mut declared: BTreeMap<(char, usize), (usize, usize)> = BTreeMap::new();
    let mut asserts = Vec::new();
    let p0 = Parser {
        file: name,
        n_x: 0,
        n_y: 0,
    };
    for f in &forms {
        let Sexp::List(items, ..) = f else {
            return Err(p0.dialect(
                f.pos(),
                "a top-level form must be (declare-const ...) or (assert ...)",
            ));
        };
        match items.first() {
            Some(Sexp::Atom(h, ..)) if h == "declare-const" => {
                let (v, sort) = match (items.get(1), items.get(2), items.len()) {
                    (Some(Sexp::Atom(v, ..)), Some(Sexp::Atom(s, ..)), 3) => (v, s),
                    _ => return Err(p0.dialect(f.pos(), "expected (declare-const NAME Real)")),
                };
                let Some(key) = variable(v) else {
                    return Err(p0.dialect(
                        f.pos(),
                        format!("variable {v:?}: inputs are named X_i and outputs Y_j"),
                    ));
                };
                if sort != "Real" {
                    return Err(p0.dialect(
                        f.pos(),
                        format!("{v} has sort {sort}; only Real is supported"),
                    ));
                }
                if declared.insert(key, f.pos()).is_some() {
                    return Err(p0.dialect(f.pos(), format!("{v} is declared twice")));
                }
            }
            Some(Sexp::Atom(h, ..)) if h == "assert" => {
                if items.len() != 2 {
                    return Err(p0.dialect(f.pos(), "expected (assert FORMULA)"));
                }
                asserts.push(&items[1]);
            }
            Some(Sexp::Atom(h, ..)) => {
                return Err(p0.dialect(
                    f.pos(),
                    format!("{h:?} is outside the dialect (top level: declare-const, assert)"),
                ))
            }
            _ => return Err(p0.dialect(f.pos(), "a top-level form must start with a name")),
        }
    }
    let count = |kind: char| -> Result<usize> {
        let idx: Vec<usize> = declared
            .keys()
            .filter(|k| k.0 == kind)
            .map(|k| k.1)
            .collect();
        for (want, &got) in idx.iter().enumerate() {
            if want != got {
                return Err(p0.dialect(
                    declared[&(kind, got)],
                    format!("{kind}_{got} is declared but {kind}_{want} is not"),
                ));
            }
        }
        Ok(idx.len())
    };
    let (n_x, n_y) = (count('X')?, count('Y')?);
    if n_x == 0 || n_y == 0 {
        return Err(VnnlibError::Dialect {
            file: name.to_string(),
            line: 1,
            col: 1,
            msg: format!("{n_x} inputs (X_i) and {n_y} outputs (Y_j) declared; both are needed"),
        });
    }
    if asserts.is_empty() {
        return Err(VnnlibError::Dialect {
            file: name.to_string(),
            line: 1,
            col: 1,
            msg: "no assert: the file states no property".into(),
        });
    }
    let p = Parser {
        file: name,
        n_x,
        n_y,
    };
    // The conjunction of all asserts, in disjunctive normal form.
    let dnf = p.conjunction(asserts.iter().copied())?;
    let mut cases: Vec<Case> = Vec::new();
    // Disjuncts with the same box (bit for bit) share a case.
    let mut case_of: std::collections::HashMap<Vec<u64>, usize> = std::collections::HashMap::new();
    'disjunct: for conj in &dnf {
        let mut lo: Vec<Option<(f64, (usize, usize))>> = vec![None; n_x];
        let mut hi: Vec<Option<(f64, (usize, usize))>> = vec![None; n_x];
        let mut lo_in = vec![f64::NEG_INFINITY; n_x];
        let mut hi_in = vec![f64::INFINITY; n_x];
        let mut outs = Vec::new();
        for a in conj {
            let pos = (a.line, a.col);
            match (a.lin.x.is_empty(), a.lin.y.is_empty()) {
                (false, false) => {
                    return Err(p.dialect(pos, "this atom relates an input X_i to an output Y_j; inputs must be bounded by numbers"))
                }
                (true, true) => {
                    // A constant atom k <= 0: true drops out, false empties the disjunct.
                    if a.lin.k().signum() > 0 {
                        continue 'disjunct;
                    }
                }
                (false, true) => {
                    if a.lin.x.len() > 1 {
                        return Err(p.dialect(pos, "an input atom must bound one X_i by a number (the input set must be a box)"));
                    }
                    let (&i, c) = a.lin.x.iter().next().expect("one entry");
                    let minus_k = a.lin.k().neg();
                    // c X_i + k <= 0 with c = +1 (X_i <= -k) or c = -1 (X_i >= k).
                    match c.exact_f64() {
                        Some(1.0) => {
                            let (dn, up) = minus_k.enclosure().ok_or_else(|| p.dialect(pos, "a bound beyond the f64 range"))?;
                            hi_in[i] = hi_in[i].min(dn);
                            if hi[i].is_none_or(|(h, _)| up < h) {
                                hi[i] = Some((up, pos));
                            }
                        }
                        Some(-1.0) => {
                            let (down, up) = a.lin.k().enclosure().ok_or_else(|| p.dialect(pos, "a bound beyond the f64 range"))?;
                            lo_in[i] = lo_in[i].max(up);
                            if lo[i].is_none_or(|(l, _)| down > l) {
                                lo[i] = Some((down, pos));
                            }
                        }
                        _ => {
                            return Err(p.dialect(pos, format!("an input bound must compare X_{i} itself with a number (coefficient 1)")))
                        }
                    }
                }
                (true, false) => {
                    let mut coef = vec![0.0; n_y];
                    for (&j, c) in &a.lin.y {
                        coef[j] = c.exact_f64().ok_or_else(|| {
                            p.dialect(pos, format!("the coefficient of Y_{j} is not a double; only exactly representable coefficients are supported"))
                        })?;
                    }
                    let (rhs_lo, rhs_hi) = a
                        .lin
                        .k()
                        .neg()
                        .enclosure()
                        .ok_or_else(|| p.dialect(pos, "a constant beyond the f64 range"))?;
                    outs.push(OutputConstraint {
                        coef: coef.into(),
                        rhs_lo,
                        rhs_hi,
                        line: a.line,
                        col: a.col,
                    });
                }
            }
        }
        let mut lower = Vec::with_capacity(n_x);
        let mut upper = Vec::with_capacity(n_x);
        let where_ = conj.first().map_or((1, 1), |a| (a.line, a.col));
        for i in 0..n_x {
            match (lo[i], hi[i]) {
                (Some((l, _)), Some((h, _))) => {
                    lower.push(l);
                    upper.push(h);
                }
                (None, _) => {
                    return Err(p.dialect(where_, format!("X_{i} has no lower bound in the disjunct starting here; the input set must be bounded")))
                }
                (_, None) => {
                    return Err(p.dialect(where_, format!("X_{i} has no upper bound in the disjunct starting here; the input set must be bounded")))
                }
            }
        }
        let key: Vec<u64> = lower
            .iter()
            .chain(&upper)
            .chain(&lo_in)
            .chain(&hi_in)
            .map(|v| v.to_bits())
            .collect();
        let input = InputBox {
            lower: lower.into(),
            upper: upper.into(),
            inner_lower: lo_in.into(),
            inner_upper: hi_in.into(),
        };
        match case_of.get(&key) {
            Some(&k) => cases[k].unsafe_region.push(outs),
            None => {
                case_of.insert(key, cases.len());
                cases.push(Case {
                    input,
                    unsafe_region: vec![outs],
                });
            }
        }
    }
    Ok(Property {
        name: name.to_string(),
        n_inputs: n_x,
        n_outputs: n_y,
        cases,
    })
}
