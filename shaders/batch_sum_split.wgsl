// out [len] = sum over rows of inp [rows, len] for hardware GPUs: batch_sum gives each column
// one invocation that adds every row in turn, so a short, deep sum (conv1's weight gradient:
// 400 columns of 576 rows) runs on a few workgroups, one dependent load after another. Here a
// 16 x 16 workgroup takes 16 columns; lane (c, g) adds rows g, g + 16, ... of column c, then
// the 16 partial sums of each column are added in g order: a fixed order (deterministic), not
// batch_sum's, so the two agree to rounding.
struct Params { rows: u32, len: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

var<workgroup> part: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = lid.x;
    let g = lid.y;
    let j = (wg.x + wg.y * nwg.x) * 16u + c;
    var acc = 0.0;
    if (j < p.len) {
        for (var r = g; r < p.rows; r += 16u) {
            acc += inp[r * p.len + j];
        }
    }
    part[g][c] = acc;
    workgroupBarrier();
    if (g == 0u && j < p.len) {
        var s = part[0][c];
        for (var i = 1u; i < 16u; i++) {
            s += part[i][c];
        }
        out[j] = s;
    }
}
