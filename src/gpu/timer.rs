//! GPU time per dispatch from timestamp queries written between the dispatches of one pass
//! (`glassnet bench`'s step profile). Needs TIMESTAMP_QUERY and TIMESTAMP_QUERY_INSIDE_PASSES,
//! which the context requests where the adapter has them.

use crate::gpu::GpuContext;
use crate::{Error, Result};

pub struct DispatchTimer {
    queries: wgpu::QuerySet,
    /// `[dispatches + 1]` u64 ticks: resolved, then copied to `readback`.
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    count: u32,
}

impl DispatchTimer {
    /// A timer for `dispatches` dispatches: a timestamp before the first and after each.
    pub fn new(ctx: &GpuContext, dispatches: usize) -> Result<DispatchTimer> {
        if !ctx.can_time_dispatches() {
            return Err(Error::Gpu(
                "this adapter cannot time dispatches (no timestamp queries inside passes)".into(),
            ));
        }
        let count = dispatches as u32 + 1;
        let size = 8 * count as u64;
        let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("dispatch timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let buffer = |label, usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        Ok(DispatchTimer {
            queries,
            resolved: buffer(
                "timestamps",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: buffer(
                "timestamps readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            count,
        })
    }

    /// Timestamp `i`: 0 before the first dispatch, i after dispatch i.
    pub fn mark(&self, pass: &mut wgpu::ComputePass, i: usize) {
        pass.write_timestamp(&self.queries, i as u32);
    }

    /// Records the copy of the timestamps to the host-visible buffer (after the pass).
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        enc.resolve_query_set(&self.queries, 0..self.count, &self.resolved, 0);
        enc.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, 8 * self.count as u64);
    }

    /// Milliseconds of each dispatch (waits for the GPU).
    pub fn read(&self, ctx: &GpuContext) -> Result<Vec<f64>> {
        let ticks: Vec<u64> = ctx.map_read(&self.readback)?;
        let ns = ctx.queue.get_timestamp_period() as f64;
        Ok(ticks
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64 * ns / 1e6)
            .collect())
    }
}
