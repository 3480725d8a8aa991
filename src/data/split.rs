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

/// At most `n` of each class's images among `idx` (indices into `labels`), chosen by a
/// seeded shuffle; a class with fewer keeps all of them. Sorted, so the subset's order does
/// not depend on the seed.
pub fn at_most_per_class(idx: &[usize], labels: &[u32], n: usize, seed: u64) -> Vec<usize> {
    let classes = idx
        .iter()
        .map(|&i| labels[i] as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_class = vec![Vec::new(); classes];
    for &i in idx {
        by_class[labels[i] as usize].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for mut v in by_class {
        v.shuffle(&mut rng);
        out.extend_from_slice(&v[..n.min(v.len())]);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_per_class_keeps_n_of_each_class_seeded_and_small_classes_whole() {
        // Class 0: 20 images, classes 1 and 2: 9 each.
        let labels: Vec<u32> = (0..38).map(|i| [0, 0, 1, 2][i % 4]).collect();
        let idx: Vec<usize> = (0..labels.len()).collect();
        let count = |s: &[usize], c: u32| s.iter().filter(|&&i| labels[i] == c).count();
        let a = at_most_per_class(&idx, &labels, 5, 1);
        assert_eq!([count(&a, 0), count(&a, 1), count(&a, 2)], [5, 5, 5]);
        let b = at_most_per_class(&idx[..12], &labels, 5, 1);
        assert_eq!([count(&b, 0), count(&b, 1), count(&b, 2)], [5, 3, 3]);
        assert!(b.iter().all(|&i| i < 12), "only offered indices");
        assert_eq!(a, at_most_per_class(&idx, &labels, 5, 1), "seeded");
        assert_ne!(
            a,
            at_most_per_class(&idx, &labels, 5, 2),
            "the seed chooses"
        );
        assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert_eq!(at_most_per_class(&idx, &labels, 0, 1), Vec::<usize>::new());
    }
}
