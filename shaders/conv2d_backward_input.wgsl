// dinp [B, Ci, H, W] from dout [B, Co, Ho, Wo] and weight [Co, Ci, K, K].
// Register-blocked like conv2d_forward: each invocation computes 8 input channels of one
// pixel, loading each dout value once for 8 multiply-adds; sums over co, ky, kx in the
// reference's order.
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;

const CB: u32 = 8u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let blocks = (p.cin + CB - 1u) / CB;
    let hw = p.h * p.w;
    if (i >= blocks * p.batch * hw) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let b = (i / hw) % p.batch;
    let ci0 = (i / (hw * p.batch)) * CB;
    let nc = min(CB, p.cin - ci0);
    var acc: array<f32, 8>;
    let kk = p.k * p.k;
    for (var co = 0u; co < p.cout; co++) {
        let obase = (b * p.cout + co) * p.ho;
        for (var ky = 0u; ky < p.k; ky++) {
            let oy = i32(iy + p.pad) - i32(ky);
            if (oy < 0 || oy >= i32(p.ho)) { continue; }
            for (var kx = 0u; kx < p.k; kx++) {
                let ox = i32(ix + p.pad) - i32(kx);
                if (ox < 0 || ox >= i32(p.wo)) { continue; }
                let g = dout[(obase + u32(oy)) * p.wo + u32(ox)];
                let wi = (co * p.cin + ci0) * kk + ky * p.k + kx;
                for (var j = 0u; j < CB; j++) {
                    if (j < nc) { acc[j] += g * weight[wi + j * kk]; }
                }
            }
        }
    }
    for (var j = 0u; j < nc; j++) {
        dinp[((b * p.cin + ci0 + j) * p.h + iy) * p.w + ix] = acc[j];
    }
}
