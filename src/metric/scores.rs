//! Classification metrics, all in one place: confusion matrix, accuracy, balanced accuracy,
//! per-class precision / recall / F1 and their macro averages.
//!
//! Conventions (as scikit-learn's defaults): a 0/0 precision or recall is 0; balanced
//! accuracy and macro averages run over the classes that occur in the truth or the
//! predictions, so a class absent from a fold does not count as a zero.

use serde::{Deserialize, Serialize};

/// Rows are actual classes, columns predicted (the paper's Table 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub classes: usize,
    /// `[classes, classes]` row-major counts.
    pub counts: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Actual members of the class.
    pub support: u64,
}

impl Confusion {
    pub fn new(classes: usize) -> Confusion {
        Confusion {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    pub fn from_labels(actual: &[u32], predicted: &[u32], classes: usize) -> Confusion {
        let mut c = Confusion::new(classes);
        c.add(actual, predicted);
        c
    }

    pub fn add(&mut self, actual: &[u32], predicted: &[u32]) {
        assert_eq!(actual.len(), predicted.len());
        for (&a, &p) in actual.iter().zip(predicted) {
            self.counts[a as usize * self.classes + p as usize] += 1;
        }
    }

    /// Adds another matrix (summing over folds).
    pub fn merge(&mut self, other: &Confusion) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn get(&self, actual: usize, predicted: usize) -> u64 {
        self.counts[actual * self.classes + predicted]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn row(&self, c: usize) -> u64 {
        (0..self.classes).map(|p| self.get(c, p)).sum()
    }

    fn col(&self, c: usize) -> u64 {
        (0..self.classes).map(|a| self.get(a, c)).sum()
    }

    /// Classes that occur as truth or prediction.
    fn present(&self) -> Vec<usize> {
        (0..self.classes)
            .filter(|&c| self.row(c) + self.col(c) > 0)
            .collect()
    }

    pub fn accuracy(&self) -> f64 {
        let t = self.total();
        if t == 0 {
            return 0.0;
        }
        (0..self.classes).map(|c| self.get(c, c)).sum::<u64>() as f64 / t as f64
    }

    pub fn class_scores(&self) -> Vec<ClassScores> {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        (0..self.classes)
            .map(|c| {
                let tp = self.get(c, c);
                let (precision, recall) = (ratio(tp, self.col(c)), ratio(tp, self.row(c)));
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassScores {
                    precision,
                    recall,
                    f1,
                    support: self.row(c),
                }
            })
            .collect()
    }

    /// Mean recall over the classes that have members.
    pub fn balanced_accuracy(&self) -> f64 {
        let s = self.class_scores();
        let with_support: Vec<f64> = s
            .iter()
            .filter(|c| c.support > 0)
            .map(|c| c.recall)
            .collect();
        if with_support.is_empty() {
            0.0
        } else {
            with_support.iter().sum::<f64>() / with_support.len() as f64
        }
    }

    /// (macro precision, macro recall, macro F1) over the present classes.
    pub fn macro_scores(&self) -> (f64, f64, f64) {
        let s = self.class_scores();
        let p = self.present();
        if p.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let n = p.len() as f64;
        let sum = |f: &dyn Fn(&ClassScores) -> f64| p.iter().map(|&c| f(&s[c])).sum::<f64>() / n;
        (sum(&|c| c.precision), sum(&|c| c.recall), sum(&|c| c.f1))
    }

    pub fn macro_f1(&self) -> f64 {
        self.macro_scores().2
    }
}

/// Accuracy, balanced accuracy and macro-F1 of one prediction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
}

impl Scores {
    pub fn of(c: &Confusion) -> Scores {
        Scores {
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            macro_f1: c.macro_f1(),
        }
    }
}

/// Mean and (sample) standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}
