//! WGSL compute through wgpu: context, shader registry and pipeline cache, kernel wrappers.
pub mod autotune;
pub mod context;
pub mod kernels;
pub mod pipeline;
pub mod timer;

pub use context::{AdapterChoice, GpuContext};
pub use kernels::{Dispatch, GpuTensor};
pub use timer::DispatchTimer;
