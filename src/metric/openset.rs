//! Open-set rejection: an image is "unknown" when it lies farther from its nearest gallery
//! image than that class's known images usually do. Each class gets a distance threshold
//! calibrated on images the network was not trained on (the validation split, or images
//! enrolled later), at a target fraction of known images accepted. Also the scores an
//! open-set evaluation reports: AUROC and the false-positive rate at 95% true-positive rate.

use serde::{Deserialize, Serialize};

use rayon::prelude::*;

use crate::cpu::reference::pairwise_distance;
use crate::metric::knn::{centroids, Neighbour};

/// Fewer calibration images than this and a class takes the pooled threshold: a quantile
/// read from a handful of distances is mostly noise.
pub const MIN_CALIBRATION: usize = 10;

/// Where one class's threshold came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum ThresholdSource {
    /// The quantile of this class's validation images (those whose nearest class it is).
    Validation { images: usize },
    /// Too few images of its own (`images` < MIN_CALIBRATION): the pooled threshold.
    Pooled { images: usize },
    /// Leave-one-out distances among images enrolled after training.
    Enrolled { images: usize },
}

impl ThresholdSource {
    pub fn describe(&self) -> String {
        match self {
            ThresholdSource::Validation { images } => format!("{images} validation images"),
            ThresholdSource::Pooled { images } => format!(
                "pooled over all classes (only {images} image(s) of its own, under {MIN_CALIBRATION})"
            ),
            ThresholdSource::Enrolled { images } => {
                format!("leave-one-out over {images} enrolled images")
            }
        }
    }
}

/// Per-class thresholds on the squared distance to the nearest gallery image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// Target fraction of known images accepted (`--known-recall`).
    pub known_recall: f64,
    /// `[classes]`: an image whose nearest gallery image has class c is unknown beyond
    /// `thresholds[c]`.
    pub thresholds: Vec<f32>,
    /// `[classes]`
    pub sources: Vec<ThresholdSource>,
    /// The quantile over every calibration image, whatever its class: the fallback.
    pub pooled: f32,
    pub pooled_images: usize,
}

/// The distance below which a new image falls with probability `recall`, from a sample of
/// distances: the quantile at plotting position recall * (n + 1), interpolated between order
/// statistics. Read at r * n instead, a new image is rejected more often than 1 - r (by
/// about 1 / (n + 1) of the sample, several points for a rare class); at r * (n + 1) the
/// expected acceptance is r. None for an empty sample.
pub fn quantile(distances: &[f32], recall: f64) -> Option<f32> {
    let mut v: Vec<f32> = distances
        .iter()
        .copied()
        .filter(|d| d.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    let pos = (recall * (n + 1) as f64).clamp(1.0, n as f64); // 1-based
    let lo = pos.floor() as usize;
    let frac = (pos - lo as f64) as f32;
    let a = v[lo - 1];
    let b = v[lo.min(n - 1)];
    Some(a + frac * (b - a))
}

/// Calibrates one threshold per class from calibration images' nearest neighbours in the
/// gallery (`nn`, one per image, e.g. the validation split against the training gallery):
/// each class from the images whose nearest gallery image has that class, so the rule
/// `predict` applies rejects about 1 - `known_recall` of each class's images. A class with
/// fewer than MIN_CALIBRATION such images takes the quantile pooled over all of them.
/// None when there is no calibration image at all.
pub fn calibrate(nn: &[Neighbour], classes: usize, known_recall: f64) -> Option<Rejection> {
    let pairs: Vec<(u32, f32)> = nn.iter().map(|n| (n.nearest_label, n.distance)).collect();
    calibrate_pairs(&pairs, classes, known_recall)
}

/// `calibrate` from (nearest class, distance) pairs, whatever rule gave them.
pub fn calibrate_pairs(nn: &[(u32, f32)], classes: usize, known_recall: f64) -> Option<Rejection> {
    let all: Vec<f32> = nn.iter().map(|n| n.1).collect();
    let pooled = quantile(&all, known_recall)?;
    let mut thresholds = Vec::with_capacity(classes);
    let mut sources = Vec::with_capacity(classes);
    for c in 0..classes as u32 {
        let own: Vec<f32> = nn.iter().filter(|n| n.0 == c).map(|n| n.1).collect();
        if own.len() >= MIN_CALIBRATION {
            thresholds.push(quantile(&own, known_recall).expect("non-empty"));
            sources.push(ThresholdSource::Validation { images: own.len() });
        } else {
            thresholds.push(pooled);
            sources.push(ThresholdSource::Pooled { images: own.len() });
        }
    }
    Some(Rejection {
        known_recall,
        thresholds,
        sources,
        pooled,
        pooled_images: all.len(),
    })
}

/// Relative slack of the unknown decision: far above the devices' rounding differences
/// (about 1e-6), far below any threshold's own uncertainty.
pub const THRESHOLD_SLACK: f32 = 1e-4;

impl Rejection {
    /// How far beyond its class's threshold an image lies: > 1 is unknown. The open-set
    /// score, comparable across classes.
    pub fn score(&self, nearest_label: u32, distance: f32) -> f32 {
        distance / self.thresholds[nearest_label as usize].max(f32::MIN_POSITIVE)
    }

    /// Beyond the threshold by more than THRESHOLD_SLACK: a calibration image can sit on its
    /// class's threshold exactly, and the CPU and GPU compute its distance a few ulps apart.
    pub fn is_unknown(&self, nearest_label: u32, distance: f32) -> bool {
        distance > self.thresholds[nearest_label as usize] * (1.0 + THRESHOLD_SLACK)
    }

    /// Checks the fields against each other and against the model's class count.
    pub fn check(&self, classes: usize) -> std::result::Result<(), String> {
        if !(self.known_recall > 0.0 && self.known_recall < 1.0) {
            return Err(format!(
                "rejection.known_recall {}: outside (0, 1)",
                self.known_recall
            ));
        }
        if self.thresholds.len() != classes || self.sources.len() != classes {
            return Err(format!(
                "rejection: {} thresholds and {} sources for {classes} classes",
                self.thresholds.len(),
                self.sources.len()
            ));
        }
        let ok = |t: f32| t.is_finite() && t >= 0.0;
        if let Some(i) = self.thresholds.iter().position(|&t| !ok(t)) {
            return Err(format!(
                "rejection.thresholds[{i}] {}: not a distance",
                self.thresholds[i]
            ));
        }
        if !ok(self.pooled) {
            return Err(format!("rejection.pooled {}: not a distance", self.pooled));
        }
        Ok(())
    }
}

/// Ways to give an image a class and a distance to hold against that class's threshold,
/// compared by `evaluate --open-set` (predict applies `Nearest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreRule {
    /// The nearest gallery image's class and distance, over that class's threshold.
    Nearest,
    /// The same distance over one threshold pooled over all classes.
    NearestPooled,
    /// The nearest image's class; the mean distance to that class's `MEAN_OF` nearest
    /// images (a lone look-alike gallery image pulls an unknown in less).
    MeanOfNearest,
    /// The nearest class centroid and the distance to it.
    Centroid,
}

/// Gallery images of the nearest class averaged by `ScoreRule::MeanOfNearest`.
pub const MEAN_OF: usize = 5;

impl ScoreRule {
    pub const ALL: [ScoreRule; 4] = [
        ScoreRule::Nearest,
        ScoreRule::NearestPooled,
        ScoreRule::MeanOfNearest,
        ScoreRule::Centroid,
    ];

    pub fn describe(self) -> String {
        match self {
            ScoreRule::Nearest => "nearest image / its class's threshold".into(),
            ScoreRule::NearestPooled => "nearest image / one pooled threshold".into(),
            ScoreRule::MeanOfNearest => {
                format!("mean of the nearest class's {MEAN_OF} nearest images / its threshold")
            }
            ScoreRule::Centroid => "nearest centroid / its class's threshold".into(),
        }
    }

    /// (class, squared distance) of each query `[q, d]` against a gallery `[g, d]` with
    /// labels `[g]` in `0..classes`. `NearestPooled` gives every query class 0, so that
    /// `calibrate_pairs(.., 1, ..)` pools one threshold.
    pub fn distances(
        self,
        gallery: &[f32],
        labels: &[u32],
        queries: &[f32],
        d: usize,
        classes: usize,
    ) -> Vec<(u32, f32)> {
        if self == ScoreRule::Centroid {
            let cent = centroids(gallery, labels, d, classes);
            return queries
                .par_chunks(d)
                .map(|x| {
                    let mut row = vec![0.0; classes];
                    pairwise_distance(&mut row, x, &cent, 1, classes, d);
                    let c = (0..classes)
                        .filter(|&j| !row[j].is_nan())
                        .min_by(|&a, &b| row[a].total_cmp(&row[b]))
                        .unwrap_or(0);
                    (c as u32, row[c])
                })
                .collect();
        }
        let g = labels.len();
        queries
            .par_chunks(d)
            .map(|x| {
                let mut row = vec![0.0; g];
                pairwise_distance(&mut row, x, gallery, 1, g, d);
                let near = (0..g)
                    .min_by(|&a, &b| row[a].total_cmp(&row[b]).then(a.cmp(&b)))
                    .expect("a gallery image");
                let c = labels[near];
                match self {
                    ScoreRule::Nearest => (c, row[near]),
                    ScoreRule::NearestPooled => (0, row[near]),
                    _ => {
                        let mut own: Vec<f32> =
                            (0..g).filter(|&j| labels[j] == c).map(|j| row[j]).collect();
                        let k = MEAN_OF.min(own.len());
                        own.select_nth_unstable_by(k - 1, f32::total_cmp);
                        (c, own[..k].iter().sum::<f32>() / k as f32)
                    }
                }
            })
            .collect()
    }
}

/// Area under the ROC curve of telling unknown images (positives) from known ones by a
/// score that is higher for unknowns: the probability that a random unknown image scores
/// above a random known one, ties counted half. None when either side is empty.
pub fn auroc(known: &[f32], unknown: &[f32]) -> Option<f64> {
    if known.is_empty() || unknown.is_empty() {
        return None;
    }
    // Rank-sum (Mann-Whitney U) with average ranks for ties: O(n log n).
    let mut all: Vec<(f32, bool)> = known
        .iter()
        .map(|&s| (s, false))
        .chain(unknown.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let (nk, nu) = (known.len() as f64, unknown.len() as f64);
    Some((rank_sum - nu * (nu + 1.0) / 2.0) / (nk * nu))
}

/// The fraction of unknown images accepted as known when the threshold accepts 95% of the
/// known ones (FPR@95TPR, known images as the positives, as in the OOD literature): lower is
/// better. None when either side is empty.
pub fn fpr_at_95_tpr(known: &[f32], unknown: &[f32]) -> Option<f64> {
    if known.is_empty() || unknown.is_empty() {
        return None;
    }
    let mut k = known.to_vec();
    k.sort_by(f32::total_cmp);
    // The smallest threshold that accepts (score <= t) at least 95% of the known images.
    let t = k[((0.95 * k.len() as f64).ceil() as usize).clamp(1, k.len()) - 1];
    Some(unknown.iter().filter(|&&s| s <= t).count() as f64 / unknown.len() as f64)
}

/// ROC points (false-positive rate, true-positive rate) with unknowns as the positives,
/// from the strictest threshold to the loosest; for the plot.
pub fn roc_curve(known: &[f32], unknown: &[f32]) -> Vec<(f64, f64)> {
    let mut all: Vec<(f32, bool)> = known
        .iter()
        .map(|&s| (s, false))
        .chain(unknown.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (nk, nu) = (known.len().max(1) as f64, unknown.len().max(1) as f64);
    let (mut fp, mut tp) = (0usize, 0usize);
    let mut out = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < all.len() {
        let s = all[i].0;
        while i < all.len() && all[i].0 == s {
            if all[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push((fp as f64 / nk, tp as f64 / nu));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn nb(label: u32, distance: f32) -> Neighbour {
        Neighbour {
            label,
            nearest_label: label,
            distance,
            votes: 1,
            agree: 1,
            k: 1,
        }
    }

    #[test]
    fn quantile_accepts_the_target_fraction_of_new_draws() {
        // Calibrate on n uniform draws, measure acceptance on many fresh ones: the plotting
        // position r (n + 1) makes the expected acceptance r, for small n too.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for n in [12usize, 30, 200] {
            let mut acc = 0.0;
            let trials = 2000;
            for _ in 0..trials {
                let cal: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
                // For U(0,1) the acceptance of a fresh draw is the threshold itself.
                acc += quantile(&cal, 0.9).unwrap() as f64;
            }
            let acc = acc / trials as f64;
            assert!((acc - 0.9).abs() < 0.01, "n {n}: acceptance {acc}");
        }
        assert_eq!(quantile(&[], 0.9), None);
        assert_eq!(quantile(&[2.0], 0.9), Some(2.0));
    }

    #[test]
    fn small_classes_take_the_pooled_threshold_and_say_so() {
        let mut nn: Vec<Neighbour> = (0..40).map(|i| nb(0, i as f32 / 40.0)).collect();
        nn.extend((0..3).map(|i| nb(1, 5.0 + i as f32)));
        let r = calibrate(&nn, 3, 0.95).unwrap();
        assert_eq!(r.sources[0], ThresholdSource::Validation { images: 40 });
        assert_eq!(r.sources[1], ThresholdSource::Pooled { images: 3 });
        assert_eq!(r.sources[2], ThresholdSource::Pooled { images: 0 });
        assert_eq!(r.thresholds[1], r.pooled);
        assert!(r.thresholds[0] < 1.0 && r.thresholds[0] > 0.9);
        assert_eq!(r.pooled_images, 43);
        assert!(r.check(3).is_ok());
        assert!(r.check(4).is_err());
        assert!(calibrate(&[], 3, 0.95).is_none());
    }

    #[test]
    fn score_rules_give_the_class_and_distance_they_describe() {
        // 1-d gallery: class 0 at 0, 1, 2, 3, 4, 10; class 1 at 20, 21.
        let gallery = [0.0, 1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 21.0];
        let labels = [0, 0, 0, 0, 0, 0, 1, 1];
        let q = [9.0, 19.0];
        let got = |r: ScoreRule| r.distances(&gallery, &labels, &q, 1, 2);
        assert_eq!(got(ScoreRule::Nearest), [(0, 1.0), (1, 1.0)]);
        assert_eq!(got(ScoreRule::NearestPooled), [(0, 1.0), (0, 1.0)]);
        // 9: class 0's five nearest are 10, 4, 3, 2, 1 -> (1 + 25 + 36 + 49 + 64) / 5.
        // 19: class 1 has two images -> (1 + 4) / 2.
        assert_eq!(got(ScoreRule::MeanOfNearest), [(0, 35.0), (1, 2.5)]);
        // Centroids 10/3 and 20.5.
        let c = got(ScoreRule::Centroid);
        assert_eq!((c[0].0, c[1].0), (0, 1));
        assert!((c[0].1 - (9.0f32 - 10.0 / 3.0).powi(2)).abs() < 1e-4);
        assert!((c[1].1 - 2.25).abs() < 1e-6);
    }

    #[test]
    fn auroc_matches_the_pair_count_and_fpr_reads_the_known_quantile() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // Rounded to force ties.
        let k: Vec<f32> = (0..57)
            .map(|_| (rng.random::<f32>() * 20.0).round())
            .collect();
        let u: Vec<f32> = (0..23)
            .map(|_| (rng.random::<f32>() * 20.0 + 6.0).round())
            .collect();
        let mut pairs = 0.0;
        for &a in &u {
            for &b in &k {
                pairs += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let want = pairs / (k.len() * u.len()) as f64;
        assert!((auroc(&k, &u).unwrap() - want).abs() < 1e-12);
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]), Some(1.0));
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]), Some(0.0));
        assert_eq!(auroc(&[], &[1.0]), None);
        // 20 known at 1..=20: 95% accepted at 19; unknowns at 18.5 and 30 -> half accepted.
        let known: Vec<f32> = (1..=20).map(|i| i as f32).collect();
        assert_eq!(fpr_at_95_tpr(&known, &[18.5, 30.0]), Some(0.5));
        let roc = roc_curve(&k, &u);
        assert_eq!(*roc.last().unwrap(), (1.0, 1.0));
        // The trapezoid area under the curve is the AUROC.
        let area: f64 = roc
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - want).abs() < 1e-9);
    }
}
