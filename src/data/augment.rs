//! Label-preserving augmentation of square images: flips and 90-degree rotations (the
//! dihedral group), for defect classes whose meaning does not depend on orientation.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// Images as they are.
    None,
    /// Horizontal and vertical flips.
    Flip,
    /// Flips and 90-degree rotations (8 orientations).
    Dihedral,
}

impl Augment {
    /// Orientations to draw from.
    pub fn variants(self) -> u32 {
        match self {
            Augment::None => 1,
            Augment::Flip => 4,
            Augment::Dihedral => 8,
        }
    }
}

/// Runs `f(dst_plane, src_plane)` on each `side x side` plane of an image `[planes, side,
/// side]` (grey has one plane, colour three): every plane moves the same way.
fn per_plane(dst: &mut [f32], src: &[f32], side: usize, mut f: impl FnMut(&mut [f32], &[f32])) {
    debug_assert_eq!(dst.len(), src.len());
    let plane = side * side;
    for (d, s) in dst.chunks_exact_mut(plane).zip(src.chunks_exact(plane)) {
        f(d, s);
    }
}

/// Writes orientation `t` (0..8: bit 0 flips x, bit 1 flips y, bit 2 transposes) of the
/// image `src` `[planes, side, side]` into `dst`.
pub fn orient(dst: &mut [f32], src: &[f32], side: usize, t: u32) {
    let (fx, fy, tr) = (t & 1 != 0, t & 2 != 0, t & 4 != 0);
    per_plane(dst, src, side, |dst, src| {
        for y in 0..side {
            for x in 0..side {
                let (mut sx, mut sy) = if tr { (y, x) } else { (x, y) };
                if fx {
                    sx = side - 1 - sx;
                }
                if fy {
                    sy = side - 1 - sy;
                }
                dst[y * side + x] = src[sy * side + sx];
            }
        }
    });
}

/// Jitter on top of the orientations, each part off at 0: a new line's lighting (brightness,
/// contrast, gamma) and framing (a shift) differ from the line the training images came from.
/// Applied to the network input (grey in [-1, 1]) after the orientation; recorded in the
/// model's training settings. Random numbers are drawn only for the parts that are on, so
/// a run without jitter draws exactly what it drew before jitter existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Jitter {
    /// Adds U(-b, b) to the grey level in [0, 1].
    pub brightness: f32,
    /// Scales the grey level about the image's mean by U(1 - c, 1 + c).
    pub contrast: f32,
    /// Raises the grey level in [0, 1] to exp(U(-g, g)).
    pub gamma: f32,
    /// Shifts the image by up to this fraction of its side in x and in y, mirroring the
    /// edge, so no new border appears.
    pub shift: f32,
    /// Rotates the image by up to this many degrees either way about its centre (bilinear,
    /// edge mirrored as for the shift): parts placed a little askew. Models saved before it
    /// read 0.
    #[serde(default)]
    pub rotate: f32,
    /// Random resized crop: a square window of U(1 - s, 1) of the side, anywhere inside the
    /// image, stretched back to the whole side (bilinear): defects seen at other sizes and
    /// cut by the frame, as a new line's optics and framing show them. Models saved before
    /// it read 0.
    #[serde(default)]
    pub scale: f32,
}

impl Jitter {
    pub fn is_off(&self) -> bool {
        *self == Jitter::default()
    }

    /// The parts that are on, e.g. "brightness 0.1, shift 0.1".
    pub fn describe(&self) -> String {
        [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("gamma", self.gamma),
            ("shift", self.shift),
            ("rotate", self.rotate),
            ("scale", self.scale),
        ]
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(n, v)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Checks each part: finite, at least 0 and at most its bound (a brightness of 0.5 or a
    /// shift of half the side already replaces most of what the image shows).
    pub fn check(&self) -> Result<(), String> {
        for (name, v, most) in [
            ("brightness", self.brightness, 0.5),
            ("contrast", self.contrast, 0.9),
            ("gamma", self.gamma, 1.0),
            ("shift", self.shift, 0.5),
            ("rotate", self.rotate, 45.0),
            ("scale", self.scale, 0.5),
        ] {
            if !(v.is_finite() && (0.0..=most).contains(&v)) {
                return Err(format!("--jitter-{name} {v}: a number in [0, {most}]"));
            }
        }
        Ok(())
    }

    /// Jitters `img` `[planes, side, side]` (in [-1, 1]) in place, every plane by the same
    /// draws; `scratch` is reused.
    pub fn apply(
        &self,
        img: &mut [f32],
        side: usize,
        scratch: &mut Vec<f32>,
        rng: &mut impl rand::Rng,
    ) {
        if self.scale > 0.0 {
            let frac = rng.random_range(1.0 - self.scale..=1.0);
            let room = (1.0 - frac) * side as f32;
            let (x0, y0) = (rng.random_range(0.0..=room), rng.random_range(0.0..=room));
            scratch.clear();
            scratch.extend_from_slice(img);
            per_plane(img, scratch, side, |d, s| {
                resized_crop(d, s, side, frac, (x0, y0))
            });
        }
        if self.rotate > 0.0 {
            let deg = rng.random_range(-self.rotate..=self.rotate);
            scratch.clear();
            scratch.extend_from_slice(img);
            per_plane(img, scratch, side, |d, s| rotate(d, s, side, deg));
        }
        if self.shift > 0.0 {
            let most = (self.shift * side as f32).floor() as i64;
            let dx = rng.random_range(-most..=most);
            let dy = rng.random_range(-most..=most);
            scratch.clear();
            scratch.extend_from_slice(img);
            per_plane(img, scratch, side, |d, s| shift(d, s, side, dx, dy));
        }
        let gamma = (self.gamma > 0.0).then(|| rng.random_range(-self.gamma..=self.gamma).exp());
        let contrast =
            (self.contrast > 0.0).then(|| 1.0 + rng.random_range(-self.contrast..=self.contrast));
        let brightness =
            (self.brightness > 0.0).then(|| rng.random_range(-self.brightness..=self.brightness));
        photometric(img, gamma, contrast, brightness);
    }
}

/// In place on grey `img` in [-1, 1]: u = (x + 1) / 2, then u^gamma, then (u - mean) *
/// contrast + mean, then + brightness, clamped to [0, 1] and mapped back.
pub fn photometric(
    img: &mut [f32],
    gamma: Option<f32>,
    contrast: Option<f32>,
    brightness: Option<f32>,
) {
    if gamma.is_none() && contrast.is_none() && brightness.is_none() {
        return;
    }
    for v in img.iter_mut() {
        let u = ((*v + 1.0) * 0.5).clamp(0.0, 1.0);
        *v = gamma.map_or(u, |g| u.powf(g));
    }
    if let Some(c) = contrast {
        let mean = img.iter().sum::<f32>() / img.len().max(1) as f32;
        for v in img.iter_mut() {
            *v = (*v - mean) * c + mean;
        }
    }
    let b = brightness.unwrap_or(0.0);
    for v in img.iter_mut() {
        *v = (*v + b).clamp(0.0, 1.0) * 2.0 - 1.0;
    }
}

/// Index `i` mirrored into 0..n (symmetric: the border pixel repeats once; period 2n).
fn mirror(i: i64, n: i64) -> usize {
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// dst `[side, side]` = src rotated by `deg` degrees (counter-clockwise on screen, y down)
/// about the image centre, sampled bilinearly; positions outside mirror back inside.
pub fn rotate(dst: &mut [f32], src: &[f32], side: usize, deg: f32) {
    let (sin, cos) = deg.to_radians().sin_cos();
    let (c, n) = ((side as f32 - 1.0) / 2.0, side as i64);
    let at = |x: i64, y: i64| src[mirror(y, n) * side + mirror(x, n)];
    for y in 0..side {
        for x in 0..side {
            // The inverse rotation of the output position gives the source position.
            let (u, v) = (x as f32 - c, y as f32 - c);
            let (sx, sy) = (cos * u - sin * v + c, sin * u + cos * v + c);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
            let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
            dst[y * side + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
}

/// dst `[side, side]` = the window of src `[side, side]` with its top-left corner at
/// `(x0, y0)` and a side of `frac` of the image's, stretched over the whole side: output
/// pixel centre x samples x0 + (x + 0.5) * frac - 0.5, bilinearly, clamped to the image.
pub fn resized_crop(dst: &mut [f32], src: &[f32], side: usize, frac: f32, (x0, y0): (f32, f32)) {
    let last = side as f32 - 1.0;
    let at = |o: f32, i: usize| (o + (i as f32 + 0.5) * frac - 0.5).clamp(0.0, last);
    for y in 0..side {
        let sy = at(y0, y);
        let (r0, fy) = (sy.floor() as usize, sy - sy.floor());
        let r1 = (r0 + 1).min(side - 1);
        for x in 0..side {
            let sx = at(x0, x);
            let (c0, fx) = (sx.floor() as usize, sx - sx.floor());
            let c1 = (c0 + 1).min(side - 1);
            let row = |r: usize| src[r * side + c0] * (1.0 - fx) + src[r * side + c1] * fx;
            dst[y * side + x] = row(r0) * (1.0 - fy) + row(r1) * fy;
        }
    }
}

/// dst `[side, side]` = src moved by (dx, dy) pixels, the edge mirrored (symmetric: the
/// border pixel repeats once) where the image has moved away.
pub fn shift(dst: &mut [f32], src: &[f32], side: usize, dx: i64, dy: i64) {
    let n = side as i64;
    let mirror = |i: i64| mirror(i, n);
    for y in 0..side {
        let sy = mirror(y as i64 - dy);
        for x in 0..side {
            dst[y * side + x] = src[sy * side + mirror(x as i64 - dx)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ramp(side: usize) -> Vec<f32> {
        (0..side * side)
            .map(|i| (i as f32 / (side * side - 1) as f32) * 1.6 - 0.8)
            .collect()
    }

    #[test]
    fn off_is_the_identity_and_draws_nothing() {
        let (mut img, mut scratch) = (ramp(9), Vec::new());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let before = rng.clone();
        Jitter::default().apply(&mut img, 9, &mut scratch, &mut rng);
        assert_eq!(img, ramp(9));
        assert_eq!(rng, before, "no draw when every part is off");
    }

    /// A colour image's planes move together: each comes out as that plane alone would,
    /// under the same orientation and the same jitter draws.
    /// Every part of the jitter on, each at a moderate setting.
    fn every_part_on() -> Jitter {
        Jitter {
            brightness: 0.1,
            contrast: 0.2,
            gamma: 0.3,
            shift: 0.2,
            rotate: 10.0,
            scale: 0.3,
        }
    }

    #[test]
    fn every_plane_of_a_colour_image_moves_the_same_way() {
        let side = 11;
        let planes: Vec<Vec<f32>> = (0..3)
            .map(|k| {
                (0..side * side)
                    .map(|i| ((i * (7 + 4 * k) + 3 * k) % 17) as f32 / 17.0 - 0.5)
                    .collect()
            })
            .collect();
        let colour = planes.concat();
        for t in 0..8 {
            let mut out = vec![0.0; colour.len()];
            orient(&mut out, &colour, side, t);
            for (k, p) in planes.iter().enumerate() {
                let mut one = vec![0.0; p.len()];
                orient(&mut one, p, side, t);
                assert_eq!(
                    out[k * side * side..(k + 1) * side * side],
                    one[..],
                    "t {t}"
                );
            }
        }
        let j = every_part_on();
        let mut s = Vec::new();
        let mut out = colour.clone();
        j.apply(&mut out, side, &mut s, &mut ChaCha8Rng::seed_from_u64(9));
        // Geometry per plane: the photometric contrast uses the whole image's mean, so each
        // plane is checked with that part off.
        let geometric = Jitter {
            brightness: 0.0,
            contrast: 0.0,
            gamma: 0.0,
            ..j
        };
        let mut whole = colour.clone();
        geometric.apply(&mut whole, side, &mut s, &mut ChaCha8Rng::seed_from_u64(9));
        for (k, p) in planes.iter().enumerate() {
            let mut one = p.clone();
            geometric.apply(&mut one, side, &mut s, &mut ChaCha8Rng::seed_from_u64(9));
            assert_eq!(
                whole[k * side * side..(k + 1) * side * side],
                one[..],
                "plane {k}"
            );
        }
        assert_ne!(out, whole, "the photometric part acted");
    }

    #[test]
    fn shift_moves_the_image_and_mirrors_the_edge() {
        let side = 5;
        let src: Vec<f32> = (0..25).map(|i| i as f32).collect();
        let mut dst = vec![0.0; 25];
        shift(&mut dst, &src, side, 2, -1);
        // Pixel (x, y) comes from (x - 2, y + 1), mirrored at the edges.
        assert_eq!(dst[2 * 5 + 3], src[3 * 5 + 1]);
        assert_eq!(dst[5 + 1], src[2 * 5]); // x - 2 = -1 mirrors to 0
        assert_eq!(dst[4 * 5 + 4], src[4 * 5 + 2]); // y + 1 = 5 mirrors to 4
        shift(&mut dst, &src, side, 0, 0);
        assert_eq!(dst, src);
    }

    #[test]
    fn rotate_by_0_is_the_identity_by_90_a_transpose_and_keeps_a_flat_image_flat() {
        let side = 7;
        let src: Vec<f32> = (0..side * side).map(|i| (i * 37 % 11) as f32).collect();
        let mut dst = vec![0.0; side * side];
        rotate(&mut dst, &src, side, 0.0);
        assert_eq!(dst, src);
        // 90 degrees: output (x, y) reads source (c - (y - c), x) = (side - 1 - y, x).
        rotate(&mut dst, &src, side, 90.0);
        for y in 0..side {
            for x in 0..side {
                let want = src[x * side + (side - 1 - y)];
                assert!((dst[y * side + x] - want).abs() < 1e-3, "({x}, {y})");
            }
        }
        // Any angle: bilinear weights sum to one and mirroring adds no border.
        let flat = vec![0.25f32; side * side];
        rotate(&mut dst, &flat, side, 17.0);
        assert!(dst.iter().all(|v| (v - 0.25).abs() < 1e-6));
        // A small angle moves a ramp a little, and only a little.
        let r = ramp(side);
        rotate(&mut dst, &r, side, 3.0);
        let moved = dst
            .iter()
            .zip(&r)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(moved > 1e-3 && moved < 0.2, "{moved}");
    }

    #[test]
    fn resized_crop_of_the_whole_is_the_identity_and_a_half_window_zooms_in() {
        let side = 8;
        let src: Vec<f32> = (0..side * side).map(|i| (i * 29 % 13) as f32).collect();
        let mut dst = vec![0.0; side * side];
        resized_crop(&mut dst, &src, side, 1.0, (0.0, 0.0));
        assert_eq!(dst, src);
        // The top-left half window: output (2x + 1, 2y + 1) sits on source pixel (x + 0.25
        // .. ), between source pixels x and x + 1 with weights 0.75 / 0.25 on a ramp in x.
        let ramp_x: Vec<f32> = (0..side * side).map(|i| (i % side) as f32).collect();
        resized_crop(&mut dst, &ramp_x, side, 0.5, (0.0, 0.0));
        for y in 0..side {
            for x in 0..side {
                let want = ((x as f32 + 0.5) * 0.5 - 0.5).max(0.0);
                assert!((dst[y * side + x] - want).abs() < 1e-5, "({x}, {y})");
            }
        }
        // A window at the far corner reads only the far part of the image.
        resized_crop(&mut dst, &ramp_x, side, 0.5, (4.0, 4.0));
        assert!(dst.iter().all(|&v| v >= 3.5), "{dst:?}");
        // A flat image stays flat whatever the window.
        let flat = vec![0.3f32; side * side];
        resized_crop(&mut dst, &flat, side, 0.63, (1.7, 0.4));
        assert!(dst.iter().all(|v| (v - 0.3).abs() < 1e-6));
    }

    #[test]
    fn photometric_parts_do_what_they_say_and_stay_in_range() {
        let base = ramp(8);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let mut b = base.clone();
        photometric(&mut b, None, None, Some(0.1));
        assert!(
            (mean(&b) - mean(&base) - 0.2).abs() < 1e-4,
            "+0.1 grey is +0.2 input"
        );
        let mut c = base.clone();
        photometric(&mut c, None, Some(0.5), None);
        let spread = |v: &[f32]| {
            v.iter().fold(f32::MIN, |a, &x| a.max(x)) - v.iter().fold(f32::MAX, |a, &x| a.min(x))
        };
        assert!((spread(&c) - 0.5 * spread(&base)).abs() < 1e-4);
        let mut g = base.clone();
        photometric(&mut g, Some(2.0), None, None);
        assert!(
            g.iter().zip(&base).all(|(a, b)| a <= b),
            "gamma > 1 darkens"
        );
        let mut all = base.clone();
        photometric(&mut all, Some(0.3), Some(1.9), Some(0.5));
        assert!(all.iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn jitter_draws_depend_only_on_the_seed() {
        let j = every_part_on();
        let run = |seed| {
            let (mut img, mut s) = (ramp(10), Vec::new());
            j.apply(&mut img, 10, &mut s, &mut ChaCha8Rng::seed_from_u64(seed));
            img
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        assert_ne!(run(5), ramp(10));
        assert!(j.check().is_ok());
        assert!(Jitter { gamma: -0.1, ..j }
            .check()
            .unwrap_err()
            .contains("--jitter-gamma"));
        assert!(Jitter {
            shift: f32::NAN,
            ..j
        }
        .check()
        .is_err());
        assert!(Jitter { rotate: 46.0, ..j }
            .check()
            .unwrap_err()
            .contains("--jitter-rotate"));
        assert!(Jitter { scale: 0.6, ..j }
            .check()
            .unwrap_err()
            .contains("--jitter-scale"));
        // Scale alone moves the image too, and each part draws only when it is on.
        let only_scale = Jitter {
            scale: 0.3,
            ..Jitter::default()
        };
        let (mut img, mut s) = (ramp(10), Vec::new());
        only_scale.apply(&mut img, 10, &mut s, &mut ChaCha8Rng::seed_from_u64(5));
        assert_ne!(img, ramp(10));
    }
}
