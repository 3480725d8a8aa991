// partial [B, Co]: each image's sum of dout [B, Co, Ho, Wo] over space; batch_sum finishes
// dbias [Co] in a fixed order.
struct Params { batch: u32, cout: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.batch * p.cout) { return; }
    var acc = 0.0;
    for (var j = 0u; j < p.hw; j++) {
        acc += dout[i * p.hw + j];
    }
    partial[i] = acc;
}
