// Batch-all pass 2: stats [4] = (loss averaged over active triplets, valid count, active
// count, 0) from weights, pair_loss, pair_valid [N, N]. One workgroup, fixed-shape tree:
// the same bits every run; no active triplet gives loss 0, not a division by zero.
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> pair_loss: array<f32>;
@group(0) @binding(4) var<storage, read> pair_valid: array<f32>;

var<workgroup> sums: array<vec3<f32>, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
    var s = vec3<f32>(0.0);
    for (var i = lid; i < p.n * p.n; i += 64u) {
        s += vec3<f32>(pair_loss[i], pair_valid[i], max(weights[i], 0.0));
    }
    sums[lid] = s;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            sums[lid] += sums[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let t = sums[0];
        stats[0] = select(0.0, t.x / t.z, t.z > 0.0);
        stats[1] = t.y;
        stats[2] = t.z;
        stats[3] = 0.0;
    }
}
