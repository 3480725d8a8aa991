//! Stratified k-fold cross-validation: the metric networks (triplet and Siamese: 1-NN, 5-NN
//! and nearest centroid in the embedding space) beside pixel baselines (RBF SVM, k-NN,
//! Gaussian naive Bayes) on the same folds and the same preprocessed pixels.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::split::{stratified_folds, stratified_split};
use crate::data::Dataset;
use crate::device::{open_engine, DeviceChoice};
use crate::eval::baselines::{
    gamma_scale, gamma_scale_rows, pixel_knn, pixel_naive_bayes, pixel_svm, PixelGram,
};
use crate::metric::escape::{calibrate_bias, decide, good_margins, good_rates, GoodRates};
use crate::metric::knn::{centroids, knn, nearest_centroid, nearest_items};
use crate::metric::scores::{mean_std, Confusion, Scores};
use crate::model::{init_params, Arch, Objective, ParamLayout};
use crate::train::{train, EpochRecord, Progress, TrainConfig};
use crate::Result;

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
            Method::TripletViews => &[
                "triplet both views 1-NN",
                "triplet both views 5-NN",
                "triplet both views centroid",
            ],
        }
    }

    fn objective(self) -> Option<Objective> {
        match self {
            Method::Triplet | Method::TripletWholeFrame | Method::TripletViews => {
                Some(Objective::Triplet)
            }
            Method::Siamese => Some(Objective::Siamese),
            _ => None,
        }
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
    /// The defect-free class, when escapes and false alarms are reported (`--good-class`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good: Option<GoodConfig>,
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

/// The mistakes of 1-NN predictions `pred` for queries `[q, d]` against gallery `[g, d]`;
/// `test_idx` and `gallery_idx` map query and gallery rows to dataset images.
#[allow(clippy::too_many_arguments)]
fn mistakes_of(
    gallery: &[f32],
    gallery_labels: &[u32],
    queries: &[f32],
    d: usize,
    actual: &[u32],
    pred: &[u32],
    test_idx: &[usize],
    gallery_idx: &[usize],
) -> Vec<Mistake> {
    let wrong: Vec<usize> = (0..pred.len()).filter(|&i| pred[i] != actual[i]).collect();
    let q: Vec<f32> = wrong
        .iter()
        .flat_map(|&i| queries[i * d..(i + 1) * d].iter().copied())
        .collect();
    let near = nearest_items(gallery, &q, d, MISTAKE_NEIGHBOURS);
    wrong
        .iter()
        .zip(near)
        .map(|(&i, n)| Mistake {
            image: test_idx[i],
            actual: actual[i],
            predicted: pred[i],
            neighbours: n
                .into_iter()
                .map(|(j, distance)| Near {
                    image: gallery_idx[j],
                    label: gallery_labels[j],
                    distance,
                })
                .collect(),
        })
        .collect()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub test_labels: Vec<u32>,
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

/// Runs the folds of `cfg` not already in `done` (a resumed run's finished folds) and returns
/// all of them in fold order.
/// `whole_frame`: the same images preprocessed without the crop, for TripletWholeFrame and
/// TripletViews.
pub fn cross_validate(
    data: &Dataset,
    whole_frame: Option<&Dataset>,
    cfg: &CvConfig,
    head_arch: &Arch,
    device: DeviceChoice,
    mut done: Vec<FoldResult>,
    observer: &mut dyn CvObserver,
) -> Result<Vec<FoldResult>> {
    let classes = data.classes.len();
    let fold_of = stratified_folds(&data.labels, classes, cfg.folds, cfg.seed);
    let has = |m: Method| cfg.methods.contains(&m);
    // Distances between all images, once, on the chosen device (SVM and k-NN read them).
    let gram = if has(Method::Svm) || has(Method::Knn) {
        let params = init_params(head_arch, &ParamLayout::new(head_arch), 0);
        let (mut engine, _) = open_engine(device, head_arch, &params)?;
        Some(PixelGram::new(engine.as_mut(), data)?)
    } else {
        None
    };
    let rules =
        has(Method::Rules).then(|| crate::eval::rules::rule_features_all(&data.images, data.side));
    for f in 0..cfg.folds {
        if done.iter().any(|d| d.fold == f) {
            continue;
        }
        let test_idx: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] == f).collect();
        let train_idx: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] != f).collect();
        let (tr, te) = (data.subset(&train_idx), data.subset(&test_idx));
        // The uncropped images of the same split, only when a row asks for them.
        let whole = whole_frame
            .filter(|_| has(Method::TripletWholeFrame) || has(Method::TripletViews))
            .map(|w| (w.subset(&train_idx), w.subset(&test_idx)));
        let views = whole
            .as_ref()
            .filter(|_| has(Method::TripletViews))
            .map(|(wt, _)| tr.joined(wt));
        let mut rows = Vec::new();
        let mut networks = Vec::new();
        let mut push = |row: &str, pred: &[u32], train_s: f64, infer_s: f64| {
            rows.push(RowResult {
                row: row.to_string(),
                confusion: Confusion::from_labels(&te.labels, pred, classes),
                train_seconds: train_s,
                infer_seconds: infer_s,
            })
        };
        for &method in &cfg.methods {
            match method {
                Method::Triplet
                | Method::Siamese
                | Method::TripletWholeFrame
                | Method::TripletViews => {
                    let (tr, te) = match (method, &whole, &views) {
                        (Method::TripletWholeFrame, Some((wt, we)), _) => (wt, we),
                        (Method::TripletViews, _, Some(both)) => (both, &te),
                        _ => (&tr, &te),
                    };
                    // With --good-class a seeded part of the training fold is kept back to
                    // calibrate the bias; the network trains and searches on the rest.
                    let (fit, cal): (Vec<usize>, Vec<usize>) = match &cfg.good {
                        Some(gc) => stratified_split(
                            &tr.labels,
                            classes,
                            gc.calibration_fraction,
                            cfg.seed ^ (f as u64 + 1),
                        ),
                        None => ((0..tr.len()).collect(), Vec::new()),
                    };
                    let cal_set = cfg.good.as_ref().map(|_| tr.subset(&cal));
                    let fit_set;
                    let tr = if cfg.good.is_some() {
                        fit_set = tr.subset(&fit);
                        &fit_set
                    } else {
                        tr
                    };
                    // Gallery rows as dataset images (a gallery of both views repeats them).
                    let gallery_idx: Vec<usize> = fit
                        .iter()
                        .map(|&r| train_idx[r % train_idx.len()])
                        .collect();
                    let arch = Arch {
                        objective: method.objective().unwrap(),
                        ..head_arch.clone()
                    };
                    let params = init_params(
                        &arch,
                        &ParamLayout::new(&arch),
                        cfg.train.seed.wrapping_add(f as u64),
                    );
                    let (mut engine, _) = open_engine(device, &arch, &params)?;
                    // No model selection on the test fold: fixed schedule, last epoch.
                    let fold_cfg = TrainConfig {
                        patience: 0,
                        ..cfg.train.clone()
                    };
                    let t0 = Instant::now();
                    let outcome = {
                        let mut progress = observer.training(f, method);
                        train(engine.as_mut(), tr, None, &fold_cfg, progress.as_mut())?
                    };
                    engine.set_params(&outcome.params)?;
                    let d = arch.embed_dim;
                    let g = engine.embed(&tr.images)?;
                    let train_s = t0.elapsed().as_secs_f64();
                    let t1 = Instant::now();
                    let q = engine.embed(&te.images)?;
                    let embed_s = t1.elapsed().as_secs_f64();
                    let vote = |k: usize| -> (Vec<u32>, f64) {
                        let t = Instant::now();
                        let p = knn(&g, &tr.labels, &q, d, k, false)
                            .iter()
                            .map(|n| n.label)
                            .collect();
                        (p, t.elapsed().as_secs_f64())
                    };
                    let rows_of = method.rows();
                    let (p1, s1) = vote(1);
                    push(rows_of[0], &p1, train_s, embed_s + s1);
                    let (p5, s5) = vote(5);
                    push(rows_of[1], &p5, train_s, embed_s + s5);
                    let t2 = Instant::now();
                    let pc = nearest_centroid(&centroids(&g, &tr.labels, d, classes), &q, d);
                    push(
                        rows_of[2],
                        &pc,
                        train_s,
                        embed_s + t2.elapsed().as_secs_f64(),
                    );
                    let mistakes = mistakes_of(
                        &g,
                        &tr.labels,
                        &q,
                        d,
                        &te.labels,
                        &p1,
                        &test_idx,
                        &gallery_idx,
                    );
                    let good = match (&cfg.good, &cal_set) {
                        (Some(gc), Some(cal_set)) => {
                            let cq = engine.embed(&cal_set.images)?;
                            let defect_margins: Vec<f32> =
                                good_margins(&g, &tr.labels, &cq, d, gc.class)
                                    .iter()
                                    .zip(&cal_set.labels)
                                    .filter(|(_, &l)| l != gc.class)
                                    .map(|(m, _)| m.0)
                                    .collect();
                            let bias = calibrate_bias(&defect_margins, gc.max_escape).ok_or_else(
                                || {
                                    crate::Error::Input(format!(
                                        "--good-class: fold {}: no defect image to calibrate on",
                                        f + 1
                                    ))
                                },
                            )?;
                            let pc: Vec<u32> = good_margins(&g, &tr.labels, &q, d, gc.class)
                                .iter()
                                .map(|&(m, l)| decide(m, l, gc.class, bias))
                                .collect();
                            Some(GoodFold {
                                bias,
                                calibration_defects: defect_margins.len(),
                                default: good_rates(&te.labels, &p1, gc.class),
                                calibrated: good_rates(&te.labels, &pc, gc.class),
                            })
                        }
                        _ => None,
                    };
                    networks.push(NetworkFold {
                        method,
                        history: outcome.history,
                        collapse: outcome.collapse,
                        embed_dim: d,
                        test_embeddings: if f == 0 { q } else { Vec::new() },
                        predictions: p1,
                        mistakes,
                        good,
                    });
                }
                Method::Svm => {
                    let gram = gram.as_ref().expect("gram computed for svm");
                    let gamma = gamma_scale(data, &train_idx);
                    let p = pixel_svm(gram, gamma, cfg.svm_c, &train_idx, &tr.labels, &test_idx)?;
                    push(
                        method.rows()[0],
                        &p.labels,
                        p.fit_seconds,
                        p.predict_seconds,
                    );
                }
                Method::Knn => {
                    let gram = gram.as_ref().expect("gram computed for knn");
                    for (row, k) in method.rows().iter().zip([1, 5]) {
                        let p = pixel_knn(gram, &train_idx, &tr.labels, &test_idx, k);
                        push(row, &p.labels, p.fit_seconds, p.predict_seconds);
                    }
                }
                Method::Rules => {
                    use crate::eval::rules::{standardise, RULE_FEATURES};
                    let mut feats = rules.clone().expect("rule features computed");
                    standardise(&mut feats, RULE_FEATURES, &train_idx);
                    let gram = PixelGram::from_rows(&feats, RULE_FEATURES);
                    let gamma = gamma_scale_rows(&feats, RULE_FEATURES, &train_idx);
                    let p = pixel_svm(&gram, gamma, cfg.svm_c, &train_idx, &tr.labels, &test_idx)?;
                    push(
                        method.rows()[0],
                        &p.labels,
                        p.fit_seconds,
                        p.predict_seconds,
                    );
                }
                Method::Nb => {
                    let p = pixel_naive_bayes(data, &train_idx, &test_idx)?;
                    push(
                        method.rows()[0],
                        &p.labels,
                        p.fit_seconds,
                        p.predict_seconds,
                    );
                }
            }
        }
        let r = FoldResult {
            fold: f,
            test_labels: te.labels.clone(),
            rows,
            networks,
        };
        observer.fold_done(&r)?;
        done.push(r);
    }
    done.sort_by_key(|r| r.fold);
    Ok(done)
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
