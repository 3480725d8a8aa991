//! Turning `--device` into an engine: auto (hardware GPU, else the fast CPU path), gpu (any
//! adapter, software included), cpu.

use std::sync::Arc;

use crate::engine::cpu::{CpuEngine, CpuKind};
use crate::engine::gpu::GpuEngine;
use crate::engine::Engine;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::model::Arch;
use crate::Result;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// A hardware GPU if there is one, else the fast CPU backend.
    Auto,
    /// Any GPU adapter wgpu finds, software Vulkan (lavapipe) included.
    Gpu,
    /// The fast CPU backend (im2col + SGEMM, all cores).
    Cpu,
    /// The CPU reference loops (slow; for checking).
    CpuReference,
}

/// An engine on the chosen device, and a note for the user when the choice deserves one.
pub fn open_engine(
    choice: DeviceChoice,
    arch: &Arch,
    params: &[f32],
) -> Result<(Box<dyn Engine>, Option<String>)> {
    let gpu = |choice| -> Result<(Box<dyn Engine>, Option<String>)> {
        let ctx = Arc::new(GpuContext::new(choice)?);
        let note = ctx.adapter.is_software().then(|| {
            format!(
                "note: {} is a software adapter (runs the shaders on the CPU); expect it to be slower than --cpu",
                ctx.adapter.info.name
            )
        });
        Ok((Box::new(GpuEngine::new(ctx, arch, params)?), note))
    };
    match choice {
        DeviceChoice::Gpu => gpu(AdapterChoice::Any),
        DeviceChoice::Auto => match GpuContext::new(AdapterChoice::Hardware) {
            Ok(ctx) => Ok((Box::new(GpuEngine::new(Arc::new(ctx), arch, params)?), None)),
            Err(_) => Ok((Box::new(CpuEngine::new(arch, params, CpuKind::Fast)?), None)),
        },
        DeviceChoice::Cpu => Ok((Box::new(CpuEngine::new(arch, params, CpuKind::Fast)?), None)),
        DeviceChoice::CpuReference => Ok((
            Box::new(CpuEngine::new(arch, params, CpuKind::Reference)?),
            None,
        )),
    }
}
