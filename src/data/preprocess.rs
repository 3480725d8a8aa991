//! What turns a decoded image into the network's input, in the paper's order (its Fig. 4 and
//! Table 3): region-of-interest crop -> denoise -> contrast normalisation -> optional
//! segmentation mask -> resize to `side x side` -> scale to [-1, 1]. Every step and parameter
//! is recorded in the model's metadata and applied identically by train, evaluate and
//! predict. Image processing comes from imageproc (filters, Otsu, connected components).
//!
//! The crop looks for what stands out from the surface rather than for bright or dark
//! pixels: the image minus a heavily blurred copy of itself (the lighting), its magnitude
//! averaged over a few pixels (so periodic texture such as reflected stripes becomes an
//! even level), at frame-relative scales and at a fixed fine one (small defects in large
//! frames), and, where the surface has a dominant pattern orientation (reflected
//! stripes), how far the local orientation turns away from it (a fold or distortion shifts
//! the stripes with hardly any change of grey level); then an Otsu threshold of that map. The largest region above it, with a
//! margin, is the crop; when no region stands out clearly, or the region covers most of the
//! frame, the whole image is used.

use image::{GrayImage, ImageBuffer, Luma};
use imageproc::region_labelling::{connected_components, Connectivity};
use serde::{Deserialize, Serialize};

use super::colour::{to_input, Colour, Picture};
use super::fit::{fit_pad, Fit};

/// A grey image with values in [0, 1].
pub type GreyF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Region-of-interest crop settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Crop {
    /// Margin added on every side, as a fraction of the region's larger side.
    pub margin: f32,
    /// Smallest crop side as a fraction of the frame's smaller side (keeps context around a
    /// tiny spot and bounds the zoom).
    pub min_fraction: f32,
    /// How far the region's mean must rise above the frame's typical level, in robust
    /// standard deviations of the map, to count as standing out.
    pub min_contrast: f32,
    /// The local turn of the surface pattern's orientation (1 - cos 2 phi for a coherent
    /// pattern turned by phi; 0.25 is about 20 degrees) that stands out as much as
    /// `min_contrast`; 0 disables the pattern channel (older models).
    #[serde(default)]
    pub turn_level: f32,
    /// Lighting scale (Gaussian sigma, pixels) of the fixed fine channel that finds small
    /// defects in large frames, beside the frame-relative one; 0 disables it (models saved
    /// before it existed).
    #[serde(default)]
    pub fine_scale: f32,
    /// Smallest crop side in pixels (0: none). At the network's input side a crop is never
    /// enlarged: upsampling adds no detail and would show each defect at a different scale
    /// (a small region in a small frame zoomed most), so the crop keeps the frame's own
    /// pixel scale unless the region needs a larger window.
    #[serde(default)]
    pub min_pixels: u32,
    /// With the pattern channels (`turn_level` > 0): the grey-level channel again on the
    /// image with the stripes blurred out (faint creases under bright stripes); false for
    /// models saved before it existed, so they replay the crop they were trained with.
    #[serde(default)]
    pub stripe_free: bool,
}

impl Default for Crop {
    fn default() -> Self {
        Crop {
            margin: 0.25,
            min_fraction: 0.2,
            min_contrast: 4.0,
            turn_level: 0.25,
            fine_scale: 8.0,
            min_pixels: 112,
            stripe_free: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Denoise {
    #[default]
    None,
    /// 3x3 median (removes salt-and-pepper and dust while keeping edges).
    Median,
    /// Gaussian blur, sigma 1 pixel.
    Gaussian,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Contrast {
    #[default]
    None,
    /// Linear stretch of the 1st..99th percentile to the full range.
    Stretch,
    /// Histogram equalisation.
    Equalize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Output side in pixels.
    pub side: usize,
    /// Region-of-interest crop; None = the whole image.
    #[serde(default)]
    pub crop: Option<Crop>,
    #[serde(default)]
    pub denoise: Denoise,
    #[serde(default)]
    pub contrast: Contrast,
    /// Replace what lies outside the detected region (dilated) by the surface's median grey.
    #[serde(default)]
    pub segment: bool,
    /// The last step, to the square input (stretch for models saved before it existed).
    #[serde(default)]
    pub fit: Fit,
    /// Grey for models saved before colour existed.
    #[serde(default)]
    pub colour: Colour,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            side: 112,
            crop: None,
            denoise: Denoise::None,
            contrast: Contrast::None,
            segment: false,
            fit: Fit::Stretch,
            colour: Colour::Grey,
        }
    }
}

/// A rectangle in pixels: left, top, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn contains(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.x + other.w <= self.x + self.w
            && other.y + other.h <= self.y + self.h
    }
}

/// Where the region of interest is, if anything stands out.
#[derive(Clone, Debug, PartialEq)]
pub struct Roi {
    /// Bounding box of the region itself (no margin).
    pub region: Rect,
    /// Its pixels, as a mask over the whole frame (255 inside).
    pub mask: GrayImage,
}

/// 8-bit copy of a [0, 1] image (rounded, clamped).
pub fn to_u8(img: &GreyF32) -> GrayImage {
    let (w, h) = img.dimensions();
    GrayImage::from_fn(w, h, |x, y| {
        Luma([(img.get_pixel(x, y)[0].clamp(0.0, 1.0) * 255.0 + 0.5) as u8])
    })
}

fn to_f32(img: &GrayImage) -> GreyF32 {
    let (w, h) = img.dimensions();
    GreyF32::from_fn(w, h, |x, y| Luma([img.get_pixel(x, y)[0] as f32 / 255.0]))
}

/// The "stands out from the surface" map, in robust standard scores: per pixel the larger of
/// two channels.
/// - Intensity: |image - lighting| averaged locally (spots, dents, blobs), scored against
///   the frame's median and spread.
/// - Pattern: how far the local gradient orientation turns away from the frame's dominant
///   one, weighted by how coherent it is (a fold bends or shifts the reflected stripes while
///   the grey level barely changes), scaled so that `turn_level` scores `min_contrast`; and
///   the intensity channel again with the stripes smoothed out. Used only where the frame
///   has a dominant orientation.
pub(crate) fn saliency(img: &GreyF32, crop: &Crop) -> GreyF32 {
    let mut map = standard_scores(spot_saliency(img));
    // The same at a fixed fine scale: a defect of a few tens of pixels in a large frame is
    // averaged away at the frame-relative scale, and broad stripes left in its residual
    // drown it; against an 8-pixel lighting it stands out.
    if crop.fine_scale > 0.0 {
        let fine = standard_scores(spot_at(img, crop.fine_scale, crop.fine_scale / 4.0));
        for (m, f) in map.iter_mut().zip(fine.iter()) {
            *m = m.max(*f);
        }
    }
    if crop.turn_level > 0.0 {
        // Most of a frame does not turn at all (median and spread 0), so the pattern channel is
        // put on the same scale by its absolute level instead: turn_level -> min_contrast.
        if let Some((turn, shift, period)) = pattern_change(img) {
            let scale = crop.min_contrast / crop.turn_level;
            for ((m, t), d) in map.iter_mut().zip(turn.iter()).zip(shift.iter()) {
                *m = m.max(t.max(*d) * scale);
            }
            if crop.stripe_free {
                let calm = calm_saliency(img, period, crop.min_contrast);
                for (m, c) in map.iter_mut().zip(calm.iter()) {
                    *m = m.max(*c);
                }
            }
        }
    }
    map
}

/// The intensity channel with the stripes smoothed out (a blur of half their period leaves
/// under 1% of them): a broad, faint mark under bright stripes, such as a fold's crease, is
/// lost in the stripes' own residual at full resolution. With the stripes gone the map's
/// spread can be tiny, so a mark must also differ by a grey level (1/255, averaged) to reach
/// `min_contrast`; along the edges, where the blur cannot average the stripes out, it is
/// left at the typical level.
fn calm_saliency(img: &GreyF32, period: f32, min_contrast: f32) -> GreyF32 {
    let (w, h) = img.dimensions();
    let big = w.max(h) as f32;
    let average = (big / 64.0).max(2.0);
    let calm = smooth(img, 0.5 * period);
    let mut map = spot_at(&calm, (big / 12.0).max(2.0), average);
    let (med, mad) = median_mad(map.as_raw());
    let spread = (1.4826 * mad).max(1.0 / 255.0 / min_contrast);
    let band = period + 2.0 * average;
    for (x, y, v) in map.enumerate_pixels_mut() {
        let (x, y) = (x as f32, y as f32);
        let inside = x.min(y).min(w as f32 - 1.0 - x).min(h as f32 - 1.0 - y) >= band;
        v[0] = if inside { (v[0] - med) / spread } else { 0.0 };
    }
    map
}

/// |image - lighting| averaged locally: the intensity channel of `saliency` (and the map the
/// rule features measure their region in).
pub(crate) fn spot_saliency(img: &GreyF32) -> GreyF32 {
    let big = img.width().max(img.height()) as f32;
    spot_at(img, (big / 12.0).max(2.0), (big / 64.0).max(2.0))
}

/// |image - its blur at `lighting`| blurred at `average`.
fn spot_at(img: &GreyF32, lighting: f32, average: f32) -> GreyF32 {
    let (w, h) = img.dimensions();
    let lighting = smooth(img, lighting);
    let diff = GreyF32::from_fn(w, h, |x, y| {
        Luma([(img.get_pixel(x, y)[0] - lighting.get_pixel(x, y)[0]).abs()])
    });
    smooth(&diff, average)
}

/// Gaussian blur. A wide one (sigma above 8 px) runs on a copy shrunk so that sigma is about
/// 4 of its pixels, then enlarged back: what such a blur keeps is smooth enough for that,
/// and the cost falls with the square of the shrink (the frame-relative lighting and phase
/// blurs of a 640 px frame, sigma 53-80 px, took most of the crop's time).
fn smooth(img: &GreyF32, sigma: f32) -> GreyF32 {
    use image::imageops::{resize, FilterType};
    if sigma <= 8.0 {
        return imageproc::filter::gaussian_blur_f32(img, sigma);
    }
    let f = (sigma / 4.0).floor();
    let fu = f as u32;
    let (w, h) = img.dimensions();
    // Edges are repeated outwards by three sigma as the direct blur does, rounded so the
    // padded frame is a whole number of shrunk pixels; `resize` clamps f32 pixels to
    // [0, 1] and the maps blurred here are signed, so the values travel mapped into [0, 1]
    // (blurring commutes with that linear map).
    let pad = (3.0 * sigma).ceil() as u32 / fu * fu + fu;
    let (pw, ph) = (
        (w + 2 * pad).div_ceil(fu) * fu,
        (h + 2 * pad).div_ceil(fu) * fu,
    );
    let (lo, hi) = img
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = (hi - lo).max(f32::MIN_POSITIVE);
    let padded = GreyF32::from_fn(pw, ph, |x, y| {
        let (sx, sy) = (
            x.saturating_sub(pad).min(w - 1),
            y.saturating_sub(pad).min(h - 1),
        );
        Luma([(img.get_pixel(sx, sy)[0] - lo) / span])
    });
    let small = resize(&padded, pw / fu, ph / fu, FilterType::Triangle);
    // The shrink's and the enlargement's triangle filters (variance about f^2 / 6 source
    // pixels each) are part of the blur.
    let rest = (sigma * sigma - f * f / 3.0).sqrt() / f;
    let big = resize(
        &imageproc::filter::gaussian_blur_f32(&small, rest),
        pw,
        ph,
        FilterType::Triangle,
    );
    GreyF32::from_fn(w, h, |x, y| {
        Luma([lo + big.get_pixel(x + pad, y + pad)[0] * span])
    })
}

/// (v - median) / (1.4826 MAD) per pixel.
fn standard_scores(mut map: GreyF32) -> GreyF32 {
    let (med, mad) = median_mad(map.as_raw());
    let spread = (1.4826 * mad).max(1e-6);
    for v in map.iter_mut() {
        *v = (*v - med) / spread;
    }
    map
}

/// Where the frame's dominant pattern (reflected stripes) changes, as two maps in [0, 2]:
/// - turn: how far the local gradient orientation turns away from the frame's dominant one,
///   from the smoothed structure tensor (Sobel gradients): (|t| - t . u) / trace, t the
///   tensor's doubled-angle vector and u the frame's mean direction (1 - cos 2 phi for a
///   coherent pattern turned by phi);
/// - shift: how far the stripes' local phase departs from the frame's smooth phase, as
///   2 |dphi| / pi (0.25: a shift of 1/16 period; the "pixel-shift analysis" of the paper's
///   Table 1): the image
///   is demodulated at the stripes' own frequency (found along the dominant direction) and
///   the phase of the locally averaged result compared with a widely averaged one, weighted
///   by how strong the stripes are there.
///
/// Also the stripes' period (pixels). None when the frame has no dominant orientation
/// (coherence of the summed tensor below 0.2).
fn pattern_change(img: &GreyF32) -> Option<(GreyF32, GreyF32, f32)> {
    let (w, h) = img.dimensions();
    let big = w.max(h) as f32;
    let (turn, (ux, uy)) = stripe_turn(img)?;

    // The stripes: the residual from the lighting, along the dominant gradient direction.
    let lighting = blur_at_least_1(img, big / 12.0);
    let res = GreyF32::from_fn(w, h, |x, y| {
        Luma([img.get_pixel(x, y)[0] - lighting.get_pixel(x, y)[0]])
    });
    let theta = 0.5 * uy.atan2(ux);
    let normal = (theta.cos(), theta.sin());
    let period = stripe_period(&res, normal);
    let shift = stripe_shift(&res, normal, period);
    Some((turn, blur_at_least_1(&shift, big / 64.0), period))
}

/// A Gaussian blur of at least one pixel's sigma.
fn blur_at_least_1(m: &GreyF32, sigma: f32) -> GreyF32 {
    smooth(m, sigma.max(1.0))
}

/// Where the stripes turn: the structure tensor's local direction against the dominant one,
/// with that dominant direction as (cos, sin) of the doubled angle; None when the image has
/// no dominant direction (not striped).
fn stripe_turn(img: &GreyF32) -> Option<(GreyF32, (f32, f32))> {
    let (w, h) = img.dimensions();
    let big = w.max(h) as f32;
    let blur = blur_at_least_1;
    let u8img = to_u8(img);
    let gx = imageproc::gradients::horizontal_sobel(&u8img);
    let gy = imageproc::gradients::vertical_sobel(&u8img);
    let field = |f: &dyn Fn(f32, f32) -> f32| {
        let m = GreyF32::from_fn(w, h, |x, y| {
            Luma([f(
                gx.get_pixel(x, y)[0] as f32,
                gy.get_pixel(x, y)[0] as f32,
            )])
        });
        blur(&m, (big / 96.0).max(2.5))
    };
    let (jc, js, je) = (
        field(&|a, b| a * a - b * b),
        field(&|a, b| 2.0 * a * b),
        field(&|a, b| a * a + b * b),
    );
    let (sc, ss, se) = jc
        .iter()
        .zip(js.iter())
        .zip(je.iter())
        .fold((0.0f64, 0.0f64, 0.0f64), |(c, s, e), ((a, b), t)| {
            (c + *a as f64, s + *b as f64, e + *t as f64)
        });
    let norm = (sc * sc + ss * ss).sqrt();
    if se <= 0.0 || norm / se < 0.2 {
        return None;
    }
    let (ux, uy) = ((sc / norm) as f32, (ss / norm) as f32);
    let turn = GreyF32::from_fn(w, h, |x, y| {
        let (c, s, e) = (
            jc.get_pixel(x, y)[0],
            js.get_pixel(x, y)[0],
            je.get_pixel(x, y)[0],
        );
        Luma([((c * c + s * s).sqrt() - (c * ux + s * uy)) / e.max(1e-6)])
    });
    Some((blur(&turn, big / 64.0), (ux, uy)))
}

/// Position along the stripes' normal (nx, ny).
fn along((nx, ny): (f32, f32), x: u32, y: u32) -> f32 {
    x as f32 * nx + y as f32 * ny
}

/// The stripes' period in pixels: the strongest frequency of a Fourier sum of the residual's
/// profile along the normal (means over half-pixel bins), on a grid finer than the peak's
/// width (half a cycle over the frame), then refined in sixteenths of the grid step.
fn stripe_period(res: &GreyF32, normal: (f32, f32)) -> f32 {
    let (w, h) = res.dimensions();
    let big = w.max(h) as f32;
    let along = |x: u32, y: u32| along(normal, x, y);
    let corners = [
        along(0, 0),
        along(w - 1, 0),
        along(0, h - 1),
        along(w - 1, h - 1),
    ];
    let t0 = corners.iter().copied().fold(f32::INFINITY, f32::min);
    let span = corners.iter().copied().fold(f32::NEG_INFINITY, f32::max) - t0;
    let bins = (2.0 * span) as usize + 1;
    let (mut sum, mut count) = (vec![0.0f32; bins], vec![0u32; bins]);
    for (x, y, v) in res.enumerate_pixels() {
        let k = (2.0 * (along(x, y) - t0)) as usize;
        sum[k.min(bins - 1)] += v[0];
        count[k.min(bins - 1)] += 1;
    }
    let profile: Vec<(f32, f32)> = (0..bins)
        .filter(|&k| count[k] > 0)
        .map(|k| (k as f32 * 0.5, sum[k] / count[k] as f32))
        .collect();
    let strength = |f: f32| {
        let (re, im) = profile.iter().fold((0.0f32, 0.0f32), |(re, im), &(t, v)| {
            let a = std::f32::consts::TAU * f * t;
            (re + v * a.cos(), im - v * a.sin())
        });
        re * re + im * im
    };
    let strongest = |fs: &mut dyn Iterator<Item = f32>| {
        fs.map(|f| (strength(f), f))
            .fold((-1.0f32, 0.25f32), |b, c| if c.0 > b.0 { c } else { b })
    };
    let step = 0.5 / span.max(1.0);
    let (lo, hi) = (1.0 / (big / 4.0).clamp(4.0, 48.0), 0.25f32);
    let coarse = strongest(&mut (0..=((hi - lo) / step) as usize).map(|i| lo + i as f32 * step));
    let fine = strongest(&mut (-8..=8).map(|i| coarse.1 + i as f32 * step / 16.0));
    1.0 / fine.1
}

/// The stripes' local phase against the wide phase, in half periods, weighted by how clear
/// the stripes are there.
fn stripe_shift(res: &GreyF32, normal: (f32, f32), period: f32) -> GreyF32 {
    let (w, h) = res.dimensions();
    let big = w.max(h) as f32;
    let blur = blur_at_least_1;
    let along = |x: u32, y: u32| along(normal, x, y);
    let f = std::f32::consts::TAU / period;
    let demod = |part: fn(f32) -> f32| {
        GreyF32::from_fn(w, h, |x, y| {
            Luma([res.get_pixel(x, y)[0] * part(f * along(x, y))])
        })
    };
    let (re, im) = (demod(f32::cos), demod(|t| -t.sin()));
    let (lre, lim) = (blur(&re, 0.75 * period), blur(&im, 0.75 * period));
    let (wre, wim) = (blur(&re, big / 8.0), blur(&im, big / 8.0));
    let amp: Vec<f32> = lre
        .iter()
        .zip(lim.iter())
        .map(|(a, b)| a.hypot(*b))
        .collect();
    let (med_amp, _) = median_mad(&amp);
    GreyF32::from_fn(w, h, |x, y| {
        let (a, b) = (lre.get_pixel(x, y)[0], lim.get_pixel(x, y)[0]);
        let (c, d) = (wre.get_pixel(x, y)[0], wim.get_pixel(x, y)[0]);
        // Phase of local x conj(wide), in half periods, where the stripes are clear.
        let dphi = (b * c - a * d).atan2(a * c + b * d).abs() / std::f32::consts::PI;
        let sure = (amp[(y * w + x) as usize] / med_amp.max(1e-9)).min(1.0);
        Luma([2.0 * dphi * sure])
    })
}

/// Median and median absolute deviation of a map's values.
pub(crate) fn median_mad(v: &[f32]) -> (f32, f32) {
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    let med = s[s.len() / 2];
    let mut dev: Vec<f32> = s.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f32::total_cmp);
    (med, dev[dev.len() / 2])
}

/// Finds the region that stands out most, or None when nothing does.
pub fn find_roi(img: &GreyF32, crop: &Crop) -> Option<Roi> {
    let (w, h) = img.dimensions();
    if w < 8 || h < 8 {
        return None;
    }
    // In standard scores already: 0 is the surface's typical level, 1 its spread.
    let sal = saliency(img, crop);
    let (med, _) = median_mad(sal.as_raw());
    let top = sal.as_raw().iter().copied().fold(0.0f32, f32::max);
    // Scale the map so that the frame's typical level and its peak span the 8-bit range,
    // then let Otsu split region from surface.
    if top <= med {
        return None;
    }
    let scaled = GrayImage::from_fn(w, h, |x, y| {
        let v = (sal.get_pixel(x, y)[0] - med) / (top - med);
        Luma([(v.clamp(0.0, 1.0) * 255.0) as u8])
    });
    let level = imageproc::contrast::otsu_level(&scaled);
    let fg = GrayImage::from_fn(w, h, |x, y| {
        Luma([if scaled.get_pixel(x, y)[0] > level {
            255
        } else {
            0
        }])
    });
    let labels = connected_components(&fg, Connectivity::Eight, Luma([0u8]));
    // Per component: area, saliency sum and bounding box.
    let count = labels.as_raw().iter().copied().max().unwrap_or(0) as usize;
    if count == 0 {
        return None;
    }
    let mut area = vec![0u64; count + 1];
    let mut sum = vec![0f64; count + 1];
    let mut bbox = vec![(u32::MAX, u32::MAX, 0u32, 0u32); count + 1];
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l[0] as usize;
        if l == 0 {
            continue;
        }
        area[l] += 1;
        sum[l] += sal.get_pixel(x, y)[0] as f64;
        let b = &mut bbox[l];
        *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
    }
    // The component with the most total saliency: large and strong beats a bright speck.
    let best = (1..=count).max_by(|&a, &b| sum[a].total_cmp(&sum[b]).then(b.cmp(&a)))?;
    let mean = (sum[best] / area[best] as f64) as f32;
    let frame = (w as u64) * (h as u64);
    if mean < crop.min_contrast || area[best] * 2 > frame {
        return None;
    }
    let (x0, y0, x1, y1) = bbox[best];
    let mask = GrayImage::from_fn(w, h, |x, y| {
        Luma([if labels.get_pixel(x, y)[0] as usize == best {
            255
        } else {
            0
        }])
    });
    Some(Roi {
        region: Rect {
            x: x0,
            y: y0,
            w: x1 - x0 + 1,
            h: y1 - y0 + 1,
        },
        mask,
    })
}

/// The square crop around a region: its larger side plus the margin, at least
/// `min_fraction` of the frame's smaller side and `min_pixels`, moved (not shrunk) to stay
/// inside the frame.
pub fn crop_rect(region: &Rect, frame: (u32, u32), crop: &Crop) -> Rect {
    let (w, h) = frame;
    let small = w.min(h);
    let want = (region.w.max(region.h) as f32 * (1.0 + 2.0 * crop.margin)).ceil() as u32;
    let side = want
        .max((small as f32 * crop.min_fraction).ceil() as u32)
        .max(crop.min_pixels)
        .min(small)
        .max(1);
    let centre = |lo: u32, len: u32, total: u32| -> u32 {
        let c = lo as i64 + len as i64 / 2 - side as i64 / 2;
        c.clamp(0, (total - side) as i64) as u32
    };
    Rect {
        x: centre(region.x, region.w, w),
        y: centre(region.y, region.h, h),
        w: side,
        h: side,
    }
}

impl Preprocess {
    /// Only resize + scale: what models saved before the pipeline existed used.
    pub fn resize_only(side: usize) -> Preprocess {
        Preprocess {
            side,
            ..Default::default()
        }
    }

    /// One line for logs and reports.
    pub fn describe(&self) -> String {
        let mut steps = Vec::new();
        if let Some(c) = &self.crop {
            let mut pattern = if c.turn_level > 0.0 {
                format!(", stripe turn/shift {}", c.turn_level)
            } else {
                String::new()
            };
            if c.turn_level > 0.0 && c.stripe_free {
                pattern += ", stripe-free grey level";
            }
            if c.fine_scale > 0.0 {
                pattern += &format!(", fine scale {} px", c.fine_scale);
            }
            let floor = if c.min_pixels > 0 {
                format!(" and {} px", c.min_pixels)
            } else {
                String::new()
            };
            steps.push(format!(
                "crop (margin {}, min {}{floor}{pattern})",
                c.margin, c.min_fraction
            ));
        }
        if self.denoise != Denoise::None {
            steps.push(format!("denoise {:?}", self.denoise).to_lowercase());
        }
        if self.contrast != Contrast::None {
            steps.push(format!("contrast {:?}", self.contrast).to_lowercase());
        }
        if self.segment {
            steps.push("segment".into());
        }
        steps.push(match self.fit {
            Fit::Stretch => format!("resize {0}x{0}", self.side),
            Fit::Pad => format!("fit {0}x{0} (aspect kept, median-grey padding)", self.side),
        });
        if self.colour == Colour::Rgb {
            steps.push("each of red, green, blue".into());
        }
        steps.push("scale to [-1, 1]".into());
        steps.join(" -> ")
    }

    /// Planes per network input.
    pub fn channels(&self) -> usize {
        self.colour.channels()
    }

    /// The processed image before scaling: grey [0, 1], `side x side`, plus the crop used.
    pub fn process(&self, img: &GreyF32) -> (GreyF32, Option<Rect>) {
        let (roi, rect) = self.locate(img);
        (self.finish(img, roi.as_ref(), rect), rect)
    }

    /// Where the region of interest is in the grey image, and the crop taken around it.
    fn locate(&self, img: &GreyF32) -> (Option<Roi>, Option<Rect>) {
        let (w, h) = img.dimensions();
        // Segmentation needs the detection even without a crop.
        let detect = self.crop.or(self.segment.then(Crop::default));
        let roi = detect.as_ref().and_then(|c| find_roi(img, c));
        let rect = match (&self.crop, &roi) {
            (Some(c), Some(r)) => Some(crop_rect(&r.region, (w, h), c)),
            _ => None,
        };
        (roi, rect)
    }

    /// Every step after the detection, on one plane (the grey level, or one colour): the
    /// crop, denoising, contrast, segmentation and the fit to the square input.
    fn finish(&self, img: &GreyF32, roi: Option<&Roi>, rect: Option<Rect>) -> GreyF32 {
        let (w, h) = img.dimensions();
        let mut out: GreyF32 = match rect {
            Some(r) => image::imageops::crop_imm(img, r.x, r.y, r.w, r.h).to_image(),
            None => img.clone(),
        };
        out = match self.denoise {
            Denoise::None => out,
            Denoise::Median => to_f32(&imageproc::filter::median_filter(&to_u8(&out), 1, 1)),
            Denoise::Gaussian => imageproc::filter::gaussian_blur_f32(&out, 1.0),
        };
        out = match self.contrast {
            Contrast::None => out,
            Contrast::Equalize => to_f32(&imageproc::contrast::equalize_histogram(&to_u8(&out))),
            Contrast::Stretch => {
                let mut v = out.as_raw().clone();
                v.sort_by(f32::total_cmp);
                let (lo, hi) = (v[v.len() / 100], v[v.len() - 1 - v.len() / 100]);
                let span = (hi - lo).max(1e-6);
                let (cw, ch) = out.dimensions();
                GreyF32::from_fn(cw, ch, |x, y| {
                    Luma([((out.get_pixel(x, y)[0] - lo) / span).clamp(0.0, 1.0)])
                })
            }
        };
        if self.segment {
            if let Some(roi) = roi {
                let r = rect.unwrap_or(Rect { x: 0, y: 0, w, h });
                let mask = imageproc::morphology::dilate(
                    &image::imageops::crop_imm(&roi.mask, r.x, r.y, r.w, r.h).to_image(),
                    imageproc::distance_transform::Norm::LInf,
                    3,
                );
                let outside: Vec<f32> = out
                    .enumerate_pixels()
                    .filter(|(x, y, _)| mask.get_pixel(*x, *y)[0] == 0)
                    .map(|(_, _, p)| p[0])
                    .collect();
                if !outside.is_empty() {
                    let (fill, _) = median_mad(&outside);
                    for (x, y, p) in out.enumerate_pixels_mut() {
                        if mask.get_pixel(x, y)[0] == 0 {
                            p[0] = fill;
                        }
                    }
                }
            }
        }
        let s = self.side as u32;
        match self.fit {
            Fit::Pad => fit_pad(&out, s),
            Fit::Stretch if out.dimensions() != (s, s) => {
                image::imageops::resize(&out, s, s, image::imageops::FilterType::Triangle)
            }
            Fit::Stretch => out,
        }
    }

    /// The network input `[channels, side, side]` in [-1, 1] from a grey image in [0, 1]
    /// (8- and 16-bit sources alike); a colour model sees three equal planes.
    pub fn apply(&self, img: &GreyF32) -> Vec<f32> {
        let (roi, rect) = self.locate(img);
        let grey = to_input(self.finish(img, roi.as_ref(), rect));
        match self.colour {
            Colour::Grey => grey,
            Colour::Rgb => grey.repeat(3),
        }
    }

    /// `apply` on a decoded file. The region is found on the grey level; with colour, each
    /// plane is then cropped, filtered and fitted the same way.
    pub fn apply_picture(&self, img: &Picture) -> Vec<f32> {
        match (self.colour, &img.rgb) {
            (Colour::Rgb, Some(planes)) => {
                let (roi, rect) = self.locate(&img.grey);
                planes
                    .iter()
                    .flat_map(|p| to_input(self.finish(p, roi.as_ref(), rect)))
                    .collect()
            }
            _ => self.apply(&img.grey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crop recorded before the fine scale, the pixel floor and the stripe-free channel
    /// existed replays without them, as it was trained.
    #[test]
    fn an_old_models_crop_keeps_its_steps() {
        let old: Crop = serde_json::from_str(
            r#"{"margin": 0.25, "min_fraction": 0.2, "min_contrast": 4.0, "turn_level": 0.25}"#,
        )
        .unwrap();
        assert_eq!(
            (old.fine_scale, old.min_pixels, old.stripe_free),
            (0.0, 0, false)
        );
        let new = Crop::default();
        assert!(new.fine_scale > 0.0 && new.min_pixels == 112 && new.stripe_free);
    }

    /// A model saved before `fit` existed stretches, as it was trained.
    #[test]
    fn an_old_model_stretches() {
        let old: Preprocess = serde_json::from_str(r#"{"side": 112}"#).unwrap();
        assert_eq!(old.fit, Fit::Stretch);
    }

    /// The shrunk wide blur stays within 1e-3 of the direct one everywhere, edges included,
    /// on a lit, striped, noisy surface of odd size (grey range about 0.2).
    #[test]
    fn smooth_matches_the_direct_blur() {
        let (w, h) = (403u32, 297u32);
        let img = GreyF32::from_fn(w, h, |x, y| {
            let (xf, yf) = (x as f32, y as f32);
            let noise = ((x * 7919 + y * 104_729) % 97) as f32 / 97.0;
            Luma([0.5 + 3e-4 * xf - 2e-4 * yf
                + 0.04 * ((0.7 * xf + 0.3 * yf) * 0.8).sin()
                + 0.01 * noise])
        });
        // Signed maps too: `resize` alone would clamp them to [0, 1].
        let signed = GreyF32::from_fn(w, h, |x, y| Luma([img.get_pixel(x, y)[0] - 0.6]));
        for (img, sigma) in [(&img, 8.5f32), (&img, 10.0), (&signed, 33.0), (&img, 50.0)] {
            let (a, b) = (
                imageproc::filter::gaussian_blur_f32(img, sigma),
                smooth(img, sigma),
            );
            let worst = a
                .iter()
                .zip(b.iter())
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-3, "sigma {sigma}: off by {worst}");
        }
    }
}
