// triplets [N, 3]: one per anchor, from dist [N, N] and labels [N]. Positive: the farthest
// same-class sample. Negative: the closest other-class sample (mode 0, batch-hard) or the
// closest one farther than the positive, else the closest (mode 1, semi-hard). No positive
// or no negative: INVALID (0xffffffff). Ties go to the lowest index, as in the reference.
struct Params { n: u32, mode: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> triplets: array<u32>;
@group(0) @binding(2) var<storage, read> dist: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;

const INVALID: u32 = 0xffffffffu;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * 64u;
    if (a >= p.n) { return; }
    let row = a * p.n;
    let la = labels[a];
    var pos = INVALID;
    for (var j = 0u; j < p.n; j++) {
        if (j != a && labels[j] == la && (pos == INVALID || dist[row + j] > dist[row + pos])) {
            pos = j;
        }
    }
    var hard = INVALID;
    var semi = INVALID;
    for (var j = 0u; j < p.n; j++) {
        if (labels[j] == la) { continue; }
        if (hard == INVALID || dist[row + j] < dist[row + hard]) { hard = j; }
        if (pos != INVALID && dist[row + j] > dist[row + pos]
            && (semi == INVALID || dist[row + j] < dist[row + semi])) {
            semi = j;
        }
    }
    var neg = hard;
    if (p.mode == 1u && semi != INVALID) { neg = semi; }
    if (pos == INVALID || neg == INVALID) {
        triplets[3u * a] = INVALID;
        triplets[3u * a + 1u] = INVALID;
        triplets[3u * a + 2u] = INVALID;
    } else {
        triplets[3u * a] = a;
        triplets[3u * a + 1u] = pos;
        triplets[3u * a + 2u] = neg;
    }
}
