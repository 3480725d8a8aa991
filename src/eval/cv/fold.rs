//! Running the folds: per fold, each metric network trained and scored by 1-NN, 5-NN and
//! nearest centroid (with --good-class, its escape operating point calibrated on a held-back
//! part of the training fold), and each pixel or rule-feature baseline.

use std::time::Instant;

use super::{
    CvConfig, CvObserver, FoldResult, GoodConfig, GoodFold, Method, Mistake, Near, NetworkFold,
    RowResult, MISTAKE_NEIGHBOURS,
};
use crate::data::split::{at_most_per_class, stratified_folds, stratified_split};
use crate::data::Dataset;
use crate::device::{open_engine, DeviceChoice};
use crate::engine::tta::embed_views;
use crate::eval::baselines::{
    gamma_scale, gamma_scale_rows, pixel_knn, pixel_naive_bayes, pixel_svm, PixelGram,
};
use crate::metric::escape::{calibrate_bias, decide, good_margins, good_rates};
use crate::metric::knn::{centroids, knn, nearest_centroid, nearest_items};
use crate::metric::scores::Confusion;
use crate::model::{init_params, Arch, ParamLayout};
use crate::train::{train, EpochRecord, TrainConfig};
use crate::Result;

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
    let has = |m: Method| cfg.methods.contains(&m);
    // Distances between all images, once, on the chosen device (SVM and k-NN read them).
    let gram = if has(Method::Svm) || has(Method::Knn) {
        let params = init_params(head_arch, &ParamLayout::new(head_arch), 0);
        let (mut engine, _) = open_engine(device, head_arch, &params)?;
        Some(PixelGram::new(engine.as_mut(), data)?)
    } else {
        None
    };
    let rules = has(Method::Rules)
        .then(|| crate::eval::rules::rule_features_all(&data.images, data.channels, data.side));
    let run = Folds {
        data,
        whole_frame,
        cfg,
        head_arch,
        device,
        fold_of: stratified_folds(&data.labels, data.classes.len(), cfg.folds, cfg.seed),
        gram,
        rules,
    };
    for f in 0..cfg.folds {
        if done.iter().any(|d| d.fold == f) {
            continue;
        }
        let r = run.fold(f, observer)?;
        observer.fold_done(&r)?;
        done.push(r);
    }
    done.sort_by_key(|r| r.fold);
    Ok(done)
}

/// Dataset indices `(train, test)` of fold `f` given each image's fold: the test fold whole,
/// the training folds cut to `cfg.train_per_class` images per class where that is set (the
/// same choice for every method; the seed leaves out the size, so a smaller learning-curve
/// point's images are a subset of a larger one's).
pub fn fold_split(
    labels: &[u32],
    fold_of: &[usize],
    cfg: &CvConfig,
    f: usize,
) -> (Vec<usize>, Vec<usize>) {
    let test_idx: Vec<usize> = (0..labels.len()).filter(|&i| fold_of[i] == f).collect();
    let train_idx: Vec<usize> = (0..labels.len()).filter(|&i| fold_of[i] != f).collect();
    let train_idx = match cfg.train_per_class {
        Some(n) => at_most_per_class(&train_idx, labels, n, cfg.seed ^ f as u64),
        None => train_idx,
    };
    (train_idx, test_idx)
}

/// What every fold of one cross-validation shares.
struct Folds<'a> {
    data: &'a Dataset,
    whole_frame: Option<&'a Dataset>,
    cfg: &'a CvConfig,
    head_arch: &'a Arch,
    device: DeviceChoice,
    /// Fold of each image.
    fold_of: Vec<usize>,
    /// Pixel distances between all images (SVM and k-NN).
    gram: Option<PixelGram>,
    /// Rule features of all images `[n, RULE_FEATURES]`.
    rules: Option<Vec<f32>>,
}

/// One fold's images: dataset indices and the subsets they select.
struct Split<'a> {
    f: usize,
    train_idx: &'a [usize],
    test_idx: &'a [usize],
    tr: &'a Dataset,
    te: &'a Dataset,
}

/// Adds one report row: its test-fold predictions, fit and inference seconds.
type PushRow<'a> = dyn FnMut(&str, &[u32], f64, f64) + 'a;

impl Folds<'_> {
    fn has(&self, m: Method) -> bool {
        self.cfg.methods.contains(&m)
    }

    /// Every method of the run on fold `f`.
    fn fold(&self, f: usize, observer: &mut dyn CvObserver) -> Result<FoldResult> {
        let data = self.data;
        let classes = data.classes.len();
        let (train_idx, test_idx) = fold_split(&data.labels, &self.fold_of, self.cfg, f);
        let (tr, te) = (data.subset(&train_idx), data.subset(&test_idx));
        // The uncropped images of the same split, only when a row asks for them.
        let whole = self
            .whole_frame
            .filter(|_| self.has(Method::TripletWholeFrame) || self.has(Method::TripletViews))
            .map(|w| (w.subset(&train_idx), w.subset(&test_idx)));
        let views = whole
            .as_ref()
            .filter(|_| self.has(Method::TripletViews))
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
        for &method in &self.cfg.methods {
            let (tr, te) = match (method, &whole, &views) {
                (Method::TripletWholeFrame, Some((wt, we)), _) => (wt, we),
                (Method::TripletViews, _, Some(both)) => (both, &te),
                _ => (&tr, &te),
            };
            let split = Split {
                f,
                train_idx: &train_idx,
                test_idx: &test_idx,
                tr,
                te,
            };
            if method.objective().is_some() {
                networks.push(self.network(method, &split, observer, &mut push)?);
            } else {
                self.baseline(method, &split, &mut push)?;
            }
        }
        Ok(FoldResult {
            fold: f,
            test_labels: te.labels.clone(),
            train_counts: tr.class_counts(),
            rows,
            networks,
        })
    }

    /// A metric network trained on the fold (with --good-class, on all but a seeded part of
    /// it, kept back to calibrate the bias) and scored by 1-NN, 5-NN and nearest centroid.
    fn network(
        &self,
        method: Method,
        s: &Split,
        observer: &mut dyn CvObserver,
        push: &mut PushRow,
    ) -> Result<NetworkFold> {
        let (cfg, f, classes) = (self.cfg, s.f, self.data.classes.len());
        let (fit, cal): (Vec<usize>, Vec<usize>) = match &cfg.good {
            Some(gc) => stratified_split(
                &s.tr.labels,
                classes,
                gc.calibration_fraction,
                cfg.seed ^ (f as u64 + 1),
            ),
            None => ((0..s.tr.len()).collect(), Vec::new()),
        };
        let cal_set = cfg.good.as_ref().map(|_| s.tr.subset(&cal));
        let fit_set;
        let tr = if cfg.good.is_some() {
            fit_set = s.tr.subset(&fit);
            &fit_set
        } else {
            s.tr
        };
        // Gallery rows as dataset images (a gallery of both views repeats them).
        let gallery_idx: Vec<usize> = fit
            .iter()
            .map(|&r| s.train_idx[r % s.train_idx.len()])
            .collect();
        let mut net = self.fit_network(method, f, tr, s.te, observer)?;
        let d = net.dim;
        let p1 = neighbour_rows(
            method.rows(),
            &net.gallery,
            &net.queries,
            d,
            tr,
            classes,
            push,
            (net.train_s, net.embed_s),
        );
        // The same network, every image embedded as the mean of its training views. A
        // network trained on one view (the paper's recipe has no augmentation) gets no TTA
        // rows: they would repeat its plain rows under another name.
        let augment = method.network(self.head_arch, &cfg.train).1.augment;
        if cfg.tta && augment.variants() > 1 {
            let t = Instant::now();
            let g = embed_views(net.engine.as_mut(), &tr.images, augment)?;
            let fit_s = net.train_s + t.elapsed().as_secs_f64();
            let t = Instant::now();
            let q = embed_views(net.engine.as_mut(), &s.te.images, augment)?;
            let times = (fit_s, t.elapsed().as_secs_f64());
            neighbour_rows(method.tta_rows(), &g, &q, d, tr, classes, push, times);
        }
        let (g, q) = (&net.gallery, &net.queries);
        let mistakes = mistakes_of(
            g,
            &tr.labels,
            q,
            d,
            &s.te.labels,
            &p1,
            s.test_idx,
            &gallery_idx,
        );
        let good = match (&cfg.good, &cal_set) {
            (Some(gc), Some(cal_set)) => {
                let cq = net.engine.embed(&cal_set.images)?;
                let m = Margins {
                    gallery: &net.gallery,
                    gallery_labels: &tr.labels,
                    dim: d,
                };
                Some(m.good_fold(
                    gc,
                    f,
                    (&cq, &cal_set.labels),
                    (&net.queries, &s.te.labels),
                    &p1,
                )?)
            }
            _ => None,
        };
        Ok(NetworkFold {
            method,
            history: std::mem::take(&mut net.history),
            collapse: net.collapse.take(),
            embed_dim: d,
            test_embeddings: if f == 0 { net.queries } else { Vec::new() },
            predictions: p1,
            mistakes,
            good,
        })
    }

    /// Trains `method`'s network on `tr` with the fixed schedule (no model selection on the
    /// test fold: the last epoch is kept) and embeds `tr` and `te`.
    fn fit_network(
        &self,
        method: Method,
        f: usize,
        tr: &Dataset,
        te: &Dataset,
        observer: &mut dyn CvObserver,
    ) -> Result<FittedNetwork> {
        let (arch, method_cfg) = method.network(self.head_arch, &self.cfg.train);
        let params = init_params(
            &arch,
            &ParamLayout::new(&arch),
            self.cfg.train.seed.wrapping_add(f as u64),
        );
        let (mut engine, _) = open_engine(self.device, &arch, &params)?;
        let fold_cfg = TrainConfig {
            patience: 0,
            ..method_cfg
        };
        let t0 = Instant::now();
        let outcome = {
            let mut progress = observer.training(f, method);
            train(engine.as_mut(), tr, None, &fold_cfg, progress.as_mut())?
        };
        engine.set_params(&outcome.params)?;
        let gallery = engine.embed(&tr.images)?;
        let train_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let queries = engine.embed(&te.images)?;
        Ok(FittedNetwork {
            engine,
            gallery,
            queries,
            dim: arch.embed_dim,
            train_s,
            embed_s: t1.elapsed().as_secs_f64(),
            history: outcome.history,
            collapse: outcome.collapse,
        })
    }

    /// A pixel or rule-feature baseline's rows on the fold.
    fn baseline(&self, method: Method, s: &Split, push: &mut PushRow) -> Result<()> {
        let (cfg, train_idx, test_idx, labels) = (self.cfg, s.train_idx, s.test_idx, &s.tr.labels);
        match method {
            Method::Svm => {
                let gram = self.gram.as_ref().expect("gram computed for svm");
                let gamma = gamma_scale(self.data, train_idx);
                let p = pixel_svm(gram, gamma, cfg.svm_c, train_idx, labels, test_idx)?;
                push(
                    method.rows()[0],
                    &p.labels,
                    p.fit_seconds,
                    p.predict_seconds,
                );
            }
            Method::Knn => {
                let gram = self.gram.as_ref().expect("gram computed for knn");
                for (row, k) in method.rows().iter().zip([1, 5]) {
                    let p = pixel_knn(gram, train_idx, labels, test_idx, k);
                    push(row, &p.labels, p.fit_seconds, p.predict_seconds);
                }
            }
            Method::Rules => {
                use crate::eval::rules::{standardise, RULE_FEATURES};
                let mut feats = self.rules.clone().expect("rule features computed");
                standardise(&mut feats, RULE_FEATURES, train_idx);
                let gram = PixelGram::from_rows(&feats, RULE_FEATURES);
                let gamma = gamma_scale_rows(&feats, RULE_FEATURES, train_idx);
                let p = pixel_svm(&gram, gamma, cfg.svm_c, train_idx, labels, test_idx)?;
                push(
                    method.rows()[0],
                    &p.labels,
                    p.fit_seconds,
                    p.predict_seconds,
                );
            }
            Method::Nb => {
                let p = pixel_naive_bayes(self.data, train_idx, test_idx)?;
                push(
                    method.rows()[0],
                    &p.labels,
                    p.fit_seconds,
                    p.predict_seconds,
                );
            }
            Method::Triplet
            | Method::Siamese
            | Method::TripletWholeFrame
            | Method::TripletViews
            | Method::Paper => unreachable!("networks are not baselines"),
        }
        Ok(())
    }
}

/// A network trained on one fold, with its gallery `[train, dim]` and test embeddings
/// `[test, dim]`.
struct FittedNetwork {
    engine: Box<dyn crate::engine::Engine>,
    gallery: Vec<f32>,
    queries: Vec<f32>,
    dim: usize,
    /// Training plus embedding the gallery.
    train_s: f64,
    /// Embedding the test fold.
    embed_s: f64,
    history: Vec<EpochRecord>,
    collapse: Option<String>,
}

/// A network's three report rows (`rows`: 1-NN, 5-NN, nearest centroid) from gallery and
/// query embeddings `[n, dim]`; `(fit_s, embed_s)`: fitting and test-embedding seconds.
/// Returns the 1-NN predictions.
#[allow(clippy::too_many_arguments)]
fn neighbour_rows(
    rows: &[&str],
    gallery: &[f32],
    queries: &[f32],
    dim: usize,
    tr: &Dataset,
    classes: usize,
    push: &mut PushRow,
    (fit_s, embed_s): (f64, f64),
) -> Vec<u32> {
    let vote = |k: usize| -> (Vec<u32>, f64) {
        let t = Instant::now();
        let p = knn(gallery, &tr.labels, queries, dim, k, false)
            .iter()
            .map(|n| n.label)
            .collect();
        (p, t.elapsed().as_secs_f64())
    };
    let (p1, s1) = vote(1);
    push(rows[0], &p1, fit_s, embed_s + s1);
    let (p5, s5) = vote(5);
    push(rows[1], &p5, fit_s, embed_s + s5);
    let t = Instant::now();
    let pc = nearest_centroid(&centroids(gallery, &tr.labels, dim, classes), queries, dim);
    push(rows[2], &pc, fit_s, embed_s + t.elapsed().as_secs_f64());
    p1
}

/// d(nearest good) - d(nearest defect) against one gallery.
struct Margins<'a> {
    gallery: &'a [f32],
    gallery_labels: &'a [u32],
    dim: usize,
}

impl Margins<'_> {
    /// The bias calibrated on the defects of `cal` (embeddings, labels) for `gc.max_escape`,
    /// and the escapes and false alarms of `test` at plain 1-NN (`p1`) and at the bias.
    fn good_fold(
        &self,
        gc: &GoodConfig,
        f: usize,
        cal: (&[f32], &[u32]),
        test: (&[f32], &[u32]),
        p1: &[u32],
    ) -> Result<GoodFold> {
        let (g, gl, d) = (self.gallery, self.gallery_labels, self.dim);
        let defect_margins: Vec<f32> = good_margins(g, gl, cal.0, d, gc.class)
            .iter()
            .zip(cal.1)
            .filter(|(_, &l)| l != gc.class)
            .map(|(m, _)| m.0)
            .collect();
        let bias = calibrate_bias(&defect_margins, gc.max_escape).ok_or_else(|| {
            crate::Error::Input(format!(
                "--good-class: fold {}: no defect image to calibrate on",
                f + 1
            ))
        })?;
        let pc: Vec<u32> = good_margins(g, gl, test.0, d, gc.class)
            .iter()
            .map(|&(m, l)| decide(m, l, gc.class, bias))
            .collect();
        Ok(GoodFold {
            bias,
            calibration_defects: defect_margins.len(),
            default: good_rates(test.1, p1, gc.class),
            calibrated: good_rates(test.1, &pc, gc.class),
        })
    }
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
