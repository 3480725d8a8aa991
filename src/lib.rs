//! glassnet: deep metric (triplet) networks for surface-defect classification.
//!
//! The CPU reference (`cpu::reference`) is the oracle; `cpu::fast` and the WGSL kernels in
//! `shaders/` (run through `gpu`) are tested against it. `engine` runs the whole network on
//! any of them behind one interface.

pub mod bench;
pub mod checkpoint;
pub mod classify;
pub mod cli;
pub mod cpu;
pub mod data;
pub mod device;
pub mod engine;
pub mod eval;
pub mod export;
pub mod fold;
pub mod fsio;
pub mod gallery;
pub mod gpu;
pub mod html;
pub mod metric;
pub mod model;
pub mod optim;
pub mod plot;
pub mod serve;
pub mod shapes;
pub mod train;

/// Errors the library returns; the CLI prints them with their cause chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter; the message says what to install.
    #[error("{0}")]
    NoAdapter(String),
    /// A wgpu validation error, device loss or readback failure, with wgpu's full text.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// Bad input from the user: the message names the file or flag.
    #[error("{0}")]
    Input(String),
    /// The loss became NaN or infinite.
    #[error("{0}")]
    Diverged(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;
