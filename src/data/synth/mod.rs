//! Synthetic smartphone-cover-glass inspection images in four classes
//! (control, dent, fold, mold), for demos, tests and benchmarks without the real
//! data set.
//!
//! Every image shares one family of backgrounds (lighting gradient, vignette, surface
//! mottling, polishing streaks, the stripe reflection of structured light, sensor noise,
//! dust) drawn at random, so raw pixels are dominated by nuisance variation while each
//! defect stays visible to a person: a pixel-space classifier does poorly, a small CNN
//! that learns local shape does well.
//!
//! Reproducibility: each image has its own ChaCha8 stream keyed by (seed, class, index),
//! uses only raw `next_u32` words (never `rand`'s distribution code, whose value
//! stability is not promised across versions) and only IEEE-exact arithmetic
//! (+ - * / sqrt and casts; sine is our own polynomial, not the platform's libm, and
//! Rust never fuses a*b+c into an FMA on its own), and is quantised to 8 bits. So the same seed gives the same bits on every platform, in any
//! generation order, and the in-memory set equals what its PNGs decode to.

use std::path::Path;

/// Class names in label order.
pub const SYNTH_CLASSES: [&str; 4] = ["control", "dent", "fold", "mold"];

const DENT: usize = 1;
const FOLD: usize = 2;
const MOLD: usize = 3;

/// Smallest side the shape-size ranges make sense for.
const MIN_SIDE: usize = 16;

#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub seed: u64,
    /// images per class, in SYNTH_CLASSES order; default reflects a line's imbalance, e.g. [480, 160, 80, 80]
    pub counts: [usize; 4],
    /// output side in pixels (default 112)
    pub side: usize,
    /// Line-camera frames (see [`synth_frame`]) instead of `side` x `side` images.
    pub line_camera: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            // A production line sees mostly good parts.
            counts: [480, 160, 80, 80],
            side: 112,
            line_camera: false,
        }
    }
}

/// Generates the set: images as row-major grey f32 in [-1, 1], `side*side` per image, concatenated;
/// labels index SYNTH_CLASSES. Deterministic for a seed (same bits every run, every platform):
/// images are ordered class by class, index by index, and each comes from [`synth_image`].
pub fn synth_glass(cfg: &SynthConfig) -> (Vec<f32>, Vec<u32>) {
    let total: usize = cfg.counts.iter().sum();
    let mut images = Vec::with_capacity(total * cfg.side * cfg.side);
    let mut labels = Vec::with_capacity(total);
    for (class, &count) in cfg.counts.iter().enumerate() {
        for index in 0..count {
            images.extend(synth_image(cfg.seed, class, index, cfg.side));
            labels.push(class as u32);
        }
    }
    (images, labels)
}

/// One image (for parallel generation): class c, index i.
///
/// Panics if `class >= 4` or `side < 16`.
pub fn synth_image(seed: u64, class: usize, index: usize, side: usize) -> Vec<f32> {
    synth_grey(seed, class, index, side)
        .into_iter()
        .map(grey_to_unit)
        .collect()
}

/// Writes the set as a class-per-folder dataset of 8-bit grey PNGs: DIR/<class>/<class>_<i>.png,
/// plus DIR/contact_sheet.png (a grid: one row per class, ~8 examples each, 1-2 px gaps).
///
/// `<i>` is zero-padded to four digits so a lexical directory listing keeps generation
/// order. The PNGs decode, through g / 127.5 - 1, to exactly what [`synth_glass`] returns.
pub fn write_synth_dataset(cfg: &SynthConfig, dir: &Path) -> std::io::Result<()> {
    let side = cfg.side;
    const SHEET_COLS: usize = 8;
    const GAP: usize = 2;
    let cell = side + GAP;
    let sheet_w = GAP + SHEET_COLS * cell;
    let sheet_h = GAP + SYNTH_CLASSES.len() * cell;
    // Black gaps: the images themselves are never that dark, so the grid reads clearly.
    let mut sheet = image::GrayImage::new(sheet_w as u32, sheet_h as u32);

    for (class, &name) in SYNTH_CLASSES.iter().enumerate() {
        let class_dir = dir.join(name);
        std::fs::create_dir_all(&class_dir)?;
        for index in 0..cfg.counts[class] {
            let (w, grey) = if cfg.line_camera {
                synth_frame(cfg.seed, class, index)
            } else {
                (side, synth_grey(cfg.seed, class, index, side))
            };
            let img =
                image::GrayImage::from_raw(w as u32, w as u32, grey).expect("buffer is side*side");
            if index < SHEET_COLS {
                let (x0, y0) = (GAP + index * cell, GAP + class * cell);
                let thumb = if w == side {
                    img.clone()
                } else {
                    image::imageops::resize(
                        &img,
                        side as u32,
                        side as u32,
                        image::imageops::FilterType::Triangle,
                    )
                };
                image::imageops::replace(&mut sheet, &thumb, x0 as i64, y0 as i64);
            }
            img.save(class_dir.join(format!("{name}_{index:04}.png")))
                .map_err(std::io::Error::other)?;
        }
    }
    sheet
        .save(dir.join("contact_sheet.png"))
        .map_err(std::io::Error::other)
}

/// The fixed 8-bit -> [-1, 1] mapping (no per-image stretch, so contrast cues survive).
fn grey_to_unit(g: u8) -> f32 {
    g as f32 / 127.5 - 1.0
}

mod background;
mod defects;

use background::*;
use defects::*;

/// The 8-bit image before mapping to [-1, 1].
fn synth_grey(seed: u64, class: usize, index: usize, side: usize) -> Vec<u8> {
    // Sizes are specified for the 112 px default and scale with the side.
    synth_grey_at_scale(
        seed,
        class,
        index,
        side,
        side as f32 / 112.0,
        side,
        (0.0, 0.0),
    )
}

/// Line-camera frames: the smallest and largest side (square frames, side drawn per image).
pub const FRAME_SIDES: (usize, usize) = (224, 640);

/// A line-camera frame of class c, index i: a wider field of view than the 112 px images at
/// the same pixel scale, so the defect (same size in pixels) is a small part of a frame whose
/// side varies from image to image within FRAME_SIDES. Grey 8 bit, row-major, side x side.
pub fn synth_frame(seed: u64, class: usize, index: usize) -> (usize, Vec<u8>) {
    // Its own stream, so the frame size does not shift the image's draws.
    let mut pick = Rng::for_image(seed ^ 0x6672_616d_6573, class, index);
    let side = pick.int(FRAME_SIDES.0, FRAME_SIDES.1);
    // A fold is drawn for a 112 px field and moved anywhere in the frame.
    let room = (side as f32 - 112.0) * 0.5;
    let offset = (pick.range(-room, room), pick.range(-room, room));
    (
        side,
        synth_grey_at_scale(seed, class, index, side, 1.0, 112, offset),
    )
}

/// The generator with sizes scaled by `s` (1.0: the 112 px image's pixel scale); a fold is
/// laid out for a `fold_side` field centred `fold_offset` pixels from the frame's centre.
fn synth_grey_at_scale(
    seed: u64,
    class: usize,
    index: usize,
    side: usize,
    s: f32,
    fold_side: usize,
    fold_offset: (f32, f32),
) -> Vec<u8> {
    assert!(class < SYNTH_CLASSES.len(), "class {class} out of range");
    assert!(side >= MIN_SIDE, "side {side} below {MIN_SIDE}");
    let mut rng = Rng::for_image(seed, class, index);
    let sidef = side as f32;
    let c = (sidef - 1.0) * 0.5;

    // Global photometry: brightness, contrast, lighting.
    let base = rng.range(0.36, 0.62);
    let contrast = rng.range(0.75, 1.3);
    let (gx, gy) = rng.direction();
    let grad = rng.range(0.0, 0.24) / sidef;
    let vig = rng.range(-0.12, 0.05) / (c * c);
    let (vx, vy) = (rng.range(-0.3, 0.3) * sidef, rng.range(-0.3, 0.3) * sidef);

    // Surface texture: low-frequency mottling, fine grain, optional polishing streaks.
    let mottle_amp = rng.range(0.005, 0.03);
    let mottle_cell = rng.range(14.0, 30.0) * s;
    let mottle = Lattice::new(&mut rng, side, mottle_cell, mottle_cell);
    let grain_amp = rng.range(0.003, 0.014);
    let grain_cell = rng.range(1.5, 3.0) * s;
    let grain = Lattice::new(&mut rng, side, grain_cell, grain_cell);
    let streak_amp = if rng.chance(0.5) {
        rng.range(0.003, 0.012)
    } else {
        0.0
    };
    let streak_dir = rng.direction();
    let streak_cell = rng.range(1.2, 2.5) * s;
    let streaks = Streaks::new(&mut rng, side, streak_cell, streak_dir);

    // Structured-light stripes (sometimes a grid), present in every class; their
    // strength drifts slowly across the frame as a real reflection does.
    let period = rng.range(6.0, 12.0) * s;
    let wave_dir = rng.direction();
    let stripe_amp = rng.range(0.03, 0.06);
    let stripes = Stripes::new(&mut rng, period, wave_dir, stripe_amp);
    let grid = if rng.chance(0.25) {
        let p2 = period * rng.range(0.8, 1.25);
        let perp = (-wave_dir.1, wave_dir.0);
        let a2 = stripe_amp * rng.range(0.3, 0.6);
        Some(Stripes::new(&mut rng, p2, perp, a2))
    } else {
        None
    };
    let drift = Lattice::new(&mut rng, side, 0.5 * sidef, 0.5 * sidef);

    let noise_sigma = rng.range(0.004, 0.013);

    let fold = (class == FOLD).then(|| Fold::new(&mut rng, fold_side, s, period, wave_dir));

    let mut img = reflection(side, &stripes, grid.as_ref(), fold.as_ref(), fold_offset);
    drift.render(side, |k, d| img[k] *= 1.0 + 0.35 * d);
    mottle.render(side, |k, m| img[k] += mottle_amp * m);
    grain.render(side, |k, g| img[k] += grain_amp * g);
    if streak_amp > 0.0 {
        for y in 0..side {
            for x in 0..side {
                img[y * side + x] += streak_amp * streaks.at(x as f32 - c, y as f32 - c);
            }
        }
    }
    for p in img.iter_mut() {
        *p *= contrast;
    }
    let light = Light {
        base,
        grad,
        dir: (gx, gy),
        vig,
        centre: (vx, vy),
    };
    light.add_to(&mut img, side);

    match class {
        DENT => add_dent(&mut img, side, s, contrast, &mut rng),
        MOLD => add_mold(&mut img, side, s, contrast, &mut rng),
        _ => {}
    }

    // Dust in every class, so "a small spot" is no shortcut to any label.
    if rng.chance(0.15) {
        for _ in 0..rng.int(1, 3) {
            add_speck(&mut img, side, s, contrast, &mut rng);
        }
    }

    quantise(&img, noise_sigma, &mut rng)
}

/// The reflected pattern: stripes (and the grid's), sampled at fold-displaced coordinates
/// (the fold bends the reflection; the surface texture and lighting stay put), plus the
/// fold's crease.
fn reflection(
    side: usize,
    stripes: &Stripes,
    grid: Option<&Stripes>,
    fold: Option<&Fold>,
    fold_offset: (f32, f32),
) -> Vec<f32> {
    let c = (side as f32 - 1.0) * 0.5;
    let mut img = vec![0f32; side * side];
    for y in 0..side {
        let py = y as f32 - c;
        for x in 0..side {
            let px = x as f32 - c;
            let (dx, dy, crease) = match fold {
                Some(f) => f.at(px - fold_offset.0, py - fold_offset.1),
                None => (0.0, 0.0, 0.0),
            };
            let (u, v) = (px + dx, py + dy);
            let mut p = stripes.at(u, v);
            if let Some(g) = grid {
                p += g.at(u, v);
            }
            img[y * side + x] = p + crease;
        }
    }
    img
}

/// Lighting: a linear gradient plus an off-centre vignette or hotspot.
struct Light {
    base: f32,
    /// Gradient strength per pixel, along `dir`.
    grad: f32,
    dir: (f32, f32),
    /// Vignette (< 0) or hotspot (> 0) curvature, around `centre` (from the frame's centre).
    vig: f32,
    centre: (f32, f32),
}

impl Light {
    fn add_to(&self, img: &mut [f32], side: usize) {
        let c = (side as f32 - 1.0) * 0.5;
        let (base, grad, vig) = (self.base, self.grad, self.vig);
        let ((gx, gy), (vx, vy)) = (self.dir, self.centre);
        for y in 0..side {
            let py = y as f32 - c;
            let ly = py - vy;
            let row_light = base + grad * py * gy + vig * ly * ly;
            for x in 0..side {
                let px = x as f32 - c;
                let lx = px - vx;
                img[y * side + x] += row_light + grad * px * gx + vig * lx * lx;
            }
        }
    }
}

/// Sensor noise, then 8 bits.
fn quantise(img: &[f32], noise_sigma: f32, rng: &mut Rng) -> Vec<u8> {
    img.iter()
        .map(|&v| {
            let v = v + noise_sigma * rng.gauss();
            // Clamped to >= 0 first, so the truncating cast rounds half up.
            (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// Random top-left corner so a box of `size` lies inside the frame.
fn place(rng: &mut Rng, side: usize, size: usize) -> (usize, usize) {
    let room = side.saturating_sub(size);
    (rng.int(0, room), rng.int(0, room))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: u64 = 0xffc7_0524_b000_ce81;

    fn small() -> SynthConfig {
        SynthConfig {
            seed: 7,
            counts: [3, 2, 2, 2],
            side: 48,
            line_camera: false,
        }
    }

    #[test]
    fn same_seed_same_bits() {
        let (a, la) = synth_glass(&small());
        let (b, lb) = synth_glass(&small());
        assert_eq!(la, lb);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn different_seed_differs() {
        let (a, _) = synth_glass(&small());
        let (b, _) = synth_glass(&SynthConfig { seed: 8, ..small() });
        assert_ne!(a, b);
    }

    #[test]
    fn values_in_range_and_on_grey_levels() {
        let (a, _) = synth_glass(&SynthConfig {
            seed: 11,
            counts: [12, 12, 12, 12],
            side: 112,
            line_camera: false,
        });
        for &v in &a {
            assert!((-1.0..=1.0).contains(&v), "{v}");
            // Exactly one of the 256 levels, so PNG round trips are lossless.
            let g = ((v + 1.0) * 127.5).round();
            assert_eq!(grey_to_unit(g as u8), v);
        }
    }

    #[test]
    fn counts_and_labels() {
        let cfg = small();
        let (a, l) = synth_glass(&cfg);
        assert_eq!(l, vec![0, 0, 0, 1, 1, 2, 2, 3, 3]);
        assert_eq!(a.len(), 9 * 48 * 48);
        let d = SynthConfig::default();
        assert_eq!(d.counts, [480, 160, 80, 80]);
        assert_eq!(d.side, 112);
    }

    #[test]
    fn images_independent_of_order() {
        let cfg = small();
        let (all, _) = synth_glass(&cfg);
        let n = cfg.side * cfg.side;
        // Generate backwards, one at a time, and compare with the batch.
        let mut k = 9;
        for class in (0..4).rev() {
            for index in (0..cfg.counts[class]).rev() {
                k -= 1;
                let one = synth_image(cfg.seed, class, index, cfg.side);
                assert_eq!(
                    &all[k * n..(k + 1) * n],
                    &one[..],
                    "class {class} index {index}"
                );
            }
        }
    }

    #[test]
    fn classes_and_indices_differ() {
        let a = synth_image(1, 0, 0, 32);
        assert_ne!(a, synth_image(1, 1, 0, 32));
        assert_ne!(a, synth_image(1, 0, 1, 32));
    }

    #[test]
    fn other_sides_work() {
        for side in [16, 31, 64, 224] {
            for class in 0..4 {
                let img = synth_image(3, class, 5, side);
                assert_eq!(img.len(), side * side);
            }
        }
    }

    /// Pins the exact output, so a change to the generator (or a platform that rounds
    /// differently) is noticed: data sets made from a seed must stay reproducible.
    #[test]
    fn golden_checksum() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for class in 0..4 {
            for v in synth_image(2024, class, 3, 40) {
                for b in v.to_bits().to_le_bytes() {
                    h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        assert_eq!(h, GOLDEN, "{h:#018x}");
    }

    #[test]
    fn sine_is_accurate() {
        for k in -2000..2000 {
            let t = k as f32 * 0.01237;
            let want = (t as f64 * std::f64::consts::TAU).sin() as f32;
            assert!((sin_turns(t) - want).abs() < 2e-5, "{t}");
        }
    }

    #[test]
    fn writes_png_dataset() {
        let dir = std::env::temp_dir().join(format!("glassnet_synth_{}", std::process::id()));
        let cfg = SynthConfig {
            seed: 2,
            counts: [2, 1, 1, 1],
            side: 32,
            line_camera: false,
        };
        write_synth_dataset(&cfg, &dir).unwrap();
        let (imgs, _) = synth_glass(&cfg);
        let png = image::open(dir.join("fold").join("fold_0000.png"))
            .unwrap()
            .into_luma8();
        assert_eq!(png.dimensions(), (32, 32));
        let back: Vec<f32> = png.pixels().map(|p| grey_to_unit(p.0[0])).collect();
        let k = 3 * 32 * 32;
        assert_eq!(&imgs[k..k + 32 * 32], &back[..]);
        let sheet = image::open(dir.join("contact_sheet.png")).unwrap();
        assert_eq!(sheet.height(), 2 + 4 * 34);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
