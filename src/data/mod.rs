//! Datasets: class-per-folder images, the built-in synthetic glass set, preprocessing,
//! stratified splits and augmentation.

pub mod augment;
pub mod builtin;
pub mod colour;
pub mod fit;
pub mod folder;
pub mod preprocess;
pub mod profile;
pub mod split;
pub mod synth;

use std::path::PathBuf;

/// Memory the system can give without swapping (Linux's MemAvailable), when it says.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses, before allocating, what would not fit in memory: `what` names the flag or
/// folder and how much it holds.
pub fn check_fits(bytes: u64, what: &str) -> crate::Result<()> {
    match available_memory() {
        Some(avail) if bytes > avail => Err(crate::Error::Input(format!(
            "{what} need {:.1} GiB of memory, and {:.1} GiB is available; use a smaller --size or fewer images",
            bytes as f64 / (1u64 << 30) as f64,
            avail as f64 / (1u64 << 30) as f64
        ))),
        _ => Ok(()),
    }
}

/// Images `[n, channels, side, side]` in [-1, 1], their labels and where they came from.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub side: usize,
    /// Planes per image: 1 (grey) or 3 (red, green, blue).
    pub channels: usize,
    pub images: Vec<f32>,
    /// `[n]`, indexes `classes`
    pub labels: Vec<u32>,
    pub classes: Vec<String>,
    /// Source file of each image (empty for generated images).
    pub paths: Vec<PathBuf>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values of one image `[channels, side, side]`.
    pub fn image_len(&self) -> usize {
        self.channels * self.side * self.side
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.image_len()..(i + 1) * self.image_len()]
    }

    /// Images per class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes.len()];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    /// The images at `idx`, in that order, with the same classes.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            side: self.side,
            channels: self.channels,
            images: idx
                .iter()
                .flat_map(|&i| self.image(i).iter().copied())
                .collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            paths: if self.paths.is_empty() {
                Vec::new()
            } else {
                idx.iter().map(|&i| self.paths[i].clone()).collect()
            },
        }
    }

    /// This set followed by `other` (same side and classes), e.g. a second view of the same
    /// images.
    pub fn joined(&self, other: &Dataset) -> Dataset {
        assert!(
            (self.side, self.channels) == (other.side, other.channels)
                && self.classes == other.classes
        );
        let paths = if self.paths.is_empty() || other.paths.is_empty() {
            Vec::new()
        } else {
            self.paths.iter().chain(&other.paths).cloned().collect()
        };
        Dataset {
            side: self.side,
            channels: self.channels,
            images: [self.images.as_slice(), &other.images].concat(),
            labels: [self.labels.as_slice(), &other.labels].concat(),
            classes: self.classes.clone(),
            paths,
        }
    }

    /// Checks the set can train a triplet network; the message says what is missing.
    /// `min_images` per class: 2 (an anchor and a positive), or 1 when augmentation makes
    /// the positive another view of the anchor's image (TrainConfig::min_class_images).
    pub fn check_trainable(&self, source: &str, min_images: usize) -> crate::Result<()> {
        let counts = self.class_counts();
        if self.classes.len() < 2 {
            return Err(crate::Error::Input(format!(
                "{source}: only one class ({}) found; a triplet network needs at least two class folders",
                self.classes.first().map(String::as_str).unwrap_or("none")
            )));
        }
        if let Some((c, n)) = self
            .classes
            .iter()
            .zip(&counts)
            .find(|(_, &n)| n < min_images.max(1))
        {
            return Err(crate::Error::Input(if *n == 0 {
                format!("{source}: class '{c}' has no images")
            } else {
                format!(
                    "{source}: class '{c}' has {n} image(s); without augmentation (--augment none, no jitter) every class needs at least two (an anchor and a positive)"
                )
            }));
        }
        Ok(())
    }

    /// One line per class: name and count.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .classes
            .iter()
            .zip(self.class_counts())
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        format!(
            "{} images, {} classes ({})",
            self.len(),
            self.classes.len(),
            parts.join(", ")
        )
    }
}
