// Inference-mode batch normalisation: out [B, C, H, W] = gamma * (inp - running_mean) /
// sqrt(running_var + eps) + beta, every other tensor [C]. Elementwise, one invocation each.
struct Params { b: u32, c: u32, hw: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read> running_var: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.b * p.c * p.hw) { return; }
    let c = (i / p.hw) % p.c;
    let k = gamma[c] / sqrt(running_var[c] + p.eps);
    out[i] = k * (inp[i] - running_mean[c]) + beta[c];
}
