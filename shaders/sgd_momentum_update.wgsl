// SGD with momentum (PyTorch's form) over flat params, velocity, grads [n].
struct Params { n: u32, lr: f32, momentum: f32, weight_decay: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> vel: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n) { return; }
    let g = grads[i] + p.weight_decay * params[i];
    let vi = p.momentum * vel[i] + g;
    vel[i] = vi;
    params[i] = params[i] - p.lr * vi;
}
