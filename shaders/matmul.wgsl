// c [M, N] = a [M, K] . b [K, N], all row-major; N a multiple of 4 (b and c are read and
// written as vec4 columns). The plain matrix product `glassnet bench` measures as the device's
// ceiling for the convolutions. Each invocation computes a 4-row x 16-column block in 16 vec4
// registers straight from storage (on CPU-type adapters such as lavapipe this beat
// workgroup-memory tiling); rows and columns past the edges are clamped on load, skipped on store.
struct Params { m: u32, k: u32, n4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let tiles_n = (p.n4 + 3u) / 4u;
    let r0 = (i / tiles_n) * 4u;
    if (r0 >= p.m) { return; }
    let c0 = (i % tiles_n) * 4u;
    let ra0 = min(r0 + 0u, p.m - 1u) * p.k;
    let ra1 = min(r0 + 1u, p.m - 1u) * p.k;
    let ra2 = min(r0 + 2u, p.m - 1u) * p.k;
    let ra3 = min(r0 + 3u, p.m - 1u) * p.k;
    let cb0 = min(c0 + 0u, p.n4 - 1u);
    let cb1 = min(c0 + 1u, p.n4 - 1u);
    let cb2 = min(c0 + 2u, p.n4 - 1u);
    let cb3 = min(c0 + 3u, p.n4 - 1u);
    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc02 = vec4<f32>(0.0);
    var acc03 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc22 = vec4<f32>(0.0);
    var acc23 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    var acc32 = vec4<f32>(0.0);
    var acc33 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk++) {
        let a0 = a[ra0 + kk];
        let a1 = a[ra1 + kk];
        let a2 = a[ra2 + kk];
        let a3 = a[ra3 + kk];
        let row = kk * p.n4;
        let b0 = b[row + cb0];
        let b1 = b[row + cb1];
        let b2 = b[row + cb2];
        let b3 = b[row + cb3];
        acc00 += a0 * b0;
        acc01 += a0 * b1;
        acc02 += a0 * b2;
        acc03 += a0 * b3;
        acc10 += a1 * b0;
        acc11 += a1 * b1;
        acc12 += a1 * b2;
        acc13 += a1 * b3;
        acc20 += a2 * b0;
        acc21 += a2 * b1;
        acc22 += a2 * b2;
        acc23 += a2 * b3;
        acc30 += a3 * b0;
        acc31 += a3 * b1;
        acc32 += a3 * b2;
        acc33 += a3 * b3;
    }
    if (r0 + 0u < p.m) {
        if (c0 + 0u < p.n4) { c[(r0 + 0u) * p.n4 + c0 + 0u] = acc00; }
        if (c0 + 1u < p.n4) { c[(r0 + 0u) * p.n4 + c0 + 1u] = acc01; }
        if (c0 + 2u < p.n4) { c[(r0 + 0u) * p.n4 + c0 + 2u] = acc02; }
        if (c0 + 3u < p.n4) { c[(r0 + 0u) * p.n4 + c0 + 3u] = acc03; }
    }
    if (r0 + 1u < p.m) {
        if (c0 + 0u < p.n4) { c[(r0 + 1u) * p.n4 + c0 + 0u] = acc10; }
        if (c0 + 1u < p.n4) { c[(r0 + 1u) * p.n4 + c0 + 1u] = acc11; }
        if (c0 + 2u < p.n4) { c[(r0 + 1u) * p.n4 + c0 + 2u] = acc12; }
        if (c0 + 3u < p.n4) { c[(r0 + 1u) * p.n4 + c0 + 3u] = acc13; }
    }
    if (r0 + 2u < p.m) {
        if (c0 + 0u < p.n4) { c[(r0 + 2u) * p.n4 + c0 + 0u] = acc20; }
        if (c0 + 1u < p.n4) { c[(r0 + 2u) * p.n4 + c0 + 1u] = acc21; }
        if (c0 + 2u < p.n4) { c[(r0 + 2u) * p.n4 + c0 + 2u] = acc22; }
        if (c0 + 3u < p.n4) { c[(r0 + 2u) * p.n4 + c0 + 3u] = acc23; }
    }
    if (r0 + 3u < p.m) {
        if (c0 + 0u < p.n4) { c[(r0 + 3u) * p.n4 + c0 + 0u] = acc30; }
        if (c0 + 1u < p.n4) { c[(r0 + 3u) * p.n4 + c0 + 1u] = acc31; }
        if (c0 + 2u < p.n4) { c[(r0 + 3u) * p.n4 + c0 + 2u] = acc32; }
        if (c0 + 3u < p.n4) { c[(r0 + 3u) * p.n4 + c0 + 3u] = acc33; }
    }
}
