// dinp [B, Ci, H, W] from dout [B, Co, Ho, Wo] and weight [Co, Ci, K, K].
// Register-blocked like conv2d_forward: each invocation computes 8 input channels x 4
// neighbouring pixels of one row in eight vec4 accumulators, so per tap it loads 4 dout
// values and 8 weights for 32 multiply-adds. Channels past Ci and pixels past W are computed
// on clamped copies and not written. Sums over co, ky, kx in the reference's order.
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;

// dout at (row base, column x) or 0 outside the output.
fn at(row: u32, x: i32, ok: bool) -> f32 {
    if (!ok || x < 0 || x >= i32(p.wo)) { return 0.0; }
    return dout[row + u32(x)];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let blocks = (p.cin + 7u) / 8u;
    let xb = (p.w + 3u) / 4u;
    let rows = p.h * xb;
    if (i >= blocks * p.batch * rows) { return; }
    let ix0 = (i % xb) * 4u;
    let iy = (i / xb) % p.h;
    let b = (i / rows) % p.batch;
    let ci0 = (i / (rows * p.batch)) * 8u;
    let last = p.cin - 1u;
    let kk = p.k * p.k;
    // Offset of each of the 8 input channels inside a weight row [Ci, K, K].
    let c0 = vec4<u32>(min(ci0, last), min(ci0 + 1u, last), min(ci0 + 2u, last), min(ci0 + 3u, last)) * kk;
    let c1 = vec4<u32>(min(ci0 + 4u, last), min(ci0 + 5u, last), min(ci0 + 6u, last), min(ci0 + 7u, last)) * kk;
    var lo0 = vec4<f32>(0.0); var lo1 = vec4<f32>(0.0); var lo2 = vec4<f32>(0.0); var lo3 = vec4<f32>(0.0);
    var hi0 = vec4<f32>(0.0); var hi1 = vec4<f32>(0.0); var hi2 = vec4<f32>(0.0); var hi3 = vec4<f32>(0.0);
    for (var co = 0u; co < p.cout; co++) {
        let obase = (b * p.cout + co) * p.ho;
        let wrow = co * p.cin * kk;
        for (var ky = 0u; ky < p.k; ky++) {
            let oy = i32(iy + p.pad) - i32(ky);
            let ok = oy >= 0 && oy < i32(p.ho);
            let row = (obase + u32(max(oy, 0))) * p.wo;
            for (var kx = 0u; kx < p.k; kx++) {
                let x = i32(ix0 + p.pad) - i32(kx);
                let g0 = at(row, x, ok);
                let g1 = at(row, x + 1, ok);
                let g2 = at(row, x + 2, ok);
                let g3 = at(row, x + 3, ok);
                let t = wrow + ky * p.k + kx;
                let w0 = vec4<f32>(weight[t + c0.x], weight[t + c0.y], weight[t + c0.z], weight[t + c0.w]);
                let w1 = vec4<f32>(weight[t + c1.x], weight[t + c1.y], weight[t + c1.z], weight[t + c1.w]);
                lo0 += g0 * w0; lo1 += g1 * w0; lo2 += g2 * w0; lo3 += g3 * w0;
                hi0 += g0 * w1; hi1 += g1 * w1; hi2 += g2 * w1; hi3 += g3 * w1;
            }
        }
    }
    let nc = min(8u, p.cin - ci0);
    let o = ((b * p.cin + ci0) * p.h + iy) * p.w + ix0;
    let hw = p.h * p.w;
    let px = array<array<f32, 8>, 4>(
        array<f32, 8>(lo0.x, lo0.y, lo0.z, lo0.w, hi0.x, hi0.y, hi0.z, hi0.w),
        array<f32, 8>(lo1.x, lo1.y, lo1.z, lo1.w, hi1.x, hi1.y, hi1.z, hi1.w),
        array<f32, 8>(lo2.x, lo2.y, lo2.z, lo2.w, hi2.x, hi2.y, hi2.z, hi2.w),
        array<f32, 8>(lo3.x, lo3.y, lo3.z, lo3.w, hi3.x, hi3.y, hi3.z, hi3.w),
    );
    for (var j = 0u; j < min(4u, p.w - ix0); j++) {
        for (var c = 0u; c < nc; c++) {
            dinp[o + c * hw + j] = px[j][c];
        }
    }
}
