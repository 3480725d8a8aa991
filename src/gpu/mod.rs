//! WGSL compute through wgpu. Floors, lowest first: uniform (typed uniform blocks, checked
//! against each shader's), pipeline (shader registry and pipeline cache: a device and a name
//! in, a kernel out), tensor (buffer views and dispatches),
//! autotune (measured variant choices), context (adapter, device, and the tensor and
//! dispatch methods), timer, ops (one wrapper per kernel, by op family).
pub mod autotune;
pub mod context;
pub mod ops;
pub mod pipeline;
pub mod tensor;
pub mod timer;
pub mod uniform;

pub use context::{AdapterChoice, GpuContext};
pub use tensor::{Dispatch, GpuTensor};
pub use timer::DispatchTimer;
