// pad2d with one invocation per output element, for hardware GPUs: neighbouring invocations
// write neighbouring addresses, so a warp's stores coalesce (the row kernels pad2d and
// pad2d_v4 give each invocation a row, which suits CPU-type adapters, where the index
// arithmetic per element would dominate). out [C, N, H + 2 pad, Wr] = C copies of
// inp [N, H, W] in a zero border of `pad`, copy c shifted left by c columns.
struct Params { n: u32, h: u32, w: u32, pad: u32, wr: u32, copies: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let hp = p.h + 2u * p.pad;
    if (i >= p.copies * p.n * hp * p.wr) { return; }
    let r = i / p.wr;
    let c = r / (p.n * hp);
    let y = i32(r % hp) - i32(p.pad);
    let plane = (r / hp) % p.n;
    let x = i32(i % p.wr) + i32(c) - i32(p.pad);
    var v = 0.0;
    if (y >= 0 && y < i32(p.h) && x >= 0 && x < i32(p.w)) {
        v = inp[(plane * p.h + u32(y)) * p.w + u32(x)];
    }
    out[i] = v;
}
