//! `glassnet enrol`: add a class (or more examples of one) to a trained model's gallery from a
//! few images, or remove a class, without retraining. The model folder is rewritten whole or
//! not at all.

use std::path::PathBuf;

use clap::Args;

use super::DeviceArgs;
use crate::checkpoint::{load_model, write_model};
use crate::data::folder::{collect_images, load_images};
use crate::device::open_engine;
use crate::fsio::Staging;
use crate::gallery::{check_class_name, enrol, remove_class};

#[derive(Args, Debug)]
pub struct EnrolArgs {
    /// Model directory written by `glassnet train`; changed in place (atomically).
    #[arg(long)]
    model: PathBuf,
    /// Class to add the images to: a new class, or more examples of an existing one.
    #[arg(
        long,
        required_unless_present = "remove_class",
        conflicts_with = "remove_class"
    )]
    class: Option<String>,
    /// Images or folders (searched recursively) of the class.
    #[arg(requires = "class")]
    paths: Vec<PathBuf>,
    /// Remove this class and its gallery images instead.
    #[arg(long)]
    remove_class: Option<String>,
    /// Enrol images unlike the training images (the other of grey and colour, or a smaller
    /// side more than 2x outside the trained range), which are refused by default.
    #[arg(long)]
    any_input: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(a: EnrolArgs) -> anyhow::Result<()> {
    let mut model = load_model(&a.model)?;
    if let Some(class) = &a.remove_class {
        let removed = remove_class(&mut model, class)?;
        commit(&a.model, &model)?;
        println!(
            "removed class {class:?} and its {removed} gallery image(s) from {}; {} class(es) left: {}",
            a.model.display(),
            model.meta.classes.len(),
            model.meta.classes.join(", ")
        );
        return Ok(());
    }
    let class = a.class.as_deref().expect("clap requires --class");
    // Everything that can be refused is refused before any embedding or writing.
    check_class_name(class)?;
    anyhow::ensure!(
        !a.paths.is_empty(),
        "--class {class:?}: give the images (files or folders) to enrol"
    );
    let mut files = Vec::new();
    for p in &a.paths {
        let found = collect_images(p)?;
        anyhow::ensure!(
            !found.is_empty(),
            "{}: no images (png, jpg, bmp, tiff) in it",
            p.display()
        );
        files.extend(found);
    }
    // Images of another kind than the model learnt from would be embedded, and wrongly.
    if let (Some(profile), false) = (&model.meta.input, a.any_input) {
        for f in &files {
            if let Some(why) = profile.refuse(f, crate::data::profile::header(f)?) {
                anyhow::bail!("{why}; --any-input enrols it anyway");
            }
        }
    }
    // Strict: an unreadable image is an error, never a smaller enrolment than asked for.
    let (images, _, _) = load_images(&files, &model.meta.preprocess, false)?;
    let (mut engine, note) = open_engine(a.device.choice(), &model.meta.arch, &model.params)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let emb = engine.embed(&images.concat())?;
    let source = a
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let done = enrol(&mut model, class, &emb, &source)?;
    commit(&a.model, &model)?;
    println!(
        "{} {} image(s) {} class {class:?} in {} ({} class(es), {} gallery images)",
        if done.new_class { "enrolled" } else { "added" },
        done.added,
        if done.new_class { "as new" } else { "to" },
        a.model.display(),
        model.meta.classes.len(),
        model.gallery_labels.len()
    );
    match done.threshold {
        None => eprintln!("{}", super::NO_REJECTION),
        Some((t, s)) => {
            let how = if done.kept_threshold {
                "kept: under 10 images to recalibrate it; "
            } else {
                ""
            };
            println!("unknown threshold {t:.4} ({how}{})", s.describe());
        }
    }
    Ok(())
}

/// Writes `model` in place of folder `dir` in one step: a copy of the folder is staged,
/// rewritten and swapped in, so a crash leaves the old model or the new, never a mix.
fn commit(dir: &std::path::Path, model: &crate::checkpoint::Model) -> anyhow::Result<()> {
    let stage = Staging::replacing(dir)?;
    write_model(&stage, model)?;
    stage.commit()?;
    Ok(())
}
