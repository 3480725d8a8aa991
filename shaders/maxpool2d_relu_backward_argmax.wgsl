// dinp [B, C, H, W] from dout [B, C, H/2, W/2] and the codes conv2d_forward_relu_maxpool
// kept (one byte per pooled output, 4 per u32: the first maximum's window position 0..3, or
// 4 where the ReLU was off): each gradient goes to its window's maximum, zero elsewhere.
// Unlike maxpool2d_relu_backward it never reads the full-size activation (which the fused
// forward pass does not store). H even, W a multiple of 8. One invocation per code word:
// 4 pooled outputs, i.e. 2 rows x 8 inputs written as 4 vec4 (windows do not overlap).
struct Params { words: u32, w8: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> codes: array<u32>;

// The gradient at window position `pos` of a window with code `code`.
fn routed(g: f32, code: u32, pos: u32) -> f32 {
    return select(0.0, g, code == pos);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.words) { return; }
    let g = dout[i];
    let word = codes[i];
    let c = vec4<u32>(word & 255u, (word >> 8u) & 255u, (word >> 16u) & 255u, word >> 24u);
    // Code word i covers pooled row py, pooled columns 4 pg .. 4 pg + 3 of plane bc, i.e.
    // input rows 2 py and 2 py + 1, columns 8 pg .. 8 pg + 7 (vec4 2 pg and 2 pg + 1).
    let pg = i % p.w8;
    let row = i / p.w8; // bc * h2 + py
    let top = (2u * row) * (2u * p.w8) + 2u * pg;
    let bottom = top + 2u * p.w8;
    dinp[top] = vec4<f32>(routed(g.x, c.x, 0u), routed(g.x, c.x, 1u), routed(g.y, c.y, 0u), routed(g.y, c.y, 1u));
    dinp[top + 1u] = vec4<f32>(routed(g.z, c.z, 0u), routed(g.z, c.z, 1u), routed(g.w, c.w, 0u), routed(g.w, c.w, 1u));
    dinp[bottom] = vec4<f32>(routed(g.x, c.x, 2u), routed(g.x, c.x, 3u), routed(g.y, c.y, 2u), routed(g.y, c.y, 3u));
    dinp[bottom + 1u] = vec4<f32>(routed(g.z, c.z, 2u), routed(g.z, c.z, 3u), routed(g.w, c.w, 2u), routed(g.w, c.w, 3u));
}
