//! report.html of a k-fold evaluation: the scores, the first network's confusion matrix
//! linked to every mistake, each beside its nearest training images, and the plots.

use std::path::Path;

use super::Method;
use crate::eval::cv::FoldResult;

/// The mistakes of `method`'s 1-NN over all folds, fold by fold.
pub(super) fn listed_mistakes(
    folds: &[FoldResult],
    method: Method,
    names: &[String],
) -> Vec<crate::html::PageMistake> {
    folds
        .iter()
        .flat_map(|f| {
            f.networks
                .iter()
                .filter(move |n| n.method == method)
                .flat_map(move |n| {
                    n.mistakes.iter().map(move |m| crate::html::PageMistake {
                        image: m.image,
                        fold: Some(f.fold),
                        actual: m.actual as usize,
                        predicted: m.predicted as usize,
                        neighbours: m
                            .neighbours
                            .iter()
                            .map(|x| crate::html::PageNear {
                                image: Some(x.image),
                                name: names[x.image].clone(),
                                class: x.label as usize,
                                distance: x.distance,
                            })
                            .collect(),
                    })
                })
        })
        .collect()
}

/// report.html of a k-fold run: the scores, then for the first network's 1-NN the summed
/// confusion matrix linked to every mistake beside its nearest gallery images, and the plots.
#[allow(clippy::too_many_arguments)]
pub(super) fn kfold_html(
    out: &Path,
    source: &str,
    data: &crate::data::Dataset,
    names: &[String],
    summary: &[crate::eval::cv::RowSummary],
    folds: &[FoldResult],
    method: Method,
    mistakes: &[crate::html::PageMistake],
    notes: &[String],
    good_md: Option<&str>,
) -> anyhow::Result<String> {
    use crate::html::{Page, Thumbnails};
    let mut page = Page::new(&format!("glassnet evaluate: {source}"));
    page.para(&format!(
        "{} images, {} classes, {}-fold stratified cross-validation; commit {}. Mean +- standard deviation over folds.",
        data.len(),
        data.classes.len(),
        folds.len(),
        option_env!("GLASSNET_COMMIT").unwrap_or("unknown")
    ));
    let pm = |(m, s): (f64, f64)| format!("{:.2} +- {:.2}%", m * 100.0, s * 100.0);
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            vec![
                s.row.clone(),
                pm(s.accuracy),
                pm(s.balanced_accuracy),
                format!("{:.3} +- {:.3}", s.macro_f1.0, s.macro_f1.1),
            ]
        })
        .collect();
    page.table(
        &["method", "accuracy", "balanced accuracy", "macro-F1"].map(String::from),
        &rows,
    );
    for n in notes {
        page.para(n);
    }
    if let Some(g) = good_md {
        page.markdown(g);
    }
    let row = method.rows()[0];
    if let Some(s) = summary.iter().find(|s| s.row == row) {
        page.heading(
            &format!("{row}: confusion matrix summed over folds"),
            "confusion",
        );
        page.para("Rows actual, columns predicted. A red cell links to its images below.");
        page.confusion(&data.classes, &s.confusion);
        page.heading(
            &format!("{row}: every misclassified test image"),
            "misclassified",
        );
        page.para(&format!(
            "Each test image (red frame) beside its {} nearest training images in the embedding space, nearest first, with their class and squared distance (green frame: the image's own class). Thumbnails are the preprocessed network inputs.",
            crate::eval::cv::MISTAKE_NEIGHBOURS
        ));
        // Folds saved by an older glassnet hold predictions but no neighbours.
        for f in folds {
            if let Some(n) = f.networks.iter().find(|n| n.method == method) {
                let wrong = (0..n.predictions.len())
                    .filter(|&i| n.predictions[i] != f.test_labels[i])
                    .count();
                if wrong != n.mistakes.len() {
                    page.para(&format!(
                        "Fold {} was saved before mistakes were recorded: its {wrong} mistakes are counted above but not shown.",
                        f.fold + 1
                    ));
                }
            }
        }
        let mut thumbs = Thumbnails::new(data);
        page.mistakes(&data.classes, names, mistakes, &mut thumbs)?;
    } else {
        page.para("No network was evaluated: mistakes are listed for the networks' 1-NN only.");
    }
    page.heading("Pictures", "pictures");
    let tsne = out.join(format!("tsne-{}.png", method.name()));
    if tsne.exists() {
        page.picture(
            &format!("t-SNE of fold 1's test embeddings ({})", method.name()),
            &tsne,
        )?;
    }
    page.picture(
        "accuracy and balanced accuracy per method",
        &out.join("accuracy.png"),
    )?;
    Ok(page.finish())
}
