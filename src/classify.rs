//! Naming images from their embeddings: the nearest gallery image's class (or the k-NN
//! vote), with the distance and agreement a person judges it by, or "unknown" when the image
//! lies beyond its nearest class's calibrated threshold. One rule for `predict` and `serve`,
//! so both answer alike.

use serde::Serialize;

use crate::checkpoint::Model;
use crate::metric::escape::{decide, good_margins};
use crate::metric::knn::knn;

/// The class name an image beyond every threshold gets (`unknown` says it unambiguously
/// even where a class has this name).
pub const UNKNOWN: &str = "unknown";

/// One image's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The class, or UNKNOWN when `unknown`.
    pub class: String,
    /// Beyond the nearest class's threshold: unlike every known class.
    pub unknown: bool,
    /// The nearest class's threshold on `distance` (None: rejection off or not calibrated).
    pub threshold: Option<f32>,
    /// Squared Euclidean distance to the nearest gallery image.
    pub distance: f32,
    pub nearest_class: String,
    /// How many of the k nearest have `class`.
    pub votes: usize,
    pub k: usize,
    /// With a good-part operating point: d(nearest good) - d(nearest defect); the part is
    /// good when this is below the model's calibrated bias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub good_margin: Option<f32>,
}

/// Predictions for embeddings `[n, embed_dim]`: the nearest gallery image's class, or with
/// `vote` the majority of the `k` nearest (ties to the nearer); with `reject` (and a model
/// that has calibrated thresholds) UNKNOWN beyond the nearest class's threshold. A model with
/// a good-part operating point (and no `vote`) names good or the nearest defect class by it.
pub fn classify(
    model: &Model,
    embeddings: &[f32],
    k: usize,
    vote: bool,
    reject: bool,
) -> Vec<Prediction> {
    let rejection = model.meta.rejection.as_ref().filter(|_| reject);
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
    let good = model.meta.good.as_ref().filter(|_| !vote);
    let margins = good.map(|g| {
        good_margins(
            &model.gallery,
            &model.gallery_labels,
            embeddings,
            d,
            g.class,
        )
    });
    nn.iter()
        .enumerate()
        .map(|(i, n)| {
            let (mut label, votes) = if vote {
                (n.label, n.votes)
            } else {
                (n.nearest_label, n.agree)
            };
            let good_margin = match (good, &margins) {
                (Some(g), Some(m)) if m[i].0.is_finite() => {
                    label = decide(m[i].0, m[i].1, g.class, g.bias);
                    Some(m[i].0)
                }
                _ => None,
            };
            let threshold = rejection.map(|r| r.thresholds[n.nearest_label as usize]);
            let unknown = rejection.is_some_and(|r| r.is_unknown(n.nearest_label, n.distance));
            Prediction {
                class: if unknown { UNKNOWN.into() } else { cls(label) },
                unknown,
                threshold,
                distance: n.distance,
                nearest_class: cls(n.nearest_label),
                votes,
                k: n.k,
                good_margin,
            }
        })
        .collect()
}
