//! Layer shapes shared by the CPU reference, the CPU fast path and the GPU kernels.
//! Tensors are row-major NCHW f32; a shape describes one call of a layer pass.

/// Smallest norm l2norm divides by: keeps a zero row finite. Shared by the CPU reference,
/// the kernels' wrappers and the ONNX export, so it sits here, below all of them.
pub const L2_EPS: f32 = 1e-6;

/// 2-D convolution, stride 1, zero padding `pad` on every side, square kernel `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub pad: usize,
}

impl Conv2dShape {
    /// The 2x2 max pooling of this layer's output.
    pub fn pool(&self) -> PoolShape {
        PoolShape {
            batch: self.batch,
            c: self.cout,
            h: self.ho(),
            w: self.wo(),
        }
    }

    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }
    /// Elements of the input `[batch, cin, h, w]`.
    pub fn in_len(&self) -> usize {
        self.batch * self.cin * self.h * self.w
    }
    /// Elements of the output `[batch, cout, ho, wo]`.
    pub fn out_len(&self) -> usize {
        self.batch * self.cout * self.ho() * self.wo()
    }
    /// Elements of the weight `[cout, cin, k, k]`.
    pub fn weight_len(&self) -> usize {
        self.cout * self.cin * self.k * self.k
    }
    /// Multiply-adds of the forward pass times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.out_len() * self.cin * self.k * self.k) as f64
    }
}

/// Max-pooling 2x2 stride 2; odd trailing rows/columns are dropped (floor), as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub batch: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl PoolShape {
    pub fn ho(&self) -> usize {
        self.h / 2
    }
    pub fn wo(&self) -> usize {
        self.w / 2
    }
    pub fn in_len(&self) -> usize {
        self.batch * self.c * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.batch * self.c * self.ho() * self.wo()
    }
}

/// Global average and max pooling: `[B, C, H, W]` to `[B, 2C]`, each image's C means then
/// its C maxima (what the dense layer reads instead of the flattened map: position-free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalPoolShape {
    pub batch: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl GlobalPoolShape {
    pub fn in_len(&self) -> usize {
        self.batch * self.c * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.batch * 2 * self.c
    }
}

/// Added to a batch variance before its square root (PyTorch's BatchNorm2d default).
pub const BN_EPS: f32 = 1e-5;
/// Weight of a batch's statistics in the running ones (PyTorch's default momentum).
pub const BN_MOMENTUM: f32 = 0.1;

/// Batch normalisation of `[B, C, H, W]`: each channel's statistics over its B*H*W values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub batch: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl NormShape {
    /// Elements of the input (and output) `[batch, c, h, w]`.
    pub fn len(&self) -> usize {
        self.batch * self.c * self.h * self.w
    }
    /// Values each channel's statistics are taken over.
    pub fn count(&self) -> usize {
        self.batch * self.h * self.w
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fully connected layer: `out[batch, nout] = inp[batch, nin] . weight[nout, nin]^T + bias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseShape {
    pub batch: usize,
    pub nin: usize,
    pub nout: usize,
}

impl DenseShape {
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.nin * self.nout) as f64
    }
}

/// Marks an unused slot in a triplet list (no positive or no negative for that anchor).
pub const INVALID: u32 = u32::MAX;

/// How triplets are chosen inside a batch by `triplet_mine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MineMode {
    /// Hardest positive and hardest negative per anchor.
    BatchHard,
    /// Hardest positive; the closest negative farther than it (else the hardest negative).
    SemiHard,
    /// Every valid triplet of the batch, the loss averaged over the active ones
    /// (`triplet_all_*` kernels instead of `triplet_mine`).
    BatchAll,
}

impl MineMode {
    pub fn code(self) -> u32 {
        match self {
            MineMode::BatchHard => 0,
            MineMode::SemiHard => 1,
            MineMode::BatchAll => 2,
        }
    }
}
