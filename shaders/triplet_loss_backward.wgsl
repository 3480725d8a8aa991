// dx [N, D]: gradient of the mean triplet loss w.r.t. embeddings x [N, D], from dist [N, N]
// and triplets [T, 3]. One invocation per element gathers over the triplets (no scatter, so
// no atomics): an active triplet adds 2(x_n - x_p) to its anchor, 2(x_p - x_a) to its
// positive, 2(x_a - x_n) to its negative; the sum is divided by the valid count.
struct Params { n: u32, d: u32, t: u32, margin: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dist: array<f32>;
@group(0) @binding(4) var<storage, read> triplets: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n * p.d) { return; }
    let k = i % p.d;
    let me = i / p.d;
    var valid = 0u;
    var acc = 0.0;
    for (var t = 0u; t < p.t; t++) {
        let a = triplets[3u * t];
        if (a == 0xffffffffu) { continue; }
        valid += 1u;
        let pos = triplets[3u * t + 1u];
        let neg = triplets[3u * t + 2u];
        if (dist[a * p.n + pos] - dist[a * p.n + neg] + p.margin <= 0.0) { continue; }
        let xa = x[a * p.d + k];
        let xp = x[pos * p.d + k];
        let xn = x[neg * p.d + k];
        if (a == me) { acc += xn - xp; }
        if (pos == me) { acc += xp - xa; }
        if (neg == me) { acc += xa - xn; }
    }
    dx[i] = select(0.0, 2.0 * acc / f32(valid), valid > 0u);
}
