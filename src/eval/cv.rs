//! Stratified k-fold cross-validation of the metric network (1-NN, 5-NN, nearest centroid in
//! the embedding space) beside k-NN on raw pixels, on the same folds.

use serde::Serialize;

use crate::data::split::stratified_folds;
use crate::data::Dataset;
use crate::device::{open_engine, DeviceChoice};
use crate::eval::metrics::{mean_std, Confusion, Scores};
use crate::metric::knn::{centroids, knn, nearest_centroid};
use crate::model::{init_params, Arch, ParamLayout};
use crate::train::{train, Progress, TrainConfig};
use crate::Result;

/// The methods every fold reports, in report order.
pub const METHODS: &[&str] = &[
    "triplet 1-NN",
    "triplet 5-NN",
    "triplet centroid",
    "pixels 1-NN",
    "pixels 5-NN",
];

#[derive(Clone, Debug, Serialize)]
pub struct FoldResult {
    pub fold: usize,
    pub test_images: usize,
    /// One confusion matrix per entry of METHODS.
    pub confusions: Vec<Confusion>,
    pub train_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MethodSummary {
    pub method: String,
    pub accuracy: (f64, f64),
    pub balanced_accuracy: (f64, f64),
    pub macro_f1: (f64, f64),
    /// Summed over folds: rows actual, columns predicted.
    pub confusion: Confusion,
}

/// Mean +- std over folds of each method, and the summed confusion matrices.
pub fn summarise(folds: &[FoldResult], classes: usize) -> Vec<MethodSummary> {
    METHODS
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let scores: Vec<Scores> = folds.iter().map(|f| Scores::of(&f.confusions[m])).collect();
            let mut total = Confusion::new(classes);
            for f in folds {
                total.merge(&f.confusions[m]);
            }
            let pick = |g: fn(&Scores) -> f64| mean_std(&scores.iter().map(g).collect::<Vec<_>>());
            MethodSummary {
                method: name.to_string(),
                accuracy: pick(|s| s.accuracy),
                balanced_accuracy: pick(|s| s.balanced_accuracy),
                macro_f1: pick(|s| s.macro_f1),
                confusion: total,
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
/// Runs `folds`-fold CV; `on_fold` sees each finished fold (for progress and reports).
pub fn cross_validate(
    data: &Dataset,
    folds: usize,
    seed: u64,
    arch: &Arch,
    cfg: &TrainConfig,
    device: DeviceChoice,
    progress: &mut dyn Progress,
    mut on_fold: impl FnMut(&FoldResult),
) -> Result<Vec<FoldResult>> {
    let classes = data.classes.len();
    let fold_of = stratified_folds(&data.labels, classes, folds, seed);
    let mut out = Vec::new();
    for f in 0..folds {
        let test_idx: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] == f).collect();
        let train_idx: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] != f).collect();
        let (tr, te) = (data.subset(&train_idx), data.subset(&test_idx));
        let params = init_params(
            arch,
            &ParamLayout::new(arch),
            cfg.seed.wrapping_add(f as u64),
        );
        let (mut engine, _) = open_engine(device, arch, &params)?;
        // No model selection on the test fold: fixed schedule, last epoch.
        let fold_cfg = TrainConfig {
            patience: 0,
            ..cfg.clone()
        };
        let t0 = std::time::Instant::now();
        let outcome = train(engine.as_mut(), &tr, None, &fold_cfg, progress)?;
        let train_seconds = t0.elapsed().as_secs_f64();
        engine.set_params(&outcome.params)?;
        let d = arch.embed_dim;
        let g = engine.embed(&tr.images)?;
        let q = engine.embed(&te.images)?;
        let vote = |gal: &[f32], qs: &[f32], dim: usize, k: usize| -> Vec<u32> {
            knn(gal, &tr.labels, qs, dim, k, false)
                .iter()
                .map(|n| n.label)
                .collect()
        };
        let px = tr.image_len();
        let preds = [
            vote(&g, &q, d, 1),
            vote(&g, &q, d, 5),
            nearest_centroid(&centroids(&g, &tr.labels, d, classes), &q, d),
            vote(&tr.images, &te.images, px, 1),
            vote(&tr.images, &te.images, px, 5),
        ];
        let r = FoldResult {
            fold: f,
            test_images: te.len(),
            confusions: preds
                .iter()
                .map(|p| Confusion::from_labels(&te.labels, p, classes))
                .collect(),
            train_seconds,
        };
        on_fold(&r);
        out.push(r);
    }
    Ok(out)
}

/// report.md: scores per method (mean +- std over folds), the summed confusion matrix and
/// per-class precision / recall / F1 of the first method.
pub fn report_markdown(
    source: &str,
    classes: &[String],
    folds: usize,
    summary: &[MethodSummary],
) -> String {
    let pct = |(m, s): (f64, f64)| format!("{:.2} +- {:.2}%", m * 100.0, s * 100.0);
    let mut md = format!("# glassnet evaluate\n\nData: {source}. Stratified {folds}-fold cross-validation; per fold the metric network is trained on the other folds with a fixed schedule (no model selection on the test fold).\n\n");
    md += "| method | accuracy | balanced accuracy | macro-F1 |\n|---|---|---|---|\n";
    for s in summary {
        md += &format!(
            "| {} | {} | {} | {:.3} +- {:.3} |\n",
            s.method,
            pct(s.accuracy),
            pct(s.balanced_accuracy),
            s.macro_f1.0,
            s.macro_f1.1
        );
    }
    let best = &summary[0];
    md += &format!("\n## Confusion matrix, {} (summed over folds; rows actual, columns predicted)\n\n| actual \\ predicted | {} |\n|---|{}\n", best.method, classes.join(" | "), "---|".repeat(classes.len()));
    for (a, name) in classes.iter().enumerate() {
        let row: Vec<String> = (0..classes.len())
            .map(|p| best.confusion.get(a, p).to_string())
            .collect();
        md += &format!("| {name} | {} |\n", row.join(" | "));
    }
    md += &format!("\n## Per-class scores, {}\n\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n", best.method);
    for (c, s) in best.confusion.class_scores().iter().enumerate() {
        md += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {} |\n",
            classes[c], s.precision, s.recall, s.f1, s.support
        );
    }
    let (p, r, f) = best.confusion.macro_scores();
    md += &format!(
        "| macro average | {p:.3} | {r:.3} | {f:.3} | {} |\n",
        best.confusion.total()
    );
    md
}
