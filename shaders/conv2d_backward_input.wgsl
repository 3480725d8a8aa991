// dinp [B, Ci, H, W] from dout [B, Co, Ho, Wo] and weight [Co, Ci, K, K].
// One invocation per input element, summing over co, ky, kx as the reference does.
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.batch * p.cin * p.h * p.w) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let ci = (i / (p.w * p.h)) % p.cin;
    let b = i / (p.w * p.h * p.cin);
    var acc = 0.0;
    for (var co = 0u; co < p.cout; co++) {
        let obase = (b * p.cout + co) * p.ho;
        let wbase = (co * p.cin + ci) * p.k;
        for (var ky = 0u; ky < p.k; ky++) {
            let oy = i32(iy + p.pad) - i32(ky);
            if (oy < 0 || oy >= i32(p.ho)) { continue; }
            for (var kx = 0u; kx < p.k; kx++) {
                let ox = i32(ix + p.pad) - i32(kx);
                if (ox < 0 || ox >= i32(p.wo)) { continue; }
                acc += dout[(obase + u32(oy)) * p.wo + u32(ox)] * weight[(wbase + ky) * p.k + kx];
            }
        }
    }
    dinp[i] = acc;
}
