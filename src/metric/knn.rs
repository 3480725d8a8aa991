//! Classification in the embedding space: k-nearest neighbours and nearest class centroid.

use rayon::prelude::*;

use crate::cpu::reference::pairwise_distance;

/// One query's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbour {
    /// Predicted class (k-NN vote; ties go to the class with the nearer member).
    pub label: u32,
    /// Label of the single nearest gallery item.
    pub nearest_label: u32,
    /// Squared distance to the nearest gallery item.
    pub distance: f32,
    /// Votes for `label` among the k nearest.
    pub votes: usize,
    /// Votes for `nearest_label` among the k nearest.
    pub agree: usize,
    pub k: usize,
}

/// k-NN against a gallery `[g, d]` with labels `[g]`, for queries `[q, d]`. `exclude_self`
/// skips gallery item i for query i (leave-one-out when the queries are the gallery).
pub fn knn(
    gallery: &[f32],
    labels: &[u32],
    queries: &[f32],
    d: usize,
    k: usize,
    exclude_self: bool,
) -> Vec<Neighbour> {
    let (g, q) = (labels.len(), queries.len() / d);
    let mut dist = vec![0.0; q * g];
    // One query row at a time in parallel: the same sums as one call, in any thread count.
    dist.par_chunks_mut(g.max(1))
        .zip(queries.par_chunks(d))
        .for_each(|(row, x)| pairwise_distance(row, x, gallery, 1, g, d));
    knn_from_distances(&dist, labels, k, exclude_self)
}

/// k-NN from precomputed squared distances `[q, g]` of queries to a gallery with labels `[g]`.
pub fn knn_from_distances(
    dist: &[f32],
    labels: &[u32],
    k: usize,
    exclude_self: bool,
) -> Vec<Neighbour> {
    let g = labels.len();
    let q = dist.len() / g.max(1);
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    (0..q)
        .into_par_iter()
        .map(|i| {
            let row = &dist[i * g..(i + 1) * g];
            let mut order: Vec<usize> = (0..g).filter(|&j| !(exclude_self && j == i)).collect();
            let kk = k.min(order.len()).max(1);
            // Only the k nearest need an order: select them, then sort those (the order is
            // total, distance then index, so this is the full sort's first k).
            let by = |a: &usize, b: &usize| row[*a].total_cmp(&row[*b]).then(a.cmp(b));
            if kk < order.len() {
                order.select_nth_unstable_by(kk - 1, by);
                order.truncate(kk);
            }
            order.sort_by(by);
            let mut votes = vec![0usize; classes];
            for &j in &order[..kk] {
                votes[labels[j] as usize] += 1;
            }
            let best = *votes.iter().max().unwrap();
            // The first (nearest) neighbour whose class has the most votes.
            let label = order[..kk]
                .iter()
                .map(|&j| labels[j])
                .find(|&l| votes[l as usize] == best)
                .unwrap();
            Neighbour {
                label,
                nearest_label: labels[order[0]],
                distance: row[order[0]],
                votes: best,
                agree: votes[labels[order[0]] as usize],
                k: kk,
            }
        })
        .collect()
}

/// Class centroids `[classes, d]` of a gallery (a class with no member gets NaN, never chosen).
pub fn centroids(gallery: &[f32], labels: &[u32], d: usize, classes: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; classes * d];
    let mut n = vec![0usize; classes];
    for (i, &l) in labels.iter().enumerate() {
        n[l as usize] += 1;
        for k in 0..d {
            c[l as usize * d + k] += gallery[i * d + k];
        }
    }
    for (cl, &count) in n.iter().enumerate() {
        for v in &mut c[cl * d..(cl + 1) * d] {
            *v = if count > 0 {
                *v / count as f32
            } else {
                f32::NAN
            };
        }
    }
    c
}

/// Nearest class centroid for each query `[q, d]`.
pub fn nearest_centroid(centroids: &[f32], queries: &[f32], d: usize) -> Vec<u32> {
    let (c, q) = (centroids.len() / d, queries.len() / d);
    let mut dist = vec![0.0; q * c];
    pairwise_distance(&mut dist, queries, centroids, q, c, d);
    (0..q)
        .map(|i| {
            let row = &dist[i * c..(i + 1) * c];
            (0..c)
                .filter(|&j| !row[j].is_nan())
                .min_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0) as u32
        })
        .collect()
}

/// The `k` nearest gallery items `[g, d]` of each query `[q, d]` as (gallery index, squared
/// distance), nearest first (ties by index, as `knn` orders them): what a report shows
/// beside a misclassified image.
pub fn nearest_items(
    gallery: &[f32],
    queries: &[f32],
    d: usize,
    k: usize,
) -> Vec<Vec<(usize, f32)>> {
    let g = gallery.len() / d;
    queries
        .par_chunks(d)
        .map(|x| {
            let mut row = vec![0.0; g];
            pairwise_distance(&mut row, x, gallery, 1, g, d);
            let mut order: Vec<usize> = (0..g).collect();
            let by = |a: &usize, b: &usize| row[*a].total_cmp(&row[*b]).then(a.cmp(b));
            let kk = k.min(g);
            if kk > 0 && kk < g {
                order.select_nth_unstable_by(kk - 1, by);
            }
            order.truncate(kk);
            order.sort_by(by);
            order.into_iter().map(|j| (j, row[j])).collect()
        })
        .collect()
}
