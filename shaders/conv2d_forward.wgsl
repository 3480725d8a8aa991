// out [B, Co, Ho, Wo] = conv(inp [B, Ci, H, W], weight [Co, Ci, K, K]) + bias [Co]
// Stride 1, zero padding `pad`. One invocation per output element; the sum runs in the
// reference's order (bias, then ci, ky, kx).
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.batch * p.cout * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let co = (i / (p.wo * p.ho)) % p.cout;
    let b = i / (p.wo * p.ho * p.cout);
    var acc = bias[co];
    for (var ci = 0u; ci < p.cin; ci++) {
        let ibase = (b * p.cin + ci) * p.h;
        let wbase = (co * p.cin + ci) * p.k;
        for (var ky = 0u; ky < p.k; ky++) {
            let iy = i32(oy + ky) - i32(p.pad);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            for (var kx = 0u; kx < p.k; kx++) {
                let ix = i32(ox + kx) - i32(p.pad);
                if (ix < 0 || ix >= i32(p.w)) { continue; }
                acc += inp[(ibase + u32(iy)) * p.w + u32(ix)] * weight[(wbase + ky) * p.k + kx];
            }
        }
    }
    out[i] = acc;
}
