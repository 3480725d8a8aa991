//! The shader registry (every WGSL file, by kernel name) and the pipeline cache: each
//! pipeline is compiled once per process and shared by every dispatch of that kernel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::gpu::context::GpuContext;
use crate::{Error, Result};

/// (kernel name, WGSL source). The name is also the CPU reference function's and the GPU
/// wrapper's name.
pub const SHADERS: &[(&str, &str)] = &[
    (
        "adam_update",
        include_str!("../../shaders/adam_update.wgsl"),
    ),
    ("batch_sum", include_str!("../../shaders/batch_sum.wgsl")),
    (
        "conv2d_backward_bias",
        include_str!("../../shaders/conv2d_backward_bias.wgsl"),
    ),
    (
        "conv2d_backward_input",
        include_str!("../../shaders/conv2d_backward_input.wgsl"),
    ),
    (
        "conv2d_backward_weight",
        include_str!("../../shaders/conv2d_backward_weight.wgsl"),
    ),
    (
        "conv2d_forward",
        include_str!("../../shaders/conv2d_forward.wgsl"),
    ),
    (
        "dense_backward_bias",
        include_str!("../../shaders/dense_backward_bias.wgsl"),
    ),
    (
        "dense_backward_input",
        include_str!("../../shaders/dense_backward_input.wgsl"),
    ),
    (
        "dense_backward_weight",
        include_str!("../../shaders/dense_backward_weight.wgsl"),
    ),
    (
        "dense_forward",
        include_str!("../../shaders/dense_forward.wgsl"),
    ),
    (
        "l2norm_backward",
        include_str!("../../shaders/l2norm_backward.wgsl"),
    ),
    (
        "l2norm_forward",
        include_str!("../../shaders/l2norm_forward.wgsl"),
    ),
    (
        "maxpool2d_backward",
        include_str!("../../shaders/maxpool2d_backward.wgsl"),
    ),
    (
        "maxpool2d_forward",
        include_str!("../../shaders/maxpool2d_forward.wgsl"),
    ),
    (
        "pairwise_distance",
        include_str!("../../shaders/pairwise_distance.wgsl"),
    ),
    (
        "relu_backward",
        include_str!("../../shaders/relu_backward.wgsl"),
    ),
    (
        "relu_forward",
        include_str!("../../shaders/relu_forward.wgsl"),
    ),
    (
        "sgd_momentum_update",
        include_str!("../../shaders/sgd_momentum_update.wgsl"),
    ),
    (
        "sigmoid_backward",
        include_str!("../../shaders/sigmoid_backward.wgsl"),
    ),
    (
        "sigmoid_forward",
        include_str!("../../shaders/sigmoid_forward.wgsl"),
    ),
    (
        "triplet_loss_backward",
        include_str!("../../shaders/triplet_loss_backward.wgsl"),
    ),
    (
        "triplet_loss_forward",
        include_str!("../../shaders/triplet_loss_forward.wgsl"),
    ),
    (
        "triplet_loss_reduce",
        include_str!("../../shaders/triplet_loss_reduce.wgsl"),
    ),
    (
        "triplet_mine",
        include_str!("../../shaders/triplet_mine.wgsl"),
    ),
];

/// Workgroup size every kernel in shaders/ declares (x dimension).
pub const WORKGROUP: u32 = 64;

/// A compiled kernel: its pipeline and the bind-group layout derived from the shader.
pub struct Kernel {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub struct PipelineCache {
    kernels: Mutex<HashMap<&'static str, Arc<Kernel>>>,
}

pub fn source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

impl GpuContext {
    /// The kernel's pipeline, compiled on first use.
    pub fn kernel(&self, name: &'static str) -> Result<Arc<Kernel>> {
        let mut cache = self
            .pipelines
            .kernels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(name) {
            return Ok(k.clone());
        }
        let src = source(name).ok_or_else(|| Error::Gpu(format!("no shader named {name}")))?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "shaders/{name}.wgsl failed to compile: {e}"
            )));
        }
        let layout = pipeline.get_bind_group_layout(0);
        let k = Arc::new(Kernel {
            name,
            pipeline,
            layout,
        });
        cache.insert(name, k.clone());
        Ok(k)
    }
}
