//! What turns a decoded image into the network's input, in the paper's order (its Fig. 4 and
//! Table 3): region-of-interest crop -> denoise -> contrast normalisation -> optional
//! segmentation mask -> resize to `side x side` -> scale to [-1, 1]. Every step and parameter
//! is recorded in the model's metadata and applied identically by train, evaluate and
//! predict. Image processing comes from imageproc (filters, Otsu, connected components).
//!
//! The crop looks for what stands out from the surface rather than for bright or dark
//! pixels: the image minus a heavily blurred copy of itself (the lighting), its magnitude
//! averaged over a few pixels (so periodic texture such as reflected stripes becomes an
//! even level), then an Otsu threshold of that map. The largest region above it, with a
//! margin, is the crop; when no region stands out clearly, or the region covers most of the
//! frame, the whole image is used.

use image::{GrayImage, ImageBuffer, Luma};
use imageproc::region_labelling::{connected_components, Connectivity};
use serde::{Deserialize, Serialize};

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
}

impl Default for Crop {
    fn default() -> Self {
        Crop {
            margin: 0.25,
            min_fraction: 0.2,
            min_contrast: 4.0,
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
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            side: 112,
            crop: None,
            denoise: Denoise::None,
            contrast: Contrast::None,
            segment: false,
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

/// The "stands out from the surface" map: |image - lighting| averaged locally, 8 bit.
pub(crate) fn saliency(img: &GreyF32) -> GreyF32 {
    let (w, h) = img.dimensions();
    let big = w.max(h) as f32;
    let lighting = imageproc::filter::gaussian_blur_f32(img, (big / 12.0).max(2.0));
    let diff = GreyF32::from_fn(w, h, |x, y| {
        Luma([(img.get_pixel(x, y)[0] - lighting.get_pixel(x, y)[0]).abs()])
    });
    imageproc::filter::gaussian_blur_f32(&diff, (big / 64.0).max(2.0))
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
    let sal = saliency(img);
    let (med, mad) = median_mad(sal.as_raw());
    let spread = (1.4826 * mad).max(1e-6);
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
    if (mean - med) / spread < crop.min_contrast || area[best] * 2 > frame {
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
/// `min_fraction` of the frame's smaller side, moved (not shrunk) to stay inside the frame.
pub fn crop_rect(region: &Rect, frame: (u32, u32), crop: &Crop) -> Rect {
    let (w, h) = frame;
    let small = w.min(h);
    let want = (region.w.max(region.h) as f32 * (1.0 + 2.0 * crop.margin)).ceil() as u32;
    let side = want
        .max((small as f32 * crop.min_fraction).ceil() as u32)
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
            steps.push(format!(
                "crop (margin {}, min {})",
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
        steps.push(format!("resize {0}x{0}", self.side));
        steps.push("scale to [-1, 1]".into());
        steps.join(" -> ")
    }

    /// The processed image before scaling: grey [0, 1], `side x side`, plus the crop used.
    pub fn process(&self, img: &GreyF32) -> (GreyF32, Option<Rect>) {
        let (w, h) = img.dimensions();
        // Segmentation needs the detection even without a crop.
        let detect = self.crop.or(self.segment.then(Crop::default));
        let roi = detect.as_ref().and_then(|c| find_roi(img, c));
        let rect = match (&self.crop, &roi) {
            (Some(c), Some(r)) => Some(crop_rect(&r.region, (w, h), c)),
            _ => None,
        };
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
            if let Some(roi) = &roi {
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
        if out.dimensions() != (s, s) {
            out = image::imageops::resize(&out, s, s, image::imageops::FilterType::Triangle);
        }
        (out, rect)
    }

    /// `[side * side]` in [-1, 1] from a grey image with values in [0, 1] (8- and 16-bit
    /// sources both arrive in [0, 1]).
    pub fn apply(&self, img: &GreyF32) -> Vec<f32> {
        self.process(img)
            .0
            .into_raw()
            .into_iter()
            .map(|v| (v.clamp(0.0, 1.0) * 2.0) - 1.0)
            .collect()
    }
}
