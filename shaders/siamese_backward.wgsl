// Gradients of the mean Siamese loss over valid pairs (count in stats[1]). One invocation per
// output value, each summing over the pairs in order (deterministic, no atomics):
// [0, N*D) -> dx [N, D]; [N*D, N*D + D) -> dalpha [D]; N*D + D -> dbeta [1].
struct Params { n: u32, d: u32, t: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> dalpha: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> pairs: array<u32>;
@group(0) @binding(6) var<storage, read> dlogit: array<f32>;
@group(0) @binding(7) var<storage, read> alpha: array<f32>;
@group(0) @binding(8) var<storage, read> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let nd = p.n * p.d;
    if (i > nd + p.d) { return; }
    let scale = 1.0 / max(stats[1], 1.0);
    var acc = 0.0;
    if (i < nd) {
        let row = i / p.d;
        let j = i % p.d;
        for (var t = 0u; t < p.t; t++) {
            let a = pairs[3u * t];
            let b = pairs[3u * t + 1u];
            if (a == 0xffffffffu || (a != row && b != row)) { continue; }
            let g = dlogit[t] * scale * alpha[j] * sign(x[a * p.d + j] - x[b * p.d + j]);
            if (a == row) { acc += g; }
            if (b == row) { acc -= g; }
        }
        dx[i] = acc;
    } else if (i < nd + p.d) {
        let j = i - nd;
        for (var t = 0u; t < p.t; t++) {
            let a = pairs[3u * t];
            if (a == 0xffffffffu) { continue; }
            let b = pairs[3u * t + 1u];
            acc += dlogit[t] * scale * abs(x[a * p.d + j] - x[b * p.d + j]);
        }
        dalpha[j] = acc;
    } else {
        for (var t = 0u; t < p.t; t++) {
            if (pairs[3u * t] == 0xffffffffu) { continue; }
            acc += dlogit[t] * scale;
        }
        dbeta[0] = acc;
    }
}
