// out [B, Co, Ho, Wo] = conv(inp [B, Ci, H, W], weight [Co, Ci, K, K]) + bias [Co]
// Stride 1, zero padding `pad`. Register-blocked: each invocation computes 8 output channels
// of one pixel in two vec4 accumulators (no dynamically indexed arrays, which compilers
// spill to memory), so each input value is loaded once for 8 multiply-adds. Channels past
// Co are computed on a clamped copy and not written. Invocations are ordered (channel block,
// batch, row, column): neighbouring lanes read neighbouring pixels and the same weights.
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let blocks = (p.cout + 7u) / 8u;
    let hw = p.ho * p.wo;
    if (i >= blocks * p.batch * hw) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let b = (i / hw) % p.batch;
    let co0 = (i / (hw * p.batch)) * 8u;
    let last = p.cout - 1u;
    let kk = p.k * p.k;
    let ws = p.cin * kk;
    // Weight row of each of the 8 channels (clamped past Co).
    let r0 = vec4<u32>(min(co0, last), min(co0 + 1u, last), min(co0 + 2u, last), min(co0 + 3u, last)) * ws;
    let r1 = vec4<u32>(min(co0 + 4u, last), min(co0 + 5u, last), min(co0 + 6u, last), min(co0 + 7u, last)) * ws;
    var a0 = vec4<f32>(bias[r0.x / ws], bias[r0.y / ws], bias[r0.z / ws], bias[r0.w / ws]);
    var a1 = vec4<f32>(bias[r1.x / ws], bias[r1.y / ws], bias[r1.z / ws], bias[r1.w / ws]);
    for (var ci = 0u; ci < p.cin; ci++) {
        let ibase = (b * p.cin + ci) * p.h;
        for (var ky = 0u; ky < p.k; ky++) {
            let iy = i32(oy + ky) - i32(p.pad);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            let row = (ibase + u32(iy)) * p.w;
            for (var kx = 0u; kx < p.k; kx++) {
                let ix = i32(ox + kx) - i32(p.pad);
                if (ix < 0 || ix >= i32(p.w)) { continue; }
                let x = inp[row + u32(ix)];
                let t = ci * kk + ky * p.k + kx;
                a0 += x * vec4<f32>(weight[r0.x + t], weight[r0.y + t], weight[r0.z + t], weight[r0.w + t]);
                a1 += x * vec4<f32>(weight[r1.x + t], weight[r1.y + t], weight[r1.z + t], weight[r1.w + t]);
            }
        }
    }
    let o = ((b * p.cout + co0) * p.ho + oy) * p.wo + ox;
    let acc = array<f32, 8>(a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
    for (var j = 0u; j < min(8u, p.cout - co0); j++) {
        out[o + j * hw] = acc[j];
    }
}
