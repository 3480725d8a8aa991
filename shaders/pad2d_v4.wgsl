// pad2d where the output row width Wr is a multiple of 4 (always so for the shifted copies of
// the vec4 conv variants): the same out [C, N, H + 2 pad, Wr] written as vec4, 4 columns per
// store. On CPU-type adapters each lane's store is its own memory operation, so this writes
// in a quarter of the operations of the scalar shader. One invocation per output row.
struct Params { n: u32, h: u32, w: u32, pad: u32, wr: u32, copies: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    let hp = p.h + 2u * p.pad;
    if (r >= p.copies * p.n * hp) { return; }
    let wr4 = p.wr / 4u;
    let c = r / (p.n * hp);
    let y = i32(r % hp) - i32(p.pad);
    let plane = (r / hp) % p.n;
    let o = r * wr4;
    if (y < 0 || y >= i32(p.h)) {
        for (var x = 0u; x < wr4; x++) { out[o + x] = vec4<f32>(0.0); }
        return;
    }
    // Output column x reads input column x + shift: zeros left of 0 and from w on. Quads wholly
    // inside [lo4, hi4) load without checks; the others select per column.
    let src = i32((plane * p.h + u32(y)) * p.w);
    let shift = i32(c) - i32(p.pad);
    let w = i32(p.w);
    let lo4 = u32(clamp((-shift + 3) / 4, 0, i32(wr4)));
    let hi4 = u32(clamp((w - shift) / 4, i32(lo4), i32(wr4)));
    for (var x = 0u; x < lo4; x++) { out[o + x] = edge(src, i32(4u * x) + shift, w); }
    for (var x = lo4; x < hi4; x++) {
        let s = src + i32(4u * x) + shift;
        out[o + x] = vec4<f32>(inp[s], inp[s + 1], inp[s + 2], inp[s + 3]);
    }
    for (var x = hi4; x < wr4; x++) { out[o + x] = edge(src, i32(4u * x) + shift, w); }
}

// The 4 values from input column ix on (of a row starting at src), zero outside [0, w).
fn edge(src: i32, ix: i32, w: i32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var j = 0; j < 4; j++) {
        if (ix + j >= 0 && ix + j < w) { v[j] = inp[src + ix + j]; }
    }
    return v;
}
