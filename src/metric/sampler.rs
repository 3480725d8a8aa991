//! Samplers: which images a training batch holds and, for the paper's recipe, which triplets.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// Indices of each class's images.
pub fn by_class(labels: &[u32], classes: usize) -> Vec<Vec<usize>> {
    let mut v = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        v[l as usize].push(i);
    }
    v
}

/// The paper's batch-random triplets: anchor class uniform over the classes (so rare
/// classes are anchors as often as common ones), anchor and positive two different images of
/// it, the negative any image of another class drawn uniformly by class.
pub struct RandomTriplets {
    by_class: Vec<Vec<usize>>,
    /// Classes with two or more images.
    anchor_classes: Vec<usize>,
}

impl RandomTriplets {
    /// `min_images`: what a class needs to give anchors, 2, or 1 when augmentation makes the
    /// positive a second view of the anchor's own image.
    pub fn new(labels: &[u32], classes: usize, min_images: usize) -> Result<RandomTriplets> {
        let by_class = by_class(labels, classes);
        let anchor_classes: Vec<usize> = (0..classes)
            .filter(|&c| by_class[c].len() >= min_images.max(1))
            .collect();
        let populated = by_class.iter().filter(|v| !v.is_empty()).count();
        if anchor_classes.is_empty() || populated < 2 {
            return Err(Error::Input(format!(
                "random triplets need a class with {min_images} image(s) and at least two classes"
            )));
        }
        Ok(RandomTriplets {
            by_class,
            anchor_classes,
        })
    }

    /// `t` triplets as dataset indices (anchor, positive, negative).
    pub fn sample(&self, rng: &mut ChaCha8Rng, t: usize) -> Vec<[usize; 3]> {
        (0..t)
            .map(|_| {
                let c = self.anchor_classes[rng.random_range(0..self.anchor_classes.len())];
                let imgs = &self.by_class[c];
                let a = rng.random_range(0..imgs.len());
                // A one-image class: the positive is the same image, seen in another view.
                let mut p = if imgs.len() > 1 {
                    rng.random_range(0..imgs.len() - 1)
                } else {
                    a
                };
                if imgs.len() > 1 && p >= a {
                    p += 1;
                }
                let others: Vec<usize> = (0..self.by_class.len())
                    .filter(|&o| o != c && !self.by_class[o].is_empty())
                    .collect();
                let o = &self.by_class[others[rng.random_range(0..others.len())]];
                [imgs[a], imgs[p], o[rng.random_range(0..o.len())]]
            })
            .collect()
    }
}

/// Class-balanced batches for online mining: `p` classes x `k` images. Each class's images
/// are drawn without replacement from a reshuffled cycle, so every image is seen about
/// equally often and rare classes are seen as often as common ones.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BalancedBatches {
    by_class: Vec<Vec<usize>>,
    cursor: Vec<usize>,
    pub p: usize,
    pub k: usize,
    /// Images a class needs to be drawn (2, or 1 with augmented views); checkpoints saved
    /// before it read as 2.
    #[serde(default = "two")]
    min_images: usize,
}

fn two() -> usize {
    2
}

impl BalancedBatches {
    /// Picks `p x k <= batch` with `k >= 4` images per class where the batch allows;
    /// `min_images` as in RandomTriplets (a one-image class fills its slots with copies of
    /// its image, which augmentation makes different views).
    pub fn new(
        labels: &[u32],
        classes: usize,
        batch: usize,
        min_images: usize,
    ) -> Result<BalancedBatches> {
        let by_class = by_class(labels, classes);
        let min_images = min_images.max(1);
        let populated = by_class.iter().filter(|v| v.len() >= min_images).count();
        if populated < 2 {
            return Err(Error::Input(format!(
                "mining needs at least two classes with {min_images} image(s) each"
            )));
        }
        if batch < 4 {
            return Err(Error::Input(format!(
                "--batch {batch}: mining needs at least 4 images per batch"
            )));
        }
        let k = (batch / populated).max(2).max(4.min(batch / 2));
        let p = (batch / k).min(populated).max(2);
        Ok(BalancedBatches {
            cursor: vec![usize::MAX; classes],
            by_class,
            p,
            k,
            min_images,
        })
    }

    pub fn batch_len(&self) -> usize {
        self.p * self.k
    }

    /// Takes over `saved` (a checkpoint's sampler, mid-cycle) after checking that it is this
    /// sampler's: the same batch shape and, per class, a reordering of the same images with
    /// its position inside the cycle.
    pub fn resume(&mut self, saved: BalancedBatches) -> Result<()> {
        let same_images = saved.by_class.len() == self.by_class.len()
            && saved.cursor.len() == self.cursor.len()
            && saved.by_class.iter().zip(&self.by_class).all(|(a, b)| {
                let mut a = a.clone();
                a.sort_unstable();
                a == *b
            });
        let cursors_ok = saved
            .cursor
            .iter()
            .zip(&saved.by_class)
            .all(|(&c, v)| c == usize::MAX || c <= v.len());
        let same_shape = (saved.p, saved.k, saved.min_images) == (self.p, self.k, self.min_images);
        if !same_shape || !same_images || !cursors_ok {
            return Err(Error::Input(
                "sampler: the checkpoint's batches are not drawn from this training set".into(),
            ));
        }
        *self = saved;
        Ok(())
    }

    /// Dataset indices of one batch, grouped by class.
    pub fn sample(&mut self, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let mut classes: Vec<usize> = (0..self.by_class.len())
            .filter(|&c| self.by_class[c].len() >= self.min_images)
            .collect();
        classes.shuffle(rng);
        let mut out = Vec::with_capacity(self.batch_len());
        for &c in classes.iter().take(self.p) {
            for _ in 0..self.k {
                if self.cursor[c] >= self.by_class[c].len() {
                    self.by_class[c].shuffle(rng);
                    self.cursor[c] = 0;
                }
                out.push(self.by_class[c][self.cursor[c]]);
                self.cursor[c] += 1;
            }
        }
        out
    }
}

/// Siamese pairs within a batch with labels `[n]`, as batch positions (a, b, same): per image
/// one partner of its own class (where the batch holds another) and one of another class, so
/// same and different pairs are about equally many whatever the class balance.
pub fn sample_pairs(labels: &[u32], rng: &mut ChaCha8Rng) -> Vec<[u32; 3]> {
    let n = labels.len();
    let mut out = Vec::with_capacity(2 * n);
    for a in 0..n {
        let same: Vec<usize> = (0..n)
            .filter(|&b| b != a && labels[b] == labels[a])
            .collect();
        let other: Vec<usize> = (0..n).filter(|&b| labels[b] != labels[a]).collect();
        if let Some(&b) = same.get(rng.random_range(0..same.len().max(1))) {
            out.push([a as u32, b as u32, 1]);
        }
        if let Some(&b) = other.get(rng.random_range(0..other.len().max(1))) {
            out.push([a as u32, b as u32, 0]);
        }
    }
    out
}
