//! Every GPU kernel against its CPU reference, one module per op family as in src/gpu/ops/:
//! on random data, on fixed shapes chosen for their edge cases (sizes that do not divide the
//! workgroup or tile, several blocks, grids past one row) and, in `props`, on random shapes
//! (proptest) through the same per-case checks. The CPU fast path is checked here too.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod conv;
mod dense;
mod distance;
mod norm;
mod optim;
mod pool;
mod props;
mod reduce;

use glassnet::shapes::Conv2dShape;

const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-5;

/// A conv shape: batch, input channels, output channels, height, width, kernel, padding.
fn c(
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    pad: usize,
) -> Conv2dShape {
    Conv2dShape {
        batch,
        cin,
        cout,
        h,
        w,
        k,
        pad,
    }
}

/// `assert_close` for outputs poisoned before the kernel ran: an all-zero reference (no active
/// triplet, no difference between two copies of one embedding) is then checked exactly, since
/// a kernel that wrote nothing would have left the poison.
fn assert_written(name: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    if want.iter().all(|&v| v == 0.0) {
        assert!(
            got.len() == want.len() && got.iter().all(|&v| v == 0.0),
            "{name}: the reference is all zeros, the kernel wrote {:?}",
            &got[..got.len().min(8)]
        );
    } else {
        common::assert_close(name, got, want, atol, rtol);
    }
}
