//! Colour input: which planes the network sees (grey, or red, green and blue), a decoded
//! image with its planes, and a network input back as a picture for people to look at.

use image::{GrayImage, ImageBuffer, Luma};
use serde::{Deserialize, Serialize};

/// A plane in [0, 1] (preprocess::GreyF32; this module sits below preprocess).
type GreyF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Which planes of an image the network sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Colour {
    /// One plane, the grey level (a colour file is converted): what every model before this
    /// option saw.
    #[default]
    Grey,
    /// Red, green and blue planes (a grey file gives three equal planes), for sets where
    /// colour carries the class (a reddish oxide, a blue tint).
    Rgb,
}

impl Colour {
    /// Planes per network input.
    pub fn channels(self) -> usize {
        match self {
            Colour::Grey => 1,
            Colour::Rgb => 3,
        }
    }
}

/// A decoded image in [0, 1]: its grey level, and its red, green and blue planes when they
/// were asked for and the file had colour.
#[derive(Clone, Debug)]
pub struct Picture {
    pub grey: GreyF32,
    pub rgb: Option<[GreyF32; 3]>,
}

impl From<GreyF32> for Picture {
    fn from(grey: GreyF32) -> Self {
        Picture { grey, rgb: None }
    }
}

impl Picture {
    /// How far the planes differ: the mean over pixels of the largest difference between
    /// two of them (0 for a grey file).
    pub fn chroma(&self) -> f32 {
        let Some([r, g, b]) = &self.rgb else {
            return 0.0;
        };
        let n = r.len().max(1) as f32;
        r.iter()
            .zip(g.iter())
            .zip(b.iter())
            .map(|((r, g), b)| r.max(*g).max(*b) - r.min(*g).min(*b))
            .sum::<f32>()
            / n
    }
}

/// A processed plane in [0, 1] as network input values in [-1, 1].
pub(crate) fn to_input(plane: GreyF32) -> Vec<f32> {
    plane
        .into_raw()
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0) * 2.0 - 1.0)
        .collect()
}
/// 8-bit image of a network input `[planes, side, side]` in [-1, 1]: grey for one plane,
/// red, green and blue for three.
pub fn input_to_image(pixels: &[f32], side: usize) -> image::DynamicImage {
    let (s, plane) = (side as u32, side * side);
    let byte = |i: usize| ((pixels[i].clamp(-1.0, 1.0) + 1.0) * 127.5 + 0.5) as u8;
    let at = |x: u32, y: u32| y as usize * side + x as usize;
    if pixels.len() == 3 * plane {
        image::RgbImage::from_fn(s, s, |x, y| {
            let i = at(x, y);
            image::Rgb([byte(i), byte(plane + i), byte(2 * plane + i)])
        })
        .into()
    } else {
        GrayImage::from_fn(s, s, |x, y| Luma([byte(at(x, y))])).into()
    }
}
