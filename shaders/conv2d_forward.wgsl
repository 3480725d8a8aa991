// out [B, Co, Ho, Wo] = conv(inp [B, Ci, H, W], weight [Co, Ci, K, K]) + bias [Co]
// Stride 1, zero padding `pad`. Register-blocked for CPU-like adapters (lavapipe) and GPUs
// alike: each invocation computes 8 output channels x 4 neighbouring pixels of one row in
// eight vec4 accumulators, so per tap it loads 4 inputs and 8 weights for 32 multiply-adds.
// (No dynamically indexed private arrays: compilers spill those to memory.) Channels past
// Co and pixels past Wo are computed on clamped copies and not written. Sums run in the
// reference's order (bias, then ci, ky, kx).
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// Input value at (row base, column x) or 0 outside the image.
fn at(row: u32, x: i32, ok: bool) -> f32 {
    if (!ok || x < 0 || x >= i32(p.w)) { return 0.0; }
    return inp[row + u32(x)];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let blocks = (p.cout + 7u) / 8u;
    let xb = (p.wo + 3u) / 4u;
    let rows = p.ho * xb;
    if (i >= blocks * p.batch * rows) { return; }
    let ox0 = (i % xb) * 4u;
    let oy = (i / xb) % p.ho;
    let b = (i / rows) % p.batch;
    let co0 = (i / (rows * p.batch)) * 8u;
    let last = p.cout - 1u;
    let kk = p.k * p.k;
    let ws = p.cin * kk;
    let r0 = vec4<u32>(min(co0, last), min(co0 + 1u, last), min(co0 + 2u, last), min(co0 + 3u, last)) * ws;
    let r1 = vec4<u32>(min(co0 + 4u, last), min(co0 + 5u, last), min(co0 + 6u, last), min(co0 + 7u, last)) * ws;
    let b0 = vec4<f32>(bias[r0.x / ws], bias[r0.y / ws], bias[r0.z / ws], bias[r0.w / ws]);
    let b1 = vec4<f32>(bias[r1.x / ws], bias[r1.y / ws], bias[r1.z / ws], bias[r1.w / ws]);
    // lo* hold channels 0-3, hi* channels 4-7, for pixels ox0 + 0..3.
    var lo0 = b0; var lo1 = b0; var lo2 = b0; var lo3 = b0;
    var hi0 = b1; var hi1 = b1; var hi2 = b1; var hi3 = b1;
    for (var ci = 0u; ci < p.cin; ci++) {
        let ibase = (b * p.cin + ci) * p.h;
        for (var ky = 0u; ky < p.k; ky++) {
            let iy = i32(oy + ky) - i32(p.pad);
            let ok = iy >= 0 && iy < i32(p.h);
            let row = (ibase + u32(max(iy, 0))) * p.w;
            for (var kx = 0u; kx < p.k; kx++) {
                let x = i32(ox0 + kx) - i32(p.pad);
                let x0 = at(row, x, ok);
                let x1 = at(row, x + 1, ok);
                let x2 = at(row, x + 2, ok);
                let x3 = at(row, x + 3, ok);
                let t = ci * kk + ky * p.k + kx;
                let w0 = vec4<f32>(weight[r0.x + t], weight[r0.y + t], weight[r0.z + t], weight[r0.w + t]);
                let w1 = vec4<f32>(weight[r1.x + t], weight[r1.y + t], weight[r1.z + t], weight[r1.w + t]);
                lo0 += x0 * w0; lo1 += x1 * w0; lo2 += x2 * w0; lo3 += x3 * w0;
                hi0 += x0 * w1; hi1 += x1 * w1; hi2 += x2 * w1; hi3 += x3 * w1;
            }
        }
    }
    let nc = min(8u, p.cout - co0);
    let o = ((b * p.cout + co0) * p.ho + oy) * p.wo + ox0;
    let hw = p.ho * p.wo;
    let px = array<array<f32, 8>, 4>(
        array<f32, 8>(lo0.x, lo0.y, lo0.z, lo0.w, hi0.x, hi0.y, hi0.z, hi0.w),
        array<f32, 8>(lo1.x, lo1.y, lo1.z, lo1.w, hi1.x, hi1.y, hi1.z, hi1.w),
        array<f32, 8>(lo2.x, lo2.y, lo2.z, lo2.w, hi2.x, hi2.y, hi2.z, hi2.w),
        array<f32, 8>(lo3.x, lo3.y, lo3.z, lo3.w, hi3.x, hi3.y, hi3.z, hi3.w),
    );
    for (var j = 0u; j < min(4u, p.wo - ox0); j++) {
        for (var c = 0u; c < nc; c++) {
            out[o + c * hw + j] = px[j][c];
        }
    }
}
