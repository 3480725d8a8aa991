// Batch-all pass 3: dx [N, D] = 2 / active * sum_j (W_ij + W_ji) (x_i - x_j) from x [N, D],
// weights [N, N] and stats [4] (active count at index 2). One invocation per element.
struct Params { n: u32, d: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.n * p.d) { return; }
    let i = idx / p.d;
    let k = idx % p.d;
    let xi = x[idx];
    var acc = 0.0;
    for (var j = 0u; j < p.n; j++) {
        acc += (weights[i * p.n + j] + weights[j * p.n + i]) * (xi - x[j * p.d + k]);
    }
    let n_active = stats[2];
    dx[idx] = select(0.0, 2.0 * acc / n_active, n_active > 0.0);
}
