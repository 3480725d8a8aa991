// out [len] = sum over rows of inp [rows, len], added in row order (deterministic).
struct Params { rows: u32, len: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 64u;
    if (j >= p.len) { return; }
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        acc += inp[r * p.len + j];
    }
    out[j] = acc;
}
