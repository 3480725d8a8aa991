// out [N, H + 2 pad, W + 2 pad] = inp [N, H, W] with a zero border of `pad` (N = batch x
// channels). The convolutions read padded planes so that no tap needs a bounds check.
struct Params { n: u32, h: u32, w: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let hp = p.h + 2u * p.pad;
    let wp = p.w + 2u * p.pad;
    if (i >= p.n * hp * wp) { return; }
    let x = i32(i % wp) - i32(p.pad);
    let y = i32((i / wp) % hp) - i32(p.pad);
    let plane = i / (wp * hp);
    var v = 0.0;
    if (x >= 0 && x < i32(p.w) && y >= 0 && y < i32(p.h)) {
        v = inp[(plane * p.h + u32(y)) * p.w + u32(x)];
    }
    out[i] = v;
}
