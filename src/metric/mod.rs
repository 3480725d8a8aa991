//! Metric learning on the host side: samplers and the nearest-neighbour classifier. The
//! distance, mining and loss kernels live in `cpu::reference` and shaders/.
pub mod knn;
pub mod sampler;
