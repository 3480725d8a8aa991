//! Stratified splits: a validation hold-out and k folds, each class spread evenly.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Indices of each class, shuffled under `seed`.
fn shuffled_by_class(labels: &[u32], classes: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for v in &mut by_class {
        v.shuffle(&mut rng);
    }
    by_class
}

/// (train, validation) indices: `fraction` of each class held out, at least one image when
/// the class has three or more, and at least two always left for training.
pub fn stratified_split(
    labels: &[u32],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for idx in shuffled_by_class(labels, classes, seed) {
        let mut k = (idx.len() as f64 * fraction).round() as usize;
        if fraction > 0.0 && idx.len() >= 3 {
            k = k.max(1);
        }
        k = k.min(idx.len().saturating_sub(2));
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Fold id of every image for stratified k-fold cross-validation: each class is dealt
/// round-robin over the folds after a seeded shuffle, so fold sizes per class differ by at
/// most one and every image is in exactly one test fold.
pub fn stratified_folds(labels: &[u32], classes: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0; labels.len()];
    let mut offset = 0;
    for idx in shuffled_by_class(labels, classes, seed) {
        for (j, &i) in idx.iter().enumerate() {
            fold[i] = (j + offset) % k;
        }
        // Start the next class where this one stopped, so small classes do not all land in
        // the first folds.
        offset = (offset + idx.len()) % k;
    }
    fold
}
