//! `glassnet predict`: class, nearest-neighbour distance and how many of the k nearest agree,
//! per image.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::DeviceArgs;
use crate::checkpoint::load_model;
use crate::classify::{classify, Prediction};
use crate::data::folder::{collect_images, load_images};
use crate::device::open_engine;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Model directory written by `glassnet train`.
    #[arg(long)]
    model: PathBuf,
    /// Image files or folders (searched recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Neighbours consulted: how many of them agree with the class is printed beside it.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Class by majority of the k nearest (ties to the nearer) instead of the nearest image's
    /// class. The nearest is the default: it is the rule train validates and picks the best
    /// epoch by, and a vote lets a large good class outvote a rare defect's few examples.
    #[arg(long)]
    vote: bool,
    /// `on`: an image farther from its nearest known image than that class's calibrated
    /// threshold (metadata.json `rejection`) is `unknown`; `off`: always the nearest class.
    #[arg(long, value_enum, default_value_t = super::Reject::On)]
    reject: super::Reject,
    /// One JSON record per image.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header row.
    #[arg(long)]
    csv: bool,
    /// Skip unreadable images (and count them) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    /// Also write a self-contained HTML page: every image's answer and, where the images sit
    /// in folders named as the model's classes, the confusion matrix and every mistake
    /// beside its nearest gallery entries.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Serialize)]
struct Record {
    path: String,
    #[serde(flatten)]
    p: Prediction,
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.k >= 1, "--k {}: at least 1", a.k);
    let model = load_model(&a.model)?;
    if let Some(r) = &a.report {
        anyhow::ensure!(
            r.extension().is_some_and(|e| e == "html"),
            "--report {}: name an .html file",
            r.display()
        );
        let parent = r.parent().filter(|p| !p.as_os_str().is_empty());
        anyhow::ensure!(
            parent.is_none_or(|p| p.is_dir()),
            "--report {}: its folder does not exist",
            r.display()
        );
    }
    // Each file with the argument it was found under (its class folder, if any, is below it).
    let mut files = Vec::new();
    let mut roots = Vec::new();
    for p in &a.paths {
        let found = collect_images(p)?;
        roots.extend(std::iter::repeat_n(p.clone(), found.len()));
        files.extend(found);
    }
    anyhow::ensure!(
        !files.is_empty(),
        "no images (png, jpg, bmp, tiff) found in the given paths"
    );
    let (images, kept, skipped) = load_images(&files, &model.meta.preprocess, a.skip_bad)?;
    let reject = a.reject == super::Reject::On;
    if reject && model.meta.rejection.is_none() {
        eprintln!("{}", super::NO_REJECTION);
    }
    let (mut engine, note) = open_engine(a.device.choice(), &model.meta.arch, &model.params)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let emb = engine.embed(&images.concat())?;
    let records: Vec<Record> = kept
        .iter()
        .zip(classify(&model, &emb, a.k, a.vote, reject))
        .map(|(&i, p)| Record {
            path: files[i].display().to_string(),
            p,
        })
        .collect();
    if a.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else if a.csv {
        write_csv(&records)?;
    } else {
        print_table(&records, &model.meta.classes);
    }
    if !skipped.is_empty() {
        eprintln!("skipped {} unreadable image(s)", skipped.len());
    }
    if let Some(path) = &a.report {
        let actual: Vec<Option<usize>> = kept
            .iter()
            .map(|&i| class_folder(&files[i], &roots[i], &model.meta.classes))
            .collect();
        let page = report_html(&a, &model, &records, &actual, &images, &emb)?;
        crate::fsio::write_atomic(path, page.as_bytes())?;
        // stdout holds only the answers (--json/--csv are read by programs).
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

/// `--csv`: one row per image.
fn write_csv(records: &[Record]) -> anyhow::Result<()> {
    // csv quotes any field that needs it (a class or path with a comma, quote or newline).
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record([
        "path",
        "class",
        "unknown",
        "distance",
        "threshold",
        "nearest_class",
        "votes",
        "k",
        "good_margin",
    ])?;
    for r in records {
        w.write_record([
            r.path.as_str(),
            &r.p.class,
            &r.p.unknown.to_string(),
            &format!("{:.6}", r.p.distance),
            &r.p.threshold.map_or(String::new(), |t| format!("{t:.6}")),
            &r.p.nearest_class,
            &r.p.votes.to_string(),
            &r.p.k.to_string(),
            &r.p.good_margin.map_or(String::new(), |m| format!("{m:.6}")),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// The default output: a table on stdout, unknowns counted on stderr.
fn print_table(records: &[Record], classes: &[String]) {
    let w = records
        .iter()
        .map(|r| r.path.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let cw = classes
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(5)
        .max(crate::classify::UNKNOWN.len());
    println!(
        "{:<w$}  {:<cw$}  {:>10}  {:>9}  {:>5}  nearest",
        "path", "class", "distance", "threshold", "vote"
    );
    for r in records {
        println!(
            "{:<w$}  {:<cw$}  {:>10.4}  {:>9}  {:>5}  {}",
            r.path,
            r.p.class,
            r.p.distance,
            r.p.threshold.map_or("-".into(), |t| format!("{t:.4}")),
            format!("{}/{}", r.p.votes, r.p.k),
            r.p.nearest_class
        );
    }
    let unknown = records.iter().filter(|r| r.p.unknown).count();
    if unknown > 0 {
        eprintln!(
            "{unknown} of {} image(s) unknown: farther from every known class than its threshold (nearest class shown; --reject off to force a class)",
            records.len()
        );
    }
}

/// The model class named by the first folder of `file` below `root` (None for a file given
/// directly, or a folder that is no class).
fn class_folder(
    file: &std::path::Path,
    root: &std::path::Path,
    classes: &[String],
) -> Option<usize> {
    let rel = file.strip_prefix(root).ok()?;
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str().to_str()?;
    parts.next()?; // a folder, not the file itself
    classes.iter().position(|c| c == first)
}

/// predict --report: every answer, and for images in class folders the confusion matrix
/// and every mistake (unknown counts as one) beside the nearest gallery entries.
fn report_html(
    a: &PredictArgs,
    model: &crate::checkpoint::Model,
    records: &[Record],
    actual: &[Option<usize>],
    images: &[Vec<f32>],
    emb: &[f32],
) -> anyhow::Result<String> {
    use crate::html::Page;
    let classes = &model.meta.classes;
    // The page's classes: the model's, then unknown.
    let mut names = classes.clone();
    names.push(crate::classify::UNKNOWN.to_string());
    let predicted: Vec<usize> = records
        .iter()
        .map(|r| {
            if r.p.unknown {
                classes.len()
            } else {
                classes
                    .iter()
                    .position(|c| *c == r.p.class)
                    .unwrap_or(classes.len())
            }
        })
        .collect();
    let side = model.meta.preprocess.side;
    let data = crate::data::Dataset {
        side,
        channels: model.meta.preprocess.channels(),
        images: images.concat(),
        labels: vec![0; images.len()],
        classes: names.clone(),
        paths: records.iter().map(|r| PathBuf::from(&r.path)).collect(),
    };
    let image_names = crate::html::image_names(&data);
    let mut page = Page::new(&format!("glassnet predict: {}", a.model.display()));
    let labelled = actual.iter().filter(|c| c.is_some()).count();
    page.para(&format!(
        "{} images; {} in folders named as the model's {} classes; commit {}. Rejection {}.",
        records.len(),
        labelled,
        classes.len(),
        option_env!("GLASSNET_COMMIT").unwrap_or("unknown"),
        if a.reject == super::Reject::On {
            "on"
        } else {
            "off"
        }
    ));
    if labelled > 0 {
        labelled_section(
            &mut page,
            model,
            &names,
            &image_names,
            actual,
            &predicted,
            emb,
            &data,
        )?;
    }
    page.heading("Every answer", "answers");
    let rows: Vec<Vec<String>> = records
        .iter()
        .zip(actual)
        .map(|(r, a)| {
            vec![
                r.path.clone(),
                a.map_or("-".into(), |c| classes[c].clone()),
                r.p.class.clone(),
                format!("{:.4}", r.p.distance),
                r.p.threshold.map_or("-".into(), |t| format!("{t:.4}")),
                r.p.nearest_class.clone(),
                format!("{}/{}", r.p.votes, r.p.k),
            ]
        })
        .collect();
    page.table(
        &[
            "image",
            "folder class",
            "answer",
            "distance",
            "threshold",
            "nearest class",
            "agree",
        ]
        .map(String::from),
        &rows,
    );
    Ok(page.finish())
}

/// The confusion matrix of the images in class folders and every mistake beside its nearest
/// gallery entries (a model keeps their embeddings, not their images).
#[allow(clippy::too_many_arguments)]
fn labelled_section(
    page: &mut crate::html::Page,
    model: &crate::checkpoint::Model,
    names: &[String],
    image_names: &[String],
    actual: &[Option<usize>],
    predicted: &[usize],
    emb: &[f32],
    data: &crate::data::Dataset,
) -> anyhow::Result<()> {
    use crate::html::{PageMistake, PageNear, Thumbnails};
    let labelled = actual.iter().filter(|c| c.is_some()).count();
    let (act, pred): (Vec<u32>, Vec<u32>) = actual
        .iter()
        .zip(predicted)
        .filter_map(|(a, &p)| a.map(|a| (a as u32, p as u32)))
        .unzip();
    let conf = crate::metric::scores::Confusion::from_labels(&act, &pred, names.len());
    page.heading(
        "Confusion matrix of the images in class folders",
        "confusion",
    );
    page.para(&format!(
        "Accuracy {:.2}% over {labelled} images (an unknown answer counts as a mistake). Rows: the folder's class; columns: the answer.",
        conf.accuracy() * 100.0
    ));
    page.confusion(names, &conf);
    let d = model.meta.arch.embed_dim;
    let wrong: Vec<usize> = (0..actual.len())
        .filter(|&i| actual[i].is_some_and(|c| c != predicted[i]))
        .collect();
    let queries: Vec<f32> = wrong
        .iter()
        .flat_map(|&i| emb[i * d..(i + 1) * d].iter().copied())
        .collect();
    let near = crate::metric::knn::nearest_items(
        &model.gallery,
        &queries,
        d,
        crate::eval::cv::MISTAKE_NEIGHBOURS,
    );
    let mistakes: Vec<PageMistake> = wrong
        .iter()
        .zip(near)
        .map(|(&i, n)| PageMistake {
            image: i,
            fold: None,
            actual: actual[i].unwrap(),
            predicted: predicted[i],
            neighbours: n
                .into_iter()
                .map(|(j, distance)| PageNear {
                    image: None,
                    name: format!("gallery image {j}"),
                    class: model.gallery_labels[j] as usize,
                    distance,
                })
                .collect(),
        })
        .collect();
    page.heading("Every mistake", "misclassified");
    page.para("Each image (red frame) beside the nearest gallery entries, nearest first, with their class and squared distance. A model keeps the gallery's embeddings, not its images, so only their classes are shown.");
    page.mistakes(names, image_names, &mistakes, &mut Thumbnails::new(data))?;
    Ok(())
}
