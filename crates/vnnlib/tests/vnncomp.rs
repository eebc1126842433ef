//! The VNN-COMP 2021 properties (ACAS Xu and the test instances, copied unchanged into
//! `testdata/vnncomp2021/`) parse into the boxes and unsafe regions they state, the
//! dialect's variations parse, and everything outside it is an error with line and column.

use std::cmp::Ordering;

use vnnlib::{parse_property, read_property, Decimal, Property, VnnlibError};

fn testdata(p: &str) -> String {
    format!(
        "{}/../../testdata/vnncomp2021/{p}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The exact decimal `s` lies in `[lo, hi]`, and the ends are at most one ulp apart.
fn encloses(s: &str, lo: f64, hi: f64) -> bool {
    let d = Decimal::parse(s).unwrap();
    d.cmp_f64(lo) != Ordering::Less
        && d.cmp_f64(hi) != Ordering::Greater
        && (hi == lo || hi == lo.next_up())
}

#[test]
fn every_acas_xu_property_parses() {
    for k in 1..=10 {
        let p = read_property(testdata(&format!("acasxu/prop_{k}.vnnlib"))).unwrap();
        assert_eq!((p.n_inputs, p.n_outputs), (5, 5), "prop {k}");
        assert!(!p.cases.is_empty());
        for c in &p.cases {
            assert!(!c.input.is_empty(), "prop {k}");
            assert!(!c.unsafe_region.is_empty());
        }
    }
}

#[test]
fn property_1_is_one_box_and_one_output_bound() {
    let p = read_property(testdata("acasxu/prop_1.vnnlib")).unwrap();
    assert_eq!(p.cases.len(), 1);
    let c = &p.cases[0];
    // (<= X_0 0.679857769) (>= X_0 0.6): rounded outwards, containing the exact decimals.
    let (l, u) = (c.input.lower[0], c.input.upper[0]);
    assert_eq!(Decimal::parse("0.6").unwrap().cmp_f64(l), Ordering::Greater);
    assert_eq!(l, 0.6, "the double 0.6 is below the decimal 0.6");
    assert!(Decimal::parse("0.679857769").unwrap().cmp_f64(u) != Ordering::Greater);
    assert_eq!(c.input.lower[4], -0.5);
    assert_eq!(
        c.input.upper[4],
        (-0.45f64).next_up(),
        "the double -0.45 is below -0.45"
    );
    // Unsafe: Y_0 >= 3.991125645861615, i.e. -Y_0 <= -3.991...
    assert_eq!(c.unsafe_region.len(), 1);
    let k = &c.unsafe_region[0];
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].coef.as_slice(), vec![-1.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(encloses("-3.991125645861615", k[0].rhs_lo, k[0].rhs_hi));
    assert_eq!(k[0].line, 36, "the atom (>= Y_0 ...) is on line 36");
}

#[test]
fn property_6_is_a_union_of_two_boxes_with_four_unsafe_conjunctions_each() {
    let p = read_property(testdata("acasxu/prop_6.vnnlib")).unwrap();
    assert_eq!(p.cases.len(), 2);
    assert!(p.cases[0].input.upper[1] > 0.49 && p.cases[1].input.upper[1] < 0.0);
    for c in &p.cases {
        assert_eq!(c.unsafe_region.len(), 4);
        for (t, conj) in c.unsafe_region.iter().enumerate() {
            // (<= Y_t Y_0): Y_t - Y_0 <= 0.
            assert_eq!(conj.len(), 1);
            let mut want = vec![0.0; 5];
            want[t + 1] = 1.0;
            want[0] = -1.0;
            assert_eq!(conj[0].coef.as_slice(), want);
            assert_eq!((conj[0].rhs_lo, conj[0].rhs_hi), (0.0, 0.0));
        }
    }
}

#[test]
fn property_7_disjunction_of_three_atom_conjunctions() {
    let p = read_property(testdata("acasxu/prop_7.vnnlib")).unwrap();
    assert_eq!(p.cases.len(), 1);
    assert_eq!(p.cases[0].unsafe_region.len(), 2);
    assert!(p.cases[0].unsafe_region.iter().all(|c| c.len() == 3));
}

#[test]
fn the_test_instances_parse_including_boxes_inside_the_or() {
    // test_tiny: (assert (or (and (>= X_0 -1) (<= X_0 1) (>= Y_0 100)))), no final newline.
    let p = read_property(testdata("test/test_tiny.vnnlib")).unwrap();
    assert_eq!((p.n_inputs, p.n_outputs, p.cases.len()), (1, 1, 1));
    assert_eq!(
        (p.cases[0].input.lower[0], p.cases[0].input.upper[0]),
        (-1.0, 1.0)
    );
    assert_eq!(p.cases[0].unsafe_region[0][0].coef.as_slice(), vec![-1.0]);
    assert_eq!(p.cases[0].unsafe_region[0][0].rhs_hi, -100.0);
    for f in ["test_nano", "test_small", "test_prop"] {
        read_property(testdata(&format!("test/{f}.vnnlib"))).unwrap();
    }
}

fn parse(text: &str) -> Result<Property, VnnlibError> {
    parse_property(text, "t.vnnlib")
}

#[test]
fn variations_of_the_dialect_parse() {
    // Declarations in any order (X_10 after X_9 by index, not by name), tabs, comments,
    // numbers as files write them, linear terms, no final newline.
    let mut text = String::new();
    for i in (0..11).rev() {
        text.push_str(&format!("(declare-const X_{i} Real)\t; input {i}\n"));
    }
    text.push_str("(declare-const Y_0 Real)(declare-const Y_1 Real)\n");
    for i in 0..11 {
        text.push_str(&format!(
            "(assert (>= X_{i} -0.5))\n(assert (<= X_{i} 5.8e-05))\n"
        ));
    }
    text.push_str("(assert (<= (+ Y_0 (* 2 Y_1) (- 1.5)) (- Y_1 Y_0)))");
    let p = parse(&text).unwrap();
    assert_eq!(p.n_inputs, 11);
    let c = &p.cases[0];
    assert_eq!(c.input.lower[10], -0.5);
    let u = c.input.upper[10];
    assert_ne!(
        Decimal::parse("5.8e-05").unwrap().cmp_f64(u),
        Ordering::Greater
    );
    assert!(u <= 5.8e-05f64.next_up());
    // Y_0 + 2 Y_1 - 1.5 <= Y_1 - Y_0  ->  2 Y_0 + Y_1 <= 1.5
    let k = &c.unsafe_region[0][0];
    assert_eq!(k.coef.as_slice(), vec![2.0, 1.0]);
    assert_eq!((k.rhs_lo, k.rhs_hi), (1.5, 1.5));
    // Bounds given twice keep the tighter one; reversed sides work.
    let p = parse(
        "(declare-const X_0 Real)(declare-const Y_0 Real)\
         (assert (<= X_0 2))(assert (<= X_0 1))(assert (<= -1 X_0))(assert (>= 3 Y_0))",
    )
    .unwrap();
    assert_eq!(
        (p.cases[0].input.lower[0], p.cases[0].input.upper[0]),
        (-1.0, 1.0)
    );
    assert_eq!(p.cases[0].unsafe_region[0][0].coef.as_slice(), vec![1.0]);
    // A false constant atom removes its disjunct; a true one drops out.
    let p = parse(
        "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0 1))(assert (>= X_0 0))\
         (assert (or (and (<= 1 0) (<= Y_0 5)) (and (<= 0 1) (>= Y_0 7))))",
    )
    .unwrap();
    assert_eq!(p.cases[0].unsafe_region.len(), 1);
    assert_eq!(p.cases[0].unsafe_region[0][0].coef.as_slice(), vec![-1.0]);
}

#[test]
fn gzipped_files_are_read() {
    let dir = std::env::temp_dir().join(format!("convex-outer-vnnlib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read(testdata("acasxu/prop_6.vnnlib")).unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &text).unwrap();
    let gz = dir.join("prop_6.vnnlib.gz");
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let a = read_property(&gz).unwrap();
    let b = read_property(testdata("acasxu/prop_6.vnnlib")).unwrap();
    assert_eq!(a.cases, b.cases);
    let e = read_property(dir.join("missing.vnnlib"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.vnnlib"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn everything_outside_the_dialect_is_an_error_with_its_position() {
    let head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n";
    let boxed = "(assert (<= X_0 1))\n(assert (>= X_0 0))\n";
    for (body, line, col, fragment) in [
        ("(assert (<= X_0 Y_0))\n", 3, 9, "relates an input"),
        ("(assert (< Y_0 1))\n", 3, 9, "strict comparison"),
        (
            "(assert (=> (<= Y_0 1) (<= Y_0 2)))\n",
            3,
            9,
            "outside the dialect",
        ),
        ("(assert (<= Y_1 1))\n", 3, 13, "Y_1 is not declared"),
        ("(assert (<= Y_0 abc))\n", 3, 17, "neither a number"),
        ("(assert (<= (* Y_0 Y_0) 1))\n", 3, 13, "not linear"),
        ("(assert (<= (+ X_0 X_0) 1))\n", 3, 9, "coefficient 1"),
        ("(assert (<= Y_0 1)\n", 3, 1, "never closed"),
        ("(assert (<= Y_0 1)))\n", 3, 20, "unbalanced"),
        ("(check-sat)\n", 3, 1, "outside the dialect"),
        ("(declare-const Z_0 Real)\n", 3, 1, "named X_i"),
        ("(declare-const X_0 Real)\n", 3, 1, "declared twice"),
        ("(declare-const X_2 Real)\n", 3, 1, "X_1 is not"),
        ("(declare-const Y_1 Int)\n", 3, 1, "only Real"),
        ("(assert (<= (* 0.1 Y_0) 1))\n", 3, 9, "not a double"),
        ("(assert (<= Y_0 1e999))\n", 3, 9, "range"),
    ] {
        let text = format!("{head}{boxed}{body}");
        // Shift the expected line past the two box lines.
        let line = line + 2;
        let e = parse(&text).unwrap_err();
        let (l, c) = match &e {
            VnnlibError::Syntax { line, col, .. } | VnnlibError::Dialect { line, col, .. } => {
                (*line, *col)
            }
            other => panic!("{other}"),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("t.vnnlib:"), "{msg}");
        assert!(msg.contains(fragment), "{body:?}: {msg}");
        assert_eq!((l, c), (line, col), "{body:?}: {msg}");
    }
    // A missing bound names the input.
    let e = parse(&format!("{head}(assert (<= X_0 1))\n(assert (<= Y_0 0))")).unwrap_err();
    assert!(e.to_string().contains("X_0 has no lower bound"), "{e}");
    let e = parse("(declare-const X_0 Real)(assert (<= X_0 1))").unwrap_err();
    assert!(e.to_string().contains("0 outputs"), "{e}");
    let e = parse(head).unwrap_err();
    assert!(e.to_string().contains("no assert"), "{e}");
}

/// Inputs built to exhaust the parser (found by review): huge exponents that would wrap
/// around or allocate gigabytes, nesting that would overflow the stack, and formulas that
/// expand to many boxes.
#[test]
fn adversarial_inputs_are_errors_or_fast() {
    let head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0))\n";
    // 1e19999 squared leaves the supported range: an error, not a wrapped exponent.
    let text = format!("{head}(assert (<= X_0 (* 1e19999 1e19999)))");
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("beyond the supported range"), "{e}");
    let text = format!("{head}(assert (<= X_0 1e999999))");
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("neither a number"), "{e}");
    // Deep nesting: a syntax error, not a stack overflow.
    let text = format!(
        "{head}(assert {}(<= Y_0 1){})",
        "(and ".repeat(5000),
        ")".repeat(5000)
    );
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("nesting deeper than 1000"), "{e}");
    // 2^15 distinct boxes (an and of 15 two-way ors on X_0's upper bound): parsed and
    // merged by box.
    let mut text = String::from(
        "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 -1))\n(assert (and",
    );
    for k in 0..15 {
        text.push_str(&format!(
            " (or (<= X_0 {}) (<= X_0 {}))",
            2 * k + 1,
            2 * k + 2
        ));
    }
    text.push_str("))\n(assert (<= Y_0 0))");
    let p = parse(&text).unwrap();
    // Each disjunct's box is X_0 in [-1, min of the chosen upper bounds]: 15 + 1 distinct
    // upper bounds at most (the smallest chosen), so few cases, 2^15 conjunctions.
    let total: usize = p.cases.iter().map(|c| c.unsafe_region.len()).sum();
    assert_eq!(total, 1 << 15);
    assert!(p.cases.len() <= 30);
}
