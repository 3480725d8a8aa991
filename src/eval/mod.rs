//! Evaluation: metrics (and, with `evaluate`, folds, baselines and reports).
pub mod metrics;
