//! Batch normalisation on the fast path: the forward with batch statistics, its backward, and
//! the backward of a whole normalised block's tail (normalisation, 2x2 max pooling, ReLU) in
//! two passes over the full-size maps.

use rayon::prelude::*;

use super::{channel_sums, per_channel, pool_plane, sum8, sum8_pair};
use crate::cpu::reference::maxpool_argmax;
use crate::shapes::{NormShape, BN_EPS};

/// As `reference::batchnorm_forward`, reading the input from memory once for the statistics:
/// each plane's mean and squared deviations from it (two passes over a plane that stays in
/// cache, f32 lanes), planes in parallel, then per channel Chan's combination in f64 (image
/// order, the same for any thread count).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward(
    out: &mut [f32],
    stats: &mut [f32],
    running_mean: &mut [f32],
    running_var: &mut [f32],
    inp: &[f32],
    gamma: &[f32],
    beta: &[f32],
    momentum: f32,
    s: NormShape,
) {
    let (g, m) = ((gamma, beta), momentum);
    let coef = forward_coefficients(stats, (running_mean, running_var), inp, g, m, s);
    scale_shift_planes(out, inp, &coef, s);
}

/// batchnorm_forward into `out`, and `pooled` `[B, C, H/2, W/2]` = relu(maxpool2d_forward(out))
/// as the engine's maxpool + ReLU gives it, each plane pooled while it is still in cache (one
/// read of the full-size map fewer than normalising, then pooling).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_maxpool_relu_forward(
    (out, pooled): (&mut [f32], &mut [f32]),
    stats: &mut [f32],
    running_mean: &mut [f32],
    running_var: &mut [f32],
    inp: &[f32],
    gamma: &[f32],
    beta: &[f32],
    momentum: f32,
    s: NormShape,
) {
    let (g, m) = ((gamma, beta), momentum);
    let coef = forward_coefficients(stats, (running_mean, running_var), inp, g, m, s);
    let (hw, plane_out) = (s.h * s.w, (s.h / 2) * (s.w / 2));
    if plane_out == 0 {
        return scale_shift_planes(out, inp, &coef, s);
    }
    out[..s.len()]
        .par_chunks_mut(hw)
        .zip(pooled[..s.batch * s.c * plane_out].par_chunks_mut(plane_out))
        .enumerate()
        .for_each(|(bc, (o, p))| {
            let (k, shift) = coef[bc % s.c];
            for (o, x) in o.iter_mut().zip(&inp[bc * hw..][..hw]) {
                *o = k * x + shift;
            }
            pool_plane(p, o, s.w, |v| v.max(0.0));
        });
}

/// The batch's statistics into `stats` (mean, invstd) `[2, C]`, the running ones moved by
/// them, and per channel (k, shift) with out = k inp + shift. Each plane's mean and squared
/// deviations from it (two passes over a plane that stays in cache, f32 lanes), planes in
/// parallel, then per channel Chan's combination in f64 (image order, the same for any
/// thread count).
fn forward_coefficients(
    stats: &mut [f32],
    (running_mean, running_var): (&mut [f32], &mut [f32]),
    inp: &[f32],
    (gamma, beta): (&[f32], &[f32]),
    momentum: f32,
    s: NormShape,
) -> Vec<(f32, f32)> {
    let (n, hw) = (s.count() as f64, s.h * s.w);
    let planes: Vec<(f64, f64)> = (0..s.batch * s.c)
        .into_par_iter()
        .map(|bc| {
            let x = &inp[bc * hw..(bc + 1) * hw];
            let mean = sum8(x, |v| v) / hw as f64;
            let m = mean as f32;
            (mean, sum8(x, |v| (v - m) * (v - m)))
        })
        .collect();
    // Per channel: mean of the plane means; M2 = sum of the planes' M2 + hw (mean_p - mean)^2.
    let mut means = vec![0.0f64; s.c];
    for (bc, &(pm, _)) in planes.iter().enumerate() {
        means[bc % s.c] += pm / s.batch as f64;
    }
    let mut m2s = vec![0.0f64; s.c];
    for (bc, &(pm, m2)) in planes.iter().enumerate() {
        let c = bc % s.c;
        // The plane's M2 is about its f32-rounded mean: taken back to its own mean first.
        let (d, r) = (pm - means[c], pm - pm as f32 as f64);
        m2s[c] += m2 - hw as f64 * r * r + hw as f64 * d * d;
    }
    let m = momentum as f64;
    let mut coef = vec![(0.0f32, 0.0f32); s.c];
    for c in 0..s.c {
        let var = m2s[c] / n;
        let invstd = 1.0 / (var + BN_EPS as f64).sqrt();
        stats[c] = means[c] as f32;
        stats[s.c + c] = invstd as f32;
        let unbiased = if n > 1.0 { var * n / (n - 1.0) } else { var };
        running_mean[c] = ((1.0 - m) * running_mean[c] as f64 + m * means[c]) as f32;
        running_var[c] = ((1.0 - m) * running_var[c] as f64 + m * unbiased) as f32;
        let k = gamma[c] as f64 * invstd;
        coef[c] = (k as f32, (beta[c] as f64 - k * means[c]) as f32);
    }
    coef
}

/// out = k * inp + shift per plane, (k, shift) of each plane's channel; planes in parallel.
fn scale_shift_planes(out: &mut [f32], inp: &[f32], coef: &[(f32, f32)], s: NormShape) {
    let hw = s.h * s.w;
    out[..s.len()]
        .par_chunks_mut(hw)
        .zip(inp.par_chunks(hw))
        .enumerate()
        .for_each(|(bc, (o, x))| {
            let (k, shift) = coef[bc % s.c];
            for (o, x) in o.iter_mut().zip(x) {
                *o = k * x + shift;
            }
        });
}

/// As `reference::batchnorm_backward`: per-plane sums in f32 lanes (added in f64), and the
/// input gradient as one multiply-add per value, dinp = a * dout + b * inp + c per channel.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    dinp: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    stats: &[f32],
    gamma: &[f32],
    s: NormShape,
) {
    let hw = s.h * s.w;
    let sums = channel_sums(s, |bc| {
        let (dy, x) = (&dout[bc * hw..(bc + 1) * hw], &inp[bc * hw..(bc + 1) * hw]);
        let m = stats[bc % s.c];
        (sum8(dy, |v| v), sum8_pair(dy, x, |g, v| g * (v - m)))
    });
    let coef = backward_coefficients(dgamma, dbeta, &sums, stats, gamma, s);
    dinp[..s.len()]
        .par_chunks_mut(hw)
        .enumerate()
        .for_each(|(bc, d)| {
            let (a, b, c) = coef[bc % s.c];
            let (dy, x) = (&dout[bc * hw..(bc + 1) * hw], &inp[bc * hw..(bc + 1) * hw]);
            for ((d, &g), &v) in d.iter_mut().zip(dy).zip(x) {
                *d = a * g + b * v + c;
            }
        });
}

/// The backward of a normalised block's tail, conv output z -> batchnorm -> a -> 2x2 max
/// pooling -> ReLU, from dout `[B, C, H/2, W/2]`: dinp `[B, C, H, W]` (the gradient at z),
/// dgamma, dbeta and dsum `[C]` (dinp summed per channel: the conv bias's gradient, as
/// conv2d_backward_bias gives it). The same as the reference's maxpool2d_backward,
/// relu_backward and batchnorm_backward, then conv2d_backward_bias, to rounding.
///
/// Why fused: those passes read or write the full-size map seven times (the routed gradient
/// written, read for the sums, read again for the input gradient, which is then read for the
/// bias). Here the first pass routes dout into dinp and sums the routed values as it goes;
/// the second turns dinp into the input gradient in place (a dinp + b z + c, with the
/// per-channel coefficients of batchnorm_backward) and sums it while the plane is in cache.
/// conv1's shape at batch 96, two threads, on the 2-core EPYC VM: 20-25 ms against 32-37 ms
/// for fast::maxpool2d_relu_backward, batchnorm_backward and conv2d_backward_bias.
/// `act` is the normalisation's output (the ReLU's input, whose sign is the mask); `grads` is
/// (dgamma, dbeta, dsum).
#[allow(clippy::too_many_arguments)]
pub fn maxpool2d_relu_batchnorm_backward(
    dinp: &mut [f32],
    (dgamma, dbeta, dsum): (&mut [f32], &mut [f32], &mut [f32]),
    dout: &[f32],
    act: &[f32],
    inp: &[f32],
    stats: &[f32],
    gamma: &[f32],
    s: NormShape,
) {
    let (hw, w, c) = (s.h * s.w, s.w, s.c);
    let (ho, wo) = (s.h / 2, s.w / 2);
    let plane_out = ho * wo;
    if plane_out == 0 {
        // Nothing is pooled, so nothing is routed: every gradient is zero.
        for d in [
            &mut dinp[..s.len()],
            &mut dgamma[..c],
            &mut dbeta[..c],
            &mut dsum[..c],
        ] {
            d.fill(0.0);
        }
        return;
    }
    // Pass 1, planes in parallel: dout routed to each window's first maximum where it is
    // positive, and the plane's sums of the routed values and of them times (z - mean).
    let sums = per_channel(
        dinp[..s.len()]
            .par_chunks_mut(hw)
            .enumerate()
            .map(|(bc, d)| {
                let (x, z) = (&act[bc * hw..][..hw], &inp[bc * hw..][..hw]);
                let g = &dout[bc * plane_out..][..plane_out];
                route_plane(d, (x, z), g, stats[bc % c], (s.h, w))
            }),
        c,
    );
    let coef = backward_coefficients(dgamma, dbeta, &sums, stats, gamma, s);
    // Pass 2, planes in parallel: dinp in place, and its sum (sum8, as conv2d_backward_bias).
    let bias = per_channel(
        dinp[..s.len()]
            .par_chunks_mut(hw)
            .enumerate()
            .map(|(bc, d)| {
                let (a, b, k) = coef[bc % c];
                for (d, &v) in d.iter_mut().zip(&inp[bc * hw..][..hw]) {
                    *d = a * *d + b * v + k;
                }
                (sum8(d, |v| v), 0.0)
            }),
        c,
    );
    for (d, (v, _)) in dsum[..c].iter_mut().zip(bias) {
        *d = v as f32;
    }
}

/// One plane's pooling and ReLU backward: d `[h, w]` gets g `[h/2, w/2]` at each window's
/// first maximum of x where that maximum is positive, zero elsewhere; returns the sums of
/// the routed values and of them times (z - mean), in f32 per row pair and f64 across them.
/// Written as plainly as maxpool2d_relu_backward: branch-free forms (every window writing
/// its four values as selects, or as a 0/1 factor) measured 2-3x slower, one thread, on the
/// 2-core EPYC VM, because LLVM turned their compares back into branches.
fn route_plane(
    d: &mut [f32],
    (x, z): (&[f32], &[f32]),
    g: &[f32],
    mean: f32,
    (h, w): (usize, usize),
) -> (f64, f64) {
    let wo = w / 2;
    d[..h * w].fill(0.0);
    let (mut sum_dy, mut sum_dy_xc) = (0.0f32, 0.0f32);
    let (mut all_dy, mut all_dy_xc) = (0.0f64, 0.0f64);
    for (oy, g) in g.chunks_exact(wo).enumerate() {
        for (ox, &g) in g.iter().enumerate() {
            let i = 2 * oy * w + 2 * ox;
            let idx = [i, i + 1, i + w, i + w + 1];
            let p = idx[maxpool_argmax([x[idx[0]], x[idx[1]], x[idx[2]], x[idx[3]]])];
            let g = if x[p] > 0.0 { g } else { 0.0 };
            d[p] = g;
            sum_dy += g;
            sum_dy_xc += g * (z[p] - mean);
        }
        all_dy += sum_dy as f64;
        all_dy_xc += sum_dy_xc as f64;
        (sum_dy, sum_dy_xc) = (0.0, 0.0);
    }
    (all_dy, all_dy_xc)
}

/// dgamma, dbeta `[C]` from the per-channel sums (of dout, of dout (x - mean)), and per
/// channel (a, b, c) with dinp = a dout + b x + c: dinp = k (dout - sum_dy / n - xhat
/// sum_dy_xhat / n), xhat = (x - mean) invstd, k = gamma invstd, is linear in dout and x.
fn backward_coefficients(
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    sums: &[(f64, f64)],
    stats: &[f32],
    gamma: &[f32],
    s: NormShape,
) -> Vec<(f32, f32, f32)> {
    let n = s.count() as f64;
    (0..s.c)
        .map(|c| {
            let (mean, invstd) = (stats[c] as f64, stats[s.c + c] as f64);
            let (sum_dy, sum_dy_xc) = sums[c];
            let sum_dy_xhat = sum_dy_xc * invstd;
            dbeta[c] = sum_dy as f32;
            dgamma[c] = sum_dy_xhat as f32;
            let k = gamma[c] as f64 * invstd;
            let bx = -k * invstd * sum_dy_xhat / n;
            (k as f32, bx as f32, (-k * sum_dy / n - bx * mean) as f32)
        })
        .collect()
}
