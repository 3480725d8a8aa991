//! The defects drawn on a background: dent, fold, mold mark, and the dust specks every class
//! may carry.

use super::background::*;
use super::place;

/// A fold: inside a band along a circular arc the surface pattern is shifted along the
/// stripes' wave vector, so stripe lines crossing it bend or jump (a kink) while mean
/// brightness barely changes. Shifting along the wave vector, rather than along the
/// arc's normal, keeps the kink visible whatever the arc's orientation.
pub(super) struct Fold {
    /// Circle centre and radius (centred pixel coordinates).
    pub(super) cx: f32,
    pub(super) cy: f32,
    pub(super) radius: f32,
    /// Unit vector from the centre to the middle of the arc.
    pub(super) ax: f32,
    pub(super) ay: f32,
    pub(super) half_len: f32,
    pub(super) taper: f32,
    pub(super) half_width: f32,
    /// true: one side shifted relative to the other; false: shift only inside the band.
    pub(super) step: bool,
    /// Displacement vector at full strength (pixels).
    pub(super) dx: f32,
    pub(super) dy: f32,
    /// Faint brightness change where the surface bends (lensing), in grey fraction.
    pub(super) crease: f32,
}

impl Fold {
    pub(super) fn new(
        rng: &mut Rng,
        side: usize,
        s: f32,
        period: f32,
        wave_dir: (f32, f32),
    ) -> Self {
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
    pub(super) fn at(&self, x: f32, y: f32) -> (f32, f32, f32) {
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

/// A dent: a closed shape pressed into the surface. Its height map (hard mask, blurred
/// into sloped walls) is shaded by its gradient along a light direction, which gives
/// the bright-rim-one-side, dark-other-side look of a depression under oblique light.
pub(super) fn add_dent(img: &mut [f32], side: usize, s: f32, contrast: f32, rng: &mut Rng) {
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
pub(super) fn box_blur(h: &mut [f32], n: usize, r: usize) {
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
pub(super) fn add_mold(img: &mut [f32], side: usize, s: f32, contrast: f32, rng: &mut Rng) {
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
pub(super) fn add_speck(img: &mut [f32], side: usize, s: f32, contrast: f32, rng: &mut Rng) {
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
