//! The CPU reference: one short loop nest per layer pass, written to be read, not to be fast.
//! Every GPU kernel and the CPU fast path are tested against these functions, and these
//! functions' gradients against central finite differences (tests/gradcheck.rs).
//!
//! Conventions (after llm.c): outputs first, then inputs, then the shape; gradient buffers
//! carry a `d` prefix and are overwritten (`=`), never accumulated, so no zeroing is needed.

mod norm;
pub use norm::*;

use crate::optim::{AdamParams, SgdParams};
use crate::shapes::{Conv2dShape, DenseShape, GlobalPoolShape, MineMode, PoolShape, INVALID};

/// out `[B, Co, Ho, Wo]` = conv(inp `[B, Ci, H, W]`, weight `[Co, Ci, K, K]`) + bias `[Co]`.
pub fn conv2d_forward(out: &mut [f32], inp: &[f32], weight: &[f32], bias: &[f32], s: Conv2dShape) {
    let (ho, wo, k, p) = (s.ho(), s.wo(), s.k, s.pad as isize);
    for b in 0..s.batch {
        for co in 0..s.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = bias[co];
                    for ci in 0..s.cin {
                        for ky in 0..k {
                            let iy = oy as isize + ky as isize - p;
                            if iy < 0 || iy >= s.h as isize {
                                continue;
                            }
                            for kx in 0..k {
                                let ix = ox as isize + kx as isize - p;
                                if ix < 0 || ix >= s.w as isize {
                                    continue;
                                }
                                let i = ((b * s.cin + ci) * s.h + iy as usize) * s.w + ix as usize;
                                let wi = ((co * s.cin + ci) * k + ky) * k + kx;
                                acc += inp[i] * weight[wi];
                            }
                        }
                    }
                    out[((b * s.cout + co) * ho + oy) * wo + ox] = acc;
                }
            }
        }
    }
}

/// dinp `[B, Ci, H, W]` from dout `[B, Co, Ho, Wo]` and weight `[Co, Ci, K, K]`.
pub fn conv2d_backward_input(dinp: &mut [f32], dout: &[f32], weight: &[f32], s: Conv2dShape) {
    let (ho, wo, k, p) = (s.ho() as isize, s.wo() as isize, s.k, s.pad as isize);
    for b in 0..s.batch {
        for ci in 0..s.cin {
            for iy in 0..s.h {
                for ix in 0..s.w {
                    let mut acc = 0.0f32;
                    for co in 0..s.cout {
                        for ky in 0..k {
                            let oy = iy as isize + p - ky as isize;
                            if oy < 0 || oy >= ho {
                                continue;
                            }
                            for kx in 0..k {
                                let ox = ix as isize + p - kx as isize;
                                if ox < 0 || ox >= wo {
                                    continue;
                                }
                                let o = ((b * s.cout + co) * ho as usize + oy as usize)
                                    * wo as usize
                                    + ox as usize;
                                let wi = ((co * s.cin + ci) * k + ky) * k + kx;
                                acc += dout[o] * weight[wi];
                            }
                        }
                    }
                    dinp[((b * s.cin + ci) * s.h + iy) * s.w + ix] = acc;
                }
            }
        }
    }
}

/// dweight `[Co, Ci, K, K]` = sum over the batch of dout `[B, Co, Ho, Wo]` x inp `[B, Ci, H, W]`.
pub fn conv2d_backward_weight(dweight: &mut [f32], dout: &[f32], inp: &[f32], s: Conv2dShape) {
    let (ho, wo, k, p) = (s.ho(), s.wo(), s.k, s.pad as isize);
    for co in 0..s.cout {
        for ci in 0..s.cin {
            for ky in 0..k {
                for kx in 0..k {
                    let mut acc = 0.0f32;
                    for b in 0..s.batch {
                        for oy in 0..ho {
                            let iy = oy as isize + ky as isize - p;
                            if iy < 0 || iy >= s.h as isize {
                                continue;
                            }
                            for ox in 0..wo {
                                let ix = ox as isize + kx as isize - p;
                                if ix < 0 || ix >= s.w as isize {
                                    continue;
                                }
                                let i = ((b * s.cin + ci) * s.h + iy as usize) * s.w + ix as usize;
                                acc += dout[((b * s.cout + co) * ho + oy) * wo + ox] * inp[i];
                            }
                        }
                    }
                    dweight[((co * s.cin + ci) * k + ky) * k + kx] = acc;
                }
            }
        }
    }
}

/// out `[copies, N, H + 2 pad, wr]`: `copies` copies of inp `[N, H, W]` inside a zero border
/// of width `pad`, copy c shifted left by c columns; columns past the image are zero.
#[allow(clippy::too_many_arguments)]
pub fn pad2d(
    out: &mut [f32],
    inp: &[f32],
    n: usize,
    h: usize,
    w: usize,
    pad: usize,
    wr: usize,
    copies: usize,
) {
    let hp = h + 2 * pad;
    for c in 0..copies {
        for plane in 0..n {
            for y in 0..hp {
                for x in 0..wr {
                    let (iy, ix) = (y as isize - pad as isize, (x + c) as isize - pad as isize);
                    let inside = iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize;
                    out[((c * n + plane) * hp + y) * wr + x] = if inside {
                        inp[(plane * h + iy as usize) * w + ix as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// flipped `[Ci, Co, K, K]` = weight `[Co, Ci, K, K]`, channel axes swapped and each kernel
/// rotated by 180 degrees (the weights of the input gradient as a forward convolution).
pub fn conv2d_flip_weight(flipped: &mut [f32], weight: &[f32], cout: usize, cin: usize, k: usize) {
    for ci in 0..cin {
        for co in 0..cout {
            for ky in 0..k {
                for kx in 0..k {
                    flipped[((ci * cout + co) * k + ky) * k + kx] =
                        weight[((co * cin + ci) * k + (k - 1 - ky)) * k + (k - 1 - kx)];
                }
            }
        }
    }
}

/// dbias `[Co]` = sum of dout `[B, Co, Ho, Wo]` over batch and space.
pub fn conv2d_backward_bias(dbias: &mut [f32], dout: &[f32], s: Conv2dShape) {
    let hw = s.ho() * s.wo();
    for (co, db) in dbias.iter_mut().enumerate().take(s.cout) {
        let mut acc = 0.0f32;
        for b in 0..s.batch {
            let base = (b * s.cout + co) * hw;
            acc += dout[base..base + hw].iter().sum::<f32>();
        }
        *db = acc;
    }
}

/// out `[B, C, H/2, W/2]` = max over each 2x2 window of inp `[B, C, H, W]`.
pub fn maxpool2d_forward(out: &mut [f32], inp: &[f32], s: PoolShape) {
    let (ho, wo) = (s.ho(), s.wo());
    for bc in 0..s.batch * s.c {
        for oy in 0..ho {
            for ox in 0..wo {
                let i = (bc * s.h + 2 * oy) * s.w + 2 * ox;
                let m = inp[i]
                    .max(inp[i + 1])
                    .max(inp[i + s.w])
                    .max(inp[i + s.w + 1]);
                out[(bc * ho + oy) * wo + ox] = m;
            }
        }
    }
}

/// Position (0..4, row-major) of the first maximum of a 2x2 window; ties go to the first,
/// so every backend routes the gradient to the same input.
pub fn maxpool_argmax(v: [f32; 4]) -> usize {
    let mut best = 0;
    for j in 1..4 {
        if v[j] > v[best] {
            best = j;
        }
    }
    best
}

/// dinp `[B, C, H, W]`: dout `[B, C, H/2, W/2]` routed to each window's argmax of inp; zero
/// elsewhere (including dropped odd rows/columns).
pub fn maxpool2d_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32], s: PoolShape) {
    let (ho, wo) = (s.ho(), s.wo());
    dinp[..s.in_len()].fill(0.0);
    for bc in 0..s.batch * s.c {
        for oy in 0..ho {
            for ox in 0..wo {
                let i = (bc * s.h + 2 * oy) * s.w + 2 * ox;
                let idx = [i, i + 1, i + s.w, i + s.w + 1];
                let a = maxpool_argmax([inp[idx[0]], inp[idx[1]], inp[idx[2]], inp[idx[3]]]);
                dinp[idx[a]] = dout[(bc * ho + oy) * wo + ox];
            }
        }
    }
}

/// out `[B, 2C]`: per image, the mean of each channel of inp `[B, C, H, W]`, then its maximum.
pub fn global_avgmax_pool_forward(out: &mut [f32], inp: &[f32], s: GlobalPoolShape) {
    let hw = s.h * s.w;
    for b in 0..s.batch {
        for c in 0..s.c {
            let plane = &inp[(b * s.c + c) * hw..][..hw];
            let sum: f32 = plane.iter().sum();
            out[b * 2 * s.c + c] = sum / hw as f32;
            out[b * 2 * s.c + s.c + c] = plane[global_argmax(plane)];
        }
    }
}

/// Index of a plane's first maximum: ties go to the first, as in maxpool_argmax.
pub fn global_argmax(plane: &[f32]) -> usize {
    (1..plane.len()).fold(0, |best, i| if plane[i] > plane[best] { i } else { best })
}

/// dinp `[B, C, H, W]`: each plane's mean gradient spread evenly over it, plus its max
/// gradient at the plane's first maximum; dout `[B, 2C]`.
pub fn global_avgmax_pool_backward(
    dinp: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    s: GlobalPoolShape,
) {
    let hw = s.h * s.w;
    for b in 0..s.batch {
        for c in 0..s.c {
            let o = (b * s.c + c) * hw;
            let da = dout[b * 2 * s.c + c] / hw as f32;
            dinp[o..o + hw].fill(da);
            let m = global_argmax(&inp[o..o + hw]);
            dinp[o + m] += dout[b * 2 * s.c + s.c + c];
        }
    }
}

/// Code of a pooling window whose maximum is 0: the ReLU was off in all of it, so no gradient.
pub const POOL_DEAD: u32 = 4;

/// pooled `[B, Co, Ho/2, Wo/2]` = maxpool2d_forward(relu_forward(conv2d_forward(..))) and
/// codes `[B, Co, Ho/2, Wo/2 / 4]`: per pooled output one byte (output j of a word in bits
/// 8j..8j+7), the position maxpool_argmax picks in its window of the ReLU's output, or
/// POOL_DEAD where that maximum is 0. Ho must be even and Wo a multiple of 8 (so a word never
/// spans two rows); what maxpool2d_relu_backward_argmax needs instead of the activation.
pub fn conv2d_forward_relu_maxpool(
    pooled: &mut [f32],
    codes: &mut [u32],
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: Conv2dShape,
) {
    assert!(
        s.ho().is_multiple_of(2) && s.wo().is_multiple_of(8),
        "conv2d_forward_relu_maxpool: {s:?}"
    );
    let mut z = vec![0.0; s.out_len()];
    conv2d_forward(&mut z, inp, weight, bias, s);
    let mut a = vec![0.0; s.out_len()];
    relu_forward(&mut a, &z);
    let ps = s.pool();
    maxpool2d_forward(pooled, &a, ps);
    codes[..ps.out_len() / 4].fill(0);
    for (o, &m) in pooled[..ps.out_len()].iter().enumerate() {
        let (bc, oy, ox) = (
            o / (ps.ho() * ps.wo()),
            (o / ps.wo()) % ps.ho(),
            o % ps.wo(),
        );
        let i = (bc * ps.h + 2 * oy) * ps.w + 2 * ox;
        let code = if m > 0.0 {
            maxpool_argmax([a[i], a[i + 1], a[i + ps.w], a[i + ps.w + 1]]) as u32
        } else {
            POOL_DEAD
        };
        codes[o / 4] |= code << (8 * (o % 4));
    }
}

/// dinp `[B, C, H, W]`: dout `[B, C, H/2, W/2]` routed to the window position each code names
/// (conv2d_forward_relu_maxpool), zero elsewhere and where the code is POOL_DEAD: the same
/// gradient as maxpool2d_backward followed by relu_backward, without the activation.
pub fn maxpool2d_relu_backward_argmax(dinp: &mut [f32], dout: &[f32], codes: &[u32], s: PoolShape) {
    assert!(
        s.h.is_multiple_of(2) && s.w.is_multiple_of(8),
        "maxpool2d_relu_backward_argmax: {s:?}"
    );
    dinp[..s.in_len()].fill(0.0);
    for (o, &g) in dout[..s.out_len()].iter().enumerate() {
        let code = (codes[o / 4] >> (8 * (o % 4))) & 255;
        if code == POOL_DEAD {
            continue;
        }
        let (bc, oy, ox) = (o / (s.ho() * s.wo()), (o / s.wo()) % s.ho(), o % s.wo());
        let i = (bc * s.h + 2 * oy) * s.w + 2 * ox;
        dinp[[i, i + 1, i + s.w, i + s.w + 1][code as usize]] = g;
    }
}

/// out `[B, O]` = inp `[B, I]` . weight `[O, I]`^T + bias `[O]`.
pub fn dense_forward(out: &mut [f32], inp: &[f32], weight: &[f32], bias: &[f32], s: DenseShape) {
    for b in 0..s.batch {
        for o in 0..s.nout {
            let mut acc = bias[o];
            for i in 0..s.nin {
                acc += inp[b * s.nin + i] * weight[o * s.nin + i];
            }
            out[b * s.nout + o] = acc;
        }
    }
}

/// dinp `[B, I]` = dout `[B, O]` . weight `[O, I]`.
pub fn dense_backward_input(dinp: &mut [f32], dout: &[f32], weight: &[f32], s: DenseShape) {
    for b in 0..s.batch {
        for i in 0..s.nin {
            let mut acc = 0.0f32;
            for o in 0..s.nout {
                acc += dout[b * s.nout + o] * weight[o * s.nin + i];
            }
            dinp[b * s.nin + i] = acc;
        }
    }
}

/// dweight `[O, I]` = dout `[B, O]`^T . inp `[B, I]`.
pub fn dense_backward_weight(dweight: &mut [f32], dout: &[f32], inp: &[f32], s: DenseShape) {
    for o in 0..s.nout {
        for i in 0..s.nin {
            let mut acc = 0.0f32;
            for b in 0..s.batch {
                acc += dout[b * s.nout + o] * inp[b * s.nin + i];
            }
            dweight[o * s.nin + i] = acc;
        }
    }
}

/// dbias `[O]` = sum over the batch of dout `[B, O]`.
pub fn dense_backward_bias(dbias: &mut [f32], dout: &[f32], s: DenseShape) {
    for o in 0..s.nout {
        dbias[o] = (0..s.batch).map(|b| dout[b * s.nout + o]).sum();
    }
}

/// out = max(inp, 0), elementwise.
pub fn relu_forward(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = x.max(0.0);
    }
}

/// dinp = dout where the forward output was positive, else 0.
pub fn relu_backward(dinp: &mut [f32], dout: &[f32], out: &[f32]) {
    for ((d, &g), &y) in dinp.iter_mut().zip(dout).zip(out) {
        *d = if y > 0.0 { g } else { 0.0 };
    }
}

/// Logistic sigmoid, in the form that never overflows exp().
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// out = sigmoid(inp), elementwise.
pub fn sigmoid_forward(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = sigmoid(x);
    }
}

/// dinp = dout * y * (1 - y) with y the forward output.
pub fn sigmoid_backward(dinp: &mut [f32], dout: &[f32], out: &[f32]) {
    for ((d, &g), &y) in dinp.iter_mut().zip(dout).zip(out) {
        *d = g * y * (1.0 - y);
    }
}

pub use crate::shapes::L2_EPS;

/// out `[N, D]` = each row of inp `[N, D]` divided by its Euclidean norm (at least L2_EPS).
pub fn l2norm_forward(out: &mut [f32], inp: &[f32], n: usize, d: usize) {
    for r in 0..n {
        let x = &inp[r * d..(r + 1) * d];
        let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(L2_EPS);
        for (o, &v) in out[r * d..(r + 1) * d].iter_mut().zip(x) {
            *o = v / norm;
        }
    }
}

/// dinp `[N, D]` = (dout - y (y . dout)) / |x| per row, with y = out, x = inp.
pub fn l2norm_backward(
    dinp: &mut [f32],
    dout: &[f32],
    out: &[f32],
    inp: &[f32],
    n: usize,
    d: usize,
) {
    for r in 0..n {
        let row = r * d..(r + 1) * d;
        let norm = inp[row.clone()].iter().map(|v| v * v).sum::<f32>().sqrt();
        let (y, g) = (&out[row.clone()], &dout[row.clone()]);
        if norm < L2_EPS {
            // Forward was x / eps: a plain scale.
            for (di, &gi) in dinp[row].iter_mut().zip(g) {
                *di = gi / L2_EPS;
            }
            continue;
        }
        let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
        for ((di, &gi), &yi) in dinp[row].iter_mut().zip(g).zip(y) {
            *di = (gi - yi * dot) / norm;
        }
    }
}

/// out `[N, M]`: squared Euclidean distance between rows of x `[N, D]` and rows of y `[M, D]`,
/// summed as differences (not |x|^2 + |y|^2 - 2xy) so a point's distance to itself is exactly 0.
pub fn pairwise_distance(out: &mut [f32], x: &[f32], y: &[f32], n: usize, m: usize, d: usize) {
    for i in 0..n {
        for j in 0..m {
            let mut acc = 0.0f32;
            for k in 0..d {
                let diff = x[i * d + k] - y[j * d + k];
                acc += diff * diff;
            }
            out[i * m + j] = acc;
        }
    }
}

/// Per-triplet hinge loss max(D[a,p] - D[a,n] + margin, 0) from dist `[N, N]` and
/// triplets `[T, 3]` (anchor, positive, negative); an INVALID anchor gives 0.
pub fn triplet_loss_forward(
    losses: &mut [f32],
    dist: &[f32],
    triplets: &[u32],
    n: usize,
    margin: f32,
) {
    for (t, l) in losses.iter_mut().enumerate() {
        let (a, p, q) = (triplets[3 * t], triplets[3 * t + 1], triplets[3 * t + 2]);
        *l = if a == INVALID {
            0.0
        } else {
            let (a, p, q) = (a as usize, p as usize, q as usize);
            (dist[a * n + p] - dist[a * n + q] + margin).max(0.0)
        };
    }
}

/// stats `[4]` = (mean loss over valid triplets, valid count, active (loss > 0) count, 0).
/// A list with no valid triplet has mean 0: nothing is divided by zero.
pub fn triplet_loss_reduce(stats: &mut [f32], losses: &[f32], triplets: &[u32]) {
    let (mut sum, mut valid, mut active) = (0.0f32, 0u32, 0u32);
    for (t, &l) in losses.iter().enumerate() {
        if triplets[3 * t] != INVALID {
            valid += 1;
            sum += l;
            active += (l > 0.0) as u32;
        }
    }
    stats[0] = if valid > 0 { sum / valid as f32 } else { 0.0 };
    stats[1] = valid as f32;
    stats[2] = active as f32;
    stats[3] = 0.0;
}

/// dx `[N, D]`: gradient of the mean triplet loss with respect to the embeddings x `[N, D]`.
/// Active triplets contribute 2(x_n - x_p) to the anchor, 2(x_p - x_a) to the positive and
/// 2(x_a - x_n) to the negative, divided by the number of valid triplets.
pub fn triplet_loss_backward(
    dx: &mut [f32],
    x: &[f32],
    dist: &[f32],
    triplets: &[u32],
    n: usize,
    d: usize,
    margin: f32,
) {
    dx[..n * d].fill(0.0);
    let t_count = triplets.len() / 3;
    let valid = (0..t_count).filter(|&t| triplets[3 * t] != INVALID).count();
    if valid == 0 {
        return;
    }
    let scale = 2.0 / valid as f32;
    for t in 0..t_count {
        let (a, p, q) = (triplets[3 * t], triplets[3 * t + 1], triplets[3 * t + 2]);
        if a == INVALID {
            continue;
        }
        let (a, p, q) = (a as usize, p as usize, q as usize);
        if dist[a * n + p] - dist[a * n + q] + margin <= 0.0 {
            continue;
        }
        for k in 0..d {
            let (xa, xp, xn) = (x[a * d + k], x[p * d + k], x[q * d + k]);
            dx[a * d + k] += scale * (xn - xp);
            dx[p * d + k] += scale * (xp - xa);
            dx[q * d + k] += scale * (xa - xn);
        }
    }
}

/// triplets `[N, 3]`: one per anchor i, mined from dist `[N, N]` and labels `[N]`. The
/// positive is the farthest same-class sample; the negative is the closest other-class sample
/// (BatchHard) or the closest one farther than the positive, falling back to the closest
/// (SemiHard). An anchor with no positive or no negative gets INVALID.
pub fn triplet_mine(triplets: &mut [u32], dist: &[f32], labels: &[u32], n: usize, mode: MineMode) {
    for a in 0..n {
        let row = &dist[a * n..(a + 1) * n];
        let mut pos: Option<usize> = None;
        for j in 0..n {
            if j != a && labels[j] == labels[a] && pos.is_none_or(|p| row[j] > row[p]) {
                pos = Some(j);
            }
        }
        let mut hard: Option<usize> = None;
        let mut semi: Option<usize> = None;
        for j in 0..n {
            if labels[j] == labels[a] {
                continue;
            }
            if hard.is_none_or(|q| row[j] < row[q]) {
                hard = Some(j);
            }
            if let Some(p) = pos {
                if row[j] > row[p] && semi.is_none_or(|q| row[j] < row[q]) {
                    semi = Some(j);
                }
            }
        }
        let neg = match mode {
            MineMode::BatchHard | MineMode::BatchAll => hard,
            MineMode::SemiHard => semi.or(hard),
        };
        let t = &mut triplets[3 * a..3 * a + 3];
        match (pos, neg) {
            (Some(p), Some(q)) => t.copy_from_slice(&[a as u32, p as u32, q as u32]),
            _ => t.copy_from_slice(&[INVALID; 3]),
        }
    }
}

/// Adam with decoupled weight decay (AdamW) over flat params, grads, m, v, all `[n]`.
pub fn adam_update(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamParams,
) {
    for i in 0..params.len() {
        let g = grads[i];
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g;
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g * g;
        let mhat = m[i] / h.bc1;
        let vhat = v[i] / h.bc2;
        params[i] -= h.lr * (mhat / (vhat.sqrt() + h.eps) + h.weight_decay * params[i]);
    }
}

/// SGD with momentum (PyTorch's form) over flat params, grads, velocity, all `[n]`.
pub fn sgd_momentum_update(params: &mut [f32], grads: &[f32], vel: &mut [f32], h: &SgdParams) {
    for i in 0..params.len() {
        let g = grads[i] + h.weight_decay * params[i];
        vel[i] = h.momentum * vel[i] + g;
        params[i] -= h.lr * vel[i];
    }
}

/// out `[len]` = sum over rows of inp `[rows, len]`, in row order (the batch reduction the GPU
/// runs after per-image partial gradients).
pub fn batch_sum(out: &mut [f32], inp: &[f32], rows: usize, len: usize) {
    for (j, o) in out.iter_mut().enumerate().take(len) {
        *o = (0..rows).map(|r| inp[r * len + j]).sum();
    }
}

/// Batch-all triplet loss, pass 1, from dist `[N, N]` and labels `[N]`: every (anchor i,
/// positive j, negative k) triplet of the batch at once, summarised per pair.
/// weights `[N, N]`: for a positive pair (i, j), +(active triplets (i, j, k)); for a
/// negative pair, -(active triplets (i, p, j)); so the loss gradient is
/// dL/dD = weights / active (the loss is averaged over active triplets).
/// pair_loss `[N, N]`: summed hinge losses of the positive pair's triplets.
/// pair_valid `[N, N]`: the positive pair's triplet count (its negatives).
pub fn triplet_all_forward(
    weights: &mut [f32],
    pair_loss: &mut [f32],
    pair_valid: &mut [f32],
    dist: &[f32],
    labels: &[u32],
    n: usize,
    margin: f32,
) {
    for i in 0..n {
        for j in 0..n {
            let (mut w, mut loss, mut valid) = (0.0f32, 0.0f32, 0.0f32);
            let same = labels[i] == labels[j];
            if same && i != j {
                for k in 0..n {
                    if labels[k] != labels[i] {
                        valid += 1.0;
                        let l = dist[i * n + j] - dist[i * n + k] + margin;
                        if l > 0.0 {
                            w += 1.0;
                            loss += l;
                        }
                    }
                }
            } else if !same {
                for p in 0..n {
                    if p != i
                        && labels[p] == labels[i]
                        && dist[i * n + p] - dist[i * n + j] + margin > 0.0
                    {
                        w -= 1.0;
                    }
                }
            }
            weights[i * n + j] = w;
            pair_loss[i * n + j] = loss;
            pair_valid[i * n + j] = valid;
        }
    }
}

/// Batch-all pass 2: stats `[4]` = (loss averaged over active triplets, valid count, active
/// count, 0) from the pass-1 arrays `[N, N]`. No active triplet: loss 0.
pub fn triplet_all_reduce(
    stats: &mut [f32],
    weights: &[f32],
    pair_loss: &[f32],
    pair_valid: &[f32],
    n: usize,
) {
    let (mut loss, mut valid, mut active) = (0.0f32, 0.0f32, 0.0f32);
    for i in 0..n * n {
        loss += pair_loss[i];
        valid += pair_valid[i];
        active += weights[i].max(0.0);
    }
    stats[0] = if active > 0.0 { loss / active } else { 0.0 };
    stats[1] = valid;
    stats[2] = active;
    stats[3] = 0.0;
}

/// Batch-all pass 3: dx `[N, D]` = 2 / active * sum_j (W_ij + W_ji) (x_i - x_j), from x
/// `[N, D]`, weights `[N, N]` and stats `[4]`.
pub fn triplet_all_backward(
    dx: &mut [f32],
    x: &[f32],
    weights: &[f32],
    stats: &[f32],
    n: usize,
    d: usize,
) {
    let active = stats[2];
    for i in 0..n {
        for k in 0..d {
            let mut acc = 0.0f32;
            for j in 0..n {
                acc += (weights[i * n + j] + weights[j * n + i]) * (x[i * d + k] - x[j * d + k]);
            }
            dx[i * d + k] = if active > 0.0 {
                2.0 * acc / active
            } else {
                0.0
            };
        }
    }
}

/// The Siamese head (the paper's Eq. 1) on pairs `[T, 3]` (a, b, same in {0, 1}) of
/// embeddings x `[N, D]`: logit s = sum_j alpha_j |x_a,j - x_b,j| + beta `[1]`,
/// losses `[T]` = BCE(sigmoid(s), same) = softplus(s) - same * s, and dlogit `[T]` =
/// sigmoid(s) - same for the backward pass. An INVALID first index gives 0 for both.
pub fn siamese_forward(
    losses: &mut [f32],
    dlogit: &mut [f32],
    x: &[f32],
    pairs: &[u32],
    alpha: &[f32],
    beta: &[f32],
    d: usize,
) {
    for (t, (l, g)) in losses.iter_mut().zip(dlogit.iter_mut()).enumerate() {
        let (a, b, same) = (pairs[3 * t], pairs[3 * t + 1], pairs[3 * t + 2] as f32);
        if a == INVALID {
            (*l, *g) = (0.0, 0.0);
            continue;
        }
        let (a, b) = (a as usize, b as usize);
        let mut s = beta[0];
        for j in 0..d {
            s += alpha[j] * (x[a * d + j] - x[b * d + j]).abs();
        }
        // Stable softplus: max(s, 0) + log(1 + exp(-|s|)).
        *l = s.max(0.0) - same * s + (1.0 + (-s.abs()).exp()).ln();
        *g = 1.0 / (1.0 + (-s).exp()) - same;
    }
}

/// Gradients of the mean Siamese loss over the valid pairs (stats `[4]` from
/// `triplet_loss_reduce`, whose [1] is the count): dx `[N, D]`, dalpha `[D]`, dbeta `[1]`.
/// d|u|/du is taken as sign(u), 0 at 0.
#[allow(clippy::too_many_arguments)]
pub fn siamese_backward(
    dx: &mut [f32],
    dalpha: &mut [f32],
    dbeta: &mut [f32],
    x: &[f32],
    pairs: &[u32],
    dlogit: &[f32],
    alpha: &[f32],
    stats: &[f32],
    n: usize,
    d: usize,
) {
    let scale = 1.0 / stats[1].max(1.0);
    dx[..n * d].fill(0.0);
    dalpha[..d].fill(0.0);
    dbeta[0] = 0.0;
    for (t, &g) in dlogit.iter().enumerate() {
        let (a, b) = (pairs[3 * t], pairs[3 * t + 1]);
        if a == INVALID {
            continue;
        }
        let (a, b) = (a as usize, b as usize);
        let g = g * scale;
        for j in 0..d {
            let u = x[a * d + j] - x[b * d + j];
            let sign = if u > 0.0 {
                1.0
            } else if u < 0.0 {
                -1.0
            } else {
                0.0
            };
            dx[a * d + j] += g * alpha[j] * sign;
            dx[b * d + j] -= g * alpha[j] * sign;
            dalpha[j] += g * u.abs();
        }
        dbeta[0] += g;
    }
}

/// c `[m, n]` = a^T . b with a stored `[k, m]` and b `[k, n]`.
pub fn matmul_tn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
    for r in 0..m {
        for col in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += a[kk * m + r] * b[kk * n + col];
            }
            c[r * n + col] = acc;
        }
    }
}

/// c `[M, N]` = a `[M, K]` . b `[K, N]`, row-major: the plain matrix product.
pub fn matmul(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += a[i * k + kk] * b[kk * n + j];
            }
            c[i * n + j] = acc;
        }
    }
}
