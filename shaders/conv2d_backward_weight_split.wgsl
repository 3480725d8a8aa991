// partial [B, Co, Ci K K]: each image's contribution to dweight for hardware GPUs, K <= 5. One
// workgroup per (image, output channel, input channel, kernel row ky): the output positions
// are split over its 64 lanes (lane l takes positions l, l + 64, ... in (oy, ox) order), each
// lane keeps the K taps of row ky in registers, and a fixed-order tree sum in workgroup memory
// adds the lanes (deterministic; the order differs from the reference's, so results agree to
// rounding). On layers with few weights and many positions (conv1: 16 x 25 weights, 12,544
// positions per image) every other variant gives each image a few invocations with long
// serial loops and leaves most of a GPU idle. Neighbouring lanes read neighbouring positions:
// dout and input loads are coalesced. inp is the zero-padded input [B, Ci, Hp, Wp] (pad2d),
// dout [B, Co, Ho, Wo]; batch_sum adds the images.
struct Params { batch: u32, cin: u32, cout: u32, hp: u32, wp: u32, k: u32, ho: u32, wo: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;

// [tap kx][lane] partial sums.
var<workgroup> red: array<array<f32, 64>, 5>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wg.x + wg.y * nwg.x;
    if (g >= p.batch * p.cout * p.cin * p.k) { return; }
    let ky = g % p.k;
    let ci = (g / p.k) % p.cin;
    let co = (g / (p.k * p.cin)) % p.cout;
    let b = g / (p.k * p.cin * p.cout);
    let x0 = ((b * p.cin + ci) * p.hp + ky) * p.wp;
    let d0 = (b * p.cout + co) * p.ho * p.wo;
    // Taps past K read column min(kx, K - 1) and are never stored.
    let k1 = min(1u, p.k - 1u);
    let k2 = min(2u, p.k - 1u);
    let k3 = min(3u, p.k - 1u);
    let k4 = min(4u, p.k - 1u);
    var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0; var a4 = 0.0;
    let n = p.ho * p.wo;
    for (var q = l; q < n; q += 64u) {
        let d = dout[d0 + q];
        let x = x0 + (q / p.wo) * p.wp + q % p.wo;
        a0 += d * inp[x];
        a1 += d * inp[x + k1];
        a2 += d * inp[x + k2];
        a3 += d * inp[x + k3];
        a4 += d * inp[x + k4];
    }
    red[0][l] = a0; red[1][l] = a1; red[2][l] = a2; red[3][l] = a3; red[4][l] = a4;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (l < s) {
            red[0][l] += red[0][l + s];
            red[1][l] += red[1][l + s];
            red[2][l] += red[2][l + s];
            red[3][l] += red[3][l + s];
            red[4][l] += red[4][l + s];
        }
        workgroupBarrier();
    }
    if (l < p.k) {
        partial[g * p.k + l] = red[l][0];
    }
}
