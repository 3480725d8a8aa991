//! Test-time augmentation: an image's embedding as the mean of the embeddings of its
//! orientations (the views training drew from, `Augment`), so that an answer does not hang on
//! which way a part lay. With the L2 head the mean is put back on the unit sphere, where the
//! margin and the calibrated distances live.

use super::Engine;
use crate::data::augment::{orient, Augment};
use crate::model::Head;
use crate::Result;

/// Images turned at a time: the engine still batches, while the turned copy stays a few
/// megabytes whatever the gallery's size.
const CHUNK: usize = 256;

/// Embeddings `[n, embed_dim]` of images `[n, channels, side, side]`, each the mean over the
/// `augment.variants()` orientations. `Augment::None` is the plain embedding.
pub fn embed_views(engine: &mut dyn Engine, images: &[f32], augment: Augment) -> Result<Vec<f32>> {
    let (side, len, dim, head) = {
        let a = engine.arch();
        (a.side, a.image_len(), a.embed_dim, a.head)
    };
    if augment.variants() == 1 {
        return engine.embed(images);
    }
    let n = images.len() / len;
    let mut sum = vec![0.0f32; n * dim];
    // [CHUNK, channels, side, side]: one orientation of a chunk of images at a time.
    let mut view = Vec::with_capacity(CHUNK.min(n) * len);
    for (imgs, sums) in images.chunks(CHUNK * len).zip(sum.chunks_mut(CHUNK * dim)) {
        view.resize(imgs.len(), 0.0);
        for t in 0..augment.variants() {
            for (dst, src) in view.chunks_exact_mut(len).zip(imgs.chunks_exact(len)) {
                orient(dst, src, side, t);
            }
            let e = engine.embed(&view)?;
            for (s, v) in sums.iter_mut().zip(&e) {
                *s += v;
            }
        }
    }
    let views = augment.variants() as f32;
    for row in sum.chunks_exact_mut(dim) {
        let scale = match head {
            Head::L2 => 1.0 / row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12),
            Head::Sigmoid => 1.0 / views,
        };
        row.iter_mut().for_each(|v| *v *= scale);
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cpu::{CpuEngine, CpuKind};
    use crate::model::{init_params, Arch, Norm, ParamLayout, Pooling};
    use rand::{Rng, SeedableRng};

    /// The L2 head with the default network's pooling and normalisation, the sigmoid head
    /// with the paper's.
    fn engine(head: Head) -> CpuEngine {
        let (pooling, norm) = match head {
            Head::L2 => (Pooling::AvgMax, Norm::Batch),
            Head::Sigmoid => (Pooling::Flatten, Norm::None),
        };
        let arch = Arch {
            side: 24,
            channels: vec![4, 6],
            kernels: vec![3, 3],
            embed_dim: 5,
            pooling,
            norm,
            ..Arch::reference(head)
        };
        let params = init_params(&arch, &ParamLayout::new(&arch), 3);
        CpuEngine::new(&arch, &params, CpuKind::Fast).unwrap()
    }

    fn images(n: usize, side: usize) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        (0..n * side * side)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect()
    }

    #[test]
    fn no_views_is_the_plain_embedding() {
        let mut e = engine(Head::L2);
        let x = images(3, 24);
        let plain = e.embed(&x).unwrap();
        assert_eq!(embed_views(&mut e, &x, Augment::None).unwrap(), plain);
    }

    /// More images than one chunk: each row is that image's own mean embedding, as if it
    /// were embedded alone (the chunk boundary and the short last chunk change nothing).
    #[test]
    fn a_gallery_larger_than_a_chunk_embeds_image_by_image() {
        let mut e = engine(Head::L2);
        let (n, len) = (CHUNK + 3, 24 * 24);
        let x = images(n, 24);
        let all = embed_views(&mut e, &x, Augment::Flip).unwrap();
        assert_eq!(all.len(), n * 5);
        for i in [0, 1, CHUNK - 1, CHUNK, n - 1] {
            let one = embed_views(&mut e, &x[i * len..(i + 1) * len], Augment::Flip).unwrap();
            for (a, b) in all[i * 5..(i + 1) * 5].iter().zip(&one) {
                assert!((a - b).abs() < 1e-5, "image {i}: {a} vs {b}");
            }
        }
    }

    /// The views of a turned image are the views of the image in another order, so the mean
    /// is the same, while the plain embeddings of the two differ (the network is not
    /// invariant by itself, or the test would prove nothing).
    #[test]
    fn an_image_and_its_orientations_embed_alike() {
        for (head, augment, turns) in [
            (Head::L2, Augment::Dihedral, 1..8),
            (Head::Sigmoid, Augment::Dihedral, 1..8),
            (Head::L2, Augment::Flip, 1..4),
        ] {
            let mut e = engine(head);
            let x = images(2, 24);
            let base = embed_views(&mut e, &x, augment).unwrap();
            for t in turns {
                let mut y = vec![0.0; x.len()];
                for (d, s) in y.chunks_exact_mut(576).zip(x.chunks_exact(576)) {
                    orient(d, s, 24, t);
                }
                let got = embed_views(&mut e, &y, augment).unwrap();
                for (g, b) in got.iter().zip(&base) {
                    assert!(
                        (g - b).abs() < 1e-5,
                        "{head:?} {augment:?} turn {t}: {g} vs {b}"
                    );
                }
                let (px, py) = (e.embed(&x).unwrap(), e.embed(&y).unwrap());
                let moved = px
                    .iter()
                    .zip(&py)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(moved > 1e-3, "turn {t} left the plain embedding in place");
            }
            if head == Head::L2 {
                for row in base.chunks_exact(5) {
                    let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
                }
            }
        }
    }
}
