//! What kind of images a model was trained on: grey or colour, and the range of their
//! smaller side. Preprocessing turns any image into the network's input, so a colour photo
//! from another camera or a frame four times larger than any training image would be
//! embedded without complaint, and wrongly. `enrol` refuses such images against the profile
//! recorded at training (read from the file headers only).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How far (as a factor) an image's smaller side may lie outside the trained range: past it
/// the resize to the network's input changes a defect's scale more than training ever did.
pub const SIDE_FACTOR: f64 = 2.0;

/// What a file's header declares (its colour type), before any pixel is read: the
/// training set's profile refuses files of another kind. Not `data::colour::Colour`, which
/// says what the network reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileColour {
    Grey,
    Colour,
}

/// One file's header facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub colour: FileColour,
}

/// The training images' kinds (metadata.json `input`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputProfile {
    /// Kinds seen (one or both).
    pub colour: Vec<FileColour>,
    /// Smallest and largest smaller side, in pixels.
    pub min_side: u32,
    pub max_side: u32,
    pub images: usize,
}

/// Reads width, height and colour type from the header, without decoding pixels.
pub fn header(path: &Path) -> Result<Header> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::Input(format!("{}: cannot read image header: {e}", path.display()))
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| bad(&e))?
        .with_guessed_format()
        .map_err(|e| bad(&e))?;
    let decoder = reader.into_decoder().map_err(|e| bad(&e))?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    let colour = if image::ImageDecoder::color_type(&decoder).has_color() {
        FileColour::Colour
    } else {
        FileColour::Grey
    };
    Ok(Header {
        width,
        height,
        colour,
    })
}

impl InputProfile {
    /// The profile of image files (None for none: generated images have no files).
    pub fn of(paths: &[PathBuf]) -> Result<Option<InputProfile>> {
        let mut p: Option<InputProfile> = None;
        for path in paths {
            let h = header(path)?;
            let side = h.width.min(h.height);
            let q = p.get_or_insert(InputProfile {
                colour: Vec::new(),
                min_side: side,
                max_side: side,
                images: 0,
            });
            if !q.colour.contains(&h.colour) {
                q.colour.push(h.colour);
            }
            q.min_side = q.min_side.min(side);
            q.max_side = q.max_side.max(side);
            q.images += 1;
        }
        Ok(p)
    }

    /// Why `path` (with header `h`) is not the kind of image the model was trained on.
    pub fn refuse(&self, path: &Path, h: Header) -> Option<String> {
        let name = |c: FileColour| match c {
            FileColour::Grey => "grey",
            FileColour::Colour => "colour",
        };
        if !self.colour.contains(&h.colour) {
            return Some(format!(
                "{}: a {} image; the model was trained on {} images only",
                path.display(),
                name(h.colour),
                name(self.colour[0])
            ));
        }
        let side = h.width.min(h.height) as f64;
        let (lo, hi) = (
            self.min_side as f64 / SIDE_FACTOR,
            self.max_side as f64 * SIDE_FACTOR,
        );
        if side < lo || side > hi {
            return Some(format!(
                "{}: {}x{} pixels; the model was trained on images whose smaller side is {}-{} px, and more than {SIDE_FACTOR}x outside that the resize changes a defect's scale beyond anything it learnt",
                path.display(),
                h.width,
                h.height,
                self.min_side,
                self.max_side
            ));
        }
        None
    }

    pub fn check(&self) -> std::result::Result<(), String> {
        if self.colour.is_empty() || self.min_side == 0 || self.min_side > self.max_side {
            return Err(format!(
                "input: colour {:?}, sides {}-{}: not a profile of real images",
                self.colour, self.min_side, self.max_side
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_another_colour_or_a_far_other_size() {
        let p = InputProfile {
            colour: vec![FileColour::Grey],
            min_side: 100,
            max_side: 200,
            images: 10,
        };
        let h = |w, h, colour| Header {
            width: w,
            height: h,
            colour,
        };
        let path = Path::new("x.png");
        assert_eq!(p.refuse(path, h(150, 900, FileColour::Grey)), None);
        assert_eq!(p.refuse(path, h(50, 60, FileColour::Grey)), None);
        assert_eq!(p.refuse(path, h(400, 400, FileColour::Grey)), None);
        assert!(p
            .refuse(path, h(49, 60, FileColour::Grey))
            .unwrap()
            .contains("49x60"));
        assert!(p.refuse(path, h(401, 500, FileColour::Grey)).is_some());
        assert!(p
            .refuse(path, h(150, 150, FileColour::Colour))
            .unwrap()
            .contains("colour"));
    }
}
