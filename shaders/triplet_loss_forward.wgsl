// losses [T] = max(D[a,p] - D[a,n] + margin, 0) from dist [N, N] and triplets [T, 3];
// an INVALID anchor gives 0.
struct Params { t: u32, n: u32, margin: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> losses: array<f32>;
@group(0) @binding(2) var<storage, read> dist: array<f32>;
@group(0) @binding(3) var<storage, read> triplets: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if (t >= p.t) { return; }
    let a = triplets[3u * t];
    if (a == 0xffffffffu) {
        losses[t] = 0.0;
        return;
    }
    let pos = triplets[3u * t + 1u];
    let neg = triplets[3u * t + 2u];
    losses[t] = max(dist[a * p.n + pos] - dist[a * p.n + neg] + p.margin, 0.0);
}
