//! `glassnet preprocess`: the dataset as the network will see it, and a contact sheet of
//! originals (crop box drawn) beside their processed versions.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use image::{GrayImage, Luma};

use super::{load_dataset, DataArgs, PreprocessArgs};
use crate::data::builtin::line_camera_frames;
use crate::data::folder::decode_grey;
use crate::data::preprocess::{to_u8, GreyF32, Preprocess};
use crate::data::synth::{synth_image, SynthConfig};
use crate::fsio::Staging;

#[derive(Args, Debug)]
pub struct PreprocessCmdArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    pre: PreprocessArgs,
    /// Output directory (must not exist or be empty): DIR/<class>/<image>.png and
    /// DIR/contact_sheet.png.
    #[arg(long)]
    out: PathBuf,
    /// Network input side in pixels.
    #[arg(long, default_value_t = 112)]
    size: usize,
    /// Examples per class on the contact sheet.
    #[arg(long, default_value_t = 4)]
    sheet_examples: usize,
}

/// A contact-sheet cell's width (original and processed side by side) and the gap around it.
fn sheet_cell(size: usize) -> (u32, u32) {
    (2 * size as u32 + 6, 6)
}

/// Places example `k` of class `c` on the contact sheet: the original fitted to the cell with
/// the crop box drawn, then the processed image.
fn place_on_sheet(
    sheet: &mut GrayImage,
    orig: &GreyF32,
    rect: Option<crate::data::preprocess::Rect>,
    processed: &GrayImage,
    (k, c): (usize, usize),
    size: usize,
) {
    let (cell, gap) = sheet_cell(size);
    let (w, h) = orig.dimensions();
    let fit = size as f32 / w.max(h) as f32;
    let (tw, th) = (
        ((w as f32 * fit).round() as u32).max(1),
        ((h as f32 * fit).round() as u32).max(1),
    );
    let mut thumb =
        image::imageops::resize(&to_u8(orig), tw, th, image::imageops::FilterType::Triangle);
    if let Some(r) = rect {
        let scaled =
            imageproc::rect::Rect::at((r.x as f32 * fit) as i32, (r.y as f32 * fit) as i32)
                .of_size(
                    ((r.w as f32 * fit) as u32).max(2),
                    ((r.h as f32 * fit) as u32).max(2),
                );
        imageproc::drawing::draw_hollow_rect_mut(&mut thumb, scaled, Luma([255]));
    }
    let (x0, y0) = (
        gap + k as u32 * (cell + gap),
        gap + c as u32 * (size as u32 + gap),
    );
    image::imageops::replace(sheet, &thumb, x0 as i64, y0 as i64);
    image::imageops::replace(sheet, processed, (x0 + size as u32 + 6) as i64, y0 as i64);
}

/// The original of image `i` of class `c` (the `k`-th of its class), for the sheet.
fn original(
    a: &PreprocessCmdArgs,
    paths: &[PathBuf],
    i: usize,
    frames: &Option<Vec<(u32, GreyF32)>>,
    class: usize,
    k: usize,
    pre: &Preprocess,
) -> anyhow::Result<GreyF32> {
    if let Some(f) = frames {
        return Ok(f[i].1.clone());
    }
    if a.data.data.is_some() {
        return Ok(decode_grey(&paths[i])?);
    }
    let unit: Vec<f32> = synth_image(a.data.synth_seed, class, k, pre.side)
        .iter()
        .map(|v| (v + 1.0) * 0.5)
        .collect();
    let s = pre.side as u32;
    Ok(GreyF32::from_raw(s, s, unit).expect("side x side"))
}

pub fn run(a: PreprocessCmdArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.size >= 16, "--size {}: at least 16 pixels", a.size);
    let pre = a.pre.build(a.size, &a.data)?;
    let stage = Staging::new(&a.out)?;
    let (data, source) = load_dataset(&a.data, &pre)?;
    eprintln!("data: {source}: {}", data.summary());
    eprintln!("preprocessing: {}", pre.describe());
    let frames = (a.data.data.is_none() && a.data.line_camera).then(|| {
        line_camera_frames(&SynthConfig {
            seed: a.data.synth_seed,
            side: a.size,
            line_camera: true,
            ..Default::default()
        })
    });
    let mut seen = vec![0usize; data.classes.len()];
    // Sheet: one row per class, each example as original (fitted to the cell, crop box
    // drawn) then processed.
    let (cell, gap) = sheet_cell(a.size);
    let cols = a.sheet_examples.max(1) as u32;
    let mut sheet = GrayImage::from_pixel(
        gap + cols * (cell + gap),
        gap + data.classes.len() as u32 * (a.size as u32 + gap),
        Luma([0]),
    );
    // Per class: how many images the crop found a region in.
    let mut cropped = vec![0usize; data.classes.len()];
    for i in 0..data.len() {
        let c = data.labels[i] as usize;
        let k = seen[c];
        seen[c] += 1;
        let name = data.paths.get(i).and_then(|p| p.file_stem()).map_or_else(
            || format!("{}_{k:04}", data.classes[c]),
            |s| s.to_string_lossy().into_owned(),
        );
        let dir = stage.path(&data.classes[c]);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let processed = crate::data::colour::input_to_image(data.image(i), a.size);
        processed
            .save(dir.join(format!("{name}.png")))
            .with_context(|| format!("writing {}", dir.display()))?;
        let on_sheet = k < cols as usize;
        if !on_sheet && pre.crop.is_none() {
            continue;
        }
        let orig = original(&a, &data.paths, i, &frames, c, k, &pre)?;
        let (_, rect) = pre.process(&orig);
        cropped[c] += rect.is_some() as usize;
        if !on_sheet {
            continue;
        }
        place_on_sheet(
            &mut sheet,
            &orig,
            rect,
            &processed.to_luma8(),
            (k, c),
            a.size,
        );
    }
    sheet
        .save(stage.path("contact_sheet.png"))
        .context("writing contact_sheet.png")?;
    let dir = stage.commit()?;
    if pre.crop.is_some() {
        let per_class: Vec<String> = data
            .classes
            .iter()
            .zip(&cropped)
            .zip(&seen)
            .map(|((name, n), total)| format!("{name} {n}/{total}"))
            .collect();
        eprintln!(
            "crop found a region in {} of {} image(s) ({}); the others are used whole",
            cropped.iter().sum::<usize>(),
            data.len(),
            per_class.join(", ")
        );
    }
    println!(
        "wrote {} processed images to {} and {}/contact_sheet.png",
        data.len(),
        dir.display(),
        dir.display()
    );
    Ok(())
}
