//! Open-set evaluation (`evaluate --open-set`): leave one class out. For each class u the
//! network is trained without u; u's images then play the part of a defect nobody has seen.
//! Per held-out class it reports how well the calibrated thresholds tell u from the known
//! classes (AUROC, FPR@95TPR), how many known test images they reject (against the
//! `known_recall` target), closed-set accuracy on the known classes, and what enrolling u
//! from a few images gives beside retraining with the same images.
//!
//! Splits, per held-out class: the known classes' images are split (stratified, seeded) into
//! a test part (`test_fraction`) and the rest, which is split again into training and a
//! calibration part (`val_fraction`, as `train` does). u's images are shuffled; the first
//! max(enrol_sizes) are the enrolment pool, the rest are u's test images. Test images are
//! never trained on, calibrated on or enrolled.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::split::stratified_split;
use crate::data::Dataset;
use crate::device::{open_engine, DeviceChoice};
use crate::metric::knn::knn;
use crate::metric::openset::{
    auroc, calibrate, calibrate_pairs, fpr_at_95_tpr, roc_curve, ScoreRule,
};
use crate::metric::scores::{mean_std, Confusion, Scores};
use crate::model::{init_params, Arch, ParamLayout};
use crate::train::{train, Progress, TrainConfig};
use crate::{Error, Result};

/// What a leave-one-class-out evaluation runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenSetConfig {
    /// Seed of the splits (training seeds derive from `train.seed` and the held-out class).
    pub seed: u64,
    /// Fraction of each known class kept for testing.
    pub test_fraction: f64,
    /// Fraction of the rest of each known class kept for calibrating the thresholds.
    pub val_fraction: f64,
    pub known_recall: f64,
    /// Gallery sizes the held-out class is enrolled with (ascending, distinct).
    pub enrol_sizes: Vec<usize>,
    /// Also retrain with the held-out class's enrolment pool, for comparison.
    pub retrain: bool,
    pub train: TrainConfig,
}

/// Closed-set 1-NN scores over every class's test images after the held-out class joined.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WithClass {
    /// Images of the held-out class in the gallery (enrolled, or trained on).
    pub images: usize,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    /// Recall of the held-out class.
    pub held_out_recall: f64,
    /// Enrolment: embedding the images and adding them. Retrain: training and embedding
    /// the gallery.
    pub seconds: f64,
}

/// How one score rule tells the held-out class from the known ones, its thresholds
/// calibrated on the same validation images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleResult {
    pub rule: ScoreRule,
    pub auroc: Option<f64>,
    pub fpr_at_95_tpr: Option<f64>,
    pub known_rejected: f64,
    pub unknown_rejected: f64,
}

/// One held-out class's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeldOut {
    /// Index into the dataset's classes.
    pub class: usize,
    pub name: String,
    pub known_test: usize,
    pub unknown_test: usize,
    /// Unknown (held-out) test images as the positives, score = distance to the nearest
    /// gallery image over that class's threshold. None when a side is empty.
    pub auroc: Option<f64>,
    pub fpr_at_95_tpr: Option<f64>,
    /// Fraction of known test images called unknown at the calibrated thresholds (the
    /// target is 1 - known_recall).
    pub known_rejected: f64,
    /// Fraction of held-out test images called unknown at the calibrated thresholds.
    pub unknown_rejected: f64,
    /// 1-NN on the known test images among the known classes.
    pub closed_set: Scores,
    /// (false-positive rate, true-positive rate) from strictest to loosest.
    pub roc: Vec<(f64, f64)>,
    pub enrolled: Vec<WithClass>,
    pub retrained: Option<WithClass>,
    /// Every score rule on the same embeddings (absent in results saved before them).
    #[serde(default)]
    pub rules: Vec<RuleResult>,
    pub train_seconds: f64,
    pub collapse: Option<String>,
}

/// Receives progress, and each held-out class's result as it finishes (for resume).
pub trait OpenSetObserver {
    fn training(&mut self, class: usize, what: &str) -> Box<dyn Progress + '_>;
    fn held_out_done(&mut self, r: &HeldOut) -> Result<()>;
}

/// `data` with class `u` moved to the last index (known classes keep their order).
fn held_out_last(data: &Dataset, u: usize) -> Dataset {
    let c = data.classes.len();
    let map = |l: u32| -> u32 {
        let l = l as usize;
        (if l == u {
            c - 1
        } else if l > u {
            l - 1
        } else {
            l
        }) as u32
    };
    let mut classes: Vec<String> = data
        .classes
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != u)
        .map(|(_, n)| n.clone())
        .collect();
    classes.push(data.classes[u].clone());
    Dataset {
        side: data.side,
        channels: data.channels,
        images: data.images.clone(),
        labels: data.labels.iter().map(|&l| map(l)).collect(),
        classes,
        paths: data.paths.clone(),
    }
}

/// Refuses settings the data cannot support, before any training.
pub fn check(data: &Dataset, cfg: &OpenSetConfig) -> Result<()> {
    let bad = |m: String| Err(Error::Input(m));
    if data.classes.len() < 3 {
        return bad(format!(
            "--open-set: {} classes; leaving one out needs at least three (two to train on)",
            data.classes.len()
        ));
    }
    if !(cfg.test_fraction > 0.0 && cfg.test_fraction < 0.9) {
        return bad(format!(
            "--open-set test fraction {}: outside (0, 0.9)",
            cfg.test_fraction
        ));
    }
    if cfg.enrol_sizes.windows(2).any(|w| w[0] >= w[1]) || cfg.enrol_sizes.contains(&0) {
        return bad(format!(
            "--enrol-sizes {:?}: positive, ascending, no repeats",
            cfg.enrol_sizes
        ));
    }
    let pool = cfg.enrol_sizes.last().copied().unwrap_or(0);
    for (name, n) in data.classes.iter().zip(data.class_counts()) {
        if n < pool + 1 {
            return bad(format!(
                "--enrol-sizes {pool}: class {name:?} has {n} images; held out, it needs {pool} to enrol and one to test"
            ));
        }
        if n < 5 {
            return bad(format!(
                "--open-set: class {name:?} has {n} images; each class needs five (train, calibrate, test)"
            ));
        }
    }
    Ok(())
}

/// Runs the held-out classes not already in `done` and returns all in class order.
pub fn leave_one_class_out(
    data: &Dataset,
    cfg: &OpenSetConfig,
    arch: &Arch,
    device: DeviceChoice,
    mut done: Vec<HeldOut>,
    observer: &mut dyn OpenSetObserver,
) -> Result<Vec<HeldOut>> {
    check(data, cfg)?;
    let pool_size = cfg.enrol_sizes.last().copied().unwrap_or(0);
    let retrain = cfg.retrain && pool_size > 0;
    let run = Loco {
        data,
        cfg,
        arch,
        device,
    };
    for u in 0..data.classes.len() {
        // A finished class is skipped; one saved without its retrain gets only that.
        let prior = done.iter().position(|d| d.class == u);
        if prior.is_some_and(|i| done[i].retrained.is_some() || !retrain) {
            continue;
        }
        let split = run.split(u, pool_size);
        let mut r = match prior {
            Some(i) => done.swap_remove(i),
            None => run.without(u, &split, observer)?,
        };
        if retrain {
            // A network of its own: the test images are embedded by it, not by the model
            // trained without the class.
            let mut with_pool = split.known_set.clone();
            with_pool.classes = split.classes.clone();
            let with_pool = with_pool.joined(&split.pool_set);
            let fitted = run.fit(u, &with_pool, "retrain with it", observer)?;
            let (mut e2, g, s) = (fitted.engine, fitted.gallery, fitted.seconds);
            let q2 = e2.embed(&split.test_all.images)?;
            r.retrained = Some(run.with_class(&split, &g, &with_pool.labels, &q2, pool_size, s));
        }
        observer.held_out_done(&r)?;
        done.push(r);
    }
    done.sort_by_key(|r| r.class);
    Ok(done)
}

/// What every held-out class of one run shares.
struct Loco<'a> {
    data: &'a Dataset,
    cfg: &'a OpenSetConfig,
    arch: &'a Arch,
    device: DeviceChoice,
}

/// The images of one held-out class's run; the held-out class is the last label.
struct HeldOutSplit {
    /// Every class, the held-out one last.
    classes: Vec<String>,
    /// Known classes' training images (without the held-out class among the classes).
    known_set: Dataset,
    /// Known classes' validation images, which calibrate the thresholds.
    val_set: Dataset,
    known_test: Dataset,
    /// Held-out images not in the pool: the unknowns to reject.
    unknown_set: Dataset,
    /// Held-out images to enrol from (the largest enrol size, seeded).
    pool_set: Dataset,
    /// Known test images, then unknown ones.
    test_all: Dataset,
}

/// A network trained on one set, with its gallery.
struct Fitted {
    engine: Box<dyn crate::engine::Engine>,
    gallery: Vec<f32>,
    seconds: f64,
    collapse: Option<String>,
}

impl Loco<'_> {
    /// Class `u` held out: its enrolment pool first, the rest unknown test images; the known
    /// classes split into training, validation and test images.
    fn split(&self, u: usize, pool_size: usize) -> HeldOutSplit {
        let (cfg, c) = (self.cfg, self.data.classes.len());
        let all = held_out_last(self.data, u);
        let last = (c - 1) as u32;
        let mut unknown: Vec<usize> = (0..all.len()).filter(|&i| all.labels[i] == last).collect();
        unknown.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed ^ (u as u64 + 1)));
        let (pool, unknown_test) = unknown.split_at(pool_size);
        let known: Vec<usize> = (0..all.len()).filter(|&i| all.labels[i] != last).collect();
        let known_labels: Vec<u32> = known.iter().map(|&i| all.labels[i]).collect();
        let (rest, test) = stratified_split(&known_labels, c - 1, cfg.test_fraction, cfg.seed);
        let rest_labels: Vec<u32> = rest.iter().map(|&j| known_labels[j]).collect();
        let (fit, val) = stratified_split(&rest_labels, c - 1, cfg.val_fraction, cfg.seed);
        let pick =
            |js: &[usize], from: &[usize]| -> Vec<usize> { js.iter().map(|&j| from[j]).collect() };
        let rest_idx = pick(&rest, &known);
        let (train_idx, val_idx) = (pick(&fit, &rest_idx), pick(&val, &rest_idx));
        let known_test_idx = pick(&test, &known);
        let mut known_set = all.subset(&train_idx);
        known_set.classes.pop(); // trained without the held-out class
        let known_test = all.subset(&known_test_idx);
        let unknown_set = all.subset(unknown_test);
        HeldOutSplit {
            classes: all.classes.clone(),
            val_set: all.subset(&val_idx),
            test_all: known_test.joined(&unknown_set),
            known_set,
            known_test,
            unknown_set,
            pool_set: all.subset(pool),
        }
    }

    /// Trains a network on `tr` with the fixed schedule (no model selection: the last epoch).
    fn fit(
        &self,
        u: usize,
        tr: &Dataset,
        what: &str,
        obs: &mut dyn OpenSetObserver,
    ) -> Result<Fitted> {
        let seed = self.cfg.train.seed.wrapping_add(u as u64);
        let params = init_params(self.arch, &ParamLayout::new(self.arch), seed);
        let (mut engine, _) = open_engine(self.device, self.arch, &params)?;
        let fixed = TrainConfig {
            patience: 0,
            ..self.cfg.train.clone()
        };
        let t0 = Instant::now();
        let outcome = {
            let mut p = obs.training(u, what);
            train(engine.as_mut(), tr, None, &fixed, p.as_mut())?
        };
        engine.set_params(&outcome.params)?;
        let gallery = engine.embed(&tr.images)?;
        Ok(Fitted {
            engine,
            gallery,
            seconds: t0.elapsed().as_secs_f64(),
            collapse: outcome.collapse,
        })
    }

    /// Every class's test images, the held-out class among them, by 1-NN against a gallery
    /// `g` in the same embedding space as the queries `test_q`.
    fn with_class(
        &self,
        split: &HeldOutSplit,
        g: &[f32],
        labels: &[u32],
        test_q: &[f32],
        images: usize,
        seconds: f64,
    ) -> WithClass {
        let c = self.data.classes.len();
        let pred: Vec<u32> = knn(g, labels, test_q, self.arch.embed_dim, 1, false)
            .iter()
            .map(|n| n.label)
            .collect();
        let conf = Confusion::from_labels(&split.test_all.labels, &pred, c);
        let s = Scores::of(&conf);
        WithClass {
            images,
            accuracy: s.accuracy,
            balanced_accuracy: s.balanced_accuracy,
            macro_f1: s.macro_f1,
            held_out_recall: conf.class_scores()[c - 1].recall,
            seconds,
        }
    }

    /// The network trained without class `u`: the held-out images scored as unknown against
    /// thresholds calibrated on the known validation images, then enrolled from the pool.
    fn without(
        &self,
        u: usize,
        split: &HeldOutSplit,
        observer: &mut dyn OpenSetObserver,
    ) -> Result<HeldOut> {
        let (cfg, c, d) = (self.cfg, self.data.classes.len(), self.arch.embed_dim);
        let known_set = &split.known_set;
        let mut fitted = self.fit(u, known_set, "without it", observer)?;
        let (engine, gallery) = (&mut fitted.engine, &fitted.gallery);
        let val_q = engine.embed(&split.val_set.images)?;
        let rejection = calibrate(
            &knn(gallery, &known_set.labels, &val_q, d, 1, false),
            c - 1,
            cfg.known_recall,
        )
        .ok_or_else(|| Error::Input("--open-set: no calibration images".into()))?;
        let score = |q: &[f32]| -> Vec<f32> {
            knn(gallery, &known_set.labels, q, d, 1, false)
                .iter()
                .map(|n| rejection.score(n.nearest_label, n.distance))
                .collect()
        };
        let known_q = engine.embed(&split.known_test.images)?;
        let unknown_q = engine.embed(&split.unknown_set.images)?;
        let (ks, us) = (score(&known_q), score(&unknown_q));
        let rejected = |s: &[f32]| s.iter().filter(|&&x| x > 1.0).count() as f64 / s.len() as f64;
        let mut rules = Vec::new();
        for rule in ScoreRule::ALL {
            let pairs = |q: &[f32]| rule.distances(gallery, &known_set.labels, q, d, c - 1);
            let classes = if rule == ScoreRule::NearestPooled {
                1
            } else {
                c - 1
            };
            let Some(rej) = calibrate_pairs(&pairs(&val_q), classes, cfg.known_recall) else {
                continue;
            };
            let score = |q: &[f32]| -> Vec<f32> {
                pairs(q)
                    .iter()
                    .map(|&(l, dist)| rej.score(l, dist))
                    .collect()
            };
            let (k, u) = (score(&known_q), score(&unknown_q));
            rules.push(RuleResult {
                rule,
                auroc: auroc(&k, &u),
                fpr_at_95_tpr: fpr_at_95_tpr(&k, &u),
                known_rejected: rejected(&k),
                unknown_rejected: rejected(&u),
            });
        }
        let closed: Vec<u32> = knn(gallery, &known_set.labels, &known_q, d, 1, false)
            .iter()
            .map(|n| n.label)
            .collect();
        let closed_set = Scores::of(&Confusion::from_labels(
            &split.known_test.labels,
            &closed,
            c - 1,
        ));
        let test_q = [known_q.as_slice(), &unknown_q].concat();
        let mut enrolled = Vec::new();
        for &n in &cfg.enrol_sizes {
            // What `glassnet enrol` does: embed the images, append them to the gallery.
            let t = Instant::now();
            let first_n: Vec<usize> = (0..n).collect();
            let e = engine.embed(&split.pool_set.subset(&first_n).images)?;
            let g = [gallery.as_slice(), &e].concat();
            let labels: Vec<u32> = known_set
                .labels
                .iter()
                .copied()
                .chain(std::iter::repeat_n((c - 1) as u32, n))
                .collect();
            let seconds = t.elapsed().as_secs_f64();
            enrolled.push(self.with_class(split, &g, &labels, &test_q, n, seconds));
        }
        Ok(HeldOut {
            class: u,
            name: self.data.classes[u].clone(),
            known_test: ks.len(),
            unknown_test: us.len(),
            auroc: auroc(&ks, &us),
            fpr_at_95_tpr: fpr_at_95_tpr(&ks, &us),
            known_rejected: rejected(&ks),
            unknown_rejected: rejected(&us),
            closed_set,
            roc: roc_curve(&ks, &us),
            enrolled,
            retrained: None,
            rules,
            train_seconds: fitted.seconds,
            collapse: fitted.collapse.take(),
        })
    }
}

/// Checks a held-out result read back on resume against this run's data and settings.
pub fn check_held_out(r: &HeldOut, u: usize, data: &Dataset, cfg: &OpenSetConfig) -> Result<()> {
    let bad = |m: String| Err(Error::Input(m));
    if r.class != u || data.classes.get(u) != Some(&r.name) {
        return bad(format!(
            "holds class {:?}, not {:?}",
            r.name, data.classes[u]
        ));
    }
    let n_u = data.class_counts()[u];
    let pool = cfg.enrol_sizes.last().copied().unwrap_or(0);
    if r.unknown_test != n_u - pool || r.enrolled.len() != cfg.enrol_sizes.len() {
        return bad("its test or enrolment sizes do not match this run's".into());
    }
    // Absent where wanted is fine: resume computes only the retrain.
    if r.retrained.is_some() && !(cfg.retrain && pool > 0) {
        return bad("retrain: present, and this run does not retrain".into());
    }
    Ok(())
}

/// report.md's open-set section.
pub fn report_markdown(source: &str, cfg: &OpenSetConfig, rows: &[HeldOut]) -> String {
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("-".to_string(), f);
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    let mut md = format!(
        "# glassnet evaluate --open-set\n\nData: {source}. Leave one class out: for each class the network is trained without it ({} epochs, recipe {:?}, fixed schedule), the per-class unknown thresholds are calibrated on a {:.0}% split of the known training images at known recall {}, and tested on {:.0}% of each known class (never trained or calibrated on) and the held-out class's images not used for enrolment. Score: distance to the nearest gallery image over that class's threshold; unknowns are the positives. Split seed {}.\n\n",
        cfg.train.epochs,
        cfg.train.recipe,
        cfg.val_fraction * 100.0,
        cfg.known_recall,
        cfg.test_fraction * 100.0,
        cfg.seed
    );
    md += "| held-out class | AUROC | FPR@95TPR | known rejected (target ";
    md += &format!("{:.0}%) | unknown rejected | closed-set accuracy | closed-set balanced | known / unknown test |\n|---|---|---|---|---|---|---|---|\n", (1.0 - cfg.known_recall) * 100.0);
    for r in rows {
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
            r.name,
            opt(r.auroc, |v| format!("{v:.3}")),
            opt(r.fpr_at_95_tpr, pct),
            pct(r.known_rejected),
            pct(r.unknown_rejected),
            pct(r.closed_set.accuracy),
            pct(r.closed_set.balanced_accuracy),
            r.known_test,
            r.unknown_test
        );
    }
    let m = |f: fn(&HeldOut) -> Option<f64>| {
        let v: Vec<f64> = rows.iter().filter_map(f).collect();
        mean_std(&v)
    };
    let (a, a_s) = m(|r| r.auroc);
    let (f, f_s) = m(|r| r.fpr_at_95_tpr);
    let (k, k_s) = m(|r| Some(r.known_rejected));
    let (un, un_s) = m(|r| Some(r.unknown_rejected));
    let (cs, cs_s) = m(|r| Some(r.closed_set.accuracy));
    md += &format!(
        "| **mean +- std** | {a:.3} +- {a_s:.3} | {:.1} +- {:.1}% | {:.1} +- {:.1}% | {:.1} +- {:.1}% | {:.1} +- {:.1}% | | |\n",
        f * 100.0, f_s * 100.0, k * 100.0, k_s * 100.0, un * 100.0, un_s * 100.0, cs * 100.0, cs_s * 100.0
    );
    for r in rows.iter().filter(|r| r.collapse.is_some()) {
        md += &format!("\nHeld out {}: {}\n", r.name, r.collapse.as_ref().unwrap());
    }
    if rows.iter().any(|r| !r.rules.is_empty()) {
        md += "\n## Score rules\n\nThe same embeddings and validation images, each rule's thresholds calibrated the same way; AUROC per held-out class, then the mean AUROC, mean FPR@95TPR and mean known / unknown rejection. The first rule is the one predict applies.\n\n| rule |";
        for r in rows {
            md += &format!(" {} |", r.name);
        }
        md += " mean AUROC | FPR@95TPR | known rejected | unknown rejected |\n|---|";
        md += &"---|".repeat(rows.len() + 4);
        md += "\n";
        for rule in ScoreRule::ALL {
            let of: Vec<&RuleResult> = rows
                .iter()
                .filter_map(|r| r.rules.iter().find(|x| x.rule == rule))
                .collect();
            if of.len() != rows.len() {
                continue;
            }
            md += &format!("| {} |", rule.describe());
            for x in &of {
                md += &format!(" {} |", opt(x.auroc, |v| format!("{v:.3}")));
            }
            let mean = |f: fn(&RuleResult) -> Option<f64>| {
                mean_std(&of.iter().filter_map(|x| f(x)).collect::<Vec<_>>()).0
            };
            md += &format!(
                " {:.3} | {} | {} | {} |\n",
                mean(|x| x.auroc),
                pct(mean(|x| x.fpr_at_95_tpr)),
                pct(mean(|x| Some(x.known_rejected))),
                pct(mean(|x| Some(x.unknown_rejected)))
            );
        }
    }
    if rows.iter().any(|r| !r.enrolled.is_empty()) {
        md += "\n## Enrolling the held-out class\n\nThe model trained without the class, with n of its images added to the gallery (what `glassnet enrol` does), against retraining from scratch with the largest n; 1-NN over the test images of every class, no rejection.\n\n| held-out class | gallery images | how | accuracy | balanced accuracy | macro-F1 | held-out recall | seconds |\n|---|---|---|---|---|---|---|---|\n";
        for r in rows {
            let lines = r
                .enrolled
                .iter()
                .map(|w| ("enrol", w))
                .chain(r.retrained.iter().map(|w| ("retrain", w)));
            for (how, w) in lines {
                md += &format!(
                    "| {} | {} | {how} | {} | {} | {:.3} | {} | {:.3} |\n",
                    r.name,
                    w.images,
                    pct(w.accuracy),
                    pct(w.balanced_accuracy),
                    w.macro_f1,
                    pct(w.held_out_recall),
                    w.seconds
                );
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_a_class_out_moves_it_last_and_keeps_the_others_in_order() {
        let data = Dataset {
            side: 1,
            channels: 1,
            images: vec![0.0, 1.0, 2.0, 3.0],
            labels: vec![0, 1, 2, 1],
            classes: vec!["a".into(), "b".into(), "c".into()],
            paths: Vec::new(),
        };
        let h = held_out_last(&data, 1);
        assert_eq!(h.classes, ["a", "c", "b"]);
        assert_eq!(h.labels, [0, 2, 1, 2]);
        let h = held_out_last(&data, 2);
        assert_eq!(h.classes, ["a", "b", "c"]);
        assert_eq!(h.labels, data.labels);
    }
}
