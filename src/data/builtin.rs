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
    builtin_views(cfg, &[pre]).swap_remove(0)
}

/// `builtin` with one dataset per entry of `pres` (each image or frame made once,
/// preprocessed each way).
pub fn builtin_views(cfg: &SynthConfig, pres: &[&Preprocess]) -> Vec<Dataset> {
    let jobs = jobs(cfg);
    // Per image, one preprocessed vector per entry of `pres`.
    let images: Vec<Vec<Vec<f32>>> = if cfg.line_camera {
        line_camera_frames(cfg)
            .par_iter()
            .map(|(_, img)| pres.iter().map(|pre| pre.apply(img)).collect())
            .collect()
    } else {
        jobs.par_iter()
            .map(|&(c, i)| {
                let img = synth_image(cfg.seed, c, i, cfg.side);
                pres.iter()
                    .map(|pre| {
                        if **pre == Preprocess::resize_only(cfg.side) {
                            return img.clone();
                        }
                        let unit: Vec<f32> = img.iter().map(|v| (v + 1.0) * 0.5).collect();
                        let s = cfg.side as u32;
                        pre.apply(&GreyF32::from_raw(s, s, unit).expect("side x side"))
                    })
                    .collect()
            })
            .collect()
    };
    pres.iter()
        .enumerate()
        .map(|(v, pre)| Dataset {
            side: pre.side,
            channels: pre.channels(),
            images: images
                .iter()
                .flat_map(|views| views[v].iter().copied())
                .collect(),
            labels: jobs.iter().map(|&(c, _)| c as u32).collect(),
            classes: SYNTH_CLASSES.iter().map(|s| s.to_string()).collect(),
            paths: Vec::new(),
        })
        .collect()
}
