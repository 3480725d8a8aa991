//! One wrapper per kernel in shaders/, named as the shader and its CPU reference function
//! (`cpu::reference::<name>`), grouped by op family; each family's file opens with its
//! kernels and variants. A wrapper only builds the dispatch (uniforms + bind group) after
//! checking the shape; callers build their dispatches once and record them every step.
//! `<name>` picks the variant autotune measured fastest here, `<name>_variant` runs a given
//! one (the tests run them all).

use crate::gpu::uniform::uniform;

mod activation;
mod conv;
mod dense;
mod distance;
mod global_pool;
mod norm;
mod optim;
mod pool;
mod reduce;
mod tune;
mod variants;

pub use activation::*;
pub use conv::*;
pub use dense::*;
pub use distance::*;
pub use global_pool::*;
pub use norm::*;
pub use optim::*;
pub use pool::*;
pub use reduce::*;
pub use variants::*;

uniform! {
    /// One count: elements, rows or triplets (the elementwise kernels and reductions).
    pub struct Count { n: u32 }
}

/// A size as a u32 uniform word (shapes are validated far below 2^32).
fn u(x: usize) -> u32 {
    u32::try_from(x).expect("shape exceeds u32")
}
