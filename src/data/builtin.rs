//! The built-in synthetic glass set as a `Dataset` (generated in parallel, deterministic).

use rayon::prelude::*;

use crate::data::synth::{synth_image, SynthConfig, SYNTH_CLASSES};
use crate::data::Dataset;

pub fn builtin(cfg: &SynthConfig) -> Dataset {
    let jobs: Vec<(usize, usize)> = cfg
        .counts
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| (0..n).map(move |i| (c, i)))
        .collect();
    let images: Vec<Vec<f32>> = jobs
        .par_iter()
        .map(|&(c, i)| synth_image(cfg.seed, c, i, cfg.side))
        .collect();
    Dataset {
        side: cfg.side,
        images: images.concat(),
        labels: jobs.iter().map(|&(c, _)| c as u32).collect(),
        classes: SYNTH_CLASSES.iter().map(|s| s.to_string()).collect(),
        paths: Vec::new(),
    }
}
