// partial [B, Co, Ci, K, K]: each image's contribution to dweight, from dout [B, Co, Ho, Wo]
// and inp [B, Ci, H, W]. WGSL has no float atomics, so the sum over the batch is a second,
// ordered pass (batch_sum), which also makes the result bit-reproducible.
// Register-blocked: each invocation computes 4 output channels x 4 neighbouring kx taps
// (16 accumulators) for one (image, ci, ky), loading 4 dout and 4 input values per output
// position for 16 multiply-adds. Out-of-range channels and taps are computed on clamped
// copies and not written. Positions are summed in the reference's order (oy, ox).
struct Params { batch: u32, cin: u32, cout: u32, h: u32, w: u32, k: u32, pad: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

fn at(row: u32, x: i32) -> f32 {
    if (x < 0 || x >= i32(p.w)) { return 0.0; }
    return inp[row + u32(x)];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let kb = (p.k + 3u) / 4u;
    let cb = (p.cout + 3u) / 4u;
    if (i >= p.batch * cb * p.cin * p.k * kb) { return; }
    let kx0 = (i % kb) * 4u;
    let ky = (i / kb) % p.k;
    let ci = (i / (kb * p.k)) % p.cin;
    let co0 = ((i / (kb * p.k * p.cin)) % cb) * 4u;
    let b = i / (kb * p.k * p.cin * cb);
    let last = p.cout - 1u;
    let hw = p.ho * p.wo;
    // dout plane of each of the 4 channels (clamped past Co).
    let d = (vec4<u32>(b * p.cout) + vec4<u32>(min(co0, last), min(co0 + 1u, last), min(co0 + 2u, last), min(co0 + 3u, last))) * hw;
    let ibase = (b * p.cin + ci) * p.h;
    // a<tap> holds the 4 channels' sums for tap kx0 + tap.
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    for (var oy = 0u; oy < p.ho; oy++) {
        let iy = i32(oy + ky) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let row = (ibase + u32(iy)) * p.w;
        for (var ox = 0u; ox < p.wo; ox++) {
            let q = oy * p.wo + ox;
            let g = vec4<f32>(dout[d.x + q], dout[d.y + q], dout[d.z + q], dout[d.w + q]);
            let x = i32(ox + kx0) - i32(p.pad);
            a0 += g * at(row, x);
            a1 += g * at(row, x + 1);
            a2 += g * at(row, x + 2);
            a3 += g * at(row, x + 3);
        }
    }
    let taps = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let kk = p.k * p.k;
    for (var c = 0u; c < min(4u, p.cout - co0); c++) {
        let o = (((b * p.cout + co0 + c) * p.cin + ci) * p.k + ky) * p.k + kx0;
        for (var t = 0u; t < min(4u, p.k - kx0); t++) {
            partial[o + t] = taps[t][c];
        }
    }
}
