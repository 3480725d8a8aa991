// dinp [B, C, H, W]: dout [B, C, H/2, W/2] routed to the first maximum of each 2x2 window of
// inp, zero elsewhere. One invocation per window writes its 4 inputs (windows do not overlap,
// so no atomics are needed), and the window at the end of a row or column also zeroes the
// odd row or column the forward pass dropped. Comparisons are written out: a small private
// array indexed in a loop is spilled to memory on CPU-type adapters (3x slower).
// With relu = 1 (maxpool2d_relu_backward) the input is a ReLU's output and the gradient also
// goes through that ReLU: nothing is routed where the maximum is 0 (the ReLU was off).
struct Params { bc: u32, h: u32, w: u32, ho: u32, wo: u32, relu: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (p.ho == 0u || p.wo == 0u) {
        // No window at all (H or W is 1): every input is dropped.
        if (i < p.bc * p.h * p.w) { dinp[i] = 0.0; }
        return;
    }
    if (i >= p.bc * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let bc = i / (p.wo * p.ho);
    let j = (bc * p.h + 2u * oy) * p.w + 2u * ox;
    let a = inp[j];
    let b = inp[j + 1u];
    let c = inp[j + p.w];
    let d = inp[j + p.w + 1u];
    // The first maximum in row-major order, as cpu::reference::maxpool_argmax.
    var best = 0u;
    var m = a;
    if (b > m) { best = 1u; m = b; }
    if (c > m) { best = 2u; m = c; }
    if (d > m) { best = 3u; }
    let g = select(0.0, dout[i], p.relu == 0u || max(max(a, b), max(c, d)) > 0.0);
    dinp[j] = select(0.0, g, best == 0u);
    dinp[j + 1u] = select(0.0, g, best == 1u);
    dinp[j + p.w] = select(0.0, g, best == 2u);
    dinp[j + p.w + 1u] = select(0.0, g, best == 3u);
    let odd_w = p.w % 2u == 1u && ox == p.wo - 1u;
    if (odd_w) {
        dinp[j + 2u] = 0.0;
        dinp[j + p.w + 2u] = 0.0;
    }
    if (p.h % 2u == 1u && oy == p.ho - 1u) {
        let r = j + 2u * p.w;
        dinp[r] = 0.0;
        dinp[r + 1u] = 0.0;
        if (odd_w) { dinp[r + 2u] = 0.0; }
    }
}
