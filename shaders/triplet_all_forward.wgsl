// Batch-all triplet loss, pass 1: every (anchor i, positive j, negative k) of the batch,
// summarised per pair from dist [N, N] and labels [N]. One invocation per pair (i, j):
// weights [N, N]: +active triplets of a positive pair, -active triplets (i, p, j) of a
//   negative pair (so dL/dD = weights / active);
// pair_loss [N, N]: summed hinge losses of a positive pair; pair_valid [N, N]: its
// triplet count. Counts are gathered, not scattered: no atomics, same bits every run.
struct Params { n: u32, margin: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> pair_loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> pair_valid: array<f32>;
@group(0) @binding(4) var<storage, read> dist: array<f32>;
@group(0) @binding(5) var<storage, read> labels: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.n * p.n) { return; }
    let i = idx / p.n;
    let j = idx % p.n;
    let li = labels[i];
    var w = 0.0;
    var loss = 0.0;
    var valid = 0.0;
    if (labels[j] == li && i != j) {
        let dij = dist[idx];
        for (var k = 0u; k < p.n; k++) {
            if (labels[k] != li) {
                valid += 1.0;
                let l = dij - dist[i * p.n + k] + p.margin;
                if (l > 0.0) {
                    w += 1.0;
                    loss += l;
                }
            }
        }
    } else if (labels[j] != li) {
        let dij = dist[idx];
        for (var q = 0u; q < p.n; q++) {
            if (q != i && labels[q] == li && dist[i * p.n + q] - dij + p.margin > 0.0) {
                w -= 1.0;
            }
        }
    }
    weights[idx] = w;
    pair_loss[idx] = loss;
    pair_valid[idx] = valid;
}
