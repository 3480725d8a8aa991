//! Adapter discovery and choice, the device with the adapter's own limits, an error handler
//! that turns validation errors and device loss into returned errors, and what every kernel
//! wrapper builds on: tensors (allocate, upload, read back) and dispatches (bind, record, run).

use std::sync::{Arc, Mutex};

use crate::gpu::autotune::Autotune;
use crate::gpu::pipeline::{Kernel, PipelineCache};
use crate::gpu::tensor::{grid, Dispatch, GpuTensor, UNIFORM_WORDS};
use crate::gpu::uniform::{check_fields, Uniform};
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
    pipelines: PipelineCache,
    /// Measured choices between kernel variants for this adapter.
    pub tune: Autotune,
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
        let tune = Autotune::load(&format!(
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

impl GpuContext {
    /// The kernel's pipeline, compiled on first use.
    pub fn kernel(&self, name: &'static str) -> Result<Arc<Kernel>> {
        self.pipelines.get(&self.device, name, self.shader_checks)
    }

    /// A zero-filled storage buffer of `len` 4-byte elements; errors clearly past the limits.
    pub fn tensor(&self, len: usize, label: &str) -> Result<GpuTensor> {
        let bytes = (len.max(1) * 4) as u64;
        if bytes > self.max_binding() {
            return Err(Error::Gpu(format!(
                "{label} needs {:.1} MiB but {} binds at most {:.1} MiB: use a smaller batch",
                bytes as f64 / 1048576.0,
                self.adapter.info.name,
                self.max_binding() as f64 / 1048576.0
            )));
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuTensor {
            buffer: Arc::new(buffer),
            offset: 0,
            len,
        })
    }

    /// A tensor holding `data`.
    pub fn tensor_from<T: bytemuck::Pod>(&self, data: &[T], label: &str) -> Result<GpuTensor> {
        assert_eq!(std::mem::size_of::<T>(), 4);
        let t = self.tensor(data.len(), label)?;
        self.upload(&t, data);
        Ok(t)
    }

    /// Queues a write of `data` into `t` (applied before the next submission).
    pub fn upload<T: bytemuck::Pod>(&self, t: &GpuTensor, data: &[T]) {
        assert!(
            data.len() <= t.len.max(1),
            "upload of {} into a tensor of {}",
            data.len(),
            t.len
        );
        if !data.is_empty() {
            self.queue
                .write_buffer(&t.buffer, (t.offset * 4) as u64, bytemuck::cast_slice(data));
        }
    }

    /// Copies `t` back to the host (waits for the GPU).
    pub fn read<T: bytemuck::Pod>(&self, t: &GpuTensor) -> Result<Vec<T>> {
        let bytes = (t.len * 4) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&t.buffer, (t.offset * 4) as u64, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        self.map_read(&staging)
    }

    /// Maps a MAP_READ buffer after the submitted work finishes and copies it out.
    pub fn map_read<T: bytemuck::Pod>(&self, staging: &wgpu::Buffer) -> Result<Vec<T>> {
        self.map_read_after(staging, None)
    }

    /// `map_read` once submission `index` is done (all submitted work when None): work
    /// submitted after it keeps running.
    pub fn map_read_after<T: bytemuck::Pod>(
        &self,
        staging: &wgpu::Buffer,
        index: Option<wgpu::SubmissionIndex>,
    ) -> Result<Vec<T>> {
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: index,
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.check()?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback never completed".into()))?
            .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Builds a dispatch of kernel `name` over `threads` invocations. `bindings` follow the
    /// uniform block in the shader's binding order (outputs first, then inputs).
    pub fn dispatch<P: Uniform + 'static>(
        &self,
        name: &'static str,
        params: &P,
        bindings: &[&GpuTensor],
        threads: usize,
    ) -> Result<Dispatch> {
        let (x, y) = grid(threads);
        self.dispatch_grid(name, params, bindings, (x as usize, y as usize))
    }

    /// A dispatch of `groups` (x, y) workgroups; a grid past the dispatch limit of 65,535 per
    /// dimension is a clear error naming the kernel, not a wgpu validation panic.
    pub(crate) fn dispatch_grid<P: Uniform + 'static>(
        &self,
        name: &'static str,
        params: &P,
        bindings: &[&GpuTensor],
        groups: (usize, usize),
    ) -> Result<Dispatch> {
        if groups.0 > 65_535 || groups.1 > 65_535 {
            return Err(Error::Gpu(format!(
                "{name}: a grid of {} x {} workgroups exceeds one dispatch (65,535 per \
                 dimension): use a smaller batch",
                groups.0, groups.1
            )));
        }
        // Both at most 65,535 (checked above).
        let groups = (groups.0 as u32, groups.1 as u32);
        let kernel = self.kernel(name)?;
        check_fields::<P>(name, &kernel.params)?;
        let uniform = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: (UNIFORM_WORDS * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, t) in bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: t.binding(),
            });
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(name),
            layout: &kernel.layout,
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("binding {name}: {e}")));
        }
        let d = Dispatch {
            kernel,
            bind_group,
            uniform,
            block: std::any::TypeId::of::<P>(),
            groups,
        };
        d.set_uniforms(&self.queue, params)?;
        Ok(d)
    }

    /// Records `dispatches` in one compute pass, submits once and waits.
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.queue.submit([enc.finish()]);
        self.wait()
    }
}
