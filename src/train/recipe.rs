//! The named training recipes and the network each trains by default.

use serde::{Deserialize, Serialize};

use crate::model::{Norm, Pooling};

/// Named starting points; any single flag overrides them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// glassnet's default: L2-normalised embedding, margin 0.2, all triplets of
    /// class-balanced batches (loss over the active ones), warm-up + cosine learning rate,
    /// flips and rotations.
    Robust,
    /// The paper's: sigmoid embedding, margin 1.0, 30 epochs x 450 random triplets in
    /// batches of 32, Adam 1e-3 constant, no augmentation, no early stop.
    Paper,
}

impl Recipe {
    /// The dense layer's input a recipe trains by default: the robust recipe global average
    /// and max pooling (measured better on X-SDD, NEU and the built-in set: README,
    /// "Measured results"), the paper's recipe the paper's flattened map, for the comparison.
    pub fn pooling(self) -> Pooling {
        match self {
            Recipe::Robust => Pooling::AvgMax,
            Recipe::Paper => Pooling::Flatten,
        }
    }

    /// What follows each convolution by default: the robust recipe a batch normalisation
    /// (measured better or level on X-SDD, NEU and the built-in set, and it helps the rare
    /// classes most: README, "Measured results"), the paper's recipe nothing, as the paper.
    pub fn norm(self) -> Norm {
        match self {
            Recipe::Robust => Norm::Batch,
            Recipe::Paper => Norm::None,
        }
    }
}
