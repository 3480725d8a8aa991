//! The good-part operating point. On a line one class is the defect-free part ("good") and
//! the costly mistake is a defect called good (an escape), not a good part called defective
//! (a false alarm). 1-NN calls a part good when its nearest good gallery image is nearer than
//! its nearest defect image: margin = d_good - d_defect < 0 (squared distances). A bias moves
//! that boundary, good iff margin < bias, calibrated on held-out defect images so that at
//! most `max_escape` of them would be called good.

use serde::{Deserialize, Serialize};

use crate::cpu::reference::pairwise_distance;

/// Per query: margin = (nearest good) - (nearest defect) squared distance, and the nearest
/// defect image's class. The gallery `[g, d]` must hold both good and defect images.
pub fn good_margins(
    gallery: &[f32],
    labels: &[u32],
    queries: &[f32],
    d: usize,
    good: u32,
) -> Vec<(f32, u32)> {
    let g = labels.len();
    let mut row = vec![0.0; g];
    queries
        .chunks(d)
        .map(|x| {
            pairwise_distance(&mut row, x, gallery, 1, g, d);
            let (mut dg, mut dd, mut ld) = (f32::INFINITY, f32::INFINITY, good);
            for (j, &l) in labels.iter().enumerate() {
                if l == good {
                    dg = dg.min(row[j]);
                } else if row[j] < dd {
                    (dd, ld) = (row[j], l);
                }
            }
            (dg - dd, ld)
        })
        .collect()
}

/// The bias for at most `max_escape` escapes, from the margins of held-out defect images:
/// the k-th smallest with k = floor(max_escape * (n + 1)) (split conformal: a new defect
/// exchangeable with these falls below it with probability at most k / (n + 1)). With too
/// few images for the target (k = 0) the smallest margin is used, and the guarantee is
/// 1 / (n + 1). None without defect images.
pub fn calibrate_bias(defect_margins: &[f32], max_escape: f64) -> Option<f32> {
    let mut m: Vec<f32> = defect_margins
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if m.is_empty() {
        return None;
    }
    m.sort_by(f32::total_cmp);
    let k = (max_escape * (m.len() + 1) as f64 + 1e-9).floor() as usize;
    Some(m[k.clamp(1, m.len()) - 1])
}

/// The class of a part with `margin` and nearest defect class `nearest_defect` at `bias`.
pub fn decide(margin: f32, nearest_defect: u32, good: u32, bias: f32) -> u32 {
    if margin < bias {
        good
    } else {
        nearest_defect
    }
}

/// A model's good-part operating point (metadata.json `good`): `train --good-class` records
/// it, predict and serve apply it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoodPoint {
    /// Index into the model's classes.
    pub class: u32,
    pub max_escape: f64,
    pub bias: f32,
    /// Validation defect images the bias was calibrated on.
    pub calibration_defects: usize,
}

impl GoodPoint {
    pub fn check(&self, classes: usize) -> std::result::Result<(), String> {
        if self.class as usize >= classes || classes < 2 {
            return Err(format!("good: class {} of {classes} classes", self.class));
        }
        if !self.bias.is_finite() || !(0.0..0.5).contains(&self.max_escape) {
            return Err(format!(
                "good: bias {} or max_escape {} is not a number in range",
                self.bias, self.max_escape
            ));
        }
        Ok(())
    }
}

/// Escape and false-alarm rates of predictions against actual classes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoodRates {
    /// Defect images called good / defect images.
    pub escape: f64,
    /// Good images called a defect / good images.
    pub false_alarm: f64,
    pub defects: usize,
    pub good: usize,
    pub escapes: usize,
    pub false_alarms: usize,
}

pub fn good_rates(actual: &[u32], predicted: &[u32], good: u32) -> GoodRates {
    let (mut defects, mut goods, mut escapes, mut alarms) = (0, 0, 0, 0);
    for (&a, &p) in actual.iter().zip(predicted) {
        if a == good {
            goods += 1;
            alarms += usize::from(p != good);
        } else {
            defects += 1;
            escapes += usize::from(p == good);
        }
    }
    let frac = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    GoodRates {
        escape: frac(escapes, defects),
        false_alarm: frac(alarms, goods),
        defects,
        good: goods,
        escapes,
        false_alarms: alarms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_and_bias_by_hand() {
        // 1-D gallery: good (class 0) at 0, defects at 4 (class 1) and 10 (class 2).
        let (gallery, labels) = ([0.0f32, 4.0, 10.0], [0u32, 1, 2]);
        let m = good_margins(&gallery, &labels, &[1.0, 3.0, 9.0], 1, 0);
        assert_eq!(m, [(1.0 - 9.0, 1), (9.0 - 1.0, 1), (81.0 - 1.0, 2)]);
        assert_eq!(decide(m[0].0, m[0].1, 0, 0.0), 0);
        assert_eq!(decide(m[1].0, m[1].1, 0, 0.0), 1);
        // Ten defect margins -5..4 (n + 1 = 11): k = floor(target * 11).
        let d: Vec<f32> = (-5..5).map(|v| v as f32).collect();
        assert_eq!(calibrate_bias(&d, 0.25), Some(-4.0)); // k = 2
        assert_eq!(calibrate_bias(&d, 0.1), Some(-5.0)); // k = 1
        assert_eq!(calibrate_bias(&d, 0.0), Some(-5.0)); // too few images: the smallest
        assert_eq!(calibrate_bias(&d, 0.5), Some(-1.0)); // k = 5
        assert_eq!(calibrate_bias(&[], 0.1), None);
        // At the bias, fewer than k of the calibration defects are called good.
        let below = |b: f32| d.iter().filter(|&&v| v < b).count();
        assert_eq!(below(calibrate_bias(&d, 0.5).unwrap()), 4);
    }

    #[test]
    fn rates_count_escapes_and_false_alarms() {
        let r = good_rates(&[0, 0, 0, 0, 1, 2], &[0, 1, 0, 0, 0, 2], 0);
        assert_eq!((r.escapes, r.defects, r.false_alarms, r.good), (1, 2, 1, 4));
        assert!((r.escape - 0.5).abs() < 1e-12 && (r.false_alarm - 0.25).abs() < 1e-12);
    }
}
