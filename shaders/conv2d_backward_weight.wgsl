// partial [B, Co, Ci, K, K]: each image's contribution to dweight, from dout [B, Co, Ho, Wo]
// and inp [B, Ci, H, W]. WGSL has no float atomics, so the sum over the batch is a second,
// ordered pass (batch_sum), which also makes the result bit-reproducible.
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let wlen = p.cout * p.cin * p.k * p.k;
    if (i >= p.batch * wlen) { return; }
    let kx = i % p.k;
    let ky = (i / p.k) % p.k;
    let ci = (i / (p.k * p.k)) % p.cin;
    let co = (i / (p.k * p.k * p.cin)) % p.cout;
    let b = i / wlen;
    let obase = (b * p.cout + co) * p.ho;
    let ibase = (b * p.cin + ci) * p.h;
    var acc = 0.0;
    for (var oy = 0u; oy < p.ho; oy++) {
        let iy = i32(oy + ky) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        for (var ox = 0u; ox < p.wo; ox++) {
            let ix = i32(ox + kx) - i32(p.pad);
            if (ix < 0 || ix >= i32(p.w)) { continue; }
            acc += dout[(obase + oy) * p.wo + ox] * inp[(ibase + u32(iy)) * p.w + u32(ix)];
        }
    }
    partial[i] = acc;
}
