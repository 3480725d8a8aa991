//! Adapter discovery and choice, the device with the adapter's own limits, and an error
//! handler that turns validation errors and device loss into returned errors.

use std::sync::{Arc, Mutex};

use crate::{Error, Result};

/// What to install when no adapter is found (printed by `info` and every `--gpu` command).
pub const NO_ADAPTER_HELP: &str =
    "No GPU adapter was found (wgpu searched Vulkan, Metal and DX12). \
glassnet needs a Vulkan, Metal or DX12 driver to run its shaders. On a machine with a GPU, install \
its vendor driver (with Vulkan support). On a machine without one, software Vulkan works: on \
Debian/Ubuntu run `apt-get install mesa-vulkan-drivers libvulkan1` (Mesa lavapipe). Without a GPU, \
`--cpu` (or the default `--device auto`) trains on the fast CPU backend instead.";

/// Which adapter a command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// A hardware adapter if there is one, else a software one (lavapipe).
    Any,
    /// Hardware only: `auto` uses this to decide between GPU and CPU.
    Hardware,
    /// A software (CPU-type) adapter only.
    Software,
}

/// An adapter as `info` reports it.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
}

impl AdapterReport {
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// One-line summary: name, backend, type, driver.
    pub fn summary(&self) -> String {
        let i = &self.info;
        format!(
            "{} ({:?}, {:?}{}, driver {} {})",
            i.name,
            i.backend,
            i.device_type,
            if self.is_software() { ", software" } else { "" },
            i.driver,
            i.driver_info
        )
    }
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    // Vulkan, Metal, DX12 only: wgpu's GL fallback lacks what compute needs and would hide a
    // missing Vulkan driver. WGPU_BACKEND still overrides.
    desc.backends = wgpu::Backends::PRIMARY;
    wgpu::Instance::new(desc.with_env())
}

/// Hardware first (discrete, integrated, virtual, other), software last.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut list = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    list.sort_by_key(|a| rank(a.get_info().device_type));
    list
}

/// Every adapter wgpu finds, best first.
pub fn list_adapters() -> Vec<AdapterReport> {
    adapters(&instance())
        .iter()
        .map(|a| AdapterReport {
            info: a.get_info(),
            limits: a.limits(),
        })
        .collect()
}

/// True when a hardware adapter exists (what `--device auto` asks).
pub fn has_hardware_adapter() -> bool {
    list_adapters().iter().any(|a| !a.is_software())
}

/// A device and queue on the chosen adapter, with its limits and an error slot.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterReport,
    /// The first uncaptured error or device-loss message, taken by `check`.
    error: Arc<Mutex<Option<String>>>,
    pub(crate) pipelines: crate::gpu::pipeline::PipelineCache,
    /// Measured choices between kernel variants for this adapter.
    pub tune: crate::gpu::autotune::Autotune,
    /// Whether naga adds its runtime checks to our shaders (`GLASSNET_SHADER_CHECKS`).
    pub shader_checks: bool,
}

/// `GLASSNET_SHADER_CHECKS=on` compiles the shaders with naga's runtime checks (index clamps,
/// loop counters, division guards); off by default, see `pipeline::compile`.
/// What `DispatchTimer` needs.
const TIMING: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

const CHECKS_SWITCH: &str = "GLASSNET_SHADER_CHECKS";

fn shader_checks_wanted() -> bool {
    matches!(
        std::env::var(CHECKS_SWITCH).as_deref(),
        Ok("on") | Ok("1") | Ok("true")
    )
}

impl GpuContext {
    pub fn new(choice: AdapterChoice) -> Result<GpuContext> {
        let instance = instance();
        let all = adapters(&instance);
        let adapter = all
            .into_iter()
            .find(|a| {
                let sw = a.get_info().device_type == wgpu::DeviceType::Cpu;
                match choice {
                    AdapterChoice::Any => true,
                    AdapterChoice::Hardware => !sw,
                    AdapterChoice::Software => sw,
                }
            })
            .ok_or_else(|| Error::NoAdapter(NO_ADAPTER_HELP.to_string()))?;
        let report = AdapterReport {
            info: adapter.get_info(),
            limits: adapter.limits(),
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("glassnet"),
            // Timestamps between dispatches, for `bench`'s step profile, where the adapter has them.
            required_features: adapter.features() & TIMING,
            // The defaults cap storage bindings at 128 MiB; ask for what the adapter has.
            required_limits: report.limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("could not open {}: {e}", report.summary())))?;
        let error = Arc::new(Mutex::new(None));
        let slot = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            s.get_or_insert_with(|| e.to_string());
        }));
        let slot = error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            s.get_or_insert_with(|| format!("GPU device lost ({reason:?}): {msg}"));
        });
        let shader_checks = shader_checks_wanted();
        // Checked shaders are other code: their choices are measured and kept apart.
        let tune = crate::gpu::autotune::Autotune::load(&format!(
            "{} {:?} {}{}",
            report.info.name,
            report.info.backend,
            report.info.driver_info,
            if shader_checks { " checked" } else { "" }
        ));
        Ok(GpuContext {
            device,
            queue,
            adapter: report,
            error,
            pipelines: Default::default(),
            tune,
            shader_checks,
        })
    }

    /// Returns the first error the device reported since the last check.
    pub fn check(&self) -> Result<()> {
        let taken = self.error.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Waits for all submitted work, then reports any error it raised.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.check()
    }

    /// Whether timestamps can be written between the dispatches of a pass.
    pub fn can_time_dispatches(&self) -> bool {
        self.device.features().contains(TIMING)
    }

    /// Largest buffer a kernel may bind, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.adapter
            .limits
            .max_storage_buffer_binding_size
            .min(self.adapter.limits.max_buffer_size)
    }
}
