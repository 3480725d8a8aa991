//! The GPU tensor (a typed view into a storage buffer) and the dispatch (a kernel with its
//! bind group, uniforms and grid, ready to record). Built by `GpuContext`, recorded by callers.

use std::num::NonZeroU64;
use std::sync::Arc;

use crate::gpu::pipeline::{Kernel, WORKGROUP};
use crate::gpu::uniform::{check_fields, words, Uniform};
use crate::{Error, Result};

/// A run of 4-byte elements (f32 or u32) inside a storage buffer.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    pub buffer: Arc<wgpu::Buffer>,
    /// In elements; a multiple of 64 (256 bytes) when the view is bound on its own.
    pub offset: usize,
    pub len: usize,
}

impl GpuTensor {
    /// A view of `len` elements from `offset` inside this one.
    pub fn slice(&self, offset: usize, len: usize) -> GpuTensor {
        assert!(
            offset + len <= self.len,
            "slice {offset}+{len} outside a tensor of {}",
            self.len
        );
        GpuTensor {
            buffer: self.buffer.clone(),
            offset: self.offset + offset,
            len,
        }
    }

    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: (self.offset * 4) as u64,
            // Empty lists (e.g. no triplets) still bind one element that the kernel never reads.
            size: NonZeroU64::new((self.len.max(1) * 4) as u64),
        })
    }
}

/// Uniform block size every kernel's `Params` fits in (16 x 4 bytes).
pub(crate) const UNIFORM_WORDS: usize = 16;

/// A kernel with its bind group and grid, ready to record.
pub struct Dispatch {
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) bind_group: wgpu::BindGroup,
    /// `[UNIFORM_WORDS]` u32: the kernel's `Params`.
    pub(crate) uniform: wgpu::Buffer,
    /// The uniform block type checked against the shader when the dispatch was built, so
    /// rewriting it each step compares a type id, not the field lists.
    pub(crate) block: std::any::TypeId,
    /// Workgroups (x, y).
    pub(crate) groups: (u32, u32),
}

impl Dispatch {
    pub fn name(&self) -> &'static str {
        self.kernel.name
    }

    /// Rewrites the uniform block (e.g. the learning rate of this step) without rebuilding;
    /// refused unless `P` is the shader's block.
    pub fn set_uniforms<P: Uniform + 'static>(
        &self,
        queue: &wgpu::Queue,
        params: &P,
    ) -> Result<()> {
        if std::any::TypeId::of::<P>() != self.block {
            check_fields::<P>(self.kernel.name, &self.kernel.params)?;
        }
        let words = words(params);
        if words.len() > UNIFORM_WORDS {
            return Err(Error::Gpu(format!(
                "{}: a uniform block of {} words (at most {UNIFORM_WORDS})",
                self.kernel.name,
                words.len()
            )));
        }
        let mut block = [0u32; UNIFORM_WORDS];
        block[..words.len()].copy_from_slice(words);
        queue.write_buffer(&self.uniform, 0, bytemuck::cast_slice(&block));
        Ok(())
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups.0, self.groups.1, 1);
    }
}

/// Grid for `groups` workgroups: x capped at 65,535, y for the rest (kernels rebuild the
/// linear workgroup index from num_workgroups and bound-check it).
pub fn groups_grid(groups: usize) -> (usize, usize) {
    let x = groups.clamp(1, 65_535);
    (x, groups.div_ceil(x))
}

/// Grid for `threads` invocations of WORKGROUP: x capped at 65,535 groups, y for the rest
/// (kernels rebuild the linear index from num_workgroups and bound-check it).
pub fn grid(threads: usize) -> (u32, u32) {
    let groups = threads.div_ceil(WORKGROUP as usize).max(1);
    let x = groups.min(65_535);
    (x as u32, groups.div_ceil(x) as u32)
}
