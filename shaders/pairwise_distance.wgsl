// out [N, M] = squared Euclidean distance between rows of x [N, D] and y [M, D], summed as
// differences so a point's distance to itself is exactly 0. Used n x n within a batch and
// q x g between queries and a gallery.
struct Params { n: u32, m: u32, d: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n * p.m) { return; }
    let col = i % p.m;
    let row = i / p.m;
    var acc = 0.0;
    for (var k = 0u; k < p.d; k++) {
        let diff = x[row * p.d + k] - y[col * p.d + k];
        acc += diff * diff;
    }
    out[i] = acc;
}
