// out [C, N, H + 2 pad, Wr] = C copies of inp [N, H, W] in a zero border of `pad`, copy c
// shifted left by c columns (N = batch x channels; the columns past the image are zero). One
// copy is plain padding, so the convolutions need no bounds checks; K shifted copies let
// conv2d_forward_v4 read every tap as an aligned vec4. One invocation per output row: the
// index arithmetic is paid per row, not per element (this pass runs before every conv).
struct Params { n: u32, h: u32, w: u32, pad: u32, wr: u32, copies: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    let hp = p.h + 2u * p.pad;
    if (r >= p.copies * p.n * hp) { return; }
    let c = r / (p.n * hp);
    let y = i32(r % hp) - i32(p.pad);
    let plane = (r / hp) % p.n;
    let o = r * p.wr;
    if (y < 0 || y >= i32(p.h)) {
        for (var x = 0u; x < p.wr; x++) { out[o + x] = 0.0; }
        return;
    }
    // Output column x reads input column x + c - pad: zeros left of 0 and from w on.
    let src = (plane * p.h + u32(y)) * p.w;
    let shift = i32(c) - i32(p.pad);
    let lo = u32(clamp(-shift, 0, i32(p.wr)));
    let hi = u32(clamp(i32(p.w) - shift, i32(lo), i32(p.wr)));
    for (var x = 0u; x < lo; x++) { out[o + x] = 0.0; }
    for (var x = lo; x < hi; x++) { out[o + x] = inp[src + u32(i32(x) + shift)]; }
    for (var x = hi; x < p.wr; x++) { out[o + x] = 0.0; }
}
