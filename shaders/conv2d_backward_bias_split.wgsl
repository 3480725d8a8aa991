// partial [B, Co]: each image's sum of dout [B, Co, Ho, Wo] over space, as
// conv2d_backward_bias, for hardware GPUs: one workgroup per (image, channel) plane, the
// positions split over its 64 lanes (lane l takes l, l + 64, ...; coalesced), then a
// fixed-order tree sum in workgroup memory (deterministic; the order differs from the
// reference's, so results agree to rounding). One invocation per plane left conv1's 1,536
// planes of 12,544 positions each to 1,536 serial loops.
struct Params { batch: u32, cout: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;

// [lane] partial sums.
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg.x + wg.y * nwg.x;
    if (i >= p.batch * p.cout) { return; }
    var acc = 0.0;
    for (var j = l; j < p.hw; j += 64u) {
        acc += dout[i * p.hw + j];
    }
    red[l] = acc;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (l < s) { red[l] += red[l + s]; }
        workgroupBarrier();
    }
    if (l == 0u) { partial[i] = red[0]; }
}
