//! CPU implementations: `reference` (the oracle) and `fast` (im2col + SGEMM).
pub mod fast;
pub mod gemm_abt;
pub mod reference;
