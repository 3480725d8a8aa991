//! The command line: raw flags (clap) -> validated configuration -> a command.

mod bench;
mod embed;
mod enrol;
mod evaluate;
mod export;
mod info;
mod predict;
mod preprocess;
mod progress;
mod serve;
mod synth;
mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data::preprocess::Crop;
use crate::device::DeviceChoice;

#[derive(Parser, Debug)]
#[command(name = "glassnet", version, about = "Triplet-network defect classification on any GPU (WGSL through wgpu) or the CPU", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List GPU adapters (name, backend, type, compute limits).
    Info,
    /// Train a triplet network on a class-per-folder dataset (default: the built-in glass set).
    Train(train::TrainArgs),
    /// Classify images with a trained model (k-NN in the embedding space).
    Predict(predict::PredictArgs),
    /// Add a class (or more examples of one) to a model from a few images, or remove one,
    /// without retraining.
    Enrol(enrol::EnrolArgs),
    /// Write embeddings of a class-per-folder dataset (CSV or .npy by extension).
    Embed(embed::EmbedArgs),
    /// Write the built-in synthetic glass dataset as class folders with a contact sheet.
    Synth(synth::SynthArgs),
    /// Time each kernel (validated first) and end-to-end training and inference.
    Bench(bench::BenchArgs),
    /// Stratified k-fold cross-validation: the metric networks against pixel baselines.
    Evaluate(evaluate::EvaluateArgs),
    /// Write a dataset as the network will see it, with a contact sheet (original, crop
    /// box, processed).
    Preprocess(preprocess::PreprocessCmdArgs),
    /// Write the model's embedder (and gallery distances) as ONNX, checked with tract.
    Export(export::ExportArgs),
    /// Serve the model over HTTP (POST /v1/predict), batching concurrent requests.
    Serve(serve::ServeArgs),
}

/// `--reject`: whether images beyond their nearest class's threshold are called unknown.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    On,
    Off,
}

/// Said when rejection is asked for but the model has no thresholds.
const NO_REJECTION: &str = "note: this model has no calibrated unknown thresholds (trained with --val-fraction 0, or before glassnet calibrated them): no image is called unknown; retrain to get them";

/// `--known-recall`: a fraction strictly between 0 and 1.
fn known_recall(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} must lie strictly between 0 and 1 (e.g. 0.95)"))
    }
}

/// `--device` with `--gpu` / `--cpu` shortcuts, shared by every command that computes.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// auto: a hardware GPU if present, else the fast CPU backend; gpu: any adapter
    /// (software Vulkan included); cpu: the fast CPU backend; cpu-reference: the oracle loops.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Shorthand for --device gpu.
    #[arg(long, conflicts_with_all = ["device", "cpu"])]
    gpu: bool,
    /// Shorthand for --device cpu.
    #[arg(long, conflicts_with = "device")]
    cpu: bool,
}

impl DeviceArgs {
    pub fn choice(&self) -> DeviceChoice {
        if self.gpu {
            DeviceChoice::Gpu
        } else if self.cpu {
            DeviceChoice::Cpu
        } else {
            self.device
        }
    }
}

/// Where a command reads images from: a folder, or the built-in set when absent.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Class-per-folder dataset (DIR/<class>/<image>); png, jpg, bmp, tiff, 8 or 16 bit, any
    /// size. Without it, the built-in synthetic glass set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Skip unreadable or corrupt images (and count them) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    /// Seed of the built-in synthetic set.
    #[arg(long, default_value_t = 0)]
    synth_seed: u64,
    /// Built-in set only: line-camera frames (side 224-640 px, the defect a small part of
    /// the frame) instead of 112 px close-ups, so --crop has work to do.
    #[arg(long, conflicts_with = "data")]
    line_camera: bool,
}

/// The preprocessing pipeline's flags (train and evaluate; predict and embed replay what the
/// model recorded).
#[derive(Args, Debug, Clone)]
pub struct PreprocessArgs {
    /// Crop to the region that stands out from the surface (Otsu threshold of local
    /// contrast, largest region plus a margin); the whole image when nothing stands out.
    #[arg(long)]
    crop: bool,
    /// Margin around the cropped region, as a fraction of its larger side.
    #[arg(long, default_value_t = Crop::default().margin)]
    crop_margin: f32,
    /// Smallest crop side, as a fraction of the frame's smaller side: bounds how far a small
    /// region is zoomed in (1: never zoom, only centre).
    #[arg(long, default_value_t = Crop::default().min_fraction)]
    crop_min: f32,
    /// Smallest crop side in pixels; by default the network's input side (--size), so a crop
    /// is never enlarged and defects keep the frame's pixel scale. 0: no floor.
    #[arg(long)]
    crop_min_px: Option<u32>,
    /// Local turn of the surface pattern (stripes) that counts as standing out for the crop,
    /// as 1 - cos(2 angle) for a coherent pattern: 0.25 is about 20 degrees; 0 looks at
    /// grey-level contrast only.
    #[arg(long, default_value_t = Crop::default().turn_level)]
    crop_turn: f32,
    /// Scale (pixels) of the crop's fixed fine channel beside its frame-relative one, which
    /// finds defects of a few tens of pixels in large frames; 0 turns it off.
    #[arg(long, default_value_t = Crop::default().fine_scale)]
    crop_fine: f32,
    /// Denoise after the crop: none, median (3x3) or gaussian (sigma 1).
    #[arg(long, value_enum, default_value_t = crate::data::preprocess::Denoise::None)]
    denoise: crate::data::preprocess::Denoise,
    /// Contrast normalisation: none, stretch (1st-99th percentile) or equalize (histogram).
    #[arg(long, value_enum, default_value_t = crate::data::preprocess::Contrast::None)]
    contrast: crate::data::preprocess::Contrast,
    /// Replace what lies outside the detected region by the surface's median grey.
    #[arg(long)]
    segment: bool,
    /// To the square input: stretch (each side resized; the aspect ratio is lost) or pad
    /// (aspect kept, centred, the rest filled with the image's median grey).
    #[arg(long, value_enum, default_value_t = crate::data::fit::Fit::Stretch)]
    fit: crate::data::fit::Fit,
    /// Input planes: auto (colour when at least half of a sample of the images differ
    /// between their red, green and blue planes, else grey), grey, or rgb.
    #[arg(long, alias = "color", value_enum, default_value_t = ColourChoice::Auto)]
    colour: ColourChoice,
}

/// `--colour`: a fixed choice, or one made from the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColourChoice {
    Auto,
    Grey,
    Rgb,
}

impl PreprocessArgs {
    /// The pipeline for images of `data` (`--colour auto` looks at them; the built-in set is
    /// grey).
    pub fn build(
        &self,
        side: usize,
        data: &DataArgs,
    ) -> anyhow::Result<crate::data::preprocess::Preprocess> {
        use crate::data::colour::Colour;
        use crate::data::preprocess::Preprocess;
        use crate::model::MAX_SIDE;
        anyhow::ensure!(
            (8..=MAX_SIDE).contains(&side),
            "--size {side}: between 8 and {MAX_SIDE} pixels"
        );
        anyhow::ensure!(
            self.crop_margin.is_finite() && (0.0..=4.0).contains(&self.crop_margin),
            "--crop-margin {}: must be between 0 and 4",
            self.crop_margin
        );
        anyhow::ensure!(
            self.crop_min.is_finite() && self.crop_min > 0.0 && self.crop_min <= 1.0,
            "--crop-min {}: must be above 0 and at most 1",
            self.crop_min
        );
        anyhow::ensure!(
            self.crop_turn.is_finite() && (0.0..=2.0).contains(&self.crop_turn),
            "--crop-turn {}: must be between 0 and 2",
            self.crop_turn
        );
        anyhow::ensure!(
            self.crop_fine == 0.0 || (2.0..=64.0).contains(&self.crop_fine),
            "--crop-fine {}: must be 0 (off) or between 2 and 64 pixels",
            self.crop_fine
        );
        Ok(Preprocess {
            side,
            crop: self.crop.then(|| Crop {
                margin: self.crop_margin,
                min_fraction: self.crop_min,
                turn_level: self.crop_turn,
                fine_scale: self.crop_fine,
                min_pixels: self.crop_min_px.unwrap_or(side as u32),
                ..Crop::default()
            }),
            denoise: self.denoise,
            contrast: self.contrast,
            segment: self.segment,
            fit: self.fit,
            colour: match (self.colour, &data.data) {
                (ColourChoice::Grey, _) | (ColourChoice::Auto, None) => Colour::Grey,
                (ColourChoice::Rgb, _) => Colour::Rgb,
                (ColourChoice::Auto, Some(dir)) => {
                    let sample = crate::data::folder::colour_sample(dir)?;
                    let colour = if sample.is_colour() {
                        Colour::Rgb
                    } else {
                        Colour::Grey
                    };
                    eprintln!(
                        "--colour auto: {} of {} sampled images differ between their colour planes: {}",
                        sample.coloured,
                        sample.read,
                        match colour {
                            Colour::Rgb => "reading red, green and blue",
                            Colour::Grey => "reading the grey level",
                        }
                    );
                    colour
                }
            },
        })
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info => info::run(),
        Command::Train(a) => train::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Enrol(a) => enrol::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Preprocess(a) => preprocess::run(a),
        Command::Export(a) => export::run(a),
        Command::Serve(a) => serve::run(a),
    }
}

/// Parses, runs, prints an error with its causes; returns the exit code.
pub fn main() -> i32 {
    // Mesa's Vulkan drivers print a warning on every start when this is unset.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            1
        }
    }
}

/// Loads `--data` (or the built-in set), reporting skipped files; returns the set and a
/// description of its source for reports.
/// `--good-class NAME` as the index of that class in `data` (read from `source`).
fn good_class(name: &str, data: &crate::data::Dataset, source: &str) -> anyhow::Result<u32> {
    let i = data.classes.iter().position(|c| c == name).ok_or_else(|| {
        anyhow::anyhow!(
            "--good-class {name:?}: no such class in {source} (classes: {})",
            data.classes.join(", ")
        )
    })?;
    Ok(i as u32)
}

pub fn load_dataset(
    args: &DataArgs,
    pre: &crate::data::preprocess::Preprocess,
) -> anyhow::Result<(crate::data::Dataset, String)> {
    let (mut sets, source) = load_dataset_views(args, &[pre])?;
    Ok((sets.swap_remove(0), source))
}

/// `load_dataset`, and with `frames` (crops wanted, `pre` crops) the same images' whole frames
/// too (the preprocessing without its crop), each image decoded or generated once.
pub fn load_dataset_and_frames(
    args: &DataArgs,
    pre: &crate::data::preprocess::Preprocess,
    frames: bool,
) -> anyhow::Result<(crate::data::Dataset, Option<crate::data::Dataset>, String)> {
    if !frames || pre.crop.is_none() {
        let (data, source) = load_dataset(args, pre)?;
        return Ok((data, None, source));
    }
    let whole = crate::data::preprocess::Preprocess {
        crop: None,
        ..pre.clone()
    };
    let (mut sets, source) = load_dataset_views(args, &[pre, &whole])?;
    let whole_frames = sets.pop();
    Ok((sets.swap_remove(0), whole_frames, source))
}

/// `load_dataset` once per entry of `pres` (e.g. crops and whole frames): the same images in
/// the same order, each decoded or generated once.
pub fn load_dataset_views(
    args: &DataArgs,
    pres: &[&crate::data::preprocess::Preprocess],
) -> anyhow::Result<(Vec<crate::data::Dataset>, String)> {
    match &args.data {
        Some(dir) => {
            let (sets, skipped) = crate::data::folder::load_folder_views(dir, pres, args.skip_bad)?;
            let ignored = crate::data::folder::ignored_files(dir)?;
            if !ignored.is_empty() {
                eprintln!(
                    "ignored {} file(s) beside the class folders or not images by their extension ({}):",
                    ignored.len(),
                    crate::data::folder::IMAGE_EXTENSIONS.join(", ")
                );
                for p in ignored.iter().take(5) {
                    eprintln!("  {}", p.display());
                }
            }
            if !skipped.is_empty() {
                eprintln!("skipped {} unreadable image(s):", skipped.len());
                for (p, why) in skipped.iter().take(10) {
                    eprintln!("  {}: {why}", p.display());
                }
            }
            Ok((sets, dir.display().to_string()))
        }
        None => {
            let cfg = crate::data::synth::SynthConfig {
                seed: args.synth_seed,
                side: pres[0].side,
                line_camera: args.line_camera,
                ..Default::default()
            };
            Ok((
                crate::data::builtin::builtin_views(&cfg, pres),
                format!(
                    "built-in synthetic glass set{} (seed {})",
                    if args.line_camera {
                        ", line-camera frames"
                    } else {
                        ""
                    },
                    args.synth_seed
                ),
            ))
        }
    }
}
