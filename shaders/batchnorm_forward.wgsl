// Training-mode batch normalisation of inp [B, C, H, W]: out = gamma * (inp - mean) * invstd
// + beta with channel c's batch mean and biased variance, stats [2, C] = (mean, invstd), and
// the running statistics [C] moved `momentum` of the way to the batch's (unbiased variance).
// One workgroup per channel: a pass for the mean, one for the variance around it (two
// passes, not sum and sum of squares, which cancel badly), one to write; fixed-shape trees,
// so the same bits every run.
struct Params { b: u32, c: u32, hw: u32, momentum: f32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(5) var<storage, read> inp: array<f32>;
// Read only, but declared read_write: in a network they share the parameter buffer with the
// running statistics written above, and one dispatch may not bind a buffer both ways.
@group(0) @binding(6) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> beta: array<f32>;

const WG: u32 = 256u;
var<workgroup> part: array<f32, 256>;

// Index in inp of channel c's i-th value (image i / hw, position i % hw).
fn at(c: u32, i: u32) -> u32 {
    let img = i / p.hw;
    return (img * p.c + c) * p.hw + (i - img * p.hw);
}

// The workgroup's sum of each lane's `v`, returned to every lane.
fn total(lid: u32, v: f32) -> f32 {
    part[lid] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            part[lid] += part[lid + stride];
        }
        workgroupBarrier();
    }
    let t = part[0];
    workgroupBarrier();
    return t;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let n = p.b * p.hw;
    var s = 0.0;
    for (var i = lid; i < n; i += WG) {
        s += inp[at(c, i)];
    }
    let mean = total(lid, s) / f32(n);
    var q = 0.0;
    for (var i = lid; i < n; i += WG) {
        let d = inp[at(c, i)] - mean;
        q += d * d;
    }
    let variance = total(lid, q) / f32(n);
    let invstd = 1.0 / sqrt(variance + p.eps);
    if (lid == 0u) {
        stats[c] = mean;
        stats[p.c + c] = invstd;
        let unbiased = select(variance, variance * f32(n) / f32(n - 1u), n > 1u);
        running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * mean;
        running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * unbiased;
    }
    let k = gamma[c] * invstd;
    let shift = beta[c] - k * mean;
    for (var i = lid; i < n; i += WG) {
        let j = at(c, i);
        out[j] = k * inp[j] + shift;
    }
}
