//! Evaluation: metrics, and k-fold cross-validation with reports (`glassnet evaluate`).
pub mod baselines;
pub mod cv;
pub mod openset;
pub mod rules;
pub mod tsne;
