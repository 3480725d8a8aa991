//! The built-in synthetic glass set as a `Dataset` (generated in parallel, deterministic).

use rayon::prelude::*;

use crate::data::preprocess::{GreyF32, Preprocess};
use crate::data::synth::{synth_frame, synth_image, SynthConfig, SYNTH_CLASSES};
use crate::data::Dataset;

/// (class, index) of every image, class by class.
fn jobs(cfg: &SynthConfig) -> Vec<(usize, usize)> {
    cfg.counts
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| (0..n).map(move |i| (c, i)))
        .collect()
}

/// The line-camera frames of `cfg` as grey [0, 1] images with their labels.
pub fn line_camera_frames(cfg: &SynthConfig) -> Vec<(u32, GreyF32)> {
    jobs(cfg)
        .par_iter()
        .map(|&(c, i)| {
            let (side, grey) = synth_frame(cfg.seed, c, i);
            let img = GreyF32::from_raw(
                side as u32,
                side as u32,
                grey.iter().map(|&g| g as f32 / 255.0).collect(),
            )
            .expect("frame is side x side");
            (c as u32, img)
        })
        .collect()
}

/// The set as network inputs. Plain images are generated at the input side directly (the
/// bits the tests pin); line-camera frames, or any preprocessing beyond resizing, go through
/// `pre` as loaded files do.
pub fn builtin(cfg: &SynthConfig, pre: &Preprocess) -> Dataset {
    let jobs = jobs(cfg);
    let images: Vec<Vec<f32>> = if cfg.line_camera {
        line_camera_frames(cfg)
            .par_iter()
            .map(|(_, img)| pre.apply(img))
            .collect()
    } else if *pre == Preprocess::resize_only(cfg.side) {
        jobs.par_iter()
            .map(|&(c, i)| synth_image(cfg.seed, c, i, cfg.side))
            .collect()
    } else {
        jobs.par_iter()
            .map(|&(c, i)| {
                let unit: Vec<f32> = synth_image(cfg.seed, c, i, cfg.side)
                    .iter()
                    .map(|v| (v + 1.0) * 0.5)
                    .collect();
                let s = cfg.side as u32;
                pre.apply(&GreyF32::from_raw(s, s, unit).expect("side x side"))
            })
            .collect()
    };
    Dataset {
        side: pre.side,
        images: images.concat(),
        labels: jobs.iter().map(|&(c, _)| c as u32).collect(),
        classes: SYNTH_CLASSES.iter().map(|s| s.to_string()).collect(),
        paths: Vec::new(),
    }
}
