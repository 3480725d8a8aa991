// out [B, O] = inp [B, I] . weight [O, I]^T + bias [O]; one invocation per output.
struct Params { batch: u32, nin: u32, nout: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.batch * p.nout) { return; }
    let o = i % p.nout;
    let b = i / p.nout;
    var acc = bias[o];
    for (var k = 0u; k < p.nin; k++) {
        acc += inp[b * p.nin + k] * weight[o * p.nin + k];
    }
    out[i] = acc;
}
