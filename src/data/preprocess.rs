//! What turns a decoded image into the network's input: grey, resized to `side x side`,
//! scaled from [0, 1] to [-1, 1]. Recorded in the model's metadata and applied identically
//! by train, evaluate and predict.

use image::{ImageBuffer, Luma};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Output side in pixels.
    pub side: usize,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess { side: 112 }
    }
}

impl Preprocess {
    /// `[side * side]` in [-1, 1] from a grey image with values in [0, 1] (8- and 16-bit
    /// sources both arrive in [0, 1]).
    pub fn apply(&self, img: &ImageBuffer<Luma<f32>, Vec<f32>>) -> Vec<f32> {
        let s = self.side as u32;
        let resized = if img.dimensions() == (s, s) {
            img.clone()
        } else {
            image::imageops::resize(img, s, s, image::imageops::FilterType::Triangle)
        };
        resized
            .into_raw()
            .into_iter()
            .map(|v| (v.clamp(0.0, 1.0) * 2.0) - 1.0)
            .collect()
    }
}
