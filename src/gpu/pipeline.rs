//! The shader registry (every WGSL file, by kernel name) and the pipeline cache: each
//! pipeline is compiled once per process and shared by every dispatch of that kernel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::gpu::uniform::wgsl_params;
use crate::{Error, Result};

/// `(name, source)` of a shader in shaders/, read at compile time.
macro_rules! shader {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../shaders/", $name, ".wgsl")),
        )
    };
}

/// (kernel name, WGSL source). The name is also the CPU reference function's and the GPU
/// wrapper's name.
pub const SHADERS: &[(&str, &str)] = &[
    shader!("adam_update"),
    shader!("batch_sum"),
    shader!("batch_sum_pair"),
    shader!("batch_sum_split"),
    shader!("batchnorm_backward"),
    shader!("batchnorm_forward"),
    shader!("batchnorm_inference"),
    shader!("conv2d_backward_bias"),
    shader!("conv2d_backward_bias_split"),
    shader!("conv2d_backward_params_tiled16x32"),
    shader!("conv2d_backward_params_tiled32x144"),
    shader!("conv2d_backward_weight_k5c2"),
    shader!("conv2d_backward_weight_split"),
    shader!("conv2d_backward_weight_tiled"),
    shader!("conv2d_backward_weight_tiled_split"),
    shader!("conv2d_backward_weight_tiled16x32"),
    shader!("conv2d_backward_weight_tiled32x144"),
    shader!("conv2d_backward_weight_t16"),
    shader!("conv2d_backward_weight_t18"),
    shader!("conv2d_backward_weight_t4"),
    shader!("conv2d_backward_weight_v4t16"),
    shader!("conv2d_backward_weight_v4t4"),
    shader!("conv2d_flip_weight"),
    shader!("conv2d_forward"),
    shader!("conv2d_forward_k5c2"),
    shader!("conv2d_forward_tiled"),
    shader!("conv2d_forward_tiled16"),
    shader!("conv2d_forward_tiled32"),
    shader!("conv2d_forward_tiled8x8_64x128"),
    shader!("conv2d_forward_tiled8x8_64x64"),
    shader!("conv2d_forward_tiled8x8_32x128"),
    shader!("conv2d_forward_tiled8x8_16x256"),
    shader!("conv2d_forward_relu_maxpool"),
    shader!("conv2d_forward_relu_maxpool_k5c2"),
    shader!("conv2d_forward_relu_maxpool_tiled16"),
    shader!("conv2d_forward_relu_maxpool_tiled32"),
    shader!("conv2d_forward_v4"),
    shader!("conv2d_forward_v4s"),
    shader!("dense_backward_bias"),
    shader!("dense_backward_input"),
    shader!("dense_backward_weight"),
    shader!("dense_forward"),
    shader!("dense_forward_split"),
    shader!("global_avgmax_pool_backward"),
    shader!("global_avgmax_pool_forward"),
    shader!("l2norm_backward"),
    shader!("l2norm_forward"),
    shader!("matmul"),
    shader!("matmul_tn"),
    shader!("maxpool2d_backward"),
    shader!("maxpool2d_forward"),
    shader!("maxpool2d_relu_backward_argmax"),
    shader!("pad2d"),
    shader!("pad2d_elem"),
    shader!("pad2d_v4"),
    shader!("pairwise_distance"),
    shader!("relu_backward"),
    shader!("relu_forward"),
    shader!("sgd_momentum_update"),
    shader!("siamese_backward"),
    shader!("siamese_forward"),
    shader!("sigmoid_backward"),
    shader!("sigmoid_forward"),
    shader!("triplet_all_backward"),
    shader!("triplet_all_forward"),
    shader!("triplet_all_reduce"),
    shader!("triplet_loss_backward"),
    shader!("triplet_loss_forward"),
    shader!("triplet_loss_reduce"),
    shader!("triplet_mine"),
];

/// Workgroup size every kernel in shaders/ declares (x dimension).
pub const WORKGROUP: u32 = 64;

/// A compiled kernel: its pipeline, the bind-group layout derived from the shader and its
/// uniform block's fields (what a dispatch's typed block is checked against).
pub struct Kernel {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// (name, WGSL scalar type) of each field of the shader's `Params`.
    pub params: Vec<(String, String)>,
}

#[derive(Default)]
pub struct PipelineCache {
    kernels: Mutex<HashMap<&'static str, Arc<Kernel>>>,
}

pub fn source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

impl PipelineCache {
    /// The kernel's pipeline on `device`, compiled on first use; `checks` keeps naga's runtime
    /// checks in the shader (`GLASSNET_SHADER_CHECKS`).
    pub fn get(
        &self,
        device: &wgpu::Device,
        name: &'static str,
        checks: bool,
    ) -> Result<Arc<Kernel>> {
        let mut cache = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(name) {
            return Ok(k.clone());
        }
        let src = source(name).ok_or_else(|| Error::Gpu(format!("no shader named {name}")))?;
        let params = wgsl_params(name, src)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        };
        let module = if checks {
            device.create_shader_module(desc)
        } else {
            // SAFETY: the shaders are ours, not user input. Every index is bounded by
            // construction (the tiled kernels clamp their loads and guard their stores), no
            // loop is unbounded and no divisor is zero (shapes are validated on the host), and
            // tests/gpu_ops/ runs every kernel and variant on odd shapes against the CPU
            // reference. Buffer accesses stay inside their bindings through the driver's robust
            // buffer access, which wgpu enables. naga's own checks (a clamp on every workgroup
            // array index, a counter in every loop, a guard on every division) cost the tiled
            // kernels' inner loops instructions that the compiler cannot remove.
            unsafe {
                device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            // Every kernel writes its workgroup arrays before reading them; naga's zeroing
            // pass (a loop and a barrier per workgroup) only runs with the checks on.
            compilation_options: wgpu::PipelineCompilationOptions {
                zero_initialize_workgroup_memory: checks,
                ..Default::default()
            },
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
            params,
        });
        cache.insert(name, k.clone());
        Ok(k)
    }
}
