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

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
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

// ---------------------------------------------------------------------------------------
// Deterministic helpers
// ---------------------------------------------------------------------------------------

/// Per-image random stream. The key spells out (seed, class, index) in full, so no two
/// images share a stream and none depends on how many draws another made.
struct Rng(ChaCha8Rng);

impl Rng {
    fn for_image(seed: u64, class: usize, index: usize) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&(class as u64).to_le_bytes());
        key[16..24].copy_from_slice(&(index as u64).to_le_bytes());
        key[24..].copy_from_slice(b"glassyn1");
        Rng(ChaCha8Rng::from_seed(key))
    }

    /// Uniform in [0, 1) from 24 bits, exactly representable in f32.
    fn unit(&mut self) -> f32 {
        (self.0.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in lo..=hi (multiply-shift; the tiny bias is irrelevant here).
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + ((self.0.next_u32() as u64 * (hi - lo + 1) as u64) >> 32) as usize
    }

    fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    fn sign(&mut self) -> f32 {
        if self.chance(0.5) {
            1.0
        } else {
            -1.0
        }
    }

    /// Random unit vector.
    fn direction(&mut self) -> (f32, f32) {
        let t = self.unit();
        (cos_turns(t), sin_turns(t))
    }

    /// Roughly standard normal: Irwin-Hall of the four bytes of one word (centred
    /// bins). Plenty for sensor noise of a few grey levels, at one 32-bit draw a pixel.
    fn gauss(&mut self) -> f32 {
        let w = self.0.next_u32();
        let s = (w & 0xff) + ((w >> 8) & 0xff) + ((w >> 16) & 0xff) + (w >> 24);
        ((s as f32 + 2.0) * (1.0 / 256.0) - 2.0) * 1.732_050_8
    }
}

/// sin(2*pi*t) from + and * only, so it rounds the same everywhere (libm sin need not).
/// Abs error below 1e-6, far under one grey level.
fn sin_turns(t: f32) -> f32 {
    let mut r = t - floor(t + 0.5); // [-0.5, 0.5)
    if r > 0.25 {
        r = 0.5 - r;
    } else if r < -0.25 {
        r = -0.5 - r;
    }
    let x = r * std::f32::consts::TAU; // [-pi/2, pi/2]
    let x2 = x * x;
    x * (1.0
        + x2 * (-1.0 / 6.0
            + x2 * (1.0 / 120.0
                + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362_880.0 - x2 / 39_916_800.0)))))
}

/// Exact floor for |x| < 2^31 without the libm call `f32::floor` becomes on baseline
/// x86-64 (no SSE4.1), which showed up as a tenth of generation time.
fn floor(x: f32) -> f32 {
    let i = x as i32 as f32;
    if i > x {
        i - 1.0
    } else {
        i
    }
}

fn cos_turns(t: f32) -> f32 {
    sin_turns(t + 0.25)
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Compact smooth bump: 1 at d2 = 0, 0 from d2 >= r2 on (no exp needed).
fn bump(d2: f32, r2: f32) -> f32 {
    if d2 >= r2 {
        0.0
    } else {
        let u = 1.0 - d2 / r2;
        u * u * u
    }
}

/// Value noise: random values on a lattice, smooth bilinear in between. Coordinates are
/// centred pixels; beyond the frame values clamp.
struct Lattice {
    nx: usize,
    ny: usize,
    inv_cx: f32,
    inv_cy: f32,
    v: Vec<f32>,
}

impl Lattice {
    fn new(rng: &mut Rng, side: usize, cell_x: f32, cell_y: f32) -> Self {
        // Fields are only sampled on the upright side x side frame; +4 cells cover
        // rounding, and values clamp beyond.
        let span = side as f32;
        let nx = (span / cell_x) as usize + 4;
        let ny = (span / cell_y) as usize + 4;
        let v = (0..nx * ny).map(|_| rng.range(-1.0, 1.0)).collect();
        Self {
            nx,
            ny,
            inv_cx: 1.0 / cell_x,
            inv_cy: 1.0 / cell_y,
            v,
        }
    }

    /// Lattice coordinate, integer cell and smoothed fraction for a centred position.
    fn coord(x: f32, inv: f32, n: usize) -> (usize, f32) {
        let g = (x * inv + 0.5 * n as f32).clamp(0.0, (n - 2) as f32);
        // g >= 0, so truncation is floor (and avoids a libm call on baseline x86-64).
        let i = g as usize;
        let f = g - i as f32;
        (i, f * f * (3.0 - 2.0 * f))
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let (ix, sx) = Self::coord(x, self.inv_cx, self.nx);
        let (iy, sy) = Self::coord(y, self.inv_cy, self.ny);
        let k = iy * self.nx + ix;
        let top = self.v[k] + sx * (self.v[k + 1] - self.v[k]);
        let k2 = k + self.nx;
        let bot = self.v[k2] + sx * (self.v[k2 + 1] - self.v[k2]);
        top + sy * (bot - top)
    }

    /// The field on the whole undisplaced side x side frame, handed pixel by pixel to
    /// `put(index, value)`. Same values as `at`, but the column weights are computed
    /// once and each row's vertical blend once, which makes it several times cheaper.
    fn render(&self, side: usize, mut put: impl FnMut(usize, f32)) {
        let c = (side as f32 - 1.0) * 0.5;
        let cols: Vec<(usize, f32)> = (0..side)
            .map(|x| Self::coord(x as f32 - c, self.inv_cx, self.nx))
            .collect();
        let mut row = vec![0f32; self.nx];
        for y in 0..side {
            let (iy, sy) = Self::coord(y as f32 - c, self.inv_cy, self.ny);
            let (top, bot) = self.v[iy * self.nx..(iy + 2) * self.nx].split_at(self.nx);
            for ((r, &t), &b) in row.iter_mut().zip(top).zip(bot) {
                *r = t + sy * (b - t);
            }
            for (x, &(ix, sx)) in cols.iter().enumerate() {
                put(y * side + x, row[ix] + sx * (row[ix + 1] - row[ix]));
            }
        }
    }
}

/// 1-D value noise across polishing streaks: the streaks run along `dir`, and their
/// brightness varies only across it.
struct Streaks {
    dir: (f32, f32),
    inv_cell: f32,
    v: Vec<f32>,
}

impl Streaks {
    fn new(rng: &mut Rng, side: usize, cell: f32, dir: (f32, f32)) -> Self {
        let n = (1.5 * side as f32 / cell) as usize + 4;
        Self {
            dir,
            inv_cell: 1.0 / cell,
            v: (0..n).map(|_| rng.range(-1.0, 1.0)).collect(),
        }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let across = y * self.dir.0 - x * self.dir.1;
        let (i, f) = Lattice::coord(across, self.inv_cell, self.v.len());
        self.v[i] + f * (self.v[i + 1] - self.v[i])
    }
}

// ---------------------------------------------------------------------------------------
// Scene
// ---------------------------------------------------------------------------------------

/// Samples per period in a stripe profile table.
const STRIPE_LUT: usize = 512;

/// One set of parallel reflection stripes: amp * (sin(t) + h2 sin(2t + p2)) with
/// t = k . p + phase (in turns); a second harmonic makes them less perfectly sinusoidal.
/// One period is tabulated, since a lookup with linear interpolation costs far less
/// per pixel than two polynomial sines and errs by under 1e-4 of the amplitude.
struct Stripes {
    kx: f32,
    ky: f32,
    phase: f32,
    lut: Vec<f32>,
}

impl Stripes {
    fn new(rng: &mut Rng, period: f32, dir: (f32, f32), amp: f32) -> Self {
        let phase = rng.unit();
        let h2 = rng.range(0.0, 0.35);
        let phase2 = rng.unit();
        let lut = (0..=STRIPE_LUT)
            .map(|k| {
                let t = k as f32 / STRIPE_LUT as f32;
                amp * (sin_turns(t) + h2 * sin_turns(2.0 * t + phase2))
            })
            .collect();
        Self {
            kx: dir.0 / period,
            ky: dir.1 / period,
            phase,
            lut,
        }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let t = x * self.kx + y * self.ky + self.phase;
        let pos = (t - floor(t)) * STRIPE_LUT as f32;
        let i = (pos as usize).min(STRIPE_LUT - 1);
        let w = pos - i as f32;
        self.lut[i] + w * (self.lut[i + 1] - self.lut[i])
    }
}

/// A fold: inside a band along a circular arc the surface pattern is shifted along the
/// stripes' wave vector, so stripe lines crossing it bend or jump (a kink) while mean
/// brightness barely changes. Shifting along the wave vector, rather than along the
/// arc's normal, keeps the kink visible whatever the arc's orientation.
struct Fold {
    /// Circle centre and radius (centred pixel coordinates).
    cx: f32,
    cy: f32,
    radius: f32,
    /// Unit vector from the centre to the middle of the arc.
    ax: f32,
    ay: f32,
    half_len: f32,
    taper: f32,
    half_width: f32,
    /// true: one side shifted relative to the other; false: shift only inside the band.
    step: bool,
    /// Displacement vector at full strength (pixels).
    dx: f32,
    dy: f32,
    /// Faint brightness change where the surface bends (lensing), in grey fraction.
    crease: f32,
}

impl Fold {
    fn new(rng: &mut Rng, side: usize, s: f32, period: f32, wave_dir: (f32, f32)) -> Self {
        let sidef = side as f32;
        // A point on the fold and the fold's normal there; the arc bends around a
        // centre far enough away that it reads as a curve, not a ring.
        let px = rng.range(-0.3, 0.3) * sidef;
        let py = rng.range(-0.3, 0.3) * sidef;
        // The band crosses the stripe lines (normal within 50 degrees of the lines'
        // direction), so the shift along the wave vector shears them visibly.
        let turn = rng.range(-0.14, 0.14);
        let (ct, st) = (cos_turns(turn), sin_turns(turn));
        let (lx, ly) = (-wave_dir.1, wave_dir.0);
        let (nx, ny) = (lx * ct - ly * st, lx * st + ly * ct);
        let radius = rng.range(0.5, 2.5) * sidef;
        let bend = rng.sign();
        let (cx, cy) = (px - bend * nx * radius, py - bend * ny * radius);
        let shift = rng.range(0.5, 0.9) * period * rng.sign();
        Self {
            cx,
            cy,
            radius,
            ax: bend * nx,
            ay: bend * ny,
            half_len: rng.range(0.35, 0.8) * sidef,
            taper: rng.range(0.08, 0.2) * sidef,
            half_width: rng.range(6.0, 12.0) * s,
            step: rng.chance(0.4),
            dx: shift * wave_dir.0,
            dy: shift * wave_dir.1,
            crease: rng.range(0.04, 0.08) * rng.sign(),
        }
    }

    /// (dx, dy, brightness change) at a centred pixel position.
    fn at(&self, x: f32, y: f32) -> (f32, f32, f32) {
        let (qx, qy) = (x - self.cx, y - self.cy);
        let dist = (qx * qx + qy * qy).sqrt();
        let along_cos = (qx * self.ax + qy * self.ay) / dist.max(1e-6);
        if along_cos <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        // Arc length from the arc's middle, via sin of the angle (monotonic on the
        // half circle we keep), so no atan2 is needed.
        let along_sin = (qx * self.ay - qy * self.ax) / dist.max(1e-6);
        let t = (along_sin * self.radius).abs();
        let env = 1.0 - smoothstep(self.half_len - self.taper, self.half_len, t);
        if env <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let d = (dist - self.radius) / self.half_width;
        // Profile across the band and its derivative (scaled to peak near 1), which
        // drives the faint lensing shade.
        let (profile, slope) = if self.step {
            let p = smoothstep(-1.0, 1.0, d);
            let u = (d.clamp(-1.0, 1.0) + 1.0) * 0.5;
            (p, 4.0 * u * (1.0 - u))
        } else {
            let w = (1.0 - d * d).max(0.0);
            (w * w, -2.6 * d * w)
        };
        let k = profile * env;
        (k * self.dx, k * self.dy, self.crease * slope * env)
    }
}

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

    // Reflected pattern: stripes, sampled at fold-displaced coordinates (the fold bends
    // the reflection; the surface texture and lighting stay put).
    let mut img = vec![0f32; side * side];
    for y in 0..side {
        let py = y as f32 - c;
        for x in 0..side {
            let px = x as f32 - c;
            let (dx, dy, crease) = match &fold {
                Some(f) => f.at(px - fold_offset.0, py - fold_offset.1),
                None => (0.0, 0.0, 0.0),
            };
            let (u, v) = (px + dx, py + dy);
            let mut p = stripes.at(u, v);
            if let Some(g) = &grid {
                p += g.at(u, v);
            }
            img[y * side + x] = p + crease;
        }
    }
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
    // Lighting: linear gradient plus an off-centre vignette or hotspot.
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

/// A dent: a closed shape pressed into the surface. Its height map (hard mask, blurred
/// into sloped walls) is shaded by its gradient along a light direction, which gives
/// the bright-rim-one-side, dark-other-side look of a depression under oblique light.
fn add_dent(img: &mut [f32], side: usize, s: f32, contrast: f32, rng: &mut Rng) {
    let a = rng.range(14.0, 24.0) * s;
    let b = a * rng.range(0.55, 1.0);
    let (ca, sa) = rng.direction();
    // 0: ellipse, 1: rounded rectangle (superellipse), 2: polygon of 3-6 sides.
    let kind = rng.int(0, 2);
    let sides = rng.int(3, 6);
    let poly_turn = rng.unit();
    let normals: Vec<(f32, f32)> = (0..sides)
        .map(|k| {
            let t = poly_turn + k as f32 / sides as f32;
            (cos_turns(t), sin_turns(t))
        })
        .collect();
    let apothem = cos_turns(0.5 / sides as f32);
    // Box-blur radius: small dents get thin walls, or the walls fill them and they
    // read as a blob.
    let wall_hi = if b < 8.0 * s { 1.2 } else { 2.2 };
    let wall = (rng.range(0.8, wall_hi) * s).round().max(1.0) as usize;
    let amp = rng.range(0.3, 0.5);
    let floor_shift = rng.range(-0.15, 0.15) * amp;
    // Dark outline all round (the imprint's edge scatters light away from the camera),
    // so the shape reads even where its walls are parallel to the light.
    let outline = rng.range(0.1, 0.3) * amp;
    let (lx, ly) = rng.direction();

    // Superellipse corners reach 1.19 a; the blur widens the walls by 2 * wall.
    let margin = 2 * wall + 3;
    let size = 2 * ((1.2 * a).ceil() as usize + margin) + 1;
    let size = size.min(side);
    let (x0, y0) = place(rng, side, size);
    let mid = (size as f32 - 1.0) * 0.5;

    let inside = |x: f32, y: f32| -> bool {
        let u = (x * ca + y * sa) / a;
        let v = (y * ca - x * sa) / b;
        match kind {
            0 => u * u + v * v <= 1.0,
            1 => {
                let (u2, v2) = (u * u, v * v);
                u2 * u2 + v2 * v2 <= 1.0
            }
            _ => normals.iter().all(|&(nx, ny)| u * nx + v * ny <= apothem),
        }
    };
    // 3x3 supersampled mask so small shapes keep smooth outlines.
    let mut h = vec![0f32; size * size];
    for j in 0..size {
        for i in 0..size {
            let mut n = 0u32;
            for sj in 0..3 {
                for si in 0..3 {
                    let x = i as f32 - mid + (si as f32 - 1.0) / 3.0;
                    let y = j as f32 - mid + (sj as f32 - 1.0) / 3.0;
                    n += inside(x, y) as u32;
                }
            }
            h[j * size + i] = n as f32 / 9.0;
        }
    }
    // Two box blurs ~ a Gaussian: sloped walls and rounded corners.
    for _ in 0..2 {
        box_blur(&mut h, size, wall);
    }
    // A blurred unit step has peak slope ~1/(2*wall+1) (central difference: twice
    // that); this scale makes the normalised wall slope peak near 1.
    let norm = 0.5 * (2 * wall + 1) as f32;
    for j in 1..size - 1 {
        for i in 1..size - 1 {
            let k = j * size + i;
            let gxv = norm * (h[k + 1] - h[k - 1]);
            let gyv = norm * (h[k + size] - h[k - size]);
            let slope = (gxv * gxv + gyv * gyv).sqrt();
            let shade = amp * (gxv * lx + gyv * ly) - outline * slope + floor_shift * h[k];
            img[(y0 + j) * side + x0 + i] += contrast * shade;
        }
    }
}

/// In-place separable box blur of radius r with clamped edges.
fn box_blur(h: &mut [f32], n: usize, r: usize) {
    let mut tmp = vec![0f32; n * n];
    let norm = 1.0 / (2 * r + 1) as f32;
    for j in 0..n {
        for i in 0..n {
            let mut acc = 0.0;
            for d in 0..=2 * r {
                let ii = (i + d).saturating_sub(r).min(n - 1);
                acc += h[j * n + ii];
            }
            tmp[j * n + i] = acc * norm;
        }
    }
    for j in 0..n {
        for i in 0..n {
            let mut acc = 0.0;
            for d in 0..=2 * r {
                let jj = (j + d).saturating_sub(r).min(n - 1);
                acc += tmp[jj * n + i];
            }
            h[j * n + i] = acc * norm;
        }
    }
}

/// A mold mark: an irregular blob (a few overlapping bumps, with a noisy threshold so
/// the outline is ragged), soft-edged, darker or brighter, mottled inside.
fn add_mold(img: &mut [f32], side: usize, s: f32, contrast: f32, rng: &mut Rng) {
    let r = rng.range(16.0, 28.0) * s;
    let blobs: Vec<(f32, f32, f32)> = (0..rng.int(2, 5))
        .map(|_| {
            let (dx, dy) = rng.direction();
            let off = rng.range(0.0, 0.55) * r;
            let rb = rng.range(0.5, 0.9) * r;
            (dx * off, dy * off, rb * rb)
        })
        .collect();
    let amp = rng.range(0.25, 0.45) * if rng.chance(0.7) { -1.0 } else { 1.0 };
    let soft = rng.range(0.05, 0.15);
    let ragged = rng.range(0.2, 0.5);
    // Blobs reach at most 0.55 r + 0.9 r from the centre.
    let span = (3.0 * r) as usize + 5;
    let edge = Lattice::new(rng, span, 0.35 * r, 0.35 * r);
    let inner = Lattice::new(rng, span, 2.0 * s, 2.0 * s);
    let inner_amp = rng.range(0.0, 0.35);

    let size = span.min(side);
    let (x0, y0) = place(rng, side, size);
    let mid = (size as f32 - 1.0) * 0.5;
    for j in 0..size {
        let y = j as f32 - mid;
        for i in 0..size {
            let x = i as f32 - mid;
            let f: f32 = blobs
                .iter()
                .map(|&(bx, by, r2)| bump((x - bx) * (x - bx) + (y - by) * (y - by), r2))
                .sum();
            if f <= 0.0 {
                continue;
            }
            let f = f + ragged * edge.at(x, y) * f.min(1.0);
            let alpha = smoothstep(0.2 - soft, 0.2 + soft, f);
            let shade = amp * alpha * (1.0 + inner_amp * inner.at(x, y));
            img[(y0 + j) * side + x0 + i] += contrast * shade;
        }
    }
}

/// A dust speck: a pixel or two, mostly dark.
fn add_speck(img: &mut [f32], side: usize, s: f32, contrast: f32, rng: &mut Rng) {
    let r = rng.range(0.6, 1.4) * s;
    let amp = rng.range(0.04, 0.15) * if rng.chance(0.8) { -1.0 } else { 1.0 };
    let size = ((2.0 * r) as usize + 3).min(side);
    let (x0, y0) = place(rng, side, size);
    let mid = (size as f32 - 1.0) * 0.5;
    let r2 = (r + 0.5) * (r + 0.5);
    for j in 0..size {
        for i in 0..size {
            let (x, y) = (i as f32 - mid, j as f32 - mid);
            img[(y0 + j) * side + x0 + i] += contrast * amp * bump(x * x + y * y, r2);
        }
    }
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
