//! Class-per-folder image datasets: decoded once, in parallel, to network inputs in [-1, 1]
//! (grey, or red, green and blue planes).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::colour::{Colour, Picture};
use crate::data::preprocess::{GreyF32, Preprocess};
use crate::data::Dataset;
use crate::{Error, Result};

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Sorted entries of a directory.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// Decodes one image file (8- or 16-bit, grey or colour) to grey in [0, 1], with the checks
/// of `decode_grey_bytes`.
pub fn decode_grey(path: &Path) -> Result<GreyF32> {
    Ok(decode_picture(path, false)?.grey)
}

/// Decodes one image file to its grey level and, with `colour` and a colour file, its red,
/// green and blue planes, all in [0, 1].
pub fn decode_picture(path: &Path, colour: bool) -> Result<Picture> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    decode_picture_bytes(&bytes, &path.display().to_string(), colour)
}

/// Whether JPEG data runs from its start-of-image to an end-of-image marker: walks the marker
/// segments by their lengths and each scan's entropy-coded data (where 0xFF is stuffed as
/// FF 00 and restart markers are FF D0-D7). The JPEG decoder fills a truncated file's missing
/// blocks with grey and reports no error; this finds it.
pub fn jpeg_complete(b: &[u8]) -> bool {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return false;
    }
    let mut i = 2; // at a marker's 0xFF
    loop {
        if i >= b.len() || b[i] != 0xFF {
            return false;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1; // fill bytes
        }
        let Some(&m) = b.get(i) else { return false };
        i += 1;
        match m {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return false;
        };
        if len < 2 || i + len > b.len() {
            return false;
        }
        i += len;
        if m == 0xDA {
            // Entropy-coded data up to the next marker that is not a stuffed byte or a restart.
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => i += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// Most pixels `decode_grey_bytes` accepts (a 64-megapixel frame), checked from the header
/// before any pixel is decoded, so a small upload cannot claim a huge image.
pub const MAX_PIXELS: u64 = 64 << 20;

/// Decodes an image held in memory (png, jpeg, bmp or tiff, recognised by its content) to
/// grey in [0, 1]; `name` says where it came from in errors.
pub fn decode_grey_bytes(bytes: &[u8], name: &str) -> Result<GreyF32> {
    Ok(decode_picture_bytes(bytes, name, false)?.grey)
}

/// `decode_grey_bytes`, with the colour planes too when `colour` is asked and the file has
/// colour.
pub fn decode_picture_bytes(bytes: &[u8], name: &str, colour: bool) -> Result<Picture> {
    let bad = |e: &dyn std::fmt::Display| Error::Input(format!("{name}: cannot decode image: {e}"));
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(&e))?;
    match reader.format() {
        Some(
            image::ImageFormat::Png
            | image::ImageFormat::Jpeg
            | image::ImageFormat::Bmp
            | image::ImageFormat::Tiff,
        ) => {}
        _ => {
            return Err(Error::Input(format!(
                "{name}: not a png, jpeg, bmp or tiff image"
            )))
        }
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_complete(bytes) {
        return Err(Error::Input(format!(
            "{name}: damaged JPEG: the data ends before its end-of-image marker (a truncated or cut file)"
        )));
    }
    let (w, h) = reader.into_dimensions().map_err(|e| bad(&e))?;
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(Error::Input(format!(
            "{name}: {w}x{h} pixels, more than the {} megapixels accepted",
            MAX_PIXELS >> 20
        )));
    }
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(&e))?
        .decode()
        .map_err(|e| bad(&e))?;
    let rgb = (colour && img.color().has_color()).then(|| {
        let c = img.to_rgb32f();
        let (w, h) = c.dimensions();
        let plane = |k: usize| {
            GreyF32::from_raw(w, h, c.pixels().map(|p| p[k]).collect()).expect("w x h values")
        };
        [plane(0), plane(1), plane(2)]
    });
    Ok(Picture {
        grey: img.to_luma32f(),
        rgb,
    })
}

/// Decodes one image and preprocesses it to `[channels, side, side]`.
pub fn load_image(path: &Path, pre: &Preprocess) -> Result<Vec<f32>> {
    Ok(pre.apply_picture(&decode_picture(path, pre.colour == Colour::Rgb)?))
}

/// Images that could not be read, with why, when `skip_bad` is on.
pub type Skipped = Vec<(PathBuf, String)>;

/// Decodes `paths` in parallel. A bad file is an error naming it, or skipped and reported
/// when `skip_bad`.
pub fn load_images(
    paths: &[PathBuf],
    pre: &Preprocess,
    skip_bad: bool,
) -> Result<(Vec<Vec<f32>>, Vec<usize>, Skipped)> {
    let (views, kept, skipped) = load_images_views(paths, &[pre], skip_bad)?;
    let images = views.into_iter().map(|mut v| v.swap_remove(0)).collect();
    Ok((images, kept, skipped))
}

/// `load_images` with several preprocessings of each image (e.g. its crop and its whole
/// frame), each file decoded once: per kept image, one `[channels, side, side]` vector per
/// entry of `pres`.
#[allow(clippy::type_complexity)]
pub fn load_images_views(
    paths: &[PathBuf],
    pres: &[&Preprocess],
    skip_bad: bool,
) -> Result<(Vec<Vec<Vec<f32>>>, Vec<usize>, Skipped)> {
    let colour = pres.iter().any(|p| p.colour == Colour::Rgb);
    let decoded: Vec<Result<Vec<Vec<f32>>>> = paths
        .par_iter()
        .map(|p| {
            let img = decode_picture(p, colour)?;
            Ok(pres.iter().map(|pre| pre.apply_picture(&img)).collect())
        })
        .collect();
    let (mut images, mut kept, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for (i, r) in decoded.into_iter().enumerate() {
        match r {
            Ok(img) => {
                images.push(img);
                kept.push(i);
            }
            Err(e) if skip_bad => skipped.push((paths[i].clone(), e.to_string())),
            Err(e) => {
                return Err(Error::Input(format!(
                    "{e}\n(pass --skip-bad to skip unreadable images and count them)"
                )))
            }
        }
    }
    Ok((images, kept, skipped))
}

/// Every image file under `path` (a file, or a folder searched recursively), sorted. Links
/// are followed, but each real folder and each real file is taken once, so a link back up
/// the tree (`ln -s . loop`) neither repeats images nor recurses forever.
pub fn collect_images(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::Input(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    collect_into(path, &mut seen, &mut out)?;
    Ok(out)
}

fn collect_into(
    dir: &Path,
    seen: &mut std::collections::HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    walk(dir, seen, out, &mut Vec::new())
}

/// The one walk behind every command: images under `dir` into `images`, other files into
/// `other`; links followed, each real folder and image taken once.
fn walk(
    dir: &Path,
    seen: &mut std::collections::HashSet<PathBuf>,
    images: &mut Vec<PathBuf>,
    other: &mut Vec<PathBuf>,
) -> Result<()> {
    let real = std::fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    if !seen.insert(real) {
        return Ok(());
    }
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            walk(&p, seen, images, other)?;
        } else if is_image(&p) {
            // A dangling link or an unreadable entry is left to the decoder to report.
            let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if seen.insert(real) {
                images.push(p);
            }
        } else {
            other.push(p);
        }
    }
    Ok(())
}

/// What a class-folder dataset at `dir` holds that is not read: files beside the class
/// folders, and files under them that are not images by their extension. Reported, so a
/// misplaced or misnamed file is seen, not silently dropped.
pub fn ignored_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let (mut out, mut seen) = (Vec::new(), std::collections::HashSet::new());
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            walk(&p, &mut seen, &mut Vec::new(), &mut out)?;
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// The class folders under `dir` in name order, every image file under them (searched
/// recursively, as `collect_images` does) and each file's class index. An error names `dir`
/// when it is missing or holds no class folder with images.
fn class_files(dir: &Path) -> Result<(Vec<String>, Vec<PathBuf>, Vec<u32>)> {
    if !dir.exists() {
        return Err(Error::Input(format!(
            "--data {}: no such directory",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(Error::Input(format!(
            "--data {}: not a directory (expected one folder per class)",
            dir.display()
        )));
    }
    let mut classes = Vec::new();
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    // One rule for every command: images anywhere under a folder, links followed once per
    // real folder and file (shared across classes, so no image counts twice).
    let mut seen = std::collections::HashSet::new();
    for class_dir in sorted_entries(dir)?.into_iter().filter(|p| p.is_dir()) {
        let mut files = Vec::new();
        collect_into(&class_dir, &mut seen, &mut files)?;
        if files.is_empty() {
            continue;
        }
        let label = classes.len() as u32;
        classes.push(
            class_dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
        labels.extend(std::iter::repeat_n(label, files.len()));
        paths.extend(files);
    }
    if classes.is_empty() {
        return Err(Error::Input(format!(
            "--data {}: no class folders with images ({}) found; expected DIR/<class>/<image>",
            dir.display(),
            IMAGE_EXTENSIONS.join(", ")
        )));
    }
    Ok((classes, paths, labels))
}

/// Files `has_colour` decodes at most, spread over the set.
const COLOUR_SAMPLE: usize = 64;

/// Whether colour carries information in the set under `dir`: decodes up to 64 of its images,
/// spread over the classes in order, and answers yes when at least half of those it can read
/// differ between their red, green and blue planes by more than two levels of 255 on
/// average. Grey files, and colour files of grey content (a grey camera saved as RGB JPEG),
/// answer no.
pub fn has_colour(dir: &Path) -> Result<bool> {
    Ok(colour_sample(dir)?.is_colour())
}

/// What `has_colour` saw: of the sampled images it could read, how many carry colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColourSample {
    pub coloured: usize,
    pub read: usize,
}

impl ColourSample {
    pub fn is_colour(&self) -> bool {
        self.read > 0 && 2 * self.coloured >= self.read
    }
}

/// The sample behind `has_colour`.
pub fn colour_sample(dir: &Path) -> Result<ColourSample> {
    let (_, paths, _) = class_files(dir)?;
    let step = paths.len().div_ceil(COLOUR_SAMPLE).max(1);
    let sample: Vec<&PathBuf> = paths.iter().step_by(step).collect();
    // Unreadable files are left to the load that follows, which names them.
    let chroma: Vec<f32> = sample
        .par_iter()
        .filter_map(|p| decode_picture(p, true).ok().map(|img| img.chroma()))
        .collect();
    Ok(ColourSample {
        coloured: chroma.iter().filter(|&&c| c > 2.0 / 255.0).count(),
        read: chroma.len(),
    })
}

/// Loads the images under each class folder `dir/<class>/` (searched recursively, as
/// `collect_images` does), classes in name order.
pub fn load_folder(dir: &Path, pre: &Preprocess, skip_bad: bool) -> Result<(Dataset, Skipped)> {
    let (mut sets, skipped) = load_folder_views(dir, &[pre], skip_bad)?;
    Ok((sets.swap_remove(0), skipped))
}

/// `load_folder` with one dataset per entry of `pres` (the same images, labels and paths,
/// preprocessed each way), each file decoded once.
pub fn load_folder_views(
    dir: &Path,
    pres: &[&Preprocess],
    skip_bad: bool,
) -> Result<(Vec<Dataset>, Skipped)> {
    let (classes, paths, labels) = class_files(dir)?;
    // Decoded views are gathered, then copied into one buffer per view: twice their size.
    let per_image: u64 = pres
        .iter()
        .map(|p| (p.channels() * p.side * p.side * 4) as u64)
        .sum();
    crate::data::check_fits(
        2 * per_image * paths.len() as u64,
        &format!(
            "--data {}: {} images as {} px network inputs",
            dir.display(),
            paths.len(),
            pres[0].side
        ),
    )?;
    let (images, kept, skipped) = load_images_views(&paths, pres, skip_bad)?;
    let sets = pres
        .iter()
        .enumerate()
        .map(|(v, pre)| Dataset {
            side: pre.side,
            channels: pre.channels(),
            images: images
                .iter()
                .flat_map(|views| views[v].iter().copied())
                .collect(),
            labels: kept.iter().map(|&i| labels[i]).collect(),
            paths: kept.iter().map(|&i| paths[i].clone()).collect(),
            classes: classes.clone(),
        })
        .collect();
    Ok((sets, skipped))
}
