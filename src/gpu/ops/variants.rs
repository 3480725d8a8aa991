//! One typed description per kernel variant: the op it implements, its shader, whether
//! tools/gen_kernels.py writes it, whether it is only worth trying on hardware GPUs, its
//! tile, which shapes it takes and, in one line, what it is for and when it wins (measured).
//! The autotuner draws its candidates from here, the tests check every wrapper's shape guard
//! against `fits` and the generator's output list against `generated`, and docs/DESIGN.md's
//! kernel table is this list (tests/variants.rs).

use crate::shapes::Conv2dShape;

/// Which shapes a variant takes beyond what its op takes (its wrapper refuses the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fits {
    Any,
    /// Output width a multiple of 4 (vec4 loads or stores along a row).
    OutputWidth4,
    /// One input channel, a 5x5 kernel, output width a multiple of 4 (conv1-like layers).
    OneChannel5x5Width4,
    /// One input channel and a 5x5 kernel.
    OneChannel5x5,
    /// A 5x5 kernel and an output width a multiple of 4.
    Kernel5Width4,
    /// Kernel side at most 5 (one kernel row in registers).
    KernelAtMost5,
    /// Padded row width a multiple of 4 (pad2d's vec4 stores).
    RowWidth4,
    /// Product width a multiple of 4 (vec4 columns).
    Columns4,
}

impl Fits {
    /// Whether a conv of shape `s` (the shape the kernel runs on) fits; rules about pad2d rows
    /// and product columns are not conv rules and hold here.
    pub fn conv(self, s: &Conv2dShape) -> bool {
        let wo4 = s.wo().is_multiple_of(4);
        match self {
            Fits::Any | Fits::RowWidth4 | Fits::Columns4 => true,
            Fits::OutputWidth4 => wo4,
            Fits::OneChannel5x5Width4 => s.cin == 1 && s.k == 5 && wo4,
            Fits::OneChannel5x5 => s.cin == 1 && s.k == 5,
            Fits::Kernel5Width4 => s.k == 5 && wo4,
            Fits::KernelAtMost5 => s.k <= 5,
        }
    }

    /// The rule in words (docs/DESIGN.md's table).
    pub fn words(self) -> &'static str {
        match self {
            Fits::Any => "any",
            Fits::OutputWidth4 => "Wo % 4 = 0",
            Fits::OneChannel5x5Width4 => "Ci = 1, K = 5, Wo % 4 = 0",
            Fits::OneChannel5x5 => "Ci = 1, K = 5",
            Fits::Kernel5Width4 => "K = 5, Wo % 4 = 0",
            Fits::KernelAtMost5 => "K <= 5",
            Fits::RowWidth4 => "row width % 4 = 0",
            Fits::Columns4 => "n % 4 = 0",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// The op: the wrapper `gpu::ops::<op>` (and the CPU reference function of that name).
    pub op: &'static str,
    /// Its shader in shaders/ and pipeline name.
    pub name: &'static str,
    /// Written by tools/gen_kernels.py (register blocks WGSL cannot loop over).
    pub generated: bool,
    /// Stages operands through workgroup memory or splits a sum over a workgroup's lanes:
    /// what hardware GPUs need and CPU-type adapters (lavapipe) run 10-50x slower, so
    /// autotune does not try it there.
    pub hardware_only: bool,
    /// (channels, pixels or taps) of the output tile one workgroup stages.
    pub tile: Option<(usize, usize)>,
    /// Taps of the weight gradient one invocation sums (the register-blocked partial kernels).
    pub taps: usize,
    pub fits: Fits,
    /// What it is for and when it wins.
    pub why: &'static str,
}

const fn v(op: &'static str, name: &'static str, why: &'static str) -> Variant {
    Variant {
        op,
        name,
        generated: false,
        hardware_only: false,
        tile: None,
        taps: 0,
        fits: Fits::Any,
        why,
    }
}

impl Variant {
    const fn gen(mut self) -> Variant {
        self.generated = true;
        self
    }
    const fn hw(mut self) -> Variant {
        self.hardware_only = true;
        self
    }
    const fn tile(mut self, m: usize, n: usize) -> Variant {
        self.tile = Some((m, n));
        self.hardware_only = true;
        self
    }
    const fn taps(mut self, t: usize) -> Variant {
        self.taps = t;
        self
    }
    const fn fits(mut self, f: Fits) -> Variant {
        self.fits = f;
        self
    }
}

const FWD: &str = "conv2d_forward";
const WGRAD: &str = "conv2d_backward_weight";
const FUSED: &str = "conv2d_forward_relu_maxpool";
const PARAMS: &str = "conv2d_backward_params";

/// Every kernel variant, each op's default (`GLASSNET_AUTOTUNE=off`) first among its own.
pub const VARIANTS: &[Variant] = &[
    v("pad2d", "pad2d_v4", "one invocation per row, vec4 stores: lavapipe's pick").fits(Fits::RowWidth4),
    v("pad2d", "pad2d", "one invocation per row, scalar stores: any row width"),
    v("pad2d", "pad2d_elem", "one invocation per element, coalesced stores (hardware GPUs)"),
    v("conv2d_flip_weight", "conv2d_flip_weight", "the input gradient's weights: axes swapped, kernels rotated 180"),
    v(FWD, "conv2d_forward", "16 channels x 16 pixels in registers, scalar loads of a padded input: any shape").gen(),
    v(FWD, "conv2d_forward_v4", "vec4 loads from K shifted padded copies (K times the memory, fewer loads)").gen(),
    v(FWD, "conv2d_forward_v4s", "as _v4, also vec4 stores").gen().fits(Fits::OutputWidth4),
    v(FWD, "conv2d_forward_k5c2", "conv1 where the fused block cannot run: input shared by the workgroup, 2 channels per lane").gen().fits(Fits::OneChannel5x5Width4),
    v(FWD, "conv2d_forward_tiled", "64 x 64 tiles through workgroup memory, 4 x 4 outputs per invocation (hardware GPUs)").gen().tile(64, 64),
    v(FWD, "conv2d_forward_tiled32", "32 channels x 128 pixels: layers with few output channels").gen().tile(32, 128),
    v(FWD, "conv2d_forward_tiled16", "16 channels x 128 pixels: conv1").gen().tile(16, 128),
    v(FWD, "conv2d_forward_tiled8x8_64x128", "8 x 8 outputs per invocation; lost to the 4 x 4 tiles in every H100 shape").gen().tile(64, 128),
    v(FWD, "conv2d_forward_tiled8x8_64x64", "8 x 8 outputs per invocation, 64 x 64 tiles").gen().tile(64, 64),
    v(FWD, "conv2d_forward_tiled8x8_32x128", "8 x 8 outputs per invocation, 32 x 128 tiles").gen().tile(32, 128),
    v(FWD, "conv2d_forward_tiled8x8_16x256", "8 x 8 outputs per invocation, 16 x 256 tiles").gen().tile(16, 256),
    v(FUSED, "conv2d_forward_relu_maxpool", "conv + ReLU + 2x2 pooling in one pass, 16 channels x 2 rows of 8 pixels per lane").gen(),
    v(FUSED, "conv2d_forward_relu_maxpool_k5c2", "conv1: input shared by the workgroup, 2 channels' 25 weights per lane").gen().fits(Fits::OneChannel5x5),
    v(FUSED, "conv2d_forward_relu_maxpool_tiled32", "32 channels x 16 quads through workgroup memory (hardware GPUs)").gen().tile(32, 256),
    v(FUSED, "conv2d_forward_relu_maxpool_tiled16", "16 channels x 16 quads through workgroup memory (hardware GPUs)").gen().tile(16, 256),
    v("maxpool2d_relu_backward_argmax", "maxpool2d_relu_backward_argmax", "the fused block's backward: routes dout by the stored argmax codes"),
    v(WGRAD, "conv2d_backward_weight_t16", "16 taps x 16 channels per invocation, 4 images summed: the default").gen().taps(16),
    v(WGRAD, "conv2d_backward_weight_t18", "18 taps: fewer idle lanes where Ci K K is a multiple of 9").gen().taps(18),
    v(WGRAD, "conv2d_backward_weight_t4", "4 taps: small Ci K K").gen().taps(4),
    v(WGRAD, "conv2d_backward_weight_v4t4", "4 taps, 4 positions per step as vec4 from K shifted copies").gen().taps(4).fits(Fits::OutputWidth4),
    v(WGRAD, "conv2d_backward_weight_v4t16", "16 taps, 4 positions per step as vec4").gen().taps(16).fits(Fits::OutputWidth4),
    v(WGRAD, "conv2d_backward_weight_k5c2", "5x5 kernels: channels on the lanes, all 25 taps from 2 aligned vec4 per row").gen().taps(25).fits(Fits::Kernel5Width4),
    v(WGRAD, "conv2d_backward_weight_tiled", "64 channels x 64 taps per workgroup, per image (hardware GPUs)").gen().tile(64, 64),
    v(WGRAD, "conv2d_backward_weight_tiled_split", "as _tiled with each image's positions cut into up to 4 parts: more workgroups").gen().tile(64, 64),
    v(WGRAD, "conv2d_backward_weight_split", "a workgroup per (image, channels, kernel row), positions over its lanes: conv1 on hardware GPUs").hw().taps(5).fits(Fits::KernelAtMost5),
    v(WGRAD, "conv2d_backward_weight_tiled32x144", "split-tiled on conv2's 32 x 144 GEMM in whole tiles").gen().tile(32, 144),
    v(WGRAD, "conv2d_backward_weight_tiled16x32", "split-tiled on conv1's 16 x 25 in one tile").gen().tile(16, 32),
    v("conv2d_backward_bias", "conv2d_backward_bias", "one invocation per (image, channel) plane"),
    v("conv2d_backward_bias", "conv2d_backward_bias_split", "a workgroup per plane, positions over its lanes (hardware GPUs)").hw(),
    v(PARAMS, "conv2d_backward_params_tiled32x144", "weight and bias gradients in one split-tiled pass, then batch_sum_pair: 2 passes instead of 4").gen().tile(32, 144),
    v(PARAMS, "conv2d_backward_params_tiled16x32", "the same on 16 x 32 tiles").gen().tile(16, 32),
    v("batch_sum", "batch_sum", "one invocation per column: long rows, lavapipe"),
    v("batch_sum", "batch_sum_split", "16 lanes per column: deep sums over few columns (hardware GPUs)").hw(),
    v("batch_sum_pair", "batch_sum_pair", "two column ranges of one partial buffer in one pass"),
    v("maxpool2d_forward", "maxpool2d_forward", "one invocation per window"),
    v("maxpool2d_backward", "maxpool2d_backward", "one invocation per window (also maxpool2d_relu_backward, with the ReLU's mask)"),
    v("global_avgmax_pool_forward", "global_avgmax_pool_forward", "one invocation per (image, channel) plane"),
    v("global_avgmax_pool_backward", "global_avgmax_pool_backward", "one invocation per plane, which it alone writes"),
    v("batchnorm_forward", "batchnorm_forward", "training: a workgroup per channel, mean and variance in two passes, then the output"),
    v("batchnorm_inference", "batchnorm_inference", "running statistics, elementwise"),
    v("batchnorm_backward", "batchnorm_backward", "a workgroup per channel: both sums in one pass, then the input gradient"),
    v("dense_forward", "dense_forward", "16 outputs x 4 images per invocation (lavapipe)").gen(),
    v("dense_forward", "dense_forward_split", "a workgroup per image and 4 outputs, features over its lanes (hardware GPUs)").hw(),
    v("dense_backward_input", "dense_backward_input", "one invocation per input value: any shape"),
    v("dense_backward_weight", "dense_backward_weight", "one invocation per weight: any shape"),
    v("dense_backward_bias", "dense_backward_bias", "one invocation per output"),
    v("matmul", "matmul", "16 rows x 16 columns in registers: dense_backward_input, and bench's ceiling").gen().fits(Fits::Columns4),
    v("matmul_tn", "matmul_tn", "matmul with a stored transposed: dense_backward_weight").gen().fits(Fits::Columns4),
    v("relu_forward", "relu_forward", "elementwise"),
    v("relu_backward", "relu_backward", "elementwise"),
    v("sigmoid_forward", "sigmoid_forward", "elementwise"),
    v("sigmoid_backward", "sigmoid_backward", "elementwise"),
    v("l2norm_forward", "l2norm_forward", "one invocation per row"),
    v("l2norm_backward", "l2norm_backward", "one invocation per row"),
    v("pairwise_distance", "pairwise_distance", "one invocation per pair"),
    v("triplet_mine", "triplet_mine", "one invocation per anchor (batch-hard or semi-hard)"),
    v("triplet_loss_forward", "triplet_loss_forward", "one invocation per triplet"),
    v("triplet_loss_reduce", "triplet_loss_reduce", "one workgroup, fixed-shape tree (also the Siamese loss)"),
    v("triplet_loss_backward", "triplet_loss_backward", "one invocation per embedding value, triplets in order"),
    v("triplet_all_forward", "triplet_all_forward", "batch-all, pass 1: per pair how many active triplets use it"),
    v("triplet_all_reduce", "triplet_all_reduce", "batch-all, pass 2: one workgroup"),
    v("triplet_all_backward", "triplet_all_backward", "batch-all, pass 3: the pairwise form of the gradient"),
    v("siamese_forward", "siamese_forward", "one invocation per pair"),
    v("siamese_backward", "siamese_backward", "one invocation per output value, pairs in order"),
    v("adam_update", "adam_update", "the whole flat parameter buffer in one dispatch"),
    v("sgd_momentum_update", "sgd_momentum_update", "the whole flat parameter buffer in one dispatch"),
];

/// The one-name trail's exceptions: ops with a reference function but no shader of their own,
/// or a shader but no reference function of their own, and what stands in for the missing
/// one (tests/variants.rs checks that every other reference function is an op here and every
/// op a reference function).
pub const COMPOSED: &[(&str, &str)] = &[
    (
        "conv2d_backward_input",
        "no shader: conv2d_flip_weight, then a conv2d_forward variant on dout padded by K - 1 - pad",
    ),
    (
        "conv2d_backward_params",
        "no reference: conv2d_backward_weight and conv2d_backward_bias in one pass, tested against both",
    ),
    (
        "batch_sum_pair",
        "no reference: batch_sum over two column ranges, tested through conv2d_backward_params",
    ),
];

/// The variant with this shader name.
pub fn variant(name: &str) -> Option<&'static Variant> {
    VARIANTS.iter().find(|v| v.name == name)
}

/// The shader names of `op`'s variants, its default first.
pub fn variants(op: &str) -> Vec<&'static str> {
    VARIANTS
        .iter()
        .filter(|v| v.op == op)
        .map(|v| v.name)
        .collect()
}

/// `name` if it is one of `op`'s variants.
pub fn variant_of(op: &str, name: &str) -> Option<&'static Variant> {
    variant(name).filter(|v| v.op == op)
}
