// dbias [O] = sum over the batch of dout [B, O].
struct Params { batch: u32, nin: u32, nout: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 64u;
    if (o >= p.nout) { return; }
    var acc = 0.0;
    for (var b = 0u; b < p.batch; b++) {
        acc += dout[b * p.nout + o];
    }
    dbias[o] = acc;
}
