//! Changing what a trained model knows without retraining: enrolling a class (or more
//! examples of one) into its gallery from a few embedded images, and removing a class. The
//! network is untouched; the gallery, the class list and the unknown thresholds change
//! together.

use crate::checkpoint::{GalleryEdit, Model};
use crate::classify::UNKNOWN;
use crate::cpu::reference::pairwise_distance;
use crate::metric::knn::knn_from_distances;
use crate::metric::openset::{quantile, ThresholdSource, MIN_CALIBRATION};
use crate::{Error, Result};

/// What an enrolment did.
#[derive(Clone, Debug, PartialEq)]
pub struct Enrolled {
    pub class: usize,
    /// The class did not exist before.
    pub new_class: bool,
    pub added: usize,
    /// The class's threshold after the enrolment and where it came from (None: the model
    /// has no thresholds).
    pub threshold: Option<(f32, ThresholdSource)>,
    /// An existing threshold was kept: too few enrolled images to recalibrate it.
    pub kept_threshold: bool,
}

/// Refuses a class name that could not be a folder name of a dataset (a path, a control
/// character, blank), so a model's classes stay names a person and a file system agree on.
pub fn check_class_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Input(format!(
            "--class {name:?}: {why}; use a plain name such as \"scratch\""
        )))
    };
    if name.trim().is_empty() {
        return bad("blank");
    }
    if name.trim() != name {
        return bad("starts or ends with white space");
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return bad("a path, not a class name");
    }
    if name.chars().any(char::is_control) {
        return bad("holds a control character");
    }
    if name.chars().count() > 100 {
        return bad("longer than 100 characters");
    }
    if name == UNKNOWN {
        return bad("the word predict answers for a part unlike every class");
    }
    Ok(())
}

/// Adds `embeddings` `[n, embed_dim]` to the gallery as class `class` (created when new),
/// and recalibrates that class's threshold from the leave-one-out nearest distances of the
/// added images, when at least MIN_CALIBRATION of them have this class as their nearest: the
/// added images were not trained on, so they stand in for the validation split a trained
/// class is calibrated on. With fewer, a new class takes the pooled threshold and an
/// existing one keeps its own. `source` says where the images came from (for the record).
pub fn enrol(model: &mut Model, class: &str, embeddings: &[f32], source: &str) -> Result<Enrolled> {
    check_class_name(class)?;
    let d = model.meta.arch.embed_dim;
    let n = embeddings.len() / d;
    if n == 0 || embeddings.len() != n * d {
        return Err(Error::Input(format!("enrol {class:?}: no images to add")));
    }
    if let Some(i) = embeddings.iter().position(|v| !v.is_finite()) {
        return Err(Error::Input(format!(
            "enrol {class:?}: embedding value {i} is {}: the engine produced a non-number",
            embeddings[i]
        )));
    }
    let existing = model.meta.classes.iter().position(|c| c == class);
    let c = existing.unwrap_or(model.meta.classes.len());
    if existing.is_none() {
        model.meta.classes.push(class.to_string());
    }
    let g0 = model.gallery_labels.len();
    model.gallery.extend_from_slice(embeddings);
    model
        .gallery_labels
        .extend(std::iter::repeat_n(c as u32, n));
    let mut out = Enrolled {
        class: c,
        new_class: existing.is_none(),
        added: n,
        threshold: None,
        kept_threshold: false,
    };
    if let Some(r) = model.meta.rejection.as_mut() {
        // Leave-one-out: each added image against the whole gallery without itself.
        let g = model.gallery_labels.len();
        let mut dist = vec![0.0f32; n * g];
        pairwise_distance(&mut dist, embeddings, &model.gallery, n, g, d);
        for i in 0..n {
            dist[i * g + g0 + i] = f32::INFINITY;
        }
        let nn = knn_from_distances(&dist, &model.gallery_labels, 1, false);
        let own: Vec<f32> = nn
            .iter()
            .filter(|x| x.nearest_label == c as u32 && x.distance.is_finite())
            .map(|x| x.distance)
            .collect();
        let (t, s) = if own.len() >= MIN_CALIBRATION {
            let t = quantile(&own, r.known_recall).expect("non-empty");
            (t, ThresholdSource::Enrolled { images: own.len() })
        } else if existing.is_some() {
            out.kept_threshold = true;
            (r.thresholds[c], r.sources[c])
        } else {
            (r.pooled, ThresholdSource::Pooled { images: own.len() })
        };
        if existing.is_some() {
            r.thresholds[c] = t;
            r.sources[c] = s;
        } else {
            r.thresholds.push(t);
            r.sources.push(s);
        }
        out.threshold = Some((t, s));
    }
    model.meta.gallery_edits.push(GalleryEdit {
        class: class.to_string(),
        added: n,
        removed: 0,
        source: source.to_string(),
    });
    Ok(out)
}

/// Removes class `class` and its gallery images; returns how many images went. The last
/// class cannot go (a model must know something).
pub fn remove_class(model: &mut Model, class: &str) -> Result<usize> {
    let Some(c) = model.meta.classes.iter().position(|x| x == class) else {
        return Err(Error::Input(format!(
            "--remove-class {class:?}: the model has no such class (it has {})",
            model.meta.classes.join(", ")
        )));
    };
    if model.meta.classes.len() == 1 {
        return Err(Error::Input(format!(
            "--remove-class {class:?}: the model's only class; a model must keep one"
        )));
    }
    let d = model.meta.arch.embed_dim;
    let (mut gallery, mut labels) = (Vec::new(), Vec::new());
    for (i, &l) in model.gallery_labels.iter().enumerate() {
        if l as usize != c {
            gallery.extend_from_slice(&model.gallery[i * d..(i + 1) * d]);
            labels.push(if l as usize > c { l - 1 } else { l });
        }
    }
    let removed = model.gallery_labels.len() - labels.len();
    if labels.is_empty() {
        return Err(Error::Input(format!(
            "--remove-class {class:?}: it holds every gallery image; nothing would be left to compare with"
        )));
    }
    model.gallery = gallery;
    model.gallery_labels = labels;
    model.meta.classes.remove(c);
    if let Some(r) = model.meta.rejection.as_mut() {
        r.thresholds.remove(c);
        r.sources.remove(c);
    }
    // Without its good class (or with one class left) the operating point means nothing.
    let good = model.meta.good.take();
    model.meta.good = good
        .filter(|g| g.class as usize != c && model.meta.classes.len() > 1)
        .map(|mut g| {
            g.class -= u32::from(g.class as usize > c);
            g
        });
    model.meta.gallery_edits.push(GalleryEdit {
        class: class.to_string(),
        added: 0,
        removed,
        source: String::new(),
    });
    Ok(removed)
}
