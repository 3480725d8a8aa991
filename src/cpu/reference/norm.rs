//! Batch normalisation in the reference's conventions (outputs first, then inputs, then the
//! shape): each channel of `[B, C, H, W]` normalised over its B*H*W values. Sums are taken
//! in f64 so the oracle stays exact on a first layer's million values per channel.

use crate::shapes::{NormShape, BN_EPS};

/// (index of the first value of plane (b, c), plane length): channel c's values are the
/// planes b = 0..B, each H*W contiguous values.
fn plane(s: &NormShape, b: usize, c: usize) -> std::ops::Range<usize> {
    let hw = s.h * s.w;
    (b * s.c + c) * hw..(b * s.c + c + 1) * hw
}

/// Training mode. out `[B, C, H, W]` = gamma `[C]` * (inp - mean) * invstd + beta `[C]`
/// with each channel's batch mean and biased variance (invstd = 1 / sqrt(var + BN_EPS));
/// stats `[2, C]` = (mean, invstd) for the backward pass; the running statistics `[C]` move
/// `momentum` of the way to the batch's mean and unbiased variance (as PyTorch; 0 keeps them).
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
    let n = s.count() as f64;
    for c in 0..s.c {
        let values = || (0..s.batch).flat_map(move |b| inp[plane(&s, b, c)].iter());
        let mean = values().map(|&v| v as f64).sum::<f64>() / n;
        let var = values().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let invstd = 1.0 / (var + BN_EPS as f64).sqrt();
        stats[c] = mean as f32;
        stats[s.c + c] = invstd as f32;
        let unbiased = if n > 1.0 { var * n / (n - 1.0) } else { var };
        let m = momentum as f64;
        running_mean[c] = ((1.0 - m) * running_mean[c] as f64 + m * mean) as f32;
        running_var[c] = ((1.0 - m) * running_var[c] as f64 + m * unbiased) as f32;
        let (g, bt) = (gamma[c] as f64, beta[c] as f64);
        for b in 0..s.batch {
            for i in plane(&s, b, c) {
                out[i] = (g * (inp[i] as f64 - mean) * invstd + bt) as f32;
            }
        }
    }
}

/// Inference mode: out `[B, C, H, W]` = gamma * (inp - running_mean) / sqrt(running_var +
/// BN_EPS) + beta, every tensor but inp and out `[C]`.
pub fn batchnorm_inference(
    out: &mut [f32],
    inp: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    s: NormShape,
) {
    for c in 0..s.c {
        let scale = gamma[c] as f64 / (running_var[c] as f64 + BN_EPS as f64).sqrt();
        for b in 0..s.batch {
            for i in plane(&s, b, c) {
                out[i] = (scale * (inp[i] as f64 - running_mean[c] as f64) + beta[c] as f64) as f32;
            }
        }
    }
}

/// Gradients of training-mode batchnorm_forward: dgamma `[C]` = sum dout * xhat, dbeta `[C]`
/// = sum dout, dinp `[B, C, H, W]` = gamma * invstd * (dout - dbeta / n - xhat * dgamma / n)
/// with xhat = (inp - mean) * invstd from the forward pass's stats `[2, C]` (the batch
/// statistics depend on every input, hence the two mean terms).
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
    let n = s.count() as f64;
    for c in 0..s.c {
        let (mean, invstd) = (stats[c] as f64, stats[s.c + c] as f64);
        let xhat = |i: usize| (inp[i] as f64 - mean) * invstd;
        let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
        for b in 0..s.batch {
            for i in plane(&s, b, c) {
                sum_dy += dout[i] as f64;
                sum_dy_xhat += dout[i] as f64 * xhat(i);
            }
        }
        dgamma[c] = sum_dy_xhat as f32;
        dbeta[c] = sum_dy as f32;
        let k = gamma[c] as f64 * invstd;
        for b in 0..s.batch {
            for i in plane(&s, b, c) {
                dinp[i] = (k * (dout[i] as f64 - sum_dy / n - xhat(i) * sum_dy_xhat / n)) as f32;
            }
        }
    }
}
