//! The CPU fast path: im2col + SGEMM (matrixmultiply) for convolutions and dense layers,
//! parallel over images with rayon. Same signatures and results (to rounding) as
//! `cpu::reference`; deterministic for any thread count, because every sum over the batch is
//! split into a fixed number of chunks that are added in order.

use rayon::prelude::*;

use super::gemm_abt::gemm_abt_acc;
use crate::shapes::{Conv2dShape, DenseShape, NormShape, PoolShape};

mod norm;
pub use norm::*;

/// Chunks a batch reduction is split into, whatever the thread count (keeps results bitwise
/// reproducible across machines). 16 keeps a 16-core workstation busy in the weight gradients
/// (with 8, half of it idled there: 805-816 -> 884-965 training images/s on 16 cores).
const REDUCE_CHUNKS: usize = 16;

thread_local! {
    /// Each thread's im2col buffer, reused across calls (a fresh one per call cost a
    /// megabyte of allocation and zeroing per layer at batch 1).
    static COL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each thread's one-image convolution output `[Co, Ho*Wo]`, for
    /// conv2d_forward_maxpool_relu.
    static CONV: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A row-major or transposed view of a matrix: (row stride, column stride).
type Strides = (usize, usize);

/// c `[m, n]` = a `[m, k]` . b `[k, n]` + beta * c, with arbitrary strides.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: Strides,
    b: &[f32],
    sb: Strides,
    beta: f32,
    c: &mut [f32],
    sc: Strides,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, s: Strides| (rows - 1) * s.0 + (cols - 1) * s.1;
    assert!(k == 0 || (last(m, k, sa) < a.len() && last(k, n, sb) < b.len()));
    assert!(last(m, n, sc) < c.len());
    // SAFETY: the asserts above keep every index the kernel touches inside the slices; c is
    // borrowed mutably and does not alias a or b.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0 as isize,
            sa.1 as isize,
            b.as_ptr(),
            sb.0 as isize,
            sb.1 as isize,
            beta,
            c.as_mut_ptr(),
            sc.0 as isize,
            sc.1 as isize,
        );
    }
}

/// Output columns `ox` whose input column `ox + kx - pad` lies inside `0..w`.
fn valid_cols(kx: usize, s: &Conv2dShape) -> (usize, usize) {
    let lo = s.pad.saturating_sub(kx).min(s.wo());
    let hi = (s.w + s.pad).saturating_sub(kx).min(s.wo()).max(lo);
    (lo, hi)
}

/// col `[Ci*K*K, Ho*Wo]` from one image `[Ci, H, W]` (zeros where the window leaves the
/// image). Each output row is one contiguous copy plus zeroed edges.
fn im2col(col: &mut [f32], img: &[f32], s: &Conv2dShape) {
    im2col_rows(col, img, s, 0..s.ho());
}

/// col `[Ci*K*K, rows.len()*Wo]`: im2col's columns of the output rows `rows` only.
fn im2col_rows(col: &mut [f32], img: &[f32], s: &Conv2dShape, rows: std::ops::Range<usize>) {
    let (wo, k, p) = (s.wo(), s.k, s.pad);
    let n = rows.len() * wo;
    for ci in 0..s.cin {
        for ky in 0..k {
            for kx in 0..k {
                let row = ((ci * k + ky) * k + kx) * n;
                let (lo, hi) = valid_cols(kx, s);
                for (r, oy) in rows.clone().enumerate() {
                    let dst = &mut col[row + r * wo..row + (r + 1) * wo];
                    let iy = (oy + ky).wrapping_sub(p);
                    if iy >= s.h {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &img[(ci * s.h + iy) * s.w..][..s.w];
                    dst[..lo].fill(0.0);
                    // Empty where the padding is wider than the image (lo + kx < p then).
                    if hi > lo {
                        dst[lo..hi].copy_from_slice(&src[lo + kx - p..hi + kx - p]);
                    }
                    dst[hi..].fill(0.0);
                }
            }
        }
    }
}

/// img `[Ci, H, W]` = sum of col `[Ci*K*K, Ho*Wo]` entries folded back (the adjoint of im2col).
fn col2im(img: &mut [f32], col: &[f32], s: &Conv2dShape) {
    let (ho, wo, k, p) = (s.ho(), s.wo(), s.k, s.pad);
    img.fill(0.0);
    for ci in 0..s.cin {
        for ky in 0..k {
            for kx in 0..k {
                let row = ((ci * k + ky) * k + kx) * ho * wo;
                let (lo, hi) = valid_cols(kx, s);
                if hi == lo {
                    continue; // the padding is wider than the image: nothing folds back
                }
                for oy in 0..ho {
                    let iy = (oy + ky).wrapping_sub(p);
                    if iy >= s.h {
                        continue;
                    }
                    let dst = &mut img[(ci * s.h + iy) * s.w + lo + kx - p..][..hi - lo];
                    for (d, &v) in dst
                        .iter_mut()
                        .zip(&col[row + oy * wo + lo..row + oy * wo + hi])
                    {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// out `[B, Co, Ho, Wo]` = conv(inp `[B, Ci, H, W]`, weight `[Co, Ci, K, K]`) + bias `[Co]`.
/// Parallel over images. (Splitting a small batch's products over blocks of output channels
/// made batch-1 latency worse on 2 cores, 1.86 -> 2.1 ms, and on 16, 1.7-1.9 -> 2.9 ms; see
/// docs/PERFORMANCE.md.)
pub fn conv2d_forward(out: &mut [f32], inp: &[f32], weight: &[f32], bias: &[f32], s: Conv2dShape) {
    let (hw, ckk) = (s.ho() * s.wo(), s.cin * s.k * s.k);
    let img_len = s.cin * s.h * s.w;
    out[..s.out_len()]
        .par_chunks_mut(s.cout * hw)
        .enumerate()
        .for_each(|(b, out_b)| {
            COL.with(|c| {
                let mut col = c.borrow_mut();
                col.resize(ckk * hw, 0.0);
                im2col(&mut col, &inp[b * img_len..(b + 1) * img_len], &s);
                conv_product(out_b, &col, weight, bias, &s);
            })
        });
}

/// One image's output `[Co, Ho*Wo]` from its im2col matrix: bias, then weight . col.
fn conv_product(out: &mut [f32], col: &[f32], weight: &[f32], bias: &[f32], s: &Conv2dShape) {
    let (hw, ckk) = (s.ho() * s.wo(), s.cin * s.k * s.k);
    for (r, row) in out.chunks_mut(hw).enumerate() {
        row.fill(bias[r]);
    }
    sgemm(
        s.cout,
        ckk,
        hw,
        weight,
        (ckk, 1),
        col,
        (hw, 1),
        1.0,
        out,
        (hw, 1),
    );
}

/// pooled `[B, Co, Ho/2, Wo/2]` = relu(maxpool2d_forward(conv2d_forward(..))), which equals
/// the pooling of the ReLU (both are monotone): an inference block without the full-size
/// map, each image's convolution pooled while it is still in cache. The bias is added after
/// the pooling (a per-channel constant commutes with the maximum, and rounding is monotone,
/// so the result is the same), a quarter of the adds and no pass to preload the output.
/// Parallel over images; a batch smaller than the thread count also splits each image's
/// pooled rows, so that one image's embedding uses every core.
pub fn conv2d_forward_maxpool_relu(
    pooled: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: Conv2dShape,
) {
    let img_len = s.cin * s.h * s.w;
    let ps = s.pool();
    let plane = ps.ho() * ps.wo();
    if plane == 0 {
        return;
    }
    let parts = (rayon::current_num_threads() / s.batch).clamp(1, ps.ho());
    pooled[..ps.out_len()]
        .par_chunks_mut(s.cout * plane)
        .enumerate()
        .for_each(|(b, out_b)| {
            let img = &inp[b * img_len..(b + 1) * img_len];
            if parts == 1 {
                return conv_pool_rows(out_b, img, weight, bias, &s, 0..ps.ho());
            }
            // Each part pools a band of rows into its own [Co, band, Wo/2], then the bands
            // are put in place (the copy is a quarter of the convolution's output).
            let bands: Vec<_> = (0..parts)
                .map(|i| i * ps.ho() / parts..(i + 1) * ps.ho() / parts)
                .collect();
            let done: Vec<Vec<f32>> = bands
                .par_iter()
                .map(|rows| {
                    let mut out = vec![0.0; s.cout * rows.len() * ps.wo()];
                    conv_pool_rows(&mut out, img, weight, bias, &s, rows.clone());
                    out
                })
                .collect();
            for (rows, out) in bands.iter().zip(&done) {
                let band = rows.len() * ps.wo();
                for (dst, src) in out_b.chunks_exact_mut(plane).zip(out.chunks_exact(band)) {
                    dst[rows.start * ps.wo()..][..band].copy_from_slice(src);
                }
            }
        });
}

/// out `[Co, rows.len(), Wo/2]`: the pooled rows `rows` of one image's conv + pool + ReLU,
/// from the convolution's rows 2 * rows (the thread's buffers hold the columns and the map).
fn conv_pool_rows(
    out: &mut [f32],
    img: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: &Conv2dShape,
    rows: std::ops::Range<usize>,
) {
    let ckk = s.cin * s.k * s.k;
    let n = 2 * rows.len() * s.wo();
    COL.with(|c| {
        CONV.with(|z| {
            let (mut col, mut z) = (c.borrow_mut(), z.borrow_mut());
            col.resize(ckk * n, 0.0);
            z.resize(s.cout * n, 0.0);
            im2col_rows(&mut col, img, s, 2 * rows.start..2 * rows.end);
            let (w, c) = ((ckk, 1), (n, 1));
            sgemm(s.cout, ckk, n, weight, w, &col, c, 0.0, &mut z, c);
            let band = rows.len() * (s.wo() / 2);
            for ((o, zc), &bc) in out.chunks_exact_mut(band).zip(z.chunks_exact(n)).zip(bias) {
                pool_plane(o, zc, s.wo(), |m| (m + bc).max(0.0));
            }
        })
    })
}

/// out `[B, C, H/2, W/2]` = 2x2 max pooling of inp `[B, C, H, W]` (an odd last row or
/// column dropped), the reference's result exactly; parallel over planes, each a walk over
/// row pairs with no index arithmetic, so it vectorises (the reference's loop was 12% of a
/// batch-1 embedding).
pub fn maxpool2d_forward(out: &mut [f32], inp: &[f32], s: PoolShape) {
    let plane = s.ho() * s.wo();
    if plane == 0 {
        return;
    }
    out[..s.out_len()]
        .par_chunks_mut(plane)
        .zip(inp[..s.in_len()].par_chunks(s.h * s.w))
        .for_each(|(o, i)| pool_plane(o, i, s.w, |m| m));
}

/// dinp `[B, C, H, W]` = relu_backward(maxpool2d_backward(dout, inp), inp): dout
/// `[B, C, H/2, W/2]` routed to each window's first maximum of inp where that maximum is
/// positive (the ReLU's mask; inp is the ReLU's input or output), zero elsewhere. One pass
/// over each plane while it is in cache, where the reference makes two over the batch.
pub fn maxpool2d_relu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32], s: PoolShape) {
    let (hw, wo) = (s.h * s.w, s.wo());
    let planes = dinp[..s.in_len()]
        .par_chunks_mut(hw)
        .zip(inp[..s.in_len()].par_chunks(hw));
    planes.enumerate().for_each(|(bc, (d, x))| {
        d.fill(0.0);
        if wo == 0 {
            return;
        }
        let g = &dout[bc * s.ho() * wo..(bc + 1) * s.ho() * wo];
        let rows = d.chunks_exact_mut(2 * s.w).zip(x.chunks_exact(2 * s.w));
        for ((d, x), g) in rows.zip(g.chunks_exact(wo)) {
            for (ox, &g) in g.iter().enumerate() {
                let i = [2 * ox, 2 * ox + 1, s.w + 2 * ox, s.w + 2 * ox + 1];
                let a = super::reference::maxpool_argmax([x[i[0]], x[i[1]], x[i[2]], x[i[3]]]);
                if x[i[a]] > 0.0 {
                    d[i[a]] = g;
                }
            }
        }
    });
}

/// One `h x w` plane's 2x2 windows into `out` `[h/2, w/2]` (non-empty), each maximum passed
/// through `f`; the maximum is taken in the reference's order.
#[inline(always)]
fn pool_plane(out: &mut [f32], plane: &[f32], w: usize, f: impl Fn(f32) -> f32) {
    for (o, rows) in out.chunks_exact_mut(w / 2).zip(plane.chunks_exact(2 * w)) {
        let (r0, r1) = rows.split_at(w);
        for ((o, a), b) in o.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
            *o = f(a[0].max(a[1]).max(b[0]).max(b[1]));
        }
    }
}

/// dinp `[B, Ci, H, W]` from dout `[B, Co, Ho, Wo]` and weight `[Co, Ci, K, K]`.
pub fn conv2d_backward_input(dinp: &mut [f32], dout: &[f32], weight: &[f32], s: Conv2dShape) {
    let (hw, ckk) = (s.ho() * s.wo(), s.cin * s.k * s.k);
    let img_len = s.cin * s.h * s.w;
    dinp[..s.in_len()]
        .par_chunks_mut(img_len)
        .enumerate()
        .for_each(|(b, dinp_b)| {
            // The thread's im2col buffer (a fresh one per rayon job was a megabyte-sized
            // allocation, zeroed and page-faulted, several times a layer).
            COL.with(|c| {
                let mut dcol = c.borrow_mut();
                dcol.resize(ckk * hw, 0.0);
                let dout_b = &dout[b * s.cout * hw..(b + 1) * s.cout * hw];
                // dcol [CKK, HW] = weight^T [CKK, Co] . dout_b [Co, HW]
                let (wt, rows) = ((1, ckk), (hw, 1));
                sgemm(
                    ckk, s.cout, hw, weight, wt, dout_b, rows, 0.0, &mut dcol, rows,
                );
                col2im(dinp_b, &dcol, &s);
            })
        });
}

/// Splits 0..n into at most REDUCE_CHUNKS contiguous ranges.
fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    let per = n.div_ceil(REDUCE_CHUNKS).max(1);
    (0..n).step_by(per).map(|i| i..(i + per).min(n)).collect()
}

/// Adds the partial sums in order into `dst` (a fixed order keeps results reproducible).
fn sum_partials(dst: &mut [f32], partials: &[Vec<f32>]) {
    dst.fill(0.0);
    for p in partials {
        for (d, v) in dst.iter_mut().zip(p) {
            *d += v;
        }
    }
}

/// dbias `[Co]` = dout `[B, Co, Ho, Wo]` summed per channel, as the reference: each plane in
/// 8 f32 lanes, planes in parallel, then per channel in image order in f64 (the same for any
/// thread count). The reference's one sequential sum over the whole tensor was 3% of a
/// one-thread training step, and with two threads a serial stretch twice that.
pub fn conv2d_backward_bias(dbias: &mut [f32], dout: &[f32], s: Conv2dShape) {
    let (ho, wo) = (s.ho(), s.wo());
    let planes = NormShape {
        batch: s.batch,
        c: s.cout,
        h: ho,
        w: wo,
    };
    let sums = channel_sums(planes, |bc| {
        (sum8(&dout[bc * ho * wo..(bc + 1) * ho * wo], |v| v), 0.0)
    });
    for (d, (sum, _)) in dbias[..s.cout].iter_mut().zip(sums) {
        *d = sum as f32;
    }
}

/// dweight `[Co, Ci, K, K]` = sum over the batch of dout `[B, Co, Ho, Wo]` x im2col(inp).
pub fn conv2d_backward_weight(dweight: &mut [f32], dout: &[f32], inp: &[f32], s: Conv2dShape) {
    let (hw, ckk) = (s.ho() * s.wo(), s.cin * s.k * s.k);
    let img_len = s.cin * s.h * s.w;
    let partials: Vec<Vec<f32>> = chunks(s.batch)
        .into_par_iter()
        .map(|range| {
            let mut acc = vec![0.0f32; s.cout * ckk];
            // The thread's im2col buffer: a fresh megabyte-sized one per chunk and layer was
            // allocated, zeroed and page-faulted 64 times a training step.
            COL.with(|c| {
                let mut col = c.borrow_mut();
                col.resize(ckk * hw, 0.0);
                for b in range {
                    im2col(&mut col, &inp[b * img_len..(b + 1) * img_len], &s);
                    let dout_b = &dout[b * s.cout * hw..(b + 1) * s.cout * hw];
                    // acc [Co, CKK] += dout_b [Co, HW] . col [CKK, HW]^T
                    if packing_bound(s.cout, ckk) {
                        gemm_abt_acc(&mut acc, ckk, dout_b, &col, (s.cout, ckk, hw));
                    } else {
                        let (d, c) = ((hw, 1), (1, hw));
                        sgemm(s.cout, hw, ckk, dout_b, d, &col, c, 1.0, &mut acc, (ckk, 1));
                    }
                }
            });
            acc
        })
        .collect();
    sum_partials(&mut dweight[..s.weight_len()], &partials);
}

/// Whether an SGEMM with outer sides m x n and a long reduction k copies about as many floats
/// as it multiplies: packing costs k (m + n), the product k m n, so the ratio is the harmonic
/// mean of m and n over 2. Below PACKING_BOUND, unpacked row dot products (gemm_abt) win: on
/// the 2-core EPYC VM conv1's weight gradient (16 x 25, ratio 9.8) took 19 ms against 34 ms
/// per 96 images; conv2's (32 x 144, ratio 26) 43 against 37 ms, and the deeper layers lost
/// more (`glassnet bench --cpu`, one thread, commit de1dd03 against the change).
fn packing_bound(m: usize, n: usize) -> bool {
    m * n < PACKING_BOUND * (m + n)
}

const PACKING_BOUND: usize = 16;

/// out `[B, O]` = inp `[B, I]` . weight `[O, I]`^T + bias `[O]`.
pub fn dense_forward(out: &mut [f32], inp: &[f32], weight: &[f32], bias: &[f32], s: DenseShape) {
    if s.batch <= DENSE_DOT_BATCH {
        // SGEMM packs all of weight (reference network: 1.6 MB, transposed) on every call,
        // which at batch 1 took 0.3 ms of a 1.9 ms embedding; row dot products read it once.
        for (x, row) in inp.chunks(s.nin).zip(out.chunks_mut(s.nout)).take(s.batch) {
            for ((o, w), b) in row.iter_mut().zip(weight.chunks(s.nin)).zip(bias) {
                *o = b + dot(x, w);
            }
        }
        return;
    }
    for row in out[..s.batch * s.nout].chunks_mut(s.nout) {
        row.copy_from_slice(&bias[..s.nout]);
    }
    sgemm(
        s.batch,
        s.nin,
        s.nout,
        inp,
        (s.nin, 1),
        weight,
        (1, s.nin),
        1.0,
        out,
        (s.nout, 1),
    );
}

/// Batches up to this size run dense_forward as dot products instead of SGEMM.
const DENSE_DOT_BATCH: usize = 4;

/// x . y in 8 interleaved partial sums (which the compiler keeps in one vector register).
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for j in 0..8 {
            acc[j] += a[j] * b[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// dinp `[B, I]` = dout `[B, O]` . weight `[O, I]`.
pub fn dense_backward_input(dinp: &mut [f32], dout: &[f32], weight: &[f32], s: DenseShape) {
    sgemm(
        s.batch,
        s.nout,
        s.nin,
        dout,
        (s.nout, 1),
        weight,
        (s.nin, 1),
        0.0,
        dinp,
        (s.nin, 1),
    );
}

/// dweight `[O, I]` = dout `[B, O]`^T . inp `[B, I]`.
pub fn dense_backward_weight(dweight: &mut [f32], dout: &[f32], inp: &[f32], s: DenseShape) {
    sgemm(
        s.nout,
        s.batch,
        s.nin,
        dout,
        (1, s.nout),
        inp,
        (s.nin, 1),
        0.0,
        dweight,
        (s.nin, 1),
    );
}

/// out `[N, M]` = squared Euclidean distances between rows of x `[N, D]` and y `[M, D]`, as
/// |x|^2 + |y|^2 - 2 x.y with one SGEMM (the reference sums differences; this form is what
/// makes a gallery of thousands of 12,544-pixel images cheap). Clamped at 0 against
/// cancellation, so a row's distance to itself is ~0 rather than exactly 0.
pub fn pairwise_distance(out: &mut [f32], x: &[f32], y: &[f32], n: usize, m: usize, d: usize) {
    let norms = |v: &[f32], rows: usize| -> Vec<f32> {
        (0..rows)
            .into_par_iter()
            .map(|i| v[i * d..(i + 1) * d].iter().map(|a| a * a).sum())
            .collect()
    };
    let (nx, ny) = (norms(x, n), norms(y, m));
    // Row blocks in parallel: each is an independent SGEMM, so results do not depend on the
    // thread count.
    const ROWS: usize = 64;
    out[..n * m]
        .par_chunks_mut(ROWS * m)
        .enumerate()
        .for_each(|(b, block)| {
            let r0 = b * ROWS;
            let rows = block.len() / m.max(1);
            sgemm(
                rows,
                d,
                m,
                &x[r0 * d..],
                (d, 1),
                y,
                (1, d),
                0.0,
                block,
                (m, 1),
            );
            for (r, row) in block.chunks_mut(m).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (nx[r0 + r] + ny[j] - 2.0 * *v).max(0.0);
                }
            }
        });
}

/// Sum of f(x) over a slice in 8 f32 lanes (so it vectorises), the lanes added in f64.
fn sum8(x: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v) as f64).sum();
    for c in chunks {
        for j in 0..8 {
            acc[j] += f(c[j]);
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

/// Sum of f(x, y) over two slices in 8 f32 lanes, the lanes added in f64.
fn sum8_pair(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0f32; 8];
    let (cx, cy) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f64 = (cx.remainder().iter().zip(cy.remainder()))
        .map(|(&a, &b)| f(a, b) as f64)
        .sum();
    for (a, b) in cx.zip(cy) {
        for j in 0..8 {
            acc[j] += f(a[j], b[j]);
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

/// Per channel of `[B, C, H, W]`, the sums f(plane index b * C + c) gives for each of its B
/// planes, planes in parallel, then added per channel in image order (f64): the same result
/// for any thread count.
fn channel_sums(s: NormShape, f: impl Fn(usize) -> (f64, f64) + Sync + Send) -> Vec<(f64, f64)> {
    per_channel((0..s.batch * s.c).into_par_iter().map(f), s.c)
}

/// Per channel of `[B, C, ..]`, the sums of its B planes' pairs, the planes' in image order
/// (f64): the same result for any thread count.
fn per_channel(
    planes: impl IndexedParallelIterator<Item = (f64, f64)>,
    c: usize,
) -> Vec<(f64, f64)> {
    let planes: Vec<(f64, f64)> = planes.collect();
    let mut out = vec![(0.0, 0.0); c];
    for (bc, (x, y)) in planes.into_iter().enumerate() {
        out[bc % c].0 += x;
        out[bc % c].1 += y;
    }
    out
}
