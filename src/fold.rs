//! Batch normalisation folded into the convolution before it, for inference: with the
//! running statistics fixed, gamma * (conv(x) + bias - mean) / sqrt(var + eps) + beta is one
//! convolution with each output channel's weights scaled, so an inference network (and its
//! ONNX export) runs no normalisation pass at all.

use crate::model::{Arch, Norm, ParamLayout};
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

/// The unnormalised network that computes what `arch` with `params` computes at inference:
/// each batch normalisation folded into its convolution (an architecture without
/// normalisation and its parameters). Inference runs it instead (one pass per block fewer,
/// and the fused conv + ReLU + pooling kernels apply); an architecture without
/// normalisation comes back as it is.
pub fn folded(arch: &Arch, params: &[f32]) -> (Arch, Vec<f32>) {
    if arch.norm == Norm::None {
        return (arch.clone(), params.to_vec());
    }
    let plain = Arch {
        norm: Norm::None,
        ..arch.clone()
    };
    let (from, to) = (ParamLayout::new(arch), ParamLayout::new(&plain));
    let mut out = vec![0.0; to.total];
    // Every tensor of the plain network has its namesake here (the conv biases are frozen
    // ones under a normalisation, then folded below).
    for t in &to.tensors {
        out[t.range()].copy_from_slice(&params[from.get(&t.name).range()]);
    }
    for l in 0..arch.channels.len() {
        let n = from
            .norm(l)
            .expect("a normalised architecture has a norm per block");
        let (w, b) = to.conv(l);
        let (w, b) = (w.range(), b.range());
        let (weight, rest) = out.split_at_mut(b.start);
        let v = |t: &crate::model::TensorInfo| &params[t.range()];
        fold_batchnorm(
            &mut weight[w],
            &mut rest[..b.len()],
            v(n.gamma),
            v(n.beta),
            v(n.running_mean),
            v(n.running_var),
        );
    }
    (plain, out)
}
