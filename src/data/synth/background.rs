//! What every image shares: the per-image random stream, IEEE-exact sine and helpers, and the
//! nuisance backgrounds (surface mottling lattice, polishing streaks, structured-light stripes).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------
// Deterministic helpers
// ---------------------------------------------------------------------------------------

/// Per-image random stream. The key spells out (seed, class, index) in full, so no two
/// images share a stream and none depends on how many draws another made.
pub(super) struct Rng(ChaCha8Rng);

impl Rng {
    pub(super) fn for_image(seed: u64, class: usize, index: usize) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&(class as u64).to_le_bytes());
        key[16..24].copy_from_slice(&(index as u64).to_le_bytes());
        key[24..].copy_from_slice(b"glassyn1");
        Rng(ChaCha8Rng::from_seed(key))
    }

    /// Uniform in [0, 1) from 24 bits, exactly representable in f32.
    pub(super) fn unit(&mut self) -> f32 {
        (self.0.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    pub(super) fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in lo..=hi (multiply-shift; the tiny bias is irrelevant here).
    pub(super) fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + ((self.0.next_u32() as u64 * (hi - lo + 1) as u64) >> 32) as usize
    }

    pub(super) fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    pub(super) fn sign(&mut self) -> f32 {
        if self.chance(0.5) {
            1.0
        } else {
            -1.0
        }
    }

    /// Random unit vector.
    pub(super) fn direction(&mut self) -> (f32, f32) {
        let t = self.unit();
        (cos_turns(t), sin_turns(t))
    }

    /// Roughly standard normal: Irwin-Hall of the four bytes of one word (centred
    /// bins). Plenty for sensor noise of a few grey levels, at one 32-bit draw a pixel.
    pub(super) fn gauss(&mut self) -> f32 {
        let w = self.0.next_u32();
        let s = (w & 0xff) + ((w >> 8) & 0xff) + ((w >> 16) & 0xff) + (w >> 24);
        ((s as f32 + 2.0) * (1.0 / 256.0) - 2.0) * 1.732_050_8
    }
}

/// sin(2*pi*t) from + and * only, so it rounds the same everywhere (libm sin need not).
/// Abs error below 1e-6, far under one grey level.
pub(super) fn sin_turns(t: f32) -> f32 {
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
pub(super) fn floor(x: f32) -> f32 {
    let i = x as i32 as f32;
    if i > x {
        i - 1.0
    } else {
        i
    }
}

pub(super) fn cos_turns(t: f32) -> f32 {
    sin_turns(t + 0.25)
}

pub(super) fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Compact smooth bump: 1 at d2 = 0, 0 from d2 >= r2 on (no exp needed).
pub(super) fn bump(d2: f32, r2: f32) -> f32 {
    if d2 >= r2 {
        0.0
    } else {
        let u = 1.0 - d2 / r2;
        u * u * u
    }
}

/// Value noise: random values on a lattice, smooth bilinear in between. Coordinates are
/// centred pixels; beyond the frame values clamp.
pub(super) struct Lattice {
    pub(super) nx: usize,
    pub(super) ny: usize,
    pub(super) inv_cx: f32,
    pub(super) inv_cy: f32,
    pub(super) v: Vec<f32>,
}

impl Lattice {
    pub(super) fn new(rng: &mut Rng, side: usize, cell_x: f32, cell_y: f32) -> Self {
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
    pub(super) fn coord(x: f32, inv: f32, n: usize) -> (usize, f32) {
        let g = (x * inv + 0.5 * n as f32).clamp(0.0, (n - 2) as f32);
        // g >= 0, so truncation is floor (and avoids a libm call on baseline x86-64).
        let i = g as usize;
        let f = g - i as f32;
        (i, f * f * (3.0 - 2.0 * f))
    }

    pub(super) fn at(&self, x: f32, y: f32) -> f32 {
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
    pub(super) fn render(&self, side: usize, mut put: impl FnMut(usize, f32)) {
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
pub(super) struct Streaks {
    pub(super) dir: (f32, f32),
    pub(super) inv_cell: f32,
    pub(super) v: Vec<f32>,
}

impl Streaks {
    pub(super) fn new(rng: &mut Rng, side: usize, cell: f32, dir: (f32, f32)) -> Self {
        let n = (1.5 * side as f32 / cell) as usize + 4;
        Self {
            dir,
            inv_cell: 1.0 / cell,
            v: (0..n).map(|_| rng.range(-1.0, 1.0)).collect(),
        }
    }

    pub(super) fn at(&self, x: f32, y: f32) -> f32 {
        let across = y * self.dir.0 - x * self.dir.1;
        let (i, f) = Lattice::coord(across, self.inv_cell, self.v.len());
        self.v[i] + f * (self.v[i + 1] - self.v[i])
    }
}

// ---------------------------------------------------------------------------------------
// Scene
// ---------------------------------------------------------------------------------------

/// Samples per period in a stripe profile table.
pub(super) const STRIPE_LUT: usize = 512;

/// One set of parallel reflection stripes: amp * (sin(t) + h2 sin(2t + p2)) with
/// t = k . p + phase (in turns); a second harmonic makes them less perfectly sinusoidal.
/// One period is tabulated, since a lookup with linear interpolation costs far less
/// per pixel than two polynomial sines and errs by under 1e-4 of the amplitude.
pub(super) struct Stripes {
    pub(super) kx: f32,
    pub(super) ky: f32,
    pub(super) phase: f32,
    pub(super) lut: Vec<f32>,
}

impl Stripes {
    pub(super) fn new(rng: &mut Rng, period: f32, dir: (f32, f32), amp: f32) -> Self {
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

    pub(super) fn at(&self, x: f32, y: f32) -> f32 {
        let t = x * self.kx + y * self.ky + self.phase;
        let pos = (t - floor(t)) * STRIPE_LUT as f32;
        let i = (pos as usize).min(STRIPE_LUT - 1);
        let w = pos - i as f32;
        self.lut[i] + w * (self.lut[i + 1] - self.lut[i])
    }
}
