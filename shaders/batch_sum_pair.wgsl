// batch_sum_split over rows that hold two tensors' partials: inp [rows, stride] with columns
// 0 .. len_a - 1 summed into out_a [len_a] and the next len_b into out_b [len_b], in one pass
// (conv2d_backward_params' weight and bias partials; the two gradients are separate
// bindings because each starts on its own aligned offset). Same lanes and order as
// batch_sum_split: 16 columns per workgroup, 16 lanes adding rows g, g + 16, ... each.
struct Params { rows: u32, len_a: u32, len_b: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_b: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

var<workgroup> part: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = lid.x;
    let g = lid.y;
    let j = (wg.x + wg.y * nwg.x) * 16u + c;
    let len = p.len_a + p.len_b;
    var acc = 0.0;
    if (j < len) {
        for (var r = g; r < p.rows; r += 16u) {
            acc += inp[r * p.stride + j];
        }
    }
    part[g][c] = acc;
    workgroupBarrier();
    if (g == 0u && j < len) {
        var s = part[0][c];
        for (var i = 1u; i < 16u; i++) {
            s += part[i][c];
        }
        if (j < p.len_a) {
            out_a[j] = s;
        } else {
            out_b[j - p.len_a] = s;
        }
    }
}
