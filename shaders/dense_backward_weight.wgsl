// dweight [O, I] = dout [B, O]^T . inp [B, I]; one invocation per weight, batch summed in order.
struct Params { batch: u32, nin: u32, nout: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.nout * p.nin) { return; }
    let k = i % p.nin;
    let o = i / p.nin;
    var acc = 0.0;
    for (var b = 0u; b < p.batch; b++) {
        acc += dout[b * p.nout + o] * inp[b * p.nin + k];
    }
    dweight[i] = acc;
}
