//! The last preprocessing step: an image of any size and aspect ratio to the network's
//! square input, stretched (the aspect ratio lost) or fitted and padded (kept).

use image::{ImageBuffer, Luma};
use serde::{Deserialize, Serialize};

/// A grey image in [0, 1] (preprocess::GreyF32; this module sits below preprocess).
type GreyF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// How an image that is not square becomes the network's square input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// Resize each side to the input side: the aspect ratio is lost (thin wide defects
    /// get thicker). What every model before this option did.
    #[default]
    Stretch,
    /// Resize the longer side to the input side keeping the aspect ratio, centred, the rest
    /// filled with the image's median grey (the aspect ratio stays visible to the network).
    Pad,
}

/// `img` resized so its longer side is `side`, aspect kept, centred on a `side x side`
/// canvas of its median grey (a square image is just resized).
pub(crate) fn fit_pad(img: &GreyF32, side: u32) -> GreyF32 {
    let (w, h) = img.dimensions();
    let long = w.max(h) as f64;
    let scaled = |v: u32| ((v as f64 * side as f64 / long).round() as u32).clamp(1, side);
    let (rw, rh) = (scaled(w), scaled(h));
    let inner = if (rw, rh) == (w, h) {
        img.clone()
    } else {
        image::imageops::resize(img, rw, rh, image::imageops::FilterType::Triangle)
    };
    if (rw, rh) == (side, side) {
        return inner;
    }
    let fill = median(inner.as_raw());
    let mut out = GreyF32::from_pixel(side, side, Luma([fill]));
    image::imageops::replace(
        &mut out,
        &inner,
        ((side - rw) / 2) as i64,
        ((side - rh) / 2) as i64,
    );
    out
}

/// The middle value (the upper one of an even count), as preprocess's median_mad.
fn median(v: &[f32]) -> f32 {
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    s[s.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pad keeps the aspect ratio: a 40x20 image becomes its 112x56 resize between two
    /// bands of its median grey, a tall one is padded left and right, and a square one is
    /// resized as stretch would.
    #[test]
    fn pad_keeps_the_aspect_ratio() {
        let img = GreyF32::from_fn(40, 20, |x, y| Luma([((x * 3 + y * 5) % 17) as f32 / 16.0]));
        let out = fit_pad(&img, 112);
        assert_eq!(out.dimensions(), (112, 112));
        let inner = image::imageops::resize(&img, 112, 56, image::imageops::FilterType::Triangle);
        let fill = median(inner.as_raw());
        for (x, y, p) in out.enumerate_pixels() {
            let want = if (28..84).contains(&y) {
                inner.get_pixel(x, y - 28)[0]
            } else {
                fill
            };
            assert_eq!(p[0], want, "pixel ({x}, {y})");
        }
        let tall = fit_pad(
            &GreyF32::from_fn(10, 30, |x, _| Luma([x as f32 / 9.0])),
            112,
        );
        let mid = median(tall.as_raw());
        assert_eq!(tall.get_pixel(0, 56)[0], mid, "left band");
        assert_eq!(tall.get_pixel(111, 56)[0], mid, "right band");
        assert!(
            (37..74).any(|x| tall.get_pixel(x, 56)[0] != mid),
            "the image in the middle"
        );
        let square = GreyF32::from_fn(50, 50, |x, y| Luma([((x ^ y) % 7) as f32 / 6.0]));
        assert_eq!(
            fit_pad(&square, 112),
            image::imageops::resize(&square, 112, 112, image::imageops::FilterType::Triangle)
        );
    }
}
