//! A 2-D t-SNE map of embeddings (bhtsne, Barnes-Hut). The start is seeded, but bhtsne sums
//! in parallel, so two runs agree in shape, not bit for bit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 2-D coordinates `[n, 2]` of embeddings `[n, dim]`; None below 8 points, where t-SNE has
/// no neighbourhoods to preserve.
pub fn tsne_2d(emb: &[f32], dim: usize, seed: u64) -> Option<Vec<f32>> {
    let n = emb.len() / dim;
    if n < 8 {
        return None;
    }
    let rows: Vec<&[f32]> = emb.chunks(dim).collect();
    // bhtsne needs n - 1 >= 3 x perplexity; 30 is the usual choice when there are enough.
    let perplexity = ((n - 1) / 3).min(30) as f32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let init: Vec<f32> = (0..2 * n).map(|_| rng.random_range(-1e-4..1e-4)).collect();
    let mut t: bhtsne::tSNE<f32, &[f32]> = bhtsne::tSNE::new(&rows);
    t.perplexity(perplexity)
        .epochs(1000)
        .initial_embedding(init)
        .barnes_hut(0.5, |a, b| {
            a.iter()
                .zip(b.iter())
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt()
        });
    Some(t.embedding())
}
