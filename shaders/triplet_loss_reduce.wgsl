// stats [4] = (mean loss over valid triplets, valid count, active count, 0) from losses [T]
// and triplets [T, 3]. One workgroup: strided partial sums, then a fixed-shape tree, so the
// result is the same bits every run. No valid triplet: mean 0, no division by zero.
struct Params { t: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read> losses: array<f32>;
@group(0) @binding(3) var<storage, read> triplets: array<u32>;

var<workgroup> sums: array<f32, 64>;
var<workgroup> valids: array<u32, 64>;
var<workgroup> actives: array<u32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    var v = 0u;
    var a = 0u;
    for (var t = lid; t < p.t; t += 64u) {
        if (triplets[3u * t] != 0xffffffffu) {
            s += losses[t];
            v += 1u;
            a += select(0u, 1u, losses[t] > 0.0);
        }
    }
    sums[lid] = s;
    valids[lid] = v;
    actives[lid] = a;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            sums[lid] += sums[lid + stride];
            valids[lid] += valids[lid + stride];
            actives[lid] += actives[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        stats[0] = select(0.0, sums[0] / f32(valids[0]), valids[0] > 0u);
        stats[1] = f32(valids[0]);
        stats[2] = f32(actives[0]);
        stats[3] = 0.0;
    }
}
