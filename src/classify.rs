//! Naming images from their embeddings: the nearest gallery image's class (or the k-NN
//! vote), with the distance and agreement a person judges it by. One rule for `predict` and
//! `serve`, so both answer alike.

use serde::Serialize;

use crate::checkpoint::Model;
use crate::metric::knn::knn;

/// One image's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub class: String,
    /// Squared Euclidean distance to the nearest gallery image.
    pub distance: f32,
    pub nearest_class: String,
    /// How many of the k nearest have `class`.
    pub votes: usize,
    pub k: usize,
}

/// Predictions for embeddings `[n, embed_dim]`: the nearest gallery image's class, or with
/// `vote` the majority of the `k` nearest (ties to the nearer).
pub fn classify(model: &Model, embeddings: &[f32], k: usize, vote: bool) -> Vec<Prediction> {
    let d = model.meta.arch.embed_dim;
    let nn = knn(
        &model.gallery,
        &model.gallery_labels,
        embeddings,
        d,
        k,
        false,
    );
    let cls = |l: u32| model.meta.classes[l as usize].clone();
    nn.iter()
        .map(|n| {
            let (label, votes) = if vote {
                (n.label, n.votes)
            } else {
                (n.nearest_label, n.agree)
            };
            Prediction {
                class: cls(label),
                distance: n.distance,
                nearest_class: cls(n.nearest_label),
                votes,
                k: n.k,
            }
        })
        .collect()
}
