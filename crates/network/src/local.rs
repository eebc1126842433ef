//! Local ("patches") batches of columns over a channel-major `C x H x W` layer: every
//! column is zero outside one spatial window (all channels), and only the window is stored.
//!
//! Algorithm 1 of Wong & Kolter (2018) pushes one column per input pixel and per unstable
//! unit forward through the network (`dual::algorithm1`). Through convolutions such a
//! column stays inside the receptive field of its pixel or unit: a 4x4 stride-2 kernel maps
//! a pixel to at most 2 x 2 output positions, and the next one to at most 3 x 3. Storing
//! and applying only that window is the locality auto_LiRPA exploits in its "patches" mode
//! (Xu et al., NeurIPS 2020, there for backward bounds); here it replaces dense columns
//! the size of the layer, so the cost of a column follows its receptive field instead of
//! the layer.
//!
//! Rounding: an entry outside a column's window is an exact zero, in floating point and
//! in exact arithmetic alike (every operator tap reading it multiplies zeros). Every stored
//! entry is computed as a sum of the dense product's nonzero terms plus exact zeros, in
//! some association (a GEMM over a local matrix, entry-by-entry scattering, per-row
//! products added up); adding an exact zero never rounds, so the error of such a sum of `m`
//! nonzero products is within `gamma_m` times the sum of their magnitudes whatever the
//! association (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, sec. 3.1
//! and 4.2), and `m` never exceeds the dense dot product's length: the dense product's
//! rounding bound, which the proven bounds of `dual::algorithm1` use, holds unchanged. With
//! AVX2 and FMA (detected at run time) a multiply-add rounds once instead of twice, within
//! the same bound.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::ops::{gemm, ConvGeometry};
use crate::real::Real;

/// Columns of one class (same window size and place on the stride grid) from which
/// [`LocalBatch::conv`] builds the class's local matrix and multiplies them in one GEMM;
/// smaller classes are scattered entry by entry.
const MIN_CLASS: usize = 8;

/// A class's local matrix is built only when it has at most this many entries per useful
/// multiply-add (a GEMM runs ~4x faster per multiply-add than scattering).
const MAX_ZERO_RATIO: usize = 4;

/// Pairs (input position of `win`, output position of `ow`) joined by a tap of the
/// kernel: the useful multiply-adds of one column are this times in x out channels.
fn useful_taps(geom: &ConvGeometry, win: &Window, ow: &Window) -> usize {
    // `ow` is the union of the outputs each window row and column reaches (`conv`), so
    // every reached range lies inside it.
    debug_assert!(win.area() == 0 || ow.area() > 0);
    let rows: usize = (win.y0..win.y0 + win.h)
        .map(|iy| {
            let (lo, hi) = reached(iy, 1, geom.kernel_h, geom.stride, geom.padding, geom.out_h);
            hi - lo
        })
        .sum();
    let cols: usize = (win.x0..win.x0 + win.w)
        .map(|ix| {
            let (lo, hi) = reached(ix, 1, geom.kernel_w, geom.stride, geom.padding, geom.out_w);
            hi - lo
        })
        .sum();
    rows * cols
}

/// What fixes a column's local matrix for a convolution: the offset of its input window
/// from the first input the output window reads (`dy = win.y0 + padding - ow.y0 * stride`,
/// `dx` alike: the kernel row and column with which the output window's first position
/// reads the input window's first) and the two windows' sizes. Columns with equal keys
/// share one local matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ClassKey {
    dy: isize,
    dx: isize,
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
}

impl ClassKey {
    fn of(geom: &ConvGeometry, win: &Window, ow: &Window) -> ClassKey {
        let (s, p) = (geom.stride as isize, geom.padding as isize);
        ClassKey {
            dy: win.y0 as isize + p - ow.y0 as isize * s,
            dx: win.x0 as isize + p - ow.x0 as isize * s,
            h: win.h,
            w: win.w,
            out_h: ow.h,
            out_w: ow.w,
        }
    }
}

/// Window rows at one place of the layer, `(row, first column, width)`, and the columns
/// that have one there, `(column, row within its window)` (see [`LocalBatch::dense`]).
type RunGroup = ((usize, usize, usize), Vec<(usize, usize)>);

/// A spatial window `[y0, y0 + h) x [x0, x0 + w)` of a layer, all channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Window {
    /// First row.
    pub y0: usize,
    /// First column.
    pub x0: usize,
    /// Rows (0 for an empty window).
    pub h: usize,
    /// Columns (0 for an empty window).
    pub w: usize,
}

impl Window {
    /// Positions in the window (`h * w`).
    pub fn area(&self) -> usize {
        self.h * self.w
    }
}

/// A batch of columns of a `channels x height x width` layer, each stored as its window's
/// values (`channels x h x w`, channel-major, row-major within a channel).
///
/// `T` is the type the values are stored and multiplied in ([`Real`]: f64, the default,
/// or f32, whose kernels round the f64 weights to f32 where they read them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocalBatch<T = f64> {
    channels: usize,
    height: usize,
    width: usize,
    windows: Vec<Window>,
    /// Column `c`'s values are `values[offsets[c]..offsets[c + 1]]`.
    offsets: Vec<usize>,
    values: Vec<T>,
}

/// Output rows `[lo, hi)` of a convolution (one spatial dimension) that read at least one
/// input position of `[start, start + len)`.
fn reached(
    start: usize,
    len: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    out: usize,
) -> (usize, usize) {
    if len == 0 {
        return (0, 0);
    }
    // Output o reads inputs [o s - p, o s - p + k - 1].
    let first = (start + pad + 1).saturating_sub(kernel).div_ceil(stride);
    let last = (start + len - 1 + pad) / stride; // inclusive
    let hi = (last + 1).min(out);
    if first >= hi {
        (0, 0)
    } else {
        (first, hi)
    }
}

/// One column's convolution by scattering (see [`LocalBatch::conv`]).
struct Scatter<'a, T> {
    geom: &'a ConvGeometry,
    /// Weights tap-major: `taps[t * out_channels + channel]`.
    taps: &'a [T],
    /// The column's window (input layer) and its values.
    win: Window,
    vals: &'a [T],
    /// The output window.
    ow: &'a Window,
    /// Output rows `[lo, hi)` reached by each window row, output columns by each column.
    ys: &'a [(usize, usize)],
    xs: &'a [(usize, usize)],
}

/// Whether this CPU runs [`scatter_fma`] (x86-64 with AVX2 and FMA, detected at run time).
fn fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`scatter_body`] compiled with AVX2 and FMA (one rounding per multiply-add instead of
/// two: the same rounding bound holds).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scatter_fma<T: Real>(job: &Scatter<T>, acc: &mut [T]) {
    scatter_body::<T, true>(job, acc)
}

/// Adds every nonzero input entry times its taps' output-channel vectors into `acc`
/// (position-major over the output window).
#[inline(always)]
fn scatter_body<T: Real, const FMA: bool>(job: &Scatter<T>, acc: &mut [T]) {
    let g = job.geom;
    let oc = g.out_channels;
    let (win, ow) = (job.win, job.ow);
    let in_area = win.area();
    for ci in 0..g.in_channels {
        let plane = &job.vals[ci * in_area..(ci + 1) * in_area];
        for (y, &(ylo, yhi)) in job.ys.iter().enumerate() {
            let iy = win.y0 + y;
            for (x, &(xlo, xhi)) in job.xs.iter().enumerate() {
                let v = plane[y * win.w + x];
                if v == T::zero() {
                    continue;
                }
                let ix = win.x0 + x;
                for oy in ylo..yhi {
                    let ky = iy + g.padding - oy * g.stride;
                    for ox in xlo..xhi {
                        let kx = ix + g.padding - ox * g.stride;
                        let t = (ci * g.kernel_h + ky) * g.kernel_w + kx;
                        let p = (oy - ow.y0) * ow.w + (ox - ow.x0);
                        let w = &job.taps[t * oc..(t + 1) * oc];
                        let a = &mut acc[p * oc..(p + 1) * oc];
                        if FMA {
                            for (a, wv) in a.iter_mut().zip(w) {
                                *a = v.mul_add(*wv, *a);
                            }
                        } else {
                            for (a, wv) in a.iter_mut().zip(w) {
                                *a += v * *wv;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<T: Real> LocalBatch<T> {
    /// An empty batch over a `channels x height x width` layer.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        LocalBatch {
            channels,
            height,
            width,
            windows: Vec::new(),
            offsets: vec![0],
            values: Vec::new(),
        }
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// True when the batch has no column.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The layer's shape, `(channels, height, width)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Values per (dense) column: `channels * height * width`.
    pub fn n(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Values stored over all columns.
    pub fn stored(&self) -> usize {
        self.values.len()
    }

    /// Column `c`'s window.
    pub fn window(&self, c: usize) -> Window {
        self.windows[c]
    }

    /// Column `c`'s stored values (`channels x h x w`).
    pub fn values(&self, c: usize) -> &[T] {
        &self.values[self.offsets[c]..self.offsets[c + 1]]
    }

    /// Column `c` as runs of consecutive dense rows: `(first dense row, values)`, one run
    /// per channel and window row.
    pub fn segments(&self, c: usize) -> impl Iterator<Item = (usize, &[T])> + '_ {
        let win = self.windows[c];
        let vals = self.values(c);
        let (h, w, hw) = (self.height, self.width, self.height * self.width);
        (0..self.channels * win.h).map(move |r| {
            let (ch, y) = (r / win.h, r % win.h);
            let start = ch * hw + (win.y0 + y) * w + win.x0;
            debug_assert!(win.y0 + y < h);
            (start, &vals[r * win.w..(r + 1) * win.w])
        })
    }

    fn push_window(&mut self, win: Window) -> &mut [T] {
        let start = self.values.len();
        let len = self.channels * win.area();
        self.values.resize(start + len, T::zero());
        self.windows.push(win);
        self.offsets.push(start + len);
        &mut self.values[start..]
    }

    /// Appends `scale * W e_unit` for the convolution `W` (`weight`: `[out][in][kh][kw]`),
    /// whose output layer this batch is over: each entry is `fl(scale * w)`, rounded once
    /// (exact when `scale` is 1), as [`crate::LinearOp::add_unit_column`] computes it.
    ///
    /// Panics if the batch's layer is not the convolution's output or `unit` is not one of
    /// its inputs.
    pub fn push_conv_unit_column(
        &mut self,
        geom: &ConvGeometry,
        weight: &[f64],
        unit: usize,
        scale: f64,
    ) {
        assert_eq!(
            (self.channels, self.height, self.width),
            (geom.out_channels, geom.out_h, geom.out_w),
            "push_conv_unit_column: the batch is not over the convolution's output"
        );
        assert!(
            unit < geom.n_in(),
            "push_conv_unit_column: unit out of range"
        );
        let plane = geom.in_h * geom.in_w;
        let (ci, rest) = (unit / plane, unit % plane);
        let (iy, ix) = (rest / geom.in_w, rest % geom.in_w);
        let (ylo, yhi) = reached(iy, 1, geom.kernel_h, geom.stride, geom.padding, geom.out_h);
        let (xlo, xhi) = reached(ix, 1, geom.kernel_w, geom.stride, geom.padding, geom.out_w);
        let win = Window {
            y0: ylo,
            x0: xlo,
            h: yhi - ylo,
            w: xhi - xlo,
        };
        let k = geom.patch();
        let area = win.area();
        let vals = self.push_window(win);
        for oy in ylo..yhi {
            let ky = iy + geom.padding - oy * geom.stride;
            for ox in xlo..xhi {
                let kx = ix + geom.padding - ox * geom.stride;
                let kk = (ci * geom.kernel_h + ky) * geom.kernel_w + kx;
                let p = (oy - ylo) * win.w + (ox - xlo);
                for c in 0..geom.out_channels {
                    vals[c * area + p] = T::of(scale * weight[c * k + kk]);
                }
            }
        }
    }

    /// Multiplies row `i` of every column by `d[i]` (`d`: one value per dense row).
    pub fn scale_rows(&mut self, d: &[f64]) {
        assert_eq!(d.len(), self.n(), "scale_rows: one factor per row");
        let (windows, offsets) = (&self.windows, &self.offsets);
        let (h, w) = (self.height, self.width);
        let mut cols: Vec<&mut [T]> = Vec::with_capacity(windows.len());
        let mut rest = &mut self.values[..];
        for c in 0..windows.len() {
            let (a, b) = rest.split_at_mut(offsets[c + 1] - offsets[c]);
            cols.push(a);
            rest = b;
        }
        cols.par_iter_mut()
            .zip(windows.par_iter())
            .with_min_len(16)
            .for_each(|(vals, win)| {
                if win.area() == 0 {
                    return;
                }
                for (r, run) in vals.chunks_exact_mut(win.w).enumerate() {
                    let (ch, y) = (r / win.h, r % win.h);
                    let start = (ch * h + win.y0 + y) * w + win.x0;
                    for (v, s) in run.iter_mut().zip(&d[start..start + win.w]) {
                        *v = T::of(v.widen() * s);
                    }
                }
            });
    }

    /// Writes the batch densely into `out` (`n x len`, column-major).
    pub fn to_dense(&self, out: &mut [T]) {
        let n = self.n();
        assert_eq!(out.len(), n * self.len(), "to_dense: output size");
        out.fill(T::zero());
        for c in 0..self.len() {
            let col = &mut out[c * n..(c + 1) * n];
            for (start, run) in self.segments(c) {
                col[start..start + run.len()].copy_from_slice(run);
            }
        }
    }

    /// The convolution `W` applied to every column, as a batch over its output layer: each
    /// output window holds the positions whose receptive field meets the input window.
    /// Each entry is the dense kernel's dot product over the same taps summed in another
    /// order, with the taps that read zeros skipped. Returns the batch and the useful
    /// multiply-adds (one per tap joining an input and an output position of the windows,
    /// per input and output channel; a class multiplied by its local matrix also multiplies
    /// that matrix's zeros, at most [`MAX_ZERO_RATIO`] times as many).
    ///
    /// Panics if the batch is not over the convolution's input layer.
    pub fn conv(&self, geom: &ConvGeometry, weight: &[f64]) -> (LocalBatch<T>, u64) {
        assert_eq!(
            (self.channels, self.height, self.width),
            (geom.in_channels, geom.in_h, geom.in_w),
            "conv: the batch is not over the convolution's input"
        );
        let mut out = LocalBatch::new(geom.out_channels, geom.out_h, geom.out_w);
        for win in &self.windows {
            let (ylo, yhi) = reached(
                win.y0,
                win.h,
                geom.kernel_h,
                geom.stride,
                geom.padding,
                geom.out_h,
            );
            let (xlo, xhi) = reached(
                win.x0,
                win.w,
                geom.kernel_w,
                geom.stride,
                geom.padding,
                geom.out_w,
            );
            out.push_window(Window {
                y0: ylo,
                x0: xlo,
                h: yhi - ylo,
                w: xhi - xlo,
            });
        }
        // Weights tap-major (`[in][kh][kw][out]`): one contiguous vector of output
        // channels per tap.
        let (k, oc) = (geom.patch(), geom.out_channels);
        let mut taps = vec![T::zero(); k * oc];
        for c in 0..oc {
            for t in 0..k {
                taps[t * oc + c] = T::of(weight[c * k + t]);
            }
        }
        // Columns whose windows have the same size and sit alike on the stride grid share
        // one local matrix (output window x input window): a class with enough members is
        // multiplied by it in one GEMM, a small one entry by entry.
        let s = geom.stride as isize;
        let mut classes: HashMap<ClassKey, Vec<usize>> = HashMap::new();
        for (c, (win, ow)) in self.windows.iter().zip(&out.windows).enumerate() {
            if win.area() > 0 && ow.area() > 0 {
                classes
                    .entry(ClassKey::of(geom, win, ow))
                    .or_default()
                    .push(c);
            }
        }
        let mut classes: Vec<(ClassKey, Vec<usize>)> = classes.into_iter().collect();
        // Largest classes first (load balance), then a fixed order for reproducibility.
        classes.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let products: Vec<Vec<T>> = classes
            .par_iter()
            .map(|(key, members)| {
                let first = members[0];
                let (win, ow) = (self.windows[first], out.windows[first]);
                let (k_in, k_out) = (self.channels * win.area(), oc * ow.area());
                let g = members.len();
                let mut vals = vec![T::zero(); k_out * g];
                // The local matrix holds zeros wherever a tap falls outside the kernel; it is
                // worth building only for a class large enough and not mostly zeros (a 1x1
                // convolution's local matrix is the window's area times its useful work).
                let useful = geom.in_channels * oc * useful_taps(geom, &win, &ow);
                if g < MIN_CLASS || k_out * k_in > MAX_ZERO_RATIO * useful {
                    let mut acc = Vec::new();
                    for (o, &c) in vals.chunks_exact_mut(k_out).zip(members) {
                        self.scatter_conv(c, geom, &taps, &out.windows[c], &mut acc, o, true);
                    }
                    return vals;
                }
                // The local matrix, row-major `k_out x k_in`: entry ((o, oy, ox), (i, y, x))
                // is the tap of `W` that output reads input with, or 0.
                let mut m = vec![T::zero(); k_out * k_in];
                let (dy, dx) = (key.dy, key.dx);
                for oy in 0..ow.h {
                    for y in 0..win.h {
                        let ky = y as isize + dy - oy as isize * s;
                        if ky < 0 || ky >= geom.kernel_h as isize {
                            continue;
                        }
                        for ox in 0..ow.w {
                            for x in 0..win.w {
                                let kx = x as isize + dx - ox as isize * s;
                                if kx < 0 || kx >= geom.kernel_w as isize {
                                    continue;
                                }
                                for ci in 0..geom.in_channels {
                                    let t = (ci * geom.kernel_h + ky as usize) * geom.kernel_w
                                        + kx as usize;
                                    let col = (ci * win.h + y) * win.w + x;
                                    for o in 0..oc {
                                        let row = (o * ow.h + oy) * ow.w + ox;
                                        m[row * k_in + col] = taps[t * oc + o];
                                    }
                                }
                            }
                        }
                    }
                }
                let mut b = Vec::with_capacity(k_in * g);
                for &c in members {
                    b.extend_from_slice(self.values(c));
                }
                gemm(
                    k_out,
                    k_in,
                    g,
                    &m,
                    (k_in, 1),
                    &b,
                    (1, k_in),
                    T::zero(),
                    &mut vals,
                    (1, k_out),
                );
                vals
            })
            .collect();
        let mut macs = 0u64;
        for ((_, members), vals) in classes.iter().zip(&products) {
            let first = members[0];
            let taps = useful_taps(geom, &self.windows[first], &out.windows[first]);
            macs += (members.len() * geom.in_channels * oc * taps) as u64;
            let k_out = vals.len() / members.len();
            for (v, &c) in vals.chunks_exact(k_out).zip(members) {
                out.values[out.offsets[c]..out.offsets[c + 1]].copy_from_slice(v);
            }
        }
        (out, macs)
    }

    /// Column `c` through the convolution into the output window `ow` (`o`: channel-major
    /// values of the window), one input entry at a time: each nonzero entry adds its value
    /// times the tap's vector of output channels to every output position that reads it
    /// (zeros are skipped: they add exact zeros). Each output entry is a sum of at most
    /// `patch` products, as in the dense kernel, in another order. `fma`: use fused
    /// multiply-adds where the CPU has them (the portable kernel otherwise).
    #[allow(clippy::too_many_arguments)]
    fn scatter_conv(
        &self,
        c: usize,
        geom: &ConvGeometry,
        taps: &[T],
        ow: &Window,
        acc: &mut Vec<T>,
        o: &mut [T],
        fma: bool,
    ) {
        let oc = geom.out_channels;
        let pix = ow.area();
        if pix == 0 {
            return;
        }
        // Position-major accumulator: acc[p * oc + channel].
        acc.clear();
        acc.resize(pix * oc, T::zero());
        let win = self.windows[c];
        // Output rows and columns each input row and column of the window reaches.
        let ys: Vec<(usize, usize)> = (win.y0..win.y0 + win.h)
            .map(|iy| reached(iy, 1, geom.kernel_h, geom.stride, geom.padding, geom.out_h))
            .collect();
        let xs: Vec<(usize, usize)> = (win.x0..win.x0 + win.w)
            .map(|ix| reached(ix, 1, geom.kernel_w, geom.stride, geom.padding, geom.out_w))
            .collect();
        let job = Scatter {
            geom,
            taps,
            win,
            ow,
            vals: self.values(c),
            ys: &ys,
            xs: &xs,
        };
        if fma && fma_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has the features the function is compiled for (checked above).
            unsafe {
                scatter_fma(&job, acc)
            }
        } else {
            scatter_body::<T, false>(&job, acc)
        }
        for (p, a) in acc.chunks_exact(oc).enumerate() {
            for (ch, v) in a.iter().enumerate() {
                o[ch * pix + p] = *v;
            }
        }
    }

    /// The dense matrix `W` (`rows x n`, row-major) applied to every column, written into
    /// `out` (`rows x len`, column-major). Each window row (all channels) multiplies one
    /// block of `W`'s columns; the window rows of all columns at the same place in the
    /// layer share that block and are multiplied in one GEMM, and a column's product is
    /// the sum of its rows' (each entry a sum of the dense product's nonzero terms in
    /// another order). Returns the multiply-adds spent.
    ///
    /// Panics if `W`'s width is not `n` or `out` has the wrong size.
    pub fn dense(&self, weight: &[f64], rows: usize, out: &mut [T]) -> u64 {
        let n = self.n();
        assert_eq!(weight.len(), rows * n, "dense: weight is not rows x n");
        assert_eq!(out.len(), rows * self.len(), "dense: output size");
        let (c_n, h_n, w_n) = (self.channels, self.height, self.width);
        let hw = h_n * w_n;
        // `W` with its columns in position-major order (`[y][x][channel]`), so that one
        // window row of every channel is one contiguous block of columns: a GEMM reads it
        // in place, with no gather.
        let mut wp = vec![T::zero(); rows * n];
        wp.par_chunks_mut(n.max(1))
            .zip(weight.par_chunks(n.max(1)))
            .for_each(|(dst, src)| {
                for ch in 0..c_n {
                    for pos in 0..hw {
                        dst[pos * c_n + ch] = T::of(src[ch * hw + pos]);
                    }
                }
            });
        // Every window row of every column, grouped by its place in the layer (row, first
        // column, width): the members of a group multiply the same block of `W`, in one
        // GEMM.
        let mut by_run: HashMap<(usize, usize, usize), Vec<(usize, usize)>> = HashMap::new();
        for (c, win) in self.windows.iter().enumerate() {
            if win.area() > 0 {
                for y in 0..win.h {
                    by_run
                        .entry((win.y0 + y, win.x0, win.w))
                        .or_default()
                        .push((c, y));
                }
            }
        }
        let mut groups: Vec<RunGroup> = by_run.into_iter().collect();
        // Largest groups first (load balance), then a fixed order for reproducibility.
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let products: Vec<Vec<T>> = groups
            .par_iter()
            .map(|((y, x0, w), members)| {
                let (y, x0, w) = (*y, *x0, *w);
                let k = w * c_n;
                let g = members.len();
                // The members' window rows, position-major (`[x][channel]`).
                let mut b = vec![T::zero(); k * g];
                for (col, &(c, r)) in b.chunks_exact_mut(k).zip(members) {
                    let h = self.windows[c].h;
                    let vals = self.values(c);
                    for ch in 0..c_n {
                        let src = &vals[(ch * h + r) * w..][..w];
                        for (x, v) in src.iter().enumerate() {
                            col[x * c_n + ch] = *v;
                        }
                    }
                }
                let mut c_out = vec![T::zero(); rows * g];
                gemm(
                    rows,
                    k,
                    g,
                    &wp[(y * w_n + x0) * c_n..],
                    (n, 1),
                    &b,
                    (1, k),
                    T::zero(),
                    &mut c_out,
                    (1, rows),
                );
                c_out
            })
            .collect();
        // Each column's product is the sum of its rows' products (columns with an empty
        // window are zero).
        out.fill(T::zero());
        let mut macs = 0u64;
        for (((_, _, w), members), c_out) in groups.iter().zip(&products) {
            macs += (rows * w * c_n * members.len()) as u64;
            for (j, &(c, _)) in members.iter().enumerate() {
                for (o, v) in out[c * rows..(c + 1) * rows]
                    .iter_mut()
                    .zip(&c_out[j * rows..(j + 1) * rows])
                {
                    *o += *v;
                }
            }
        }
        macs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinearOp;

    fn geom(c: usize, o: usize, k: usize, s: usize, p: usize, h: usize, w: usize) -> ConvGeometry {
        rect(c, o, (k, k), s, p, (h, w))
    }

    /// A convolution with a `kh x kw` kernel on an `h x w` image.
    fn rect(
        c: usize,
        o: usize,
        (kh, kw): (usize, usize),
        s: usize,
        p: usize,
        (h, w): (usize, usize),
    ) -> ConvGeometry {
        ConvGeometry {
            in_channels: c,
            out_channels: o,
            kernel_h: kh,
            kernel_w: kw,
            stride: s,
            padding: p,
            in_h: h,
            in_w: w,
            out_h: ConvGeometry::out_dim(h, kh, s, p).unwrap(),
            out_w: ConvGeometry::out_dim(w, kw, s, p).unwrap(),
        }
    }

    fn weights(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// Unit columns, a convolution, row scaling and a dense layer: every step equals the
    /// dense operators' result (bit for bit, or to rounding where the order of a sum
    /// differs), over geometries with and without padding,
    /// strides 1-3 and kernels larger than the stride (and one where stride > kernel
    /// leaves inputs unread).
    #[test]
    fn local_steps_equal_the_dense_operators() {
        for (i, (g1, g2)) in [
            (geom(1, 3, 4, 2, 1, 12, 10), geom(3, 4, 4, 2, 1, 6, 5)),
            (geom(2, 3, 3, 1, 0, 7, 8), geom(3, 2, 3, 1, 1, 5, 6)),
            (geom(1, 2, 2, 3, 0, 9, 9), geom(2, 3, 3, 2, 2, 3, 3)),
            (geom(2, 2, 5, 1, 2, 6, 6), geom(2, 2, 3, 3, 1, 6, 6)),
            // Both convolutions leave inputs unread (empty windows in and out), the second
            // a 1x1 kernel (its local matrices mostly zeros: scattered).
            (geom(1, 2, 2, 3, 0, 9, 9), geom(2, 3, 1, 2, 0, 3, 3)),
            // A 1x1 stride-1 convolution of large windows: classes large, matrices sparse.
            (geom(1, 3, 5, 1, 2, 8, 8), geom(3, 2, 1, 1, 0, 8, 8)),
            // Rectangular kernels (3x1, then 1x3) on a non-square image.
            (
                rect(2, 3, (3, 1), 2, 1, (7, 5)),
                rect(3, 2, (1, 3), 1, 1, (4, 4)),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let w1 = weights(g1.out_channels * g1.patch(), 3 * i as u64);
            let w2 = weights(g2.out_channels * g2.patch(), 3 * i as u64 + 1);
            let op1 = LinearOp::Conv {
                weight: w1.clone(),
                geom: g1,
            };
            let op2 = LinearOp::Conv {
                weight: w2.clone(),
                geom: g2,
            };
            let (n0, n1, n2) = (g1.n_in(), g1.n_out(), g2.n_out());
            let mut local = LocalBatch::new(g1.out_channels, g1.out_h, g1.out_w);
            let mut dense = vec![0.0; n1 * n0];
            for j in 0..n0 {
                let scale = if j % 3 == 0 {
                    1.0
                } else {
                    0.1 + j as f64 / 7.0
                };
                local.push_conv_unit_column(&g1, &w1, j, scale);
                op1.add_unit_column(j, scale, &mut dense[j * n1..(j + 1) * n1]);
            }
            let mut back = vec![1.0; n1 * n0];
            local.to_dense(&mut back);
            assert_eq!(back, dense, "case {i}: unit columns");
            assert!(!local.is_empty() && local.len() == n0 && local.n() == n1);
            assert_eq!(local.shape(), (g1.out_channels, g1.out_h, g1.out_w));
            assert!(LocalBatch::<f64>::new(g1.out_channels, g1.out_h, g1.out_w).is_empty());
            // Row scaling with exact zeros (inactive units) and fractions.
            let d: Vec<f64> = (0..n1)
                .map(|r| {
                    if r % 4 == 1 {
                        0.0
                    } else {
                        (r % 7) as f64 / 6.0
                    }
                })
                .collect();
            local.scale_rows(&d);
            for col in dense.chunks_mut(n1) {
                for (v, s) in col.iter_mut().zip(&d) {
                    *v *= s;
                }
            }
            local.to_dense(&mut back);
            assert_eq!(back, dense, "case {i}: scaled rows");
            let (conv, macs) = local.conv(&g2, &w2);
            // Useful work, counted by brute force: (input position, output position)
            // pairs of the windows joined by a tap, times in and out channels.
            let mut pairs = 0;
            for c in 0..n0 {
                let (wi, wo) = (local.window(c), conv.window(c));
                for iy in wi.y0..wi.y0 + wi.h {
                    for ix in wi.x0..wi.x0 + wi.w {
                        for oy in wo.y0..wo.y0 + wo.h {
                            for ox in wo.x0..wo.x0 + wo.w {
                                let ky = (iy + g2.padding) as isize - (oy * g2.stride) as isize;
                                let kx = (ix + g2.padding) as isize - (ox * g2.stride) as isize;
                                if (0..g2.kernel_h as isize).contains(&ky)
                                    && (0..g2.kernel_w as isize).contains(&kx)
                                {
                                    pairs += 1;
                                }
                            }
                        }
                    }
                }
            }
            let useful = pairs * g2.in_channels * g2.out_channels;
            assert_eq!(macs, useful as u64, "case {i}: conv work");
            let mut dense2 = vec![0.0; n2 * n0];
            op2.apply(&dense, n0, &mut dense2);
            let mut back2 = vec![1.0; n2 * n0];
            conv.to_dense(&mut back2);
            for (a, b) in back2.iter().zip(&dense2) {
                // Each entry sums at most `patch` products of magnitude <= 1 in another
                // order: they differ by rounding only.
                assert!((a - b).abs() <= 1e-14, "case {i}: convolution {a} vs {b}");
            }
            assert!(conv.stored() <= n2 * n0);
            // A batch of a few columns: every class is smaller than `MIN_CLASS`, so the
            // convolution scatters each entry instead of multiplying local matrices.
            let few = 5.min(n0);
            let mut small = LocalBatch::new(g1.out_channels, g1.out_h, g1.out_w);
            for j in 0..few {
                small.push_conv_unit_column(&g1, &w1, j, 1.0 + j as f64);
            }
            let mut small_dense = vec![0.0; n1 * few];
            small.to_dense(&mut small_dense);
            let (small_conv, _) = small.conv(&g2, &w2);
            let mut want_small = vec![0.0; n2 * few];
            op2.apply(&small_dense, few, &mut want_small);
            let mut got_small = vec![1.0; n2 * few];
            small_conv.to_dense(&mut got_small);
            for (a, b) in got_small.iter().zip(&want_small) {
                assert!(
                    (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                    "case {i}: scattered {a} vs {b}"
                );
            }
            // A dense layer of 5 rows.
            let wd = weights(5 * n2, 3 * i as u64 + 2);
            let opd = LinearOp::Dense {
                weight: wd.clone(),
                rows: 5,
                cols: n2,
            };
            let mut out = vec![f64::NAN; 5 * n0];
            let macs = conv.dense(&wd, 5, &mut out);
            assert_eq!(macs, 5 * conv.stored() as u64, "case {i}: dense work");
            let mut want = vec![0.0; 5 * n0];
            opd.apply(&dense2, n0, &mut want);
            for (a, b) in out.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                    "case {i}: dense {a} vs {b}"
                );
            }
        }
    }

    /// The portable scattering kernel and the FMA one (where the CPU has it) give the
    /// dense convolution's values on every column.
    #[test]
    fn both_scatter_kernels_equal_the_dense_convolution() {
        let g1 = geom(2, 3, 4, 2, 1, 10, 9);
        let g2 = geom(3, 4, 3, 2, 1, g1.out_h, g1.out_w);
        let w1 = weights(g1.out_channels * g1.patch(), 7);
        let w2 = weights(g2.out_channels * g2.patch(), 8);
        let op2 = LinearOp::Conv {
            weight: w2.clone(),
            geom: g2,
        };
        let (n0, n1, n2) = (g1.n_in(), g1.n_out(), g2.n_out());
        let mut local = LocalBatch::new(g1.out_channels, g1.out_h, g1.out_w);
        for j in 0..n0 {
            local.push_conv_unit_column(&g1, &w1, j, 0.5 + (j % 5) as f64);
        }
        let mut dense = vec![0.0; n1 * n0];
        local.to_dense(&mut dense);
        let mut want = vec![0.0; n2 * n0];
        op2.apply(&dense, n0, &mut want);
        let (conv, _) = local.conv(&g2, &w2);
        let k = g2.patch();
        let mut taps = vec![0.0; k * g2.out_channels];
        for c in 0..g2.out_channels {
            for t in 0..k {
                taps[t * g2.out_channels + c] = w2[c * k + t];
            }
        }
        let mut acc = Vec::new();
        for fma in [false, true] {
            for c in 0..n0 {
                let ow = conv.window(c);
                let mut o = vec![f64::NAN; g2.out_channels * ow.area()];
                local.scatter_conv(c, &g2, &taps, &ow, &mut acc, &mut o, fma);
                let col = &want[c * n2..(c + 1) * n2];
                let mut got = vec![0.0; n2];
                let mut one = LocalBatch::new(g2.out_channels, g2.out_h, g2.out_w);
                one.push_window(ow).copy_from_slice(&o);
                one.to_dense(&mut got);
                for (a, b) in got.iter().zip(col) {
                    assert!(
                        (a - b).abs() <= 1e-13 * (1.0 + b.abs()),
                        "fma {fma}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn reached_rows_are_those_whose_receptive_field_meets_the_window() {
        for (k, s, p, inp) in [(4, 2, 1, 12), (3, 1, 0, 7), (2, 3, 0, 9), (5, 1, 2, 6)] {
            let out = ConvGeometry::out_dim(inp, k, s, p).unwrap();
            for start in 0..inp {
                for len in 0..=(inp - start) {
                    let want: Vec<usize> = (0..out)
                        .filter(|&o| {
                            (0..k).any(|t| {
                                let i = (o * s + t) as isize - p as isize;
                                i >= start as isize && i < (start + len) as isize
                            })
                        })
                        .collect();
                    let (lo, hi) = reached(start, len, k, s, p, out);
                    let got: Vec<usize> = (lo..hi).collect();
                    assert_eq!(got, want, "k {k} s {s} p {p} start {start} len {len}");
                }
            }
        }
    }
}
