// The Siamese head (Eq. 1) on pairs [T, 3] (a, b, same) of embeddings x [N, D]:
// s = sum_j alpha_j |x_a,j - x_b,j| + beta; losses [T] = softplus(s) - same * s (binary
// cross-entropy of sigmoid(s)); dlogit [T] = sigmoid(s) - same. INVALID a gives 0.
struct Params { t: u32, d: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> losses: array<f32>;
@group(0) @binding(2) var<storage, read_write> dlogit: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> pairs: array<u32>;
@group(0) @binding(5) var<storage, read> alpha: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if (t >= p.t) { return; }
    let a = pairs[3u * t];
    if (a == 0xffffffffu) {
        losses[t] = 0.0;
        dlogit[t] = 0.0;
        return;
    }
    let b = pairs[3u * t + 1u];
    let same = f32(pairs[3u * t + 2u]);
    var s = beta[0];
    for (var j = 0u; j < p.d; j++) {
        s += alpha[j] * abs(x[a * p.d + j] - x[b * p.d + j]);
    }
    losses[t] = max(s, 0.0) - same * s + log(1.0 + exp(-abs(s)));
    dlogit[t] = 1.0 / (1.0 + exp(-s)) - same;
}
