//! `evaluate --train-per-class`: the k-fold cross-validation once per training size
//! (per-class-N/, each a full report that resumes on its own), then the curve across sizes:
//! learning-curve.md (accuracy, balanced accuracy and macro-F1 per row and size),
//! learning-curve.json and learning-curve.png.

use std::path::Path;

use crate::eval::cv::RowSummary;
use crate::fsio::write_atomic;
use crate::plot::{learning_curves, LearningSeries};

use super::EvaluateArgs;

pub(super) fn run(a: &EvaluateArgs, out: &Path) -> anyhow::Result<()> {
    let mut sizes = a.train_per_class.clone();
    sizes.sort_unstable();
    sizes.dedup();
    anyhow::ensure!(
        sizes[0] >= 1,
        "--train-per-class: every size must be at least 1 image per class"
    );
    let mut points: Vec<(usize, Vec<RowSummary>)> = Vec::new();
    for &n in &sizes {
        let dir = out.join(format!("per-class-{n}"));
        let non_empty = dir.exists() && std::fs::read_dir(&dir)?.next().is_some();
        eprintln!(
            "learning curve: at most {n} training images per class ({})",
            dir.display()
        );
        points.push((n, super::run_kfold(a, &dir, non_empty, Some(n))?));
    }
    let md = markdown(a, &points);
    let json = serde_json::json!({
        "folds": a.folds,
        "fold_seed": a.fold_seed,
        "sizes": sizes,
        "commit": option_env!("GLASSNET_COMMIT").unwrap_or("unknown"),
        "rows": rows(&points).iter().map(|row| serde_json::json!({
            "row": row,
            "points": points.iter().filter_map(|(n, s)| {
                let r = s.iter().find(|r| &r.row == row)?;
                Some(serde_json::json!({
                    "per_class": n,
                    "accuracy": r.accuracy,
                    "balanced_accuracy": r.balanced_accuracy,
                    "macro_f1": r.macro_f1,
                }))
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let series: Vec<LearningSeries> = rows(&points)
        .into_iter()
        .map(|row| LearningSeries {
            points: points
                .iter()
                .filter_map(|(n, s)| {
                    let r = s.iter().find(|r| r.row == row)?;
                    Some((*n, r.accuracy.0, r.accuracy.1))
                })
                .collect(),
            name: row,
        })
        .collect();
    learning_curves(
        &out.join("learning-curve.png"),
        &format!("learning curve, {}-fold cross-validation", a.folds),
        &series,
    )?;
    write_atomic(&out.join("learning-curve.md"), md.as_bytes())?;
    write_atomic(
        &out.join("learning-curve.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!(
        "learning curve written to {}/learning-curve.md",
        out.display()
    );
    Ok(())
}

/// Report rows in the order of the first point.
fn rows(points: &[(usize, Vec<RowSummary>)]) -> Vec<String> {
    points
        .first()
        .map(|(_, s)| s.iter().map(|r| r.row.clone()).collect())
        .unwrap_or_default()
}

/// One table per score: rows by method, columns by training images per class.
fn markdown(a: &EvaluateArgs, points: &[(usize, Vec<RowSummary>)]) -> String {
    let mut md = format!(
        "# Learning curve\n\nStratified {}-fold cross-validation (fold seed {}), once per training size: every method fits on at most N images of each class of the training folds (a class with fewer keeps all of them; the same seeded choice for every method, smaller sizes subsets of larger ones) and is tested on the whole test fold. Mean +- standard deviation over folds; each size's full report in per-class-N/. Picture: [learning-curve.png](learning-curve.png).\n",
        a.folds, a.fold_seed
    );
    let head: Vec<String> = points.iter().map(|(n, _)| format!("N = {n}")).collect();
    type Pick = fn(&RowSummary) -> (f64, f64);
    let scores: [(&str, Pick, bool); 3] = [
        ("Accuracy", |r| r.accuracy, true),
        ("Balanced accuracy", |r| r.balanced_accuracy, true),
        ("Macro-F1", |r| r.macro_f1, false),
    ];
    for (title, pick, pct) in scores {
        md += &format!(
            "\n## {title}\n\n| method | {} |\n|---|{}\n",
            head.join(" | "),
            "---|".repeat(head.len())
        );
        for row in rows(points) {
            let cells: Vec<String> = points
                .iter()
                .map(|(_, s)| match s.iter().find(|r| r.row == row).map(pick) {
                    Some((m, sd)) if pct => format!("{:.2} +- {:.2}%", m * 100.0, sd * 100.0),
                    Some((m, sd)) => format!("{m:.3} +- {sd:.3}"),
                    None => "-".into(),
                })
                .collect();
            md += &format!("| {row} | {} |\n", cells.join(" | "));
        }
    }
    md
}
