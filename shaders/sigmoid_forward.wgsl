// out [n] = sigmoid(inp), in the form whose exp() never overflows.
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n) { return; }
    let x = inp[i];
    let e = exp(-abs(x));
    out[i] = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
