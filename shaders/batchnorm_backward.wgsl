// Gradients of training-mode batchnorm_forward: dgamma [C] = sum dout * xhat, dbeta [C] =
// sum dout, dinp [B, C, H, W] = gamma * invstd * (dout - dbeta / n - xhat * dgamma / n), xhat
// = (inp - mean) * invstd from the forward pass's stats [2, C]. One workgroup per channel:
// a pass for both sums (fixed-shape trees), one to write dinp.
struct Params { b: u32, c: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> inp: array<f32>;
@group(0) @binding(6) var<storage, read> stats: array<f32>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;

const WG: u32 = 256u;
var<workgroup> sdy: array<f32, 256>;
var<workgroup> sdx: array<f32, 256>;

// Index in inp of channel c's i-th value (image i / hw, position i % hw).
fn at(c: u32, i: u32) -> u32 {
    let img = i / p.hw;
    return (img * p.c + c) * p.hw + (i - img * p.hw);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let n = p.b * p.hw;
    let mean = stats[c];
    let invstd = stats[p.c + c];
    var a = 0.0;
    var x = 0.0;
    for (var i = lid; i < n; i += WG) {
        let j = at(c, i);
        a += dout[j];
        x += dout[j] * (inp[j] - mean) * invstd;
    }
    sdy[lid] = a;
    sdx[lid] = x;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            sdy[lid] += sdy[lid + stride];
            sdx[lid] += sdx[lid + stride];
        }
        workgroupBarrier();
    }
    let sum_dy = sdy[0];
    let sum_dy_xhat = sdx[0];
    if (lid == 0u) {
        dgamma[c] = sum_dy_xhat;
        dbeta[c] = sum_dy;
    }
    let k = gamma[c] * invstd;
    let count = f32(n);
    for (var i = lid; i < n; i += WG) {
        let j = at(c, i);
        let xhat = (inp[j] - mean) * invstd;
        dinp[j] = k * (dout[j] - sum_dy / count - xhat * sum_dy_xhat / count);
    }
}
