//! Conventional classifiers on the same preprocessed pixels and the same folds as the metric
//! network: RBF SVM (smartcore, one-vs-one), k-NN and Gaussian naive Bayes (linfa-bayes).
//!
//! The SVM and k-NN only need squared distances between images, so the whole dataset's
//! distance matrix is computed once (`PixelGram`, on the engine's device) and every fold
//! reads its rows: the SVM's kernel is a lookup instead of a 12,544-term sum per pair.

use std::fmt;
use std::sync::Arc;

use linfa::prelude::Predict;
use linfa::traits::Fit;
use ndarray::{Array1, Array2};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::svm::svc::{SVCParameters, SVC};
use smartcore::svm::Kernel;

use crate::data::Dataset;
use crate::engine::Engine;
use crate::metric::knn::knn_from_distances;
use crate::{Error, Result};

/// A baseline's predictions for a test fold, with its fit and predict times.
pub struct Predicted {
    pub labels: Vec<u32>,
    pub fit_seconds: f64,
    pub predict_seconds: f64,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t0 = std::time::Instant::now();
    let out = f();
    (out, t0.elapsed().as_secs_f64())
}

/// Squared Euclidean distances `[n, n]` between all images of a dataset.
pub struct PixelGram {
    pub n: usize,
    d2: Arc<Vec<f32>>,
}

impl PixelGram {
    /// Of feature rows `[n, d]` on the CPU (small d: the rule features).
    pub fn from_rows(rows: &[f32], d: usize) -> PixelGram {
        let n = rows.len() / d;
        let mut d2 = vec![0.0; n * n];
        crate::cpu::fast::pairwise_distance(&mut d2, rows, rows, n, n, d);
        PixelGram {
            n,
            d2: Arc::new(d2),
        }
    }

    pub fn new(engine: &mut dyn Engine, data: &Dataset) -> Result<PixelGram> {
        let il = data.image_len();
        let d2 = engine.distances(&data.images, &data.images, il)?;
        Ok(PixelGram {
            n: data.len(),
            d2: Arc::new(d2),
        })
    }

    /// Distances `[rows, cols]` between two index sets.
    pub fn block(&self, rows: &[usize], cols: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for &i in rows {
            let row = &self.d2[i * self.n..(i + 1) * self.n];
            out.extend(cols.iter().map(|&j| row[j]));
        }
        out
    }
}

/// k-NN on pixels: labels of `test` from the `k` nearest of `train`.
pub fn pixel_knn(
    gram: &PixelGram,
    train: &[usize],
    labels: &[u32],
    test: &[usize],
    k: usize,
) -> Predicted {
    let (labels, predict_seconds) = timed(|| {
        knn_from_distances(&gram.block(test, train), labels, k, false)
            .iter()
            .map(|n| n.label)
            .collect()
    });
    Predicted {
        labels,
        fit_seconds: 0.0,
        predict_seconds,
    }
}

/// exp(-gamma d^2(i, j)) looked up from the Gram matrix; smartcore passes each sample as its
/// feature row, which here is the one-element row [dataset index].
#[derive(Clone)]
struct RbfLookup {
    gram: Arc<Vec<f32>>,
    n: usize,
    gamma: f64,
}

impl fmt::Debug for RbfLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RbfLookup(n = {}, gamma = {})", self.n, self.gamma)
    }
}

impl Kernel for RbfLookup {
    fn apply(
        &self,
        xi: &Vec<f64>,
        xj: &Vec<f64>,
    ) -> std::result::Result<f64, smartcore::error::Failed> {
        let (i, j) = (xi[0] as usize, xj[0] as usize);
        Ok((-self.gamma * self.gram[i * self.n + j] as f64).exp())
    }
}

/// scikit-learn's gamma = "scale": 1 / (features x variance of the training pixels).
pub fn gamma_scale(data: &Dataset, train: &[usize]) -> f64 {
    gamma_scale_rows(&data.images, data.image_len(), train)
}

/// gamma = "scale" of rows `[n, d]`: 1 / (d x variance of the values of the `train` rows).
pub fn gamma_scale_rows(rows: &[f32], d: usize, train: &[usize]) -> f64 {
    let (mut s, mut s2) = (0.0f64, 0.0f64);
    for &i in train {
        for &v in &rows[i * d..(i + 1) * d] {
            s += v as f64;
            s2 += (v as f64).powi(2);
        }
    }
    let count = (train.len() * d) as f64;
    let var = (s2 / count - (s / count).powi(2)).max(1e-12);
    1.0 / (d as f64 * var)
}

/// Multi-class RBF SVM with penalty `c`: one binary smartcore SVC per pair of classes,
/// majority vote, ties to the lower class index (libsvm's rule). The vote is ours because
/// smartcore's MultiClassSVC breaks ties in hash-map order, which changes from run to run.
pub fn pixel_svm(
    gram: &PixelGram,
    gamma: f64,
    c: f64,
    train: &[usize],
    labels: &[u32],
    test: &[usize],
) -> Result<Predicted> {
    let fail = |e: smartcore::error::Failed| Error::Input(format!("SVM baseline failed: {e}"));
    let kernel = RbfLookup {
        gram: gram.d2.clone(),
        n: gram.n,
        gamma,
    };
    let index_rows = |idx: &[usize]| {
        DenseMatrix::new(idx.len(), 1, idx.iter().map(|&i| i as f64).collect(), false).map_err(fail)
    };
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let present: Vec<usize> = (0..classes)
        .filter(|&k| labels.iter().any(|&l| l as usize == k))
        .collect();
    let q = index_rows(test)?;
    let mut votes = vec![0u32; test.len() * classes];
    let (mut fit_seconds, mut predict_seconds) = (0.0, 0.0);
    for (ai, &a) in present.iter().enumerate() {
        for &b in &present[ai + 1..] {
            let pick: Vec<usize> = (0..train.len())
                .filter(|&i| labels[i] as usize == a || labels[i] as usize == b)
                .collect();
            let x = index_rows(&pick.iter().map(|&i| train[i]).collect::<Vec<_>>())?;
            let y: Vec<i32> = pick.iter().map(|&i| labels[i] as i32).collect();
            let params = SVCParameters::default()
                .with_c(c)
                .with_seed(Some(0))
                .with_kernel(kernel.clone());
            let (model, t) = timed(|| SVC::fit(&x, &y, &params));
            fit_seconds += t;
            let model = model.map_err(fail)?;
            // Positive decision values mean the larger label (b).
            let (dec, t) = timed(|| model.decision_function(&q));
            predict_seconds += t;
            for (qi, &v) in dec.map_err(fail)?.iter().enumerate() {
                votes[qi * classes + if v > 0.0 { b } else { a }] += 1;
            }
        }
    }
    let labels = votes
        .chunks(classes.max(1))
        .map(|v| {
            let best = v.iter().copied().max().unwrap_or(0);
            v.iter().position(|&x| x == best).unwrap_or(0) as u32
        })
        .collect();
    Ok(Predicted {
        labels,
        fit_seconds,
        predict_seconds,
    })
}

/// Gaussian naive Bayes on pixels (variance smoothing 1e-9 x the largest variance, as
/// scikit-learn).
pub fn pixel_naive_bayes(data: &Dataset, train: &[usize], test: &[usize]) -> Result<Predicted> {
    let il = data.image_len();
    let rows = |idx: &[usize]| {
        let mut v = Vec::with_capacity(idx.len() * il);
        for &i in idx {
            v.extend(data.image(i).iter().map(|&p| p as f64));
        }
        Array2::from_shape_vec((idx.len(), il), v).expect("rows x pixels")
    };
    let targets: Array1<usize> = train.iter().map(|&i| data.labels[i] as usize).collect();
    let ds = linfa::Dataset::new(rows(train), targets);
    let (model, fit_seconds) = timed(|| linfa_bayes::GaussianNb::params().fit(&ds));
    let model = model.map_err(|e| Error::Input(format!("naive Bayes baseline failed: {e}")))?;
    let q = rows(test);
    let (pred, predict_seconds): (Array1<usize>, f64) = timed(|| model.predict(&q));
    Ok(Predicted {
        labels: pred.iter().map(|&p| p as u32).collect(),
        fit_seconds,
        predict_seconds,
    })
}
