//! The convolution kernels against a direct six-loop convolution, over strides, paddings,
//! kernel sizes and odd image sizes: `apply`, `apply_transpose` (the adjoint, computed by
//! the same loops), the unit column `W e_j` (`add_unit_column`) and the row taps
//! (`for_each_in_row`) must all agree with the definition
//! `out[co, oy, ox] = sum_{ci, ky, kx} w[co, ci, ky, kx] in[ci, oy*s - p + ky, ox*s - p + kx]`
//! (zero outside the image).

use network::{ConvGeometry, LinearOp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The definition, written out: the dense matrix `W[out][in]` of the convolution.
fn dense_by_definition(g: &ConvGeometry, w: &[f64]) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; g.n_in()]; g.n_out()];
    for co in 0..g.out_channels {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let row = (co * g.out_h + oy) * g.out_w + ox;
                for ci in 0..g.in_channels {
                    for ky in 0..g.kernel_h {
                        for kx in 0..g.kernel_w {
                            let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                            let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                            if iy < 0 || ix < 0 || iy >= g.in_h as isize || ix >= g.in_w as isize {
                                continue;
                            }
                            let col = (ci * g.in_h + iy as usize) * g.in_w + ix as usize;
                            let k = ((co * g.in_channels + ci) * g.kernel_h + ky) * g.kernel_w + kx;
                            m[row][col] += w[k];
                        }
                    }
                }
            }
        }
    }
    m
}

#[test]
fn conv_kernels_match_the_definition() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut checked = 0;
    for (in_c, out_c, k, s, p, h, w) in [
        (1, 1, 1, 1, 0, 3, 3),
        (1, 2, 3, 1, 1, 5, 5),
        (2, 3, 3, 2, 1, 7, 6),
        (1, 2, 4, 2, 1, 7, 9),
        (3, 2, 2, 3, 0, 8, 7),
        (2, 2, 3, 2, 0, 6, 5),
        (1, 3, 3, 2, 2, 5, 4),
        (2, 1, 5, 1, 2, 5, 6),
    ] {
        let out_h = ConvGeometry::out_dim(h, k, s, p).unwrap();
        let out_w = ConvGeometry::out_dim(w, k, s, p).unwrap();
        let g = ConvGeometry {
            in_channels: in_c,
            out_channels: out_c,
            kernel_h: k,
            kernel_w: k,
            stride: s,
            padding: p,
            in_h: h,
            in_w: w,
            out_h,
            out_w,
        };
        let wts: Vec<f64> = (0..out_c * in_c * k * k)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let m = dense_by_definition(&g, &wts);
        let op = LinearOp::Conv {
            weight: wts.clone(),
            geom: g,
        };
        let tol = 1e-12;
        // apply on 3 columns
        let ncols = 3;
        let x: Vec<f64> = (0..g.n_in() * ncols)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut out = vec![0.0; g.n_out() * ncols];
        op.apply(&x, ncols, &mut out);
        for c in 0..ncols {
            for (r, row) in m.iter().enumerate() {
                let want: f64 = row.iter().zip(&x[c * g.n_in()..]).map(|(a, b)| a * b).sum();
                let got = out[c * g.n_out() + r];
                assert!(
                    (got - want).abs() <= tol,
                    "{g:?} apply row {r}: {got} vs {want}"
                );
            }
        }
        // apply_transpose
        let y: Vec<f64> = (0..g.n_out() * ncols)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut back = vec![0.0; g.n_in() * ncols];
        op.apply_transpose(&y, ncols, &mut back);
        for c in 0..ncols {
            for j in 0..g.n_in() {
                let want: f64 = (0..g.n_out()).map(|r| m[r][j] * y[c * g.n_out() + r]).sum();
                let got = back[c * g.n_in() + j];
                assert!(
                    (got - want).abs() <= tol,
                    "{g:?} transpose col {j}: {got} vs {want}"
                );
            }
        }
        // unit columns and row taps
        for j in 0..g.n_in() {
            let mut col = vec![0.0; g.n_out()];
            op.add_unit_column(j, 2.0, &mut col);
            for (r, row) in m.iter().enumerate() {
                assert_eq!(col[r], 2.0 * row[j], "{g:?} unit column {j} row {r}");
            }
        }
        for (r, row) in m.iter().enumerate() {
            let mut taps = vec![0.0; g.n_in()];
            op.for_each_in_row(r, |j, v| taps[j] += v);
            assert_eq!(&taps, row, "{g:?} row {r}");
        }
        checked += 1;
    }
    assert_eq!(checked, 8);
}
