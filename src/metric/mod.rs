//! Metric learning on the host side: samplers, the nearest-neighbour classifier, open-set
//! rejection thresholds, the good-part operating point and the scores (confusion matrices, accuracy, balanced accuracy, macro-F1) that training,
//! checkpoints and evaluation share. The distance, mining and loss kernels live in
//! `cpu::reference` and shaders/.
pub mod escape;
pub mod knn;
pub mod openset;
pub mod sampler;
pub mod scores;
