//! Stratified k-fold cross-validation: the metric networks (triplet and Siamese: 1-NN, 5-NN
//! and nearest centroid in the embedding space) beside pixel baselines (RBF SVM, k-NN,
//! Gaussian naive Bayes) on the same folds and the same preprocessed pixels.

use serde::{Deserialize, Serialize};

use crate::data::split::stratified_folds;
use crate::data::Dataset;
use crate::metric::escape::GoodRates;
use crate::metric::scores::{mean_std, Confusion, Scores};
use crate::model::{Arch, Objective};
use crate::train::{EpochRecord, Progress, Recipe, TrainConfig};
use crate::Result;

mod fold;
pub use fold::{cross_validate, fold_split};

/// What `evaluate --methods` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The metric network trained with the triplet loss (the paper's method).
    Triplet,
    /// The same network trained as a Siamese pair classifier (the paper's Eq. 1).
    Siamese,
    /// RBF SVM on pixels (one-vs-one, C from --svm-c, gamma "scale").
    Svm,
    /// 1-NN and 5-NN on pixels.
    Knn,
    /// Gaussian naive Bayes on pixels.
    Nb,
    /// The paper's conventional approach: its Table 1 rule features (contour, blob and
    /// pixel-shift statistics) + RBF SVM.
    Rules,
    /// The triplet network on the whole frame, preprocessed without the crop (to measure
    /// what --crop gives; the same as triplet when --crop is off).
    TripletWholeFrame,
    /// The triplet network trained on both views of each training image, the crop and the
    /// whole frame (so a defect the crop misses has been seen whole, not only the clean
    /// frames), and tested through the crop as `predict` runs it.
    TripletViews,
    /// The paper's network and recipe (`--recipe paper`: flattened map, no normalisation,
    /// sigmoid head, margin 1, random triplets, no augmentation) on the same folds, whatever
    /// `--recipe` the other networks train with: the comparison in one report.
    Paper,
}

impl Method {
    /// What `evaluate` runs by default.
    pub const DEFAULT: [Method; 6] = [
        Method::Triplet,
        Method::Siamese,
        Method::Svm,
        Method::Knn,
        Method::Nb,
        Method::Rules,
    ];

    /// The report rows this method produces.
    pub fn rows(self) -> &'static [&'static str] {
        match self {
            Method::Triplet => &["triplet 1-NN", "triplet 5-NN", "triplet centroid"],
            Method::Siamese => &["siamese 1-NN", "siamese 5-NN", "siamese centroid"],
            Method::Svm => &["pixels SVM (RBF)"],
            Method::Knn => &["pixels 1-NN", "pixels 5-NN"],
            Method::Nb => &["pixels Gaussian NB"],
            Method::Rules => &["rule features SVM (RBF)"],
            Method::TripletWholeFrame => &[
                "triplet whole-frame 1-NN",
                "triplet whole-frame 5-NN",
                "triplet whole-frame centroid",
            ],
            Method::Paper => &[
                "paper network 1-NN",
                "paper network 5-NN",
                "paper network centroid",
            ],
            Method::TripletViews => &[
                "triplet both views 1-NN",
                "triplet both views 5-NN",
                "triplet both views centroid",
            ],
        }
    }

    /// The rows of a network method's test-time augmentation (`CvConfig::tta`): the same
    /// network, each image embedded as the mean over its training views.
    pub fn tta_rows(self) -> &'static [&'static str] {
        match self {
            Method::Triplet => &[
                "triplet TTA 1-NN",
                "triplet TTA 5-NN",
                "triplet TTA centroid",
            ],
            Method::Siamese => &[
                "siamese TTA 1-NN",
                "siamese TTA 5-NN",
                "siamese TTA centroid",
            ],
            Method::TripletWholeFrame => &[
                "triplet whole-frame TTA 1-NN",
                "triplet whole-frame TTA 5-NN",
                "triplet whole-frame TTA centroid",
            ],
            Method::Paper => &[
                "paper network TTA 1-NN",
                "paper network TTA 5-NN",
                "paper network TTA centroid",
            ],
            Method::TripletViews => &[
                "triplet both views TTA 1-NN",
                "triplet both views TTA 5-NN",
                "triplet both views TTA centroid",
            ],
            Method::Svm | Method::Knn | Method::Nb | Method::Rules => &[],
        }
    }

    fn objective(self) -> Option<Objective> {
        match self {
            Method::Triplet | Method::TripletWholeFrame | Method::TripletViews | Method::Paper => {
                Some(Objective::Triplet)
            }
            Method::Siamese => Some(Objective::Siamese),
            _ => None,
        }
    }

    /// The network and training settings this method trains with, given the run's:
    /// `Method::Paper` takes the paper's network and recipe, keeping only the run's input
    /// (side, planes), schedule length and seed; every other network method takes the run's.
    pub fn network(self, arch: &Arch, train: &TrainConfig) -> (Arch, TrainConfig) {
        let objective = self.objective().unwrap_or_default();
        if self != Method::Paper {
            let arch = Arch {
                objective,
                ..arch.clone()
            };
            return (arch, train.clone());
        }
        let mut paper = TrainConfig::preset(Recipe::Paper);
        paper.seed = train.seed;
        paper.epochs = train.epochs;
        let net = Arch {
            side: arch.side,
            in_channels: arch.in_channels,
            objective,
            ..Arch::reference(paper.head)
        };
        (net, paper)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Triplet => "triplet",
            Method::Siamese => "siamese",
            Method::Svm => "svm",
            Method::Knn => "knn",
            Method::Nb => "nb",
            Method::Rules => "rules",
            Method::TripletWholeFrame => "triplet-whole-frame",
            Method::TripletViews => "triplet-views",
            Method::Paper => "paper",
        }
    }
}

/// What a cross-validation runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvConfig {
    pub folds: usize,
    /// Seed of the fold assignment (training seeds derive from `train.seed` and the fold).
    pub seed: u64,
    pub methods: Vec<Method>,
    pub train: TrainConfig,
    /// SVM penalty.
    pub svm_c: f64,
    /// Learning-curve point (`--train-per-class`): every method fits on at most this many
    /// images of each class of the training folds (seeded, nested across sizes); the test
    /// fold is whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_per_class: Option<usize>,
    /// The defect-free class, when escapes and false alarms are reported (`--good-class`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good: Option<GoodConfig>,
    /// Also score each network with test-time augmentation (`--tta`): its rows beside the
    /// plain ones, from the same trained network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tta: bool,
}

/// `--good-class`: the networks train on part of each training fold and calibrate the
/// good/defect bias on the rest (`calibration_fraction`), so the bias never sees a test image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoodConfig {
    pub class: u32,
    pub max_escape: f64,
    pub calibration_fraction: f64,
}

/// A network's good-part operating point on one fold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoodFold {
    /// Calibrated bias on d_good - d_defect.
    pub bias: f32,
    pub calibration_defects: usize,
    /// Plain 1-NN (bias 0) on the test fold.
    pub default: GoodRates,
    /// At the calibrated bias on the test fold.
    pub calibrated: GoodRates,
}

/// One report row's result on one fold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RowResult {
    pub row: String,
    pub confusion: Confusion,
    /// Fitting (networks: training and embedding the gallery), per fold.
    pub train_seconds: f64,
    /// Classifying the test fold (networks: embedding it and the neighbour search).
    pub infer_seconds: f64,
}

/// A network's training record on one fold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkFold {
    pub method: Method,
    pub history: Vec<EpochRecord>,
    pub collapse: Option<String>,
    pub embed_dim: usize,
    /// Test embeddings `[test, embed_dim]`, kept for the first fold's t-SNE picture only.
    pub test_embeddings: Vec<f32>,
    /// 1-NN predictions for the test images.
    pub predictions: Vec<u32>,
    /// The test images 1-NN got wrong, with their nearest gallery images (empty in folds
    /// saved before reports listed them).
    #[serde(default)]
    pub mistakes: Vec<Mistake>,
    /// With `--good-class`.
    #[serde(default)]
    pub good: Option<GoodFold>,
}

/// How many gallery neighbours a report shows beside each mistake.
pub const MISTAKE_NEIGHBOURS: usize = 5;

/// A misclassified test image. Image indices are into the evaluated dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mistake {
    pub image: usize,
    pub actual: u32,
    pub predicted: u32,
    /// The nearest gallery (training) images, nearest first.
    pub neighbours: Vec<Near>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Near {
    pub image: usize,
    pub label: u32,
    /// Squared distance in the embedding space.
    pub distance: f32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub test_labels: Vec<u32>,
    /// Training images per class the methods fitted on (empty in folds saved before).
    #[serde(default)]
    pub train_counts: Vec<usize>,
    pub rows: Vec<RowResult>,
    pub networks: Vec<NetworkFold>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RowSummary {
    pub row: String,
    pub accuracy: (f64, f64),
    pub balanced_accuracy: (f64, f64),
    pub macro_f1: (f64, f64),
    /// Summed over folds: rows actual, columns predicted.
    pub confusion: Confusion,
    pub train_seconds_per_fold: f64,
    pub infer_ms_per_image: f64,
}

/// Mean +- std over folds of each row, the summed confusion matrices and mean times.
pub fn summarise(folds: &[FoldResult], classes: usize) -> Vec<RowSummary> {
    let Some(first) = folds.first() else {
        return Vec::new();
    };
    first
        .rows
        .iter()
        .enumerate()
        .map(|(m, row)| {
            let scores: Vec<Scores> = folds
                .iter()
                .map(|f| Scores::of(&f.rows[m].confusion))
                .collect();
            let mut total = Confusion::new(classes);
            for f in folds {
                total.merge(&f.rows[m].confusion);
            }
            let pick = |g: fn(&Scores) -> f64| mean_std(&scores.iter().map(g).collect::<Vec<_>>());
            let images: usize = folds.iter().map(|f| f.test_labels.len()).sum();
            let infer: f64 = folds.iter().map(|f| f.rows[m].infer_seconds).sum();
            RowSummary {
                row: row.row.clone(),
                accuracy: pick(|s| s.accuracy),
                balanced_accuracy: pick(|s| s.balanced_accuracy),
                macro_f1: pick(|s| s.macro_f1),
                confusion: total,
                train_seconds_per_fold: folds.iter().map(|f| f.rows[m].train_seconds).sum::<f64>()
                    / folds.len() as f64,
                infer_ms_per_image: infer * 1e3 / images.max(1) as f64,
            }
        })
        .collect()
}

/// Receives what cross-validation is doing, for the progress display and for `--resume`.
pub trait CvObserver {
    /// A progress sink for training `method` on `fold` (0-based).
    fn training(&mut self, fold: usize, method: Method) -> Box<dyn Progress + '_>;
    /// A fold has finished (saved here so an interrupted run can resume).
    fn fold_done(&mut self, fold: &FoldResult) -> Result<()>;
}

/// Every fold's dataset indices `(train, test)`, as `cross_validate` runs them: what another
/// tool needs to repeat the run on the same images (`evaluate` writes them to split.json).
pub fn splits(data: &Dataset, cfg: &CvConfig) -> Vec<(Vec<usize>, Vec<usize>)> {
    let fold_of = stratified_folds(&data.labels, data.classes.len(), cfg.folds, cfg.seed);
    (0..cfg.folds)
        .map(|f| fold_split(&data.labels, &fold_of, cfg, f))
        .collect()
}

/// Checks that a fold result read back on resume is fold `f` of this run: its test images
/// are the ones the split puts in fold `f`, and every confusion matrix counts exactly them.
pub fn check_fold(r: &FoldResult, f: usize, data: &Dataset, cfg: &CvConfig) -> Result<()> {
    let classes = data.classes.len();
    let bad = |what: String| Err(crate::Error::Input(what));
    if r.fold != f {
        return bad(format!("holds fold {}, not fold {}", r.fold + 1, f + 1));
    }
    let fold_of = stratified_folds(&data.labels, classes, cfg.folds, cfg.seed);
    let want: Vec<u32> = (0..data.len())
        .filter(|&i| fold_of[i] == f)
        .map(|i| data.labels[i])
        .collect();
    if r.test_labels != want {
        return bad(format!(
            "test_labels: {} images that are not the {} of fold {} of this split",
            r.test_labels.len(),
            want.len(),
            f + 1
        ));
    }
    let mut per_class = vec![0u64; classes];
    for &l in &want {
        per_class[l as usize] += 1;
    }
    if r.rows.is_empty() {
        return bad("rows: none".into());
    }
    for row in &r.rows {
        let c = &row.confusion;
        let sums: Vec<u64> = c
            .counts
            .chunks(classes.max(1))
            .map(|r| r.iter().sum())
            .collect();
        if c.classes != classes || c.counts.len() != classes * classes || sums != per_class {
            return bad(format!(
                "row {:?}: its confusion matrix does not count the fold's {} test images by class",
                row.row,
                want.len()
            ));
        }
        if !(row.train_seconds.is_finite() && row.infer_seconds.is_finite()) {
            return bad(format!("row {:?}: times are not numbers", row.row));
        }
    }
    // The report reads the networks' predictions and (t-SNE) embeddings by test image.
    for n in &r.networks {
        let emb = n.test_embeddings.len();
        if n.predictions.len() != want.len()
            || n.predictions.iter().any(|&p| p as usize >= classes)
            || (emb != 0 && emb != want.len() * n.embed_dim)
            || n.test_embeddings.iter().any(|v| !v.is_finite())
        {
            return bad(format!(
                "networks {:?}: predictions or embeddings that do not match the fold's {} test images",
                n.method,
                want.len()
            ));
        }
        // Mistakes are listed by the report: each must be a wrong prediction of this fold.
        let test_idx: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] == f).collect();
        let wrong = (0..want.len()).filter(|&i| n.predictions[i] != want[i]);
        let listed = n.mistakes.iter().map(|m| (m.image, m.actual, m.predicted));
        let expect = wrong.map(|i| (test_idx[i], want[i], n.predictions[i]));
        let near_ok = n.mistakes.iter().all(|m| {
            m.neighbours
                .iter()
                .all(|x| x.image < data.len() && x.label == data.labels[x.image])
        });
        if !n.mistakes.is_empty() && (!listed.eq(expect) || !near_ok) {
            return bad(format!(
                "networks {:?}: mistakes that are not this fold's wrong predictions",
                n.method
            ));
        }
    }
    Ok(())
}

/// report.md: scores per row (mean +- std over folds) with times, then per row the summed
/// confusion matrix (the paper's Table 4) and per-class precision / recall / F1 (Table 5).
pub fn report_markdown(
    source: &str,
    classes: &[String],
    cfg: &CvConfig,
    summary: &[RowSummary],
    notes: &[String],
) -> String {
    let pct = |(m, s): (f64, f64)| format!("{:.2} +- {:.2}%", m * 100.0, s * 100.0);
    let mut md = format!(
        "# glassnet evaluate\n\nData: {source}. Stratified {}-fold cross-validation (fold seed {}); per fold the networks are trained on the other folds with a fixed schedule ({} epochs, recipe {:?}, no model selection on the test fold) and the baselines fit on the same training images. Pixels are the preprocessed network inputs. Mean +- standard deviation over folds.\n\n",
        cfg.folds, cfg.seed, cfg.train.epochs, cfg.train.recipe
    );
    if cfg.methods.contains(&Method::Paper) {
        md += &format!("The paper network rows: the paper's network (flattened last map, no normalisation, sigmoid head) trained with the paper's recipe (margin 1, random triplets, Adam 1e-3 constant, no augmentation) for the same {} epochs and seed, on the same folds and preprocessed images.\n\n", cfg.train.epochs);
    }
    if let Some(n) = cfg.train_per_class {
        md += &format!("Learning-curve point: every method fits on at most {n} images per class of the training folds (the same seeded choice for every method; smaller sizes are subsets of larger ones); the test folds are whole.\n\n");
    }
    md += "| method | accuracy | balanced accuracy | macro-F1 | train s / fold | inference ms / image |\n|---|---|---|---|---|---|\n";
    for s in summary {
        md += &format!(
            "| {} | {} | {} | {:.3} +- {:.3} | {:.1} | {:.3} |\n",
            s.row,
            pct(s.accuracy),
            pct(s.balanced_accuracy),
            s.macro_f1.0,
            s.macro_f1.1,
            s.train_seconds_per_fold,
            s.infer_ms_per_image
        );
    }
    for n in notes {
        md += &format!("\n{n}\n");
    }
    for s in summary {
        md += &format!(
            "\n## {}\n\nConfusion matrix summed over folds (rows actual, columns predicted):\n\n| actual \\ predicted | {} |\n|---|{}\n",
            s.row,
            classes.join(" | "),
            "---|".repeat(classes.len())
        );
        for (a, name) in classes.iter().enumerate() {
            let row: Vec<String> = (0..classes.len())
                .map(|p| s.confusion.get(a, p).to_string())
                .collect();
            md += &format!("| {name} | {} |\n", row.join(" | "));
        }
        md += "\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n";
        for (c, sc) in s.confusion.class_scores().iter().enumerate() {
            md += &format!(
                "| {} | {:.3} | {:.3} | {:.3} | {} |\n",
                classes[c], sc.precision, sc.recall, sc.f1, sc.support
            );
        }
        let (p, r, f) = s.confusion.macro_scores();
        md += &format!(
            "| macro average | {p:.3} | {r:.3} | {f:.3} | {} |\n",
            s.confusion.total()
        );
    }
    md
}

/// The `--good-class` section of report.md: per network, escapes (defects called good) and
/// false alarms (good parts called a defect) on the test folds at plain 1-NN and at the bias
/// calibrated for `max_escape`, pooled over folds and as mean +- std.
pub fn good_markdown(classes: &[String], cfg: &CvConfig, folds: &[FoldResult]) -> Option<String> {
    let gc = cfg.good.as_ref()?;
    let mut md = format!(
        "\n## Good class {:?}: escapes and false alarms\n\nAn escape is a defect image called {0:?}; a false alarm is a {0:?} image called a defect. Per fold the networks train on {:.0}% of the training folds and the bias on d(nearest good) - d(nearest defect) is calibrated on the other {:.0}% for at most {:.1}% escapes (split conformal: the k-th smallest calibration defect margin, k = floor(target x (n + 1)); with n < 1 / target - 1 defects the smallest, which guarantees only 1 / (n + 1)); the test fold is never seen. Pooled: counts summed over folds; mean +- std over folds.\n\n| network | operating point | escape (pooled) | escape per fold | false alarm (pooled) | false alarm per fold | mean bias |\n|---|---|---|---|---|---|---|\n",
        classes[gc.class as usize],
        (1.0 - gc.calibration_fraction) * 100.0,
        gc.calibration_fraction * 100.0,
        gc.max_escape * 100.0
    );
    for &m in &cfg.methods {
        let per: Vec<&GoodFold> = folds
            .iter()
            .filter_map(|f| f.networks.iter().find(|n| n.method == m))
            .filter_map(|n| n.good.as_ref())
            .collect();
        if per.is_empty() {
            continue;
        }
        let bias = per.iter().map(|g| g.bias as f64).sum::<f64>() / per.len() as f64;
        for (point, pick, b) in [
            (
                "1-NN (bias 0)".to_string(),
                (|g: &GoodFold| g.default) as fn(&GoodFold) -> GoodRates,
                0.0,
            ),
            (
                format!("calibrated for {:.1}% escapes", gc.max_escape * 100.0),
                |g: &GoodFold| g.calibrated,
                bias,
            ),
        ] {
            let rates: Vec<GoodRates> = per.iter().map(|g| pick(g)).collect();
            let sum = |f: fn(&GoodRates) -> usize| rates.iter().map(f).sum::<usize>();
            let pooled = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
            let (e, es) = mean_std(&rates.iter().map(|r| r.escape).collect::<Vec<_>>());
            let (a, as_) = mean_std(&rates.iter().map(|r| r.false_alarm).collect::<Vec<_>>());
            md += &format!(
                "| {} | {point} | {:.2}% ({} / {}) | {:.2} +- {:.2}% | {:.2}% ({} / {}) | {:.2} +- {:.2}% | {b:.4} |\n",
                m.name(),
                pooled(sum(|r| r.escapes), sum(|r| r.defects)),
                sum(|r| r.escapes),
                sum(|r| r.defects),
                e * 100.0,
                es * 100.0,
                pooled(sum(|r| r.false_alarms), sum(|r| r.good)),
                sum(|r| r.false_alarms),
                sum(|r| r.good),
                a * 100.0,
                as_ * 100.0,
            );
        }
    }
    Some(md)
}
