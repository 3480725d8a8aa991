// out [B, C, H/2, W/2] = max over each 2x2 window of inp [B, C, H, W] (odd edges dropped).
struct Params { bc: u32, h: u32, w: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.bc * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let bc = i / (p.wo * p.ho);
    let j = (bc * p.h + 2u * oy) * p.w + 2u * ox;
    out[i] = max(max(inp[j], inp[j + 1u]), max(inp[j + p.w], inp[j + p.w + 1u]));
}
