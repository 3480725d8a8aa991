// dinp [N, D] = (dout - y (y . dout)) / |x| per row (y = out, x = inp); dout / eps where the
// forward divided by eps.
struct Params { n: u32, d: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> out: array<f32>;
@group(0) @binding(4) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.n) { return; }
    var ss = 0.0;
    var dot = 0.0;
    for (var k = 0u; k < p.d; k++) {
        let j = r * p.d + k;
        ss += inp[j] * inp[j];
        dot += out[j] * dout[j];
    }
    let norm = sqrt(ss);
    for (var k = 0u; k < p.d; k++) {
        let j = r * p.d + k;
        if (norm < p.eps) {
            dinp[j] = dout[j] / p.eps;
        } else {
            dinp[j] = (dout[j] - out[j] * dot) / norm;
        }
    }
}
