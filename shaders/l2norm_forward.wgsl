// out [N, D] = each row of inp [N, D] over its Euclidean norm (at least eps); one row per
// invocation (D is an embedding size, small).
struct Params { n: u32, d: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.n) { return; }
    var ss = 0.0;
    for (var k = 0u; k < p.d; k++) {
        let v = inp[r * p.d + k];
        ss += v * v;
    }
    let norm = max(sqrt(ss), p.eps);
    for (var k = 0u; k < p.d; k++) {
        out[r * p.d + k] = inp[r * p.d + k] / norm;
    }
}
