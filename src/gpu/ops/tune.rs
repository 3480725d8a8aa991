//! Which variants autotune may try on this adapter, and the pick for a convolution's shape:
//! tuning kept apart from the launching code of each op (`gpu::autotune` measures and
//! remembers).

use super::variants::variant;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::Dispatch;
use crate::shapes::Conv2dShape;
use crate::Result;

/// The variants worth measuring on this adapter. The `_tiled` ones stage operands through
/// workgroup memory and the `_split` ones split a long sum over a workgroup's lanes: what
/// hardware GPUs need, and what CPU-type adapters (lavapipe) run 10-50x slower than the
/// register-blocked ones, so they are left out there.
pub(super) fn variants_for(ctx: &GpuContext, all: &[&'static str]) -> Vec<&'static str> {
    let cpu_type = ctx.adapter.is_software();
    all.iter()
        .copied()
        .filter(|v| !(cpu_type && variant(v).is_some_and(|x| x.hardware_only)))
        .collect()
}

/// Runs a list of dispatches once (what autotune times).
pub(super) fn run_all(ctx: &GpuContext, d: &[Dispatch]) -> Result<()> {
    ctx.run(&d.iter().collect::<Vec<_>>())
}

fn shape_key(kernel: &str, s: &Conv2dShape) -> String {
    format!(
        "{kernel} b{} ci{} co{} {}x{} k{} pad{}",
        s.batch, s.cin, s.cout, s.h, s.w, s.k, s.pad
    )
}

/// The dispatches of the variant of `kernel` that autotune measured fastest for this adapter
/// and shape, among `variants` worth trying here; `build` makes a given one.
pub(super) fn tuned_conv(
    ctx: &GpuContext,
    kernel: &str,
    s: &Conv2dShape,
    variants: &[&'static str],
    build: impl FnMut(&'static str) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    ctx.tune.pick(
        &shape_key(kernel, s),
        &variants_for(ctx, variants),
        build,
        |d| run_all(ctx, d),
    )
}
