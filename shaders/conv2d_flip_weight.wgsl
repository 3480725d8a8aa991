// flipped [Ci, Co, K, K] = weight [Co, Ci, K, K] with the channel axes swapped and each K x K
// kernel rotated by 180 degrees: the input gradient of a convolution is the convolution of the
// output gradient with these weights (conv2d_backward_input runs conv2d_forward on them).
struct Params { cout: u32, cin: u32, k: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> flipped: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let kk = p.k * p.k;
    if (i >= p.cout * p.cin * kk) { return; }
    let kx = i % p.k;
    let ky = (i / p.k) % p.k;
    let co = (i / kk) % p.cout;
    let ci = i / (kk * p.cout);
    flipped[i] = weight[((co * p.cin + ci) * p.k + (p.k - 1u - ky)) * p.k + (p.k - 1u - kx)];
}
