// dinp [B, C, H, W]: dout [B, C, H/2, W/2] routed to the first maximum of each 2x2 window of
// inp, zero elsewhere. One invocation per input element (windows do not overlap, so no
// atomics are needed).
struct Params { bc: u32, h: u32, w: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.bc * p.h * p.w) { return; }
    let x = i % p.w;
    let y = (i / p.w) % p.h;
    let bc = i / (p.w * p.h);
    let ox = x / 2u;
    let oy = y / 2u;
    if (ox >= p.wo || oy >= p.ho) {
        dinp[i] = 0.0;
        return;
    }
    let j = (bc * p.h + 2u * oy) * p.w + 2u * ox;
    let v = array<f32, 4>(inp[j], inp[j + 1u], inp[j + p.w], inp[j + p.w + 1u]);
    var best = 0u;
    for (var k = 1u; k < 4u; k++) {
        if (v[k] > v[best]) { best = k; }
    }
    let mine = (y % 2u) * 2u + (x % 2u);
    dinp[i] = select(0.0, dout[(bc * p.ho + oy) * p.wo + ox], mine == best);
}
