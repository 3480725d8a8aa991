//! Label-preserving augmentation of square images: flips and 90-degree rotations (the
//! dihedral group), for defect classes whose meaning does not depend on orientation.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// Images as they are.
    None,
    /// Horizontal and vertical flips.
    Flip,
    /// Flips and 90-degree rotations (8 orientations).
    Dihedral,
}

impl Augment {
    /// Orientations to draw from.
    pub fn variants(self) -> u32 {
        match self {
            Augment::None => 1,
            Augment::Flip => 4,
            Augment::Dihedral => 8,
        }
    }
}

/// Writes orientation `t` (0..8: bit 0 flips x, bit 1 flips y, bit 2 transposes) of the
/// `side x side` image `src` into `dst`.
pub fn orient(dst: &mut [f32], src: &[f32], side: usize, t: u32) {
    let (fx, fy, tr) = (t & 1 != 0, t & 2 != 0, t & 4 != 0);
    for y in 0..side {
        for x in 0..side {
            let (mut sx, mut sy) = if tr { (y, x) } else { (x, y) };
            if fx {
                sx = side - 1 - sx;
            }
            if fy {
                sy = side - 1 - sy;
            }
            dst[y * side + x] = src[sy * side + sx];
        }
    }
}
