// partial [B, Co, Ci K K]: each image's contribution to dweight, one invocation per (image,
// weight), positions added in the reference's order (oy, ox); batch_sum adds the images.
// For hardware GPUs on layers with few weights and many positions (conv1: 16 x 25 weights,
// 12,544 positions per image), where the blocked and tiled variants give each image a handful
// of invocations with long serial loops and leave most of the GPU idle. Neighbouring
// invocations are neighbouring taps of one channel: their dout reads are one broadcast and
// their input reads fall in a few cache lines. inp is the zero-padded input [B, Ci, Hp, Wp]
// (pad2d), dout [B, Co, Ho, Wo].
struct Params { batch: u32, cin: u32, cout: u32, hp: u32, wp: u32, k: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 64u;
    let kk = p.k * p.k;
    let ws = p.cin * kk;
    if (j >= p.batch * p.cout * ws) { return; }
    let b = j / (p.cout * ws);
    let co = (j / ws) % p.cout;
    let t = j % ws;
    let ci = t / kk;
    let ky = (t / p.k) % p.k;
    let kx = t % p.k;
    let x0 = ((b * p.cin + ci) * p.hp + ky) * p.wp + kx;
    let d0 = (b * p.cout + co) * p.ho * p.wo;
    var acc = 0.0;
    for (var oy = 0u; oy < p.ho; oy++) {
        let xr = x0 + oy * p.wp;
        let dr = d0 + oy * p.wo;
        for (var ox = 0u; ox < p.wo; ox++) {
            acc += dout[dr + ox] * inp[xr + ox];
        }
    }
    partial[j] = acc;
}
