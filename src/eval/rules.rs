//! The paper's rule stage (its Table 1) as a feature vector per image, for the
//! "conventional approach" baseline (rule features + SVM):
//! - contour analysis (dents: an imprinted shape): area, perimeter, circularity, extent,
//!   orientation and elongation of the region that stands out most;
//! - blob shape (mold marks): how many regions stand out and how large they are;
//! - pixel-shift analysis (distortion: a fold bends the reflected pattern): how far pixels
//!   depart from a smoothed copy, and how coherent the local gradient orientation is block
//!   by block (a fold bends stripes, so coherence drops and orientation varies);
//! - a gradient-magnitude histogram.
//!
//! Computed on the preprocessed network input, so the baseline sees what the network sees.

use image::{GrayImage, Luma};
use imageproc::region_labelling::{connected_components, Connectivity};

use crate::data::preprocess::{find_roi, median_mad, spot_saliency, to_u8, Crop, GreyF32};

/// Number of features `rule_features` returns.
pub const RULE_FEATURES: usize = 27;

/// Gradient-magnitude histogram bins (Sobel magnitude of [0, 1] images, 0..2 in 8 steps).
const GRAD_BINS: usize = 8;

/// Features of one image `[planes, side, side]` in [-1, 1]: the paper's rules read a grey
/// level, so a colour image's planes are averaged first.
pub fn rule_features(img: &[f32], side: usize) -> Vec<f32> {
    let s = side as u32;
    let plane = side * side;
    let planes = (img.len() / plane).max(1) as f32;
    let unit = GreyF32::from_fn(s, s, |x, y| {
        let i = (y * s + x) as usize;
        let sum: f32 = img[i..].iter().step_by(plane).sum();
        Luma([(sum / planes + 1.0) * 0.5])
    });
    let mut f = Vec::with_capacity(RULE_FEATURES);
    contour_features(&mut f, &unit);
    blob_features(&mut f, &unit);
    shift_features(&mut f, &unit);
    gradient_features(&mut f, &unit);
    assert_eq!(f.len(), RULE_FEATURES);
    f
}

/// Contour analysis of the most salient region (8 features; zeros where there is none).
fn contour_features(f: &mut Vec<f32>, unit: &GreyF32) {
    let side = unit.width() as usize;
    let area = (side * side) as f32;
    match find_roi(unit, &Crop::default()) {
        Some(roi) => {
            let pts: Vec<(f32, f32)> = roi
                .mask
                .enumerate_pixels()
                .filter(|(_, _, p)| p[0] > 0)
                .map(|(x, y, _)| (x as f32, y as f32))
                .collect();
            let a = pts.len() as f32;
            let contours = imageproc::contours::find_contours::<i32>(&roi.mask);
            let perimeter = contours
                .iter()
                .filter(|c| c.border_type == imageproc::contours::BorderType::Outer)
                .map(|c| imageproc::geometry::arc_length(&c.points, true) as f32)
                .fold(0.0, f32::max)
                .max(1.0);
            let (mx, my) = pts
                .iter()
                .fold((0.0, 0.0), |(sx, sy), p| (sx + p.0 / a, sy + p.1 / a));
            let (mut cxx, mut cyy, mut cxy) = (0.0f32, 0.0f32, 0.0f32);
            for p in &pts {
                let (dx, dy) = (p.0 - mx, p.1 - my);
                cxx += dx * dx / a;
                cyy += dy * dy / a;
                cxy += dx * dy / a;
            }
            let orient = 0.5 * (2.0 * cxy).atan2(cxx - cyy);
            let root = ((cxx - cyy).powi(2) + 4.0 * cxy * cxy).sqrt();
            let (l1, l2) = ((cxx + cyy + root) * 0.5, (cxx + cyy - root) * 0.5);
            let r = roi.region;
            f.extend([
                1.0,
                a / area,
                perimeter / side as f32,
                (4.0 * std::f32::consts::PI * a / (perimeter * perimeter)).min(1.5),
                a / (r.w * r.h) as f32,
                // Orientation as a doubled-angle vector (no jump at +-90 degrees).
                (2.0 * orient).cos(),
                (2.0 * orient).sin(),
                1.0 - (l2.max(0.0) / l1.max(1e-6)).sqrt(),
            ]);
        }
        None => f.extend([0.0; 8]),
    }
}

/// Blobs: regions above the Otsu level of the saliency map (4 features).
fn blob_features(f: &mut Vec<f32>, unit: &GreyF32) {
    let s = unit.width();
    let area = (s * s) as f32;
    let sal = spot_saliency(unit);
    let (med, mad) = median_mad(sal.as_raw());
    let top = sal.as_raw().iter().copied().fold(0.0f32, f32::max);
    let span = (top - med).max(1e-6);
    let scaled = GrayImage::from_fn(s, s, |x, y| {
        Luma([(((sal.get_pixel(x, y)[0] - med) / span).clamp(0.0, 1.0) * 255.0) as u8])
    });
    let level = imageproc::contrast::otsu_level(&scaled);
    let fg = GrayImage::from_fn(s, s, |x, y| {
        Luma([if scaled.get_pixel(x, y)[0] > level {
            255
        } else {
            0
        }])
    });
    let labels = connected_components(&fg, Connectivity::Eight, Luma([0u8]));
    let count = labels.as_raw().iter().copied().max().unwrap_or(0) as usize;
    let mut sizes = vec![0usize; count + 1];
    for l in labels.as_raw() {
        sizes[*l as usize] += 1;
    }
    let blobs: Vec<usize> = sizes[1..].iter().copied().filter(|&n| n >= 4).collect();
    let biggest = blobs.iter().copied().max().unwrap_or(0) as f32;
    let total: usize = blobs.iter().sum();
    f.extend([
        (blobs.len() as f32).ln_1p(),
        biggest / area,
        total as f32 / area,
        // How far the peak stands out, in robust standard deviations (capped).
        ((top - med) / (1.4826 * mad).max(1e-6)).min(50.0) / 10.0,
    ]);
}

/// Pixel shift: departure from a smoothed copy (3 features).
fn shift_features(f: &mut Vec<f32>, unit: &GreyF32) {
    let smooth = imageproc::filter::gaussian_blur_f32(unit, 2.0);
    let res: Vec<f32> = unit
        .as_raw()
        .iter()
        .zip(smooth.as_raw())
        .map(|(a, b)| (a - b).abs())
        .collect();
    let mean = res.iter().sum::<f32>() / res.len() as f32;
    let std = (res.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / res.len() as f32).sqrt();
    let mut sorted = res.clone();
    sorted.sort_by(f32::total_cmp);
    f.extend([
        mean * 10.0,
        std * 10.0,
        sorted[sorted.len() * 99 / 100] * 10.0,
    ]);
}

/// Orientation coherence per 16 x 16 block from Sobel gradients, then the gradient-magnitude
/// histogram (4 + GRAD_BINS features).
fn gradient_features(f: &mut Vec<f32>, unit: &GreyF32) {
    let s = unit.width();
    let area = (s * s) as f32;
    let u8img = to_u8(unit);
    let gx = imageproc::gradients::horizontal_sobel(&u8img);
    let gy = imageproc::gradients::vertical_sobel(&u8img);
    let block = 16u32.min(s);
    let (mut coh, mut ang) = (Vec::new(), Vec::new());
    for by in (0..s).step_by(block as usize) {
        for bx in (0..s).step_by(block as usize) {
            let (mut jxx, mut jyy, mut jxy) = (0.0f32, 0.0f32, 0.0f32);
            for y in by..(by + block).min(s) {
                for x in bx..(bx + block).min(s) {
                    let (a, b) = (gx.get_pixel(x, y)[0] as f32, gy.get_pixel(x, y)[0] as f32);
                    jxx += a * a;
                    jyy += b * b;
                    jxy += a * b;
                }
            }
            let tr = jxx + jyy;
            coh.push(if tr > 0.0 {
                ((jxx - jyy).powi(2) + 4.0 * jxy * jxy).sqrt() / tr
            } else {
                0.0
            });
            ang.push((2.0 * jxy).atan2(jxx - jyy));
        }
    }
    let n = coh.len() as f32;
    let cmean = coh.iter().sum::<f32>() / n;
    let cmin = coh.iter().copied().fold(1.0f32, f32::min);
    // Circular spread of the doubled block orientations: 0 when all blocks agree.
    let (sc, ss) = ang
        .iter()
        .fold((0.0f32, 0.0f32), |(c, s), a| (c + a.cos(), s + a.sin()));
    let spread = 1.0 - (sc * sc + ss * ss).sqrt() / n;
    let cstd = (coh.iter().map(|c| (c - cmean).powi(2)).sum::<f32>() / n).sqrt();
    f.extend([cmean, cmin, cstd, spread]);

    // Gradient-magnitude histogram (fractions of pixels).
    let mut hist = [0f32; GRAD_BINS];
    for (a, b) in gx.as_raw().iter().zip(gy.as_raw()) {
        // Sobel of 8-bit: up to 4 x 255 per axis; /1020 gives [0, 1] per axis.
        let m = ((*a as f32).powi(2) + (*b as f32).powi(2)).sqrt() / 1020.0;
        let bin = ((m * 4.0 * GRAD_BINS as f32) as usize).min(GRAD_BINS - 1);
        hist[bin] += 1.0 / area;
    }
    f.extend(hist);
}

/// Features `[n, RULE_FEATURES]` of every image of `images` `[n, channels, side, side]`.
pub fn rule_features_all(images: &[f32], channels: usize, side: usize) -> Vec<f32> {
    use rayon::prelude::*;
    images
        .par_chunks(channels * side * side)
        .flat_map_iter(|img| rule_features(img, side))
        .collect()
}

/// Standardises features `[n, d]` in place with the mean and std of the rows in `fit`.
pub fn standardise(features: &mut [f32], d: usize, fit: &[usize]) {
    for j in 0..d {
        let vals: Vec<f64> = fit.iter().map(|&i| features[i * d + j] as f64).collect();
        let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len().max(1) as f64;
        let sd = var.sqrt().max(1e-6);
        for row in features.chunks_mut(d) {
            row[j] = ((row[j] as f64 - mean) / sd) as f32;
        }
    }
}
