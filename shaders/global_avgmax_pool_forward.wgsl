// out [B, 2C]: per image the mean of each channel plane of inp [B, C, H, W], then its maximum.
// One invocation per (image, channel) plane; the planes are small (a 7x7 map at 112 px).
struct Params { b: u32, c: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.b * p.c) { return; }
    let img = i / p.c;
    let ch = i % p.c;
    let o = i * p.hw;
    var sum = 0.0;
    var best = inp[o];
    for (var j = 0u; j < p.hw; j++) {
        let v = inp[o + j];
        sum += v;
        best = max(best, v);
    }
    out[img * 2u * p.c + ch] = sum / f32(p.hw);
    out[img * 2u * p.c + p.c + ch] = best;
}
