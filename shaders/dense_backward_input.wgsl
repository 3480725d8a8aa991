// dinp [B, I] = dout [B, O] . weight [O, I]; one invocation per input element.
struct Params { batch: u32, nin: u32, nout: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.batch * p.nin) { return; }
    let k = i % p.nin;
    let b = i / p.nin;
    var acc = 0.0;
    for (var o = 0u; o < p.nout; o++) {
        acc += dout[b * p.nout + o] * weight[o * p.nin + k];
    }
    dinp[i] = acc;
}
