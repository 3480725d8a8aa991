//! Batch normalisation folded into the convolution before it, for inference: with the
//! running statistics fixed, gamma * (conv(x) + bias - mean) / sqrt(var + eps) + beta is one
//! convolution with each output channel's weights scaled, so an inference network (and its
//! ONNX export) runs no normalisation pass at all.

use crate::shapes::BN_EPS;

/// Scales weight `[Co, per_out]` and rewrites bias `[Co]` in place so that the convolution
/// equals itself followed by inference-mode batch normalisation with gamma, beta and the
/// running statistics, all `[Co]`.
pub fn fold_batchnorm(
    weight: &mut [f32],
    bias: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
) {
    let cout = bias.len();
    let per_out = weight.len() / cout;
    for c in 0..cout {
        let k = gamma[c] as f64 / (running_var[c] as f64 + BN_EPS as f64).sqrt();
        for w in &mut weight[c * per_out..(c + 1) * per_out] {
            *w = (*w as f64 * k) as f32;
        }
        bias[c] = (k * (bias[c] as f64 - running_mean[c] as f64) + beta[c] as f64) as f32;
    }
}
