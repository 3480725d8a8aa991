// dinp [B, C, H, W]: each plane's mean gradient spread evenly over it, plus its max gradient at
// the plane's first maximum (ties to the first, as the reference); dout [B, 2C].
// One invocation per plane: it alone writes that plane, so no atomics.
struct Params { b: u32, c: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.b * p.c) { return; }
    let img = i / p.c;
    let ch = i % p.c;
    let o = i * p.hw;
    var best = 0u;
    for (var j = 1u; j < p.hw; j++) {
        if (inp[o + j] > inp[o + best]) { best = j; }
    }
    let da = dout[img * 2u * p.c + ch] / f32(p.hw);
    let dm = dout[img * 2u * p.c + p.c + ch];
    for (var j = 0u; j < p.hw; j++) {
        dinp[o + j] = select(da, da + dm, j == best);
    }
}
