//! The network description, its named parameter tensors in one flat buffer, and their init.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::shapes::{Conv2dShape, DenseShape, GlobalPoolShape, NormShape, PoolShape};

/// What follows the dense layer: the paper's sigmoid, or projection onto the unit sphere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// f(x) = sigmoid(W phi(x) + b), as in the paper.
    Sigmoid,
    /// f(x) = v / |v| with v = W phi(x) + b: distances bounded in [0, 4], scale-free margin.
    L2,
}

/// What the embedding is trained for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Triplet loss on squared Euclidean distances with a margin (the paper's method).
    #[default]
    Triplet,
    /// The paper's Siamese comparison (its Eq. 1): p(same) = sigmoid(sum_j alpha_j |h1_j -
    /// h2_j| + beta), binary cross-entropy on sampled same/different pairs; alpha and beta
    /// are trained with the network.
    Siamese,
}

/// What the dense layer reads from the last conv block's pooled map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// The map flattened, as in the paper: the embedding depends on where a feature sits.
    #[default]
    Flatten,
    /// Each channel's mean and maximum over the map (2C values): position-free, and far
    /// fewer dense weights (256 x 64 instead of 6272 x 64 on the reference network).
    AvgMax,
}

/// What normalises each convolution's output before its ReLU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// Nothing, as in the paper.
    #[default]
    None,
    /// Batch normalisation: batch statistics while training, running statistics (folded
    /// into the convolution) at inference.
    Batch,
}

/// Largest network input side (a 1024 x 1024 input is 4 MiB of f32 per image).
pub const MAX_SIDE: usize = 1024;
/// Most channels of a conv block, and the largest embedding.
pub const MAX_CHANNELS: usize = 4096;
pub const MAX_KERNEL: usize = 15;
/// Most parameters (400 MB of f32; the reference network has 0.5 million).
pub const MAX_PARAMS: usize = 100_000_000;

/// A conv-ReLU-maxpool stack followed by one dense layer and a head (DESIGN.md's network).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    /// Input side in pixels (square grey images).
    pub side: usize,
    /// Output channels of each conv block.
    pub channels: Vec<usize>,
    /// Odd kernel size of each conv block ("same" padding k/2).
    pub kernels: Vec<usize>,
    pub embed_dim: usize,
    pub head: Head,
    /// Models saved before the Siamese option read as triplet models.
    #[serde(default)]
    pub objective: Objective,
    /// Models saved before global pooling read as flatten models.
    #[serde(default)]
    pub pooling: Pooling,
    /// Models saved before normalisation read as unnormalised ones.
    #[serde(default)]
    pub norm: Norm,
    /// Input planes: 1 (grey) or 3 (red, green, blue); models saved before colour read 1.
    #[serde(default = "one")]
    pub in_channels: usize,
}

fn one() -> usize {
    1
}

impl Arch {
    /// DESIGN.md's reference network: 5x5x16, 3x3x32, 3x3x64, 3x3x128, dense 6272 -> 64.
    pub fn reference(head: Head) -> Arch {
        Arch {
            side: 112,
            channels: vec![16, 32, 64, 128],
            kernels: vec![5, 3, 3, 3],
            embed_dim: 64,
            head,
            objective: Objective::Triplet,
            pooling: Pooling::Flatten,
            norm: Norm::None,
            in_channels: 1,
        }
    }

    /// Checks the description can be built; names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.channels.is_empty() || self.channels.len() != self.kernels.len() {
            return Err(
                "architecture needs as many kernel sizes as conv blocks (at least one)".into(),
            );
        }
        if let Some(k) = self.kernels.iter().find(|&&k| k % 2 == 0 || k == 0) {
            return Err(format!("kernel size {k} must be odd"));
        }
        if !matches!(self.in_channels, 1 | 3) {
            return Err(format!(
                "{} input channels: 1 (grey) or 3 (colour)",
                self.in_channels
            ));
        }
        if self.channels.contains(&0) || self.embed_dim == 0 {
            return Err("channel counts and embedding size must be positive".into());
        }
        // Upper bounds, checked before anything is allocated: beyond them a run would not
        // fit in memory (or means a typo), and allocating first aborts the process.
        if self.side > MAX_SIDE {
            return Err(format!(
                "input side {} is above the {MAX_SIDE} px accepted",
                self.side
            ));
        }
        if let Some(c) = self.channels.iter().find(|&&c| c > MAX_CHANNELS) {
            return Err(format!("{c} channels is above the {MAX_CHANNELS} accepted"));
        }
        if self.embed_dim > MAX_CHANNELS {
            return Err(format!(
                "embedding size {} is above the {MAX_CHANNELS} accepted",
                self.embed_dim
            ));
        }
        if let Some(k) = self.kernels.iter().find(|&&k| k > MAX_KERNEL) {
            return Err(format!(
                "kernel size {k} is above the {MAX_KERNEL} accepted"
            ));
        }
        if self.channels.len() > 8 {
            return Err(format!("{} conv blocks: at most 8", self.channels.len()));
        }
        if self.side >> self.channels.len() == 0 {
            return Err(format!(
                "input side {} is too small for {} pooling stages",
                self.side,
                self.channels.len()
            ));
        }
        let total = ParamLayout::new(self).total;
        if total > MAX_PARAMS {
            return Err(format!(
                "{total} parameters ({} MiB), above the {} million accepted",
                (total * 4) >> 20,
                MAX_PARAMS / 1_000_000
            ));
        }
        Ok(())
    }

    /// Conv shape of block `l` for a batch.
    pub fn conv(&self, l: usize, batch: usize) -> Conv2dShape {
        let side = self.side >> l;
        Conv2dShape {
            batch,
            cin: if l == 0 {
                self.in_channels
            } else {
                self.channels[l - 1]
            },
            cout: self.channels[l],
            h: side,
            w: side,
            k: self.kernels[l],
            pad: self.kernels[l] / 2,
        }
    }

    /// Pooling shape after conv block `l`.
    pub fn pool(&self, l: usize, batch: usize) -> PoolShape {
        self.conv(l, batch).pool()
    }

    /// Batch normalisation of conv block `l`'s output, when the architecture has it.
    pub fn norm(&self, l: usize, batch: usize) -> Option<NormShape> {
        let s = self.conv(l, batch);
        (self.norm == Norm::Batch).then_some(NormShape {
            batch,
            c: s.cout,
            h: s.ho(),
            w: s.wo(),
        })
    }

    /// Global pooling of the last block's pooled map, when the architecture has it.
    pub fn global_pool(&self, batch: usize) -> Option<GlobalPoolShape> {
        let last = self.pool(self.channels.len() - 1, batch);
        (self.pooling == Pooling::AvgMax).then(|| GlobalPoolShape {
            batch,
            c: last.c,
            h: last.ho(),
            w: last.wo(),
        })
    }

    /// Features entering the dense layer.
    pub fn flat_len(&self) -> usize {
        let last = self.pool(self.channels.len() - 1, 1);
        match self.pooling {
            Pooling::Flatten => last.c * last.ho() * last.wo(),
            Pooling::AvgMax => 2 * last.c,
        }
    }

    pub fn dense(&self, batch: usize) -> DenseShape {
        DenseShape {
            batch,
            nin: self.flat_len(),
            nout: self.embed_dim,
        }
    }

    /// Values of one input image `[in_channels, side, side]`.
    pub fn image_len(&self) -> usize {
        self.in_channels * self.side * self.side
    }

    /// Forward FLOPs for one image.
    pub fn flops_per_image(&self) -> f64 {
        (0..self.channels.len())
            .map(|l| self.conv(l, 1).flops())
            .sum::<f64>()
            + self.dense(1).flops()
    }

    pub fn describe(&self) -> String {
        let convs: Vec<String> = self
            .channels
            .iter()
            .zip(&self.kernels)
            .map(|(c, k)| format!("{k}x{k}x{c}"))
            .collect();
        let norm = match self.norm {
            Norm::None => "",
            Norm::Batch => " +BN",
        };
        let pool = match self.pooling {
            Pooling::Flatten => "",
            Pooling::AvgMax => " -> global avg+max",
        };
        let colour = if self.in_channels == 3 { " RGB" } else { "" };
        format!(
            "{}px{colour} -> conv {}{norm}{pool} -> dense {} -> {:?} ({:?})",
            self.side,
            convs.join(", "),
            self.embed_dim,
            self.head,
            self.objective
        )
    }
}

/// One named tensor inside the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

/// Offsets are multiples of 64 floats (256 bytes) so each tensor can be bound as a GPU
/// storage sub-range on any adapter, and the optimizer can still update the whole buffer in
/// one dispatch (padding has zero gradient and stays zero).
pub const PARAM_ALIGN: usize = 64;

/// Named tensors of an architecture in one flat buffer (llm.c style): the trained ones
/// first, then the frozen ones (with batch normalisation: the conv biases it makes
/// redundant and its running statistics), which the optimizer never touches (it updates
/// `[0, trainable)` only, so no weight decay or momentum reaches them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    pub tensors: Vec<TensorInfo>,
    /// Start of the running statistics: the optimizer's range is `[0, trainable)`.
    pub trainable: usize,
    pub total: usize,
}

/// A batch normalisation's tensors in the flat buffer, each `[C]`.
pub struct NormTensors<'a> {
    pub gamma: &'a TensorInfo,
    pub beta: &'a TensorInfo,
    pub running_mean: &'a TensorInfo,
    pub running_var: &'a TensorInfo,
}

impl ParamLayout {
    pub fn new(arch: &Arch) -> ParamLayout {
        let mut l = ParamLayout {
            tensors: Vec::new(),
            trainable: 0,
            total: 0,
        };
        for b in 0..arch.channels.len() {
            let s = arch.conv(b, 1);
            l.push(
                format!("conv{}.weight", b + 1),
                vec![s.cout, s.cin, s.k, s.k],
            );
            if arch.norm == Norm::Batch {
                l.push(format!("bn{}.weight", b + 1), vec![s.cout]);
                l.push(format!("bn{}.bias", b + 1), vec![s.cout]);
            } else {
                l.push(format!("conv{}.bias", b + 1), vec![s.cout]);
            }
        }
        let d = arch.dense(1);
        l.push("fc.weight".into(), vec![d.nout, d.nin]);
        l.push("fc.bias".into(), vec![d.nout]);
        if arch.objective == Objective::Siamese {
            l.push("siamese.alpha".into(), vec![d.nout]);
            l.push("siamese.bias".into(), vec![1]);
        }
        l.trainable = l.total;
        if arch.norm == Norm::Batch {
            for (b, &c) in arch.channels.iter().enumerate() {
                // Frozen at 0: the normalisation subtracts a conv bias again, so its gradient
                // is rounding noise, which Adam would turn into steps of the full rate. The
                // tensor stays, so the kernels and the folding keep one form.
                l.push(format!("conv{}.bias", b + 1), vec![c]);
                l.push(format!("bn{}.running_mean", b + 1), vec![c]);
                l.push(format!("bn{}.running_var", b + 1), vec![c]);
            }
        }
        l
    }

    /// Appends a tensor at the next aligned offset.
    fn push(&mut self, name: String, shape: Vec<usize>) {
        let len = shape.iter().product();
        self.tensors.push(TensorInfo {
            name,
            shape,
            offset: self.total,
            len,
        });
        self.total += len.div_ceil(PARAM_ALIGN) * PARAM_ALIGN;
    }

    pub fn get(&self, name: &str) -> &TensorInfo {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no parameter tensor named {name}"))
    }

    fn find(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// (weight, bias) of conv block `l`.
    pub fn conv(&self, l: usize) -> (&TensorInfo, &TensorInfo) {
        (
            self.get(&format!("conv{}.weight", l + 1)),
            self.get(&format!("conv{}.bias", l + 1)),
        )
    }

    /// The batch normalisation after conv block `l`, when the architecture has one.
    pub fn norm(&self, l: usize) -> Option<NormTensors<'_>> {
        let t = |what: &str| self.find(&format!("bn{}.{what}", l + 1));
        Some(NormTensors {
            gamma: t("weight")?,
            beta: t("bias")?,
            running_mean: t("running_mean")?,
            running_var: t("running_var")?,
        })
    }

    /// (weight, bias) of the dense layer.
    pub fn dense(&self) -> (&TensorInfo, &TensorInfo) {
        (self.get("fc.weight"), self.get("fc.bias"))
    }

    /// (alpha, beta) of the Siamese head, when the objective has one.
    pub fn siamese(&self) -> Option<(&TensorInfo, &TensorInfo)> {
        self.find("siamese.alpha").zip(self.find("siamese.bias"))
    }

    /// Number of values (padding excluded; running statistics included).
    pub fn count(&self) -> usize {
        self.tensors.iter().map(|t| t.len).sum()
    }
}

impl TensorInfo {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// He-uniform weights for the ReLU convs, Xavier-uniform for the dense layer, zero biases.
pub fn init_params(arch: &Arch, layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c61_7373_6e65_7400);
    let mut p = vec![0.0f32; layout.total];
    for l in 0..arch.channels.len() {
        let s = arch.conv(l, 1);
        let bound = (6.0 / (s.cin * s.k * s.k) as f32).sqrt();
        for v in &mut p[layout.conv(l).0.range()] {
            *v = rng.random_range(-bound..bound);
        }
    }
    let d = arch.dense(1);
    let bound = (6.0 / (d.nin + d.nout) as f32).sqrt();
    for v in &mut p[layout.dense().0.range()] {
        *v = rng.random_range(-bound..bound);
    }
    // Siamese head: farther apart starts as "less likely the same". Two random unit vectors
    // differ by sum_j |h1_j - h2_j| ~ 0.8 sqrt(2 D), so alpha = -5 / sqrt(2 D) and beta = 2
    // start the logits near +2 for identical embeddings and near -2 for unrelated ones: a
    // useful range from the first step instead of a slow climb out of sigmoid(~0).
    // Normalisations start as the identity on unit-variance inputs: gamma 1, beta 0,
    // running mean 0 and running variance 1 (PyTorch's init).
    for l in 0..arch.channels.len() {
        if let Some(n) = layout.norm(l) {
            p[n.gamma.range()].fill(1.0);
            p[n.running_var.range()].fill(1.0);
        }
    }
    if let Some((alpha, beta)) = layout.siamese() {
        p[alpha.range()].fill(-5.0 / (2.0 * d.nout as f32).sqrt());
        p[beta.range()].fill(2.0);
    }
    p
}
