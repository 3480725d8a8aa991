//! GPU tensors, dispatches, and one wrapper per kernel in shaders/, named as the shader and
//! its CPU reference function. A wrapper only builds the dispatch (uniforms + bind group);
//! callers build their dispatches once and record them every step.

use std::num::NonZeroU64;
use std::sync::Arc;

use crate::gpu::context::GpuContext;
use crate::gpu::pipeline::{Kernel, WORKGROUP};
use crate::optim::{AdamParams, SgdParams};
use crate::shapes::{Conv2dShape, DenseShape, MineMode, PoolShape};
use crate::{Error, Result};

/// A run of 4-byte elements (f32 or u32) inside a storage buffer.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    pub buffer: Arc<wgpu::Buffer>,
    /// In elements; a multiple of 64 (256 bytes) when the view is bound on its own.
    pub offset: usize,
    pub len: usize,
}

impl GpuTensor {
    /// A view of `len` elements from `offset` inside this one.
    pub fn slice(&self, offset: usize, len: usize) -> GpuTensor {
        assert!(
            offset + len <= self.len,
            "slice {offset}+{len} outside a tensor of {}",
            self.len
        );
        GpuTensor {
            buffer: self.buffer.clone(),
            offset: self.offset + offset,
            len,
        }
    }

    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: (self.offset * 4) as u64,
            // Empty lists (e.g. no triplets) still bind one element that the kernel never reads.
            size: NonZeroU64::new((self.len.max(1) * 4) as u64),
        })
    }
}

/// Uniform block size every kernel's `Params` fits in (16 x 4 bytes).
const UNIFORM_WORDS: usize = 16;

/// A kernel with its bind group and grid, ready to record.
pub struct Dispatch {
    kernel: Arc<Kernel>,
    bind_group: wgpu::BindGroup,
    uniform: wgpu::Buffer,
    groups: (u32, u32),
}

impl Dispatch {
    pub fn name(&self) -> &'static str {
        self.kernel.name
    }

    /// Rewrites the uniforms (e.g. the learning rate of this step) without rebuilding.
    pub fn set_uniforms(&self, ctx: &GpuContext, words: &[u32]) {
        let mut block = [0u32; UNIFORM_WORDS];
        block[..words.len()].copy_from_slice(words);
        ctx.queue
            .write_buffer(&self.uniform, 0, bytemuck::cast_slice(&block));
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups.0, self.groups.1, 1);
    }
}

/// Grid for `groups` workgroups: x capped at 65,535, y for the rest (kernels rebuild the
/// linear workgroup index from num_workgroups and bound-check it).
pub fn groups_grid(groups: usize) -> (usize, usize) {
    let x = groups.clamp(1, 65_535);
    (x, groups.div_ceil(x))
}

/// Grid for `threads` invocations of WORKGROUP: x capped at 65,535 groups, y for the rest
/// (kernels rebuild the linear index from num_workgroups and bound-check it).
pub fn grid(threads: usize) -> (u32, u32) {
    let groups = threads.div_ceil(WORKGROUP as usize).max(1);
    let x = groups.min(65_535);
    (x as u32, groups.div_ceil(x) as u32)
}

fn f(x: f32) -> u32 {
    x.to_bits()
}

fn u(x: usize) -> u32 {
    u32::try_from(x).expect("shape exceeds u32")
}

impl GpuContext {
    /// A zero-filled storage buffer of `len` 4-byte elements; errors clearly past the limits.
    pub fn tensor(&self, len: usize, label: &str) -> Result<GpuTensor> {
        let bytes = (len.max(1) * 4) as u64;
        if bytes > self.max_binding() {
            return Err(Error::Gpu(format!(
                "{label} needs {:.1} MiB but {} binds at most {:.1} MiB: use a smaller batch",
                bytes as f64 / 1048576.0,
                self.adapter.info.name,
                self.max_binding() as f64 / 1048576.0
            )));
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuTensor {
            buffer: Arc::new(buffer),
            offset: 0,
            len,
        })
    }

    /// A tensor holding `data`.
    pub fn tensor_from<T: bytemuck::Pod>(&self, data: &[T], label: &str) -> Result<GpuTensor> {
        assert_eq!(std::mem::size_of::<T>(), 4);
        let t = self.tensor(data.len(), label)?;
        self.upload(&t, data);
        Ok(t)
    }

    /// Queues a write of `data` into `t` (applied before the next submission).
    pub fn upload<T: bytemuck::Pod>(&self, t: &GpuTensor, data: &[T]) {
        assert!(
            data.len() <= t.len.max(1),
            "upload of {} into a tensor of {}",
            data.len(),
            t.len
        );
        if !data.is_empty() {
            self.queue
                .write_buffer(&t.buffer, (t.offset * 4) as u64, bytemuck::cast_slice(data));
        }
    }

    /// Copies `t` back to the host (waits for the GPU).
    pub fn read<T: bytemuck::Pod>(&self, t: &GpuTensor) -> Result<Vec<T>> {
        let bytes = (t.len * 4) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&t.buffer, (t.offset * 4) as u64, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        self.map_read(&staging)
    }

    /// Maps a MAP_READ buffer after the submitted work finishes and copies it out.
    pub fn map_read<T: bytemuck::Pod>(&self, staging: &wgpu::Buffer) -> Result<Vec<T>> {
        self.map_read_after(staging, None)
    }

    /// `map_read` once submission `index` is done (all submitted work when None): work
    /// submitted after it keeps running.
    pub fn map_read_after<T: bytemuck::Pod>(
        &self,
        staging: &wgpu::Buffer,
        index: Option<wgpu::SubmissionIndex>,
    ) -> Result<Vec<T>> {
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: index,
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.check()?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback never completed".into()))?
            .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Builds a dispatch of kernel `name` over `threads` invocations. `bindings` follow the
    /// uniform block in the shader's binding order (outputs first, then inputs).
    pub fn dispatch(
        &self,
        name: &'static str,
        uniforms: &[u32],
        bindings: &[&GpuTensor],
        threads: usize,
    ) -> Result<Dispatch> {
        let (x, y) = grid(threads);
        self.dispatch_grid(name, uniforms, bindings, (x as usize, y as usize))
    }

    /// A dispatch of `groups` (x, y) workgroups; a grid past the dispatch limit of 65,535 per
    /// dimension is a clear error naming the kernel, not a wgpu validation panic.
    pub(crate) fn dispatch_grid(
        &self,
        name: &'static str,
        uniforms: &[u32],
        bindings: &[&GpuTensor],
        groups: (usize, usize),
    ) -> Result<Dispatch> {
        if groups.0 > 65_535 || groups.1 > 65_535 {
            return Err(Error::Gpu(format!(
                "{name}: a grid of {} x {} workgroups exceeds one dispatch (65,535 per \
                 dimension): use a smaller batch",
                groups.0, groups.1
            )));
        }
        let groups = (u(groups.0), u(groups.1));
        let kernel = self.kernel(name)?;
        let uniform = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: (UNIFORM_WORDS * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, t) in bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: t.binding(),
            });
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(name),
            layout: &kernel.layout,
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("binding {name}: {e}")));
        }
        let d = Dispatch {
            kernel,
            bind_group,
            uniform,
            groups,
        };
        d.set_uniforms(self, uniforms);
        Ok(d)
    }

    /// Records `dispatches` in one compute pass, submits once and waits.
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.queue.submit([enc.finish()]);
        self.wait()
    }
}

/// Output channels x consecutive output pixels each conv2d_forward invocation computes
/// (the register block of tools/gen_kernels.py).
const CONV_CHANNELS: usize = 16;
const CONV_PIXELS: usize = 16;

fn pool_words(s: &PoolShape) -> [u32; 5] {
    [s.batch * s.c, s.h, s.w, s.ho(), s.wo()].map(u)
}

fn dense_words(s: &DenseShape) -> [u32; 3] {
    [s.batch, s.nin, s.nout].map(u)
}

/// pad2d's variants: one invocation per row (vec4 stores where the row width allows) for
/// CPU-type adapters, one per element (coalesced stores) for hardware GPUs. The first one
/// allowed for a shape is the default (`GLASSNET_AUTOTUNE=off`).
pub const PAD_VARIANTS: &[&str] = &["pad2d_v4", "pad2d", "pad2d_elem"];

/// out `[copies, N, H + 2 pad, wr]`: copies of inp `[N, H, W]` in a zero border, copy c
/// shifted left by c columns (one copy with `wr = W + 2 pad` is plain padding), by the
/// variant autotune measured fastest for this adapter and shape.
#[allow(clippy::too_many_arguments)]
pub fn pad2d(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    h: usize,
    w: usize,
    pad: usize,
    wr: usize,
    copies: usize,
) -> Result<Dispatch> {
    let variants: Vec<&'static str> = PAD_VARIANTS
        .iter()
        .copied()
        .filter(|v| *v != "pad2d_v4" || wr.is_multiple_of(4))
        .collect();
    let key = format!("pad2d n{n} {h}x{w} pad{pad} wr{wr} copies{copies}");
    ctx.tune.pick(
        &key,
        &variants,
        |v| pad2d_variant(ctx, v, out, inp, n, h, w, pad, wr, copies),
        |d| ctx.run(&[d]),
    )
}

/// pad2d with a given variant (tests run them all); pad2d_v4 needs `wr` a multiple of 4.
#[allow(clippy::too_many_arguments)]
pub fn pad2d_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    h: usize,
    w: usize,
    pad: usize,
    wr: usize,
    copies: usize,
) -> Result<Dispatch> {
    let rows = copies * n * (h + 2 * pad);
    let threads = match variant {
        "pad2d" => rows,
        "pad2d_v4" if wr.is_multiple_of(4) => rows,
        "pad2d_elem" => rows * wr,
        _ => return Err(Error::Gpu(format!("{variant} cannot pad rows of {wr}"))),
    };
    ctx.dispatch(
        variant,
        &[n, h, w, pad, wr, copies].map(u),
        &[out, inp],
        threads,
    )
}

/// A zero-padded copy of `inp` `[planes, h, w]` (allocated here, once, and filled by a pad2d
/// pushed onto `d`), or `inp` itself when `pad` is 0.
fn padded(
    ctx: &GpuContext,
    d: &mut Vec<Dispatch>,
    inp: &GpuTensor,
    (planes, h, w, pad): (usize, usize, usize, usize),
    label: &str,
) -> Result<GpuTensor> {
    if pad == 0 {
        return Ok(inp.clone());
    }
    let wr = w + 2 * pad;
    let t = ctx.tensor(planes * (h + 2 * pad) * wr, label)?;
    d.push(pad2d(ctx, &t, inp, planes, h, w, pad, wr, 1)?);
    Ok(t)
}

/// flipped `[Ci, Co, K, K]` from weight `[Co, Ci, K, K]` (axes swapped, kernels rotated 180).
pub fn conv2d_flip_weight(
    ctx: &GpuContext,
    flipped: &GpuTensor,
    weight: &GpuTensor,
    cout: usize,
    cin: usize,
    k: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "conv2d_flip_weight",
        &[cout, cin, k].map(u),
        &[flipped, weight],
        cout * cin * k * k,
    )
}

/// The forward convolution's variants (the default first); autotune picks one per adapter and
/// shape. conv2d_forward reads a padded input with scalar loads; conv2d_forward_v4 reads K
/// shifted copies of it with vec4 loads (K times the memory, fewer loads); conv2d_forward_v4s
/// also stores vec4 (only where Wo is a multiple of 4); conv2d_forward_tiled computes 64 x 64
/// tiles staged through workgroup memory (for hardware GPUs), conv2d_forward_tiled32 and _16
/// 32 or 16 channels x 128 pixels (layers with few output channels), the `_tiled8x8` ones
/// 8 x 8 outputs per invocation read as vec4 (channels x pixels 64 x 128, 64 x 64, 32 x 128,
/// 16 x 256); conv2d_forward_k5c2 is
/// for one input channel and a 5x5 kernel (the first layer where the fused block cannot run),
/// the input shared by the workgroup and 2 channels per lane, Wo a multiple of 4.
pub const FORWARD_VARIANTS: &[&str] = &[
    "conv2d_forward",
    "conv2d_forward_v4",
    "conv2d_forward_v4s",
    "conv2d_forward_k5c2",
    "conv2d_forward_tiled",
    "conv2d_forward_tiled32",
    "conv2d_forward_tiled16",
    "conv2d_forward_tiled8x8_64x128",
    "conv2d_forward_tiled8x8_64x64",
    "conv2d_forward_tiled8x8_32x128",
    "conv2d_forward_tiled8x8_16x256",
];

/// Output tile side (channels and pixels, or channels and taps) of the `_tiled` variants,
/// which stage operands through workgroup memory for hardware GPUs.
const TILE: usize = 64;

/// (channels, pixels) of the output tile of a `conv2d_forward_tiled*` variant: 64 x 64, or
/// 32 and 16 channels x 128 pixels for layers with few output channels; the `8x8` ones
/// compute 8 x 8 outputs per invocation (64 x 128, 64 x 64, 32 x 128, 16 x 256).
fn forward_tile(variant: &str) -> Option<(usize, usize)> {
    match variant {
        "conv2d_forward_tiled" => Some((TILE, TILE)),
        "conv2d_forward_tiled32" => Some((32, 128)),
        "conv2d_forward_tiled16" => Some((16, 128)),
        "conv2d_forward_tiled8x8_64x128" => Some((TILE, 128)),
        "conv2d_forward_tiled8x8_64x64" => Some((TILE, TILE)),
        "conv2d_forward_tiled8x8_32x128" => Some((32, 128)),
        "conv2d_forward_tiled8x8_16x256" => Some((16, 256)),
        _ => None,
    }
}

/// `[Ci K K]` offsets of each tap (ci, ky, kx) from an output pixel's first element: for
/// conv2d_forward in a padded input of `hp` x `wp` planes; for conv2d_forward_v4, in vec4, in
/// the shifted copies (`wp` = Wr / 4, `copy` = one copy's length in vec4).
fn tap_offsets(cin: usize, k: usize, hp: usize, wp: usize, copy: usize) -> Vec<u32> {
    let mut t = Vec::with_capacity(cin * k * k);
    for ci in 0..cin {
        for ky in 0..k {
            for kx in 0..k {
                t.push(u(if copy == 0 {
                    ci * hp * wp + ky * wp + kx
                } else {
                    kx * copy + ci * hp * wp + ky * wp
                }));
            }
        }
    }
    t
}

/// The dispatches of one forward variant on the unpadded input `inp` `[B, Ci, H, W]`, with
/// its scratch (padded input, tap table) allocated here, once. Without a bias the sums start
/// at zero.
#[allow(clippy::too_many_arguments)]
fn forward_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    relu: bool,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let mut d = Vec::new();
    let hp = s.h + 2 * s.pad;
    let has_bias = bias.is_some() as usize;
    // Without a bias, bind the weights in its place: the shaders never read it.
    let bias = bias.unwrap_or(weight);
    if let Some((tm, tn)) = forward_tile(variant) {
        let taps = unpadded_taps(ctx, &s)?;
        let (x, y) = (
            (s.batch * s.ho() * s.wo()).div_ceil(tn),
            s.cout.div_ceil(tm),
        );
        let words = [
            s.batch,
            s.cin,
            s.cout,
            s.h,
            s.w,
            s.ho(),
            s.wo(),
            has_bias,
            relu as usize,
            s.cin * s.k * s.k,
            s.pad,
        ];
        let bind = [out, inp, weight, bias, &taps];
        d.push(ctx.dispatch_grid(variant, &words.map(u), &bind, (x, y))?);
        return Ok(d);
    }
    if variant == "conv2d_forward_k5c2" {
        if s.cin != 1 || s.k != 5 || !s.wo().is_multiple_of(4) {
            return Err(Error::Gpu(format!(
                "{variant} needs one input channel, a 5x5 kernel and an output width that is a \
                 multiple of 4, not {}, {}x{} and {}",
                s.cin,
                s.k,
                s.k,
                s.wo()
            )));
        }
        // Rows of the padded input reach 3 vec4 past each group of 8 pixels; with Ho odd the
        // last pair's second row reads one row past the batch (a spare row, never stored).
        let (wo8, ho2) = (s.wo().div_ceil(8), s.ho().div_ceil(2));
        let wr4 = 2 * wo8 + 1;
        let xp = ctx.tensor((s.batch * hp + 1) * wr4 * 4, "conv input, padded")?;
        d.push(pad2d(ctx, &xp, inp, s.batch, s.h, s.w, s.pad, wr4 * 4, 1)?);
        let words = [
            s.batch,
            s.cout,
            s.ho(),
            s.wo() / 4,
            hp,
            wr4,
            ho2,
            wo8,
            has_bias,
            relu as usize,
        ];
        let x = s
            .cout
            .div_ceil(FUSED_ROW_CHANNELS)
            .div_ceil(WORKGROUP as usize);
        d.push(ctx.dispatch_grid(
            variant,
            &words.map(u),
            &[out, &xp, weight, bias],
            (x, s.batch * ho2),
        )?);
        return Ok(d);
    }
    let (grid_x, words, xp, taps) = match variant {
        "conv2d_forward" => {
            let wp = s.w + 2 * s.pad;
            let xp = padded(
                ctx,
                &mut d,
                inp,
                (s.batch * s.cin, s.h, s.w, s.pad),
                "conv input, padded",
            )?;
            let words = vec![
                s.batch,
                s.cin,
                s.cout,
                hp,
                wp,
                s.k,
                s.ho(),
                s.wo(),
                has_bias,
                relu as usize,
            ];
            let pixels = s.batch * s.ho() * s.wo();
            let taps = tap_offsets(s.cin, s.k, hp, wp, 0);
            (pixels.div_ceil(CONV_PIXELS), words, xp, taps)
        }
        "conv2d_forward_v4" | "conv2d_forward_v4s" => {
            if variant == "conv2d_forward_v4s" && !s.wo().is_multiple_of(4) {
                return Err(Error::Gpu(format!(
                    "conv2d_forward_v4s needs an output width that is a multiple of 4, not {}",
                    s.wo()
                )));
            }
            let wr4 = s.wo().div_ceil(4);
            let copy = s.batch * s.cin * hp * wr4;
            let xp = ctx.tensor(s.k * copy * 4, "conv input, padded and shifted")?;
            d.push(pad2d(
                ctx,
                &xp,
                inp,
                s.batch * s.cin,
                s.h,
                s.w,
                s.pad,
                wr4 * 4,
                s.k,
            )?);
            let words = vec![
                s.batch,
                s.cin,
                s.cout,
                hp,
                wr4,
                s.ho(),
                s.wo(),
                has_bias,
                s.cin * s.k * s.k,
                relu as usize,
            ];
            let groups = s.batch * s.ho() * wr4;
            let taps = tap_offsets(s.cin, s.k, hp, wr4, copy);
            (groups.div_ceil(CONV_PIXELS / 4), words, xp, taps)
        }
        other => return Err(Error::Gpu(format!("no conv2d_forward variant {other}"))),
    };
    let x = grid_x.div_ceil(WORKGROUP as usize);
    let taps = ctx.tensor_from(&taps, "conv tap offsets")?;
    let words: Vec<u32> = words.into_iter().map(u).collect();
    d.push(ctx.dispatch_grid(
        variant,
        &words,
        &[out, &xp, weight, bias, &taps],
        (x, s.cout.div_ceil(CONV_CHANNELS)),
    )?);
    Ok(d)
}

/// The variants worth measuring on this adapter. The `_tiled` ones stage operands through
/// workgroup memory and the `_split` ones split a long sum over a workgroup's lanes: what
/// hardware GPUs need, and what CPU-type adapters (lavapipe) run 10-50x slower than the
/// register-blocked ones, so they are left out there.
fn variants_for(ctx: &GpuContext, all: &[&'static str]) -> Vec<&'static str> {
    let cpu_type = ctx.adapter.is_software();
    all.iter()
        .copied()
        .filter(|v| !(cpu_type && (v.contains("_tiled") || v.ends_with("_split"))))
        .collect()
}

/// What the `_tiled` variants read the unpadded input through, allocated here, once:
/// `[Ci K K, 2]` u32, per tap (ci, ky, kx) its offset `ci H W + ky W + kx` from a pixel's
/// window corner and `ky << 16 | kx`, from which the shader tells the taps that land in
/// the zero border (they read nothing, so no pad2d pass runs before these kernels).
fn unpadded_taps(ctx: &GpuContext, s: &Conv2dShape) -> Result<GpuTensor> {
    let mut t = Vec::with_capacity(2 * s.cin * s.k * s.k);
    for ci in 0..s.cin {
        for ky in 0..s.k {
            for kx in 0..s.k {
                t.push(u(ci * s.h * s.w + ky * s.w + kx));
                t.push(u(ky << 16 | kx));
            }
        }
    }
    ctx.tensor_from(&t, "conv tap table")
}

/// Runs a list of dispatches once (what autotune times).
fn run_all(ctx: &GpuContext, d: &[Dispatch]) -> Result<()> {
    ctx.run(&d.iter().collect::<Vec<_>>())
}

fn shape_key(kernel: &str, s: &Conv2dShape) -> String {
    format!(
        "{kernel} b{} ci{} co{} {}x{} k{} pad{}",
        s.batch, s.cin, s.cout, s.h, s.w, s.k, s.pad
    )
}

/// The dispatches of the variant of `kernel` that autotune measured fastest for this adapter
/// and shape, among `variants` worth trying here; `build` makes a given one.
fn tuned_conv(
    ctx: &GpuContext,
    kernel: &str,
    s: &Conv2dShape,
    variants: &[&'static str],
    build: impl FnMut(&'static str) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    ctx.tune.pick(
        &shape_key(kernel, s),
        &variants_for(ctx, variants),
        build,
        |d| run_all(ctx, d),
    )
}

/// conv2d_forward with a given variant (tests run them all).
pub fn conv2d_forward_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    forward_variant(ctx, variant, out, inp, weight, Some(bias), false, s)
}

/// conv2d_forward_relu with a given variant (tests run them all).
pub fn conv2d_forward_relu_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    forward_variant(ctx, variant, out, inp, weight, Some(bias), true, s)
}

/// out `[B, Co, Ho, Wo]` = conv(inp `[B, Ci, H, W]`, weight `[Co, Ci, K, K]`) + bias `[Co]`:
/// pad2d into a padded copy of the input (allocated here, once), then the variant of the
/// implicit-GEMM kernel that autotune measured fastest for this adapter and shape.
pub fn conv2d_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    conv_forward_tuned(ctx, out, inp, weight, bias, false, s)
}

/// out `[B, Co, Ho, Wo]` = relu(conv2d_forward(...)): the same kernels (and autotune choice)
/// with the ReLU applied as they store, saving relu_forward's pass over the layer's output.
/// GPU only; tested against the reference conv2d_forward followed by relu_forward.
pub fn conv2d_forward_relu(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    conv_forward_tuned(ctx, out, inp, weight, bias, true, s)
}

/// Whether conv2d_forward_relu_maxpool takes a layer of this shape: an even output height and
/// an output width that is a multiple of 8 (4 pooled outputs per code word, never two rows).
pub fn relu_maxpool_fits(s: &Conv2dShape) -> bool {
    s.ho() > 0 && s.ho().is_multiple_of(2) && s.wo() > 0 && s.wo().is_multiple_of(8)
}

/// u32 words of conv2d_forward_relu_maxpool's codes: one per 4 pooled outputs.
pub fn pool_code_words(s: &Conv2dShape) -> usize {
    s.batch * s.cout * (s.ho() / 2) * (s.wo() / 8)
}

/// pooled `[B, Co, Ho/2, Wo/2]` = maxpool2d(relu(conv2d_forward(...))) in one pass, and codes
/// `[pool_code_words]` u32 (each window's argmax, for maxpool2d_relu_backward_argmax): the
/// full-size activation is never written and maxpool2d_forward's pass over it is gone. pad2d
/// writes K shifted padded copies of the input into scratch allocated here, once. Only where
/// relu_maxpool_fits; the engine keeps the unfused passes elsewhere.
pub fn conv2d_forward_relu_maxpool(
    ctx: &GpuContext,
    pooled: &GpuTensor,
    codes: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(
        ctx,
        "conv2d_forward_relu_maxpool",
        &s,
        RELU_MAXPOOL_VARIANTS,
        |v| conv2d_forward_relu_maxpool_variant(ctx, v, pooled, codes, inp, weight, bias, s),
    )
}

/// conv2d_forward_relu_maxpool's variants, the default first: 16 channels from the workgroup
/// x 16 pixels per lane (any input channels and kernel size), and `_k5c2` for one input
/// channel and a 5x5 kernel (the first layer), with the input shared by the workgroup and 2
/// channels per lane; `_tiled32` and `_tiled16` stage 32 or 16 channels x 256 pixels through
/// workgroup memory (hardware GPUs). Same outputs, same sums in the same order.
pub const RELU_MAXPOOL_VARIANTS: &[&str] = &[
    "conv2d_forward_relu_maxpool",
    "conv2d_forward_relu_maxpool_k5c2",
    "conv2d_forward_relu_maxpool_tiled32",
    "conv2d_forward_relu_maxpool_tiled16",
];

/// Output channels per invocation of conv2d_forward_relu_maxpool_k5c2 and conv2d_forward_k5c2.
const FUSED_ROW_CHANNELS: usize = 2;

/// conv2d_forward_relu_maxpool with a given variant (tests run them all).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_relu_maxpool_variant(
    ctx: &GpuContext,
    variant: &'static str,
    pooled: &GpuTensor,
    codes: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    if !relu_maxpool_fits(&s) {
        return Err(Error::Gpu(format!(
            "conv2d_forward_relu_maxpool needs an even output height and an output width that \
             is a multiple of 8, not {}x{}",
            s.ho(),
            s.wo()
        )));
    }
    let hp = s.h + 2 * s.pad;
    if variant == "conv2d_forward_relu_maxpool_k5c2" {
        if s.cin != 1 || s.k != 5 {
            return Err(Error::Gpu(format!(
                "{variant} needs one input channel and a 5x5 kernel, not {} and {}x{}",
                s.cin, s.k, s.k
            )));
        }
        // Rows of the padded input reach 3 vec4 past each group of 8 pixels.
        let wr4 = s.wo() / 4 + 1;
        let xp = ctx.tensor(s.batch * hp * wr4 * 4, "conv input, padded")?;
        let mut d = vec![pad2d(ctx, &xp, inp, s.batch, s.h, s.w, s.pad, wr4 * 4, 1)?];
        let x = s
            .cout
            .div_ceil(FUSED_ROW_CHANNELS)
            .div_ceil(WORKGROUP as usize);
        let y = s.batch * s.ho() / 2;
        let words = [s.batch, s.cout, hp, wr4, s.ho() / 2, s.wo() / 8];
        d.push(ctx.dispatch_grid(
            variant,
            &words.map(u),
            &[pooled, codes, &xp, weight, bias],
            (x, y),
        )?);
        return Ok(d);
    }
    let tiled = match variant {
        "conv2d_forward_relu_maxpool_tiled32" => Some(32),
        "conv2d_forward_relu_maxpool_tiled16" => Some(16),
        _ => None,
    };
    if let Some(tm) = tiled {
        // One workgroup per 16 quads (2 rows x 8 pixels, one code word) and tm channels.
        let taps = unpadded_taps(ctx, &s)?;
        let quads = pool_code_words(&s) / s.cout;
        let words = [
            s.batch,
            s.cin,
            s.cout,
            s.h,
            s.w,
            s.ho() / 2,
            s.wo() / 8,
            s.cin * s.k * s.k,
            s.pad,
        ];
        let bind = [pooled, codes, inp, weight, bias, &taps];
        let grid = (quads.div_ceil(16), s.cout.div_ceil(tm));
        return Ok(vec![ctx.dispatch_grid(
            variant,
            &words.map(u),
            &bind,
            grid,
        )?]);
    }
    if variant != "conv2d_forward_relu_maxpool" {
        return Err(Error::Gpu(format!(
            "no conv2d_forward_relu_maxpool variant {variant}"
        )));
    }
    let wr4 = s.wo() / 4;
    let copy = s.batch * s.cin * hp * wr4;
    let xp = ctx.tensor(s.k * copy * 4, "conv input, padded and shifted")?;
    let mut d = vec![pad2d(
        ctx,
        &xp,
        inp,
        s.batch * s.cin,
        s.h,
        s.w,
        s.pad,
        wr4 * 4,
        s.k,
    )?];
    let groups = pool_code_words(&s) / s.cout;
    let x = groups.div_ceil(WORKGROUP as usize);
    let taps = ctx.tensor_from(&tap_offsets(s.cin, s.k, hp, wr4, copy), "conv tap offsets")?;
    let words = [
        s.batch,
        s.cin,
        s.cout,
        hp,
        wr4,
        s.ho() / 2,
        s.wo() / 8,
        s.cin * s.k * s.k,
    ];
    d.push(ctx.dispatch_grid(
        "conv2d_forward_relu_maxpool",
        &words.map(u),
        &[pooled, codes, &xp, weight, bias, &taps],
        (x, s.cout.div_ceil(CONV_CHANNELS)),
    )?);
    Ok(d)
}

/// The forward variant autotune measured fastest for this shape (timed on these very
/// buffers), built.
fn conv_forward_tuned(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    relu: bool,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(ctx, "conv2d_forward", &s, FORWARD_VARIANTS, |v| {
        forward_variant(ctx, v, out, inp, weight, Some(bias), relu, s)
    })
}

/// The input gradient as a forward convolution: shape of dout padded by K - 1 - pad.
fn transposed(s: &Conv2dShape) -> Conv2dShape {
    Conv2dShape {
        batch: s.batch,
        cin: s.cout,
        cout: s.cin,
        h: s.ho(),
        w: s.wo(),
        k: s.k,
        pad: s.k - 1 - s.pad,
    }
}

/// conv2d_backward_input with a given forward variant (tests run them all).
pub fn conv2d_backward_input_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    if s.pad >= s.k {
        return Err(Error::Gpu(format!(
            "conv2d_backward_input needs pad < k (got pad {} for k {})",
            s.pad, s.k
        )));
    }
    let flipped = ctx.tensor(s.weight_len(), "flipped conv weight")?;
    let mut d = vec![conv2d_flip_weight(
        ctx, &flipped, weight, s.cout, s.cin, s.k,
    )?];
    d.extend(forward_variant(
        ctx,
        variant,
        dinp,
        dout,
        &flipped,
        None,
        false,
        transposed(&s),
    )?);
    Ok(d)
}

/// dinp `[B, Ci, H, W]` from dout `[B, Co, Ho, Wo]` and weight: the forward convolution of
/// dout, padded by K - 1 - pad, with the flipped weights (conv2d_flip_weight), so it runs on the
/// same tuned kernels. Scratch (flipped weights, padded dout) is allocated here, once.
pub fn conv2d_backward_input(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(ctx, "conv2d_backward_input", &s, FORWARD_VARIANTS, |v| {
        conv2d_backward_input_variant(ctx, v, dinp, dout, weight, s)
    })
}

/// Images per dense_forward invocation and outputs per workgroup (tools/gen_kernels.py).
const DENSE_IMAGES: usize = 4;
const DENSE_OUTPUTS: usize = 16;

/// Output channels each conv2d_backward_weight invocation computes.
const WGRAD_CHANNELS: usize = 16;

/// Images the `_t` weight-gradient variants sum per invocation: their partials (written, then
/// read back by batch_sum) shrink by this factor, which pays where an image has few positions.
const WGRAD_IMAGES: usize = 4;

/// conv2d_backward_weight's variants as (shader, taps per invocation), the default first;
/// autotune picks one per adapter and shape. The `_v4` ones read 4 output positions per step
/// as vec4 from K shifted padded copies of the input (only where Wo is a multiple of 4).
pub const WGRAD_VARIANTS: &[(&str, usize)] = &[
    ("conv2d_backward_weight_t16", 16),
    ("conv2d_backward_weight_t18", 18),
    ("conv2d_backward_weight_t4", 4),
    ("conv2d_backward_weight_v4t4", 4),
    ("conv2d_backward_weight_v4t16", 16),
    // All 25 taps of a 5x5 kernel per invocation, 2 output channels per lane (see below).
    ("conv2d_backward_weight_k5c2", 25),
    // 64 channels x 64 taps per workgroup, staged through workgroup memory (hardware GPUs).
    ("conv2d_backward_weight_tiled", TILE),
    // The same with each image's positions cut into parts, as many as `partial` has room
    // for (up to WGRAD_PARTS): more workgroups where a layer has few tiles (hardware GPUs).
    ("conv2d_backward_weight_tiled_split", TILE),
    // Positions split over a workgroup per (image, channels, kernel row): layers with few
    // weights and many positions on hardware GPUs (conv1); K <= 5.
    ("conv2d_backward_weight_split", 5),
    // tiled_split on tiles shaped to small layers (channels x taps): conv2's 32 x 144 GEMM
    // (and conv3's, conv4's in 4 and 16 of them) in whole tiles; conv1's 16 x 25 in one.
    ("conv2d_backward_weight_tiled32x144", 144),
    ("conv2d_backward_weight_tiled16x32", 32),
];

/// (channels, taps) of each split-tiled weight-gradient variant's tile (the `params` ones
/// also sum the bias partials).
fn wgrad_tile(variant: &str) -> Option<(usize, usize)> {
    match variant {
        "conv2d_backward_weight_tiled_split" => Some((TILE, TILE)),
        "conv2d_backward_weight_tiled32x144" | "conv2d_backward_params_tiled32x144" => {
            Some((32, 144))
        }
        "conv2d_backward_weight_tiled16x32" | "conv2d_backward_params_tiled16x32" => Some((16, 32)),
        _ => None,
    }
}

/// The pass of a split-tiled weight-gradient variant on (tm, tn) tiles: per-part partial rows
/// of `stride` values into `partial` (weights, then with `with_bias` the bias partials), each
/// image's positions cut into as many parts as `partial` has room for (64 x 64 tiles: up to
/// WGRAD_PARTS; shaped tiles: enough for WGRAD_GROUPS workgroups). Returns it and the rows.
#[allow(clippy::too_many_arguments)]
fn split_wgrad_pass(
    ctx: &GpuContext,
    variant: &'static str,
    (tm, tn): (usize, usize),
    partial: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: &Conv2dShape,
    with_bias: bool,
) -> Result<(Dispatch, usize)> {
    let (hw, ws) = (s.ho() * s.wo(), s.cin * s.k * s.k);
    let stride = s.weight_len() + if with_bias { s.cout } else { 0 };
    let tiles = ws.div_ceil(tn) * s.cout.div_ceil(tm);
    let room = partial.len / (s.batch * stride).max(1);
    if room == 0 {
        return Err(Error::Gpu(format!(
            "{variant}: partial holds {} values, one row per image needs {stride}",
            partial.len
        )));
    }
    let want = if tm == TILE {
        WGRAD_PARTS
    } else {
        WGRAD_GROUPS.div_ceil(tiles * s.batch).min(4 * WGRAD_PARTS)
    };
    let parts = want.min(room).min(hw.div_ceil(64)).max(1);
    let per = hw.div_ceil(parts);
    let taps = unpadded_taps(ctx, s)?;
    let grid = (ws.div_ceil(tn), s.cout.div_ceil(tm) * s.batch * parts);
    let mut words = vec![
        s.batch,
        s.cin,
        s.cout,
        s.h,
        s.w,
        s.ho(),
        s.wo(),
        ws,
        parts,
        per,
        s.pad,
    ];
    if with_bias {
        words.push(stride);
    }
    let words: Vec<u32> = words.into_iter().map(u).collect();
    let bind = [partial, dout, inp, &taps];
    Ok((
        ctx.dispatch_grid(variant, &words, &bind, grid)?,
        s.batch * parts,
    ))
}

/// Workgroups the shaped split-tiled variants aim for: a few per compute unit of a large GPU.
const WGRAD_GROUPS: usize = 512;

/// Most parts conv2d_backward_weight_tiled_split cuts an image's positions into (at least 64
/// positions each): batch_sum then adds B x parts rows per weight, one invocation per weight
/// in row order, so more parts make that pass long.
const WGRAD_PARTS: usize = 4;

/// Output channels per invocation of conv2d_backward_weight_k5c2.
const WGRAD_ROW_CHANNELS: usize = 2;

/// dweight `[Co, Ci, K, K]` with a given variant of the partials kernel (tests run them all):
/// the input padded (pad2d; K shifted copies for the `_v4` variants) into scratch allocated
/// here, once, per-image partials into `partial` `[B, Co*Ci*K*K]`, then batch_sum.
pub fn conv2d_backward_weight_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let taps = WGRAD_VARIANTS
        .iter()
        .find(|v| v.0 == variant)
        .ok_or_else(|| Error::Gpu(format!("no conv2d_backward_weight variant {variant}")))?
        .1;
    let mut d = Vec::new();
    let hp = s.h + 2 * s.pad;
    if variant == "conv2d_backward_weight_k5c2" {
        // The input is the workgroup's shared operand, channels go to the lanes: its own
        // padding (rows long enough for 2 vec4 past every group of 4 positions) and grid.
        if s.k != 5 || !s.wo().is_multiple_of(4) {
            return Err(Error::Gpu(format!(
                "{variant} needs a 5x5 kernel and an output width that is a multiple of 4, \
                 not k {} and width {}",
                s.k,
                s.wo()
            )));
        }
        let wr4 = s.wo() / 4 + 1;
        let xp = ctx.tensor(s.batch * s.cin * hp * wr4 * 4, "conv input, padded")?;
        d.push(pad2d(
            ctx,
            &xp,
            inp,
            s.batch * s.cin,
            s.h,
            s.w,
            s.pad,
            wr4 * 4,
            1,
        )?);
        let x = s
            .cout
            .div_ceil(WGRAD_ROW_CHANNELS)
            .div_ceil(WORKGROUP as usize);
        let y = s.batch * s.cin;
        let words = [s.batch, s.cin, s.cout, hp, wr4, s.ho(), s.wo() / 4];
        d.push(ctx.dispatch_grid(variant, &words.map(u), &[partial, dout, &xp], (x, y))?);
        d.push(batch_sum(ctx, dweight, partial, s.batch, s.weight_len())?);
        return Ok(d);
    }
    if variant == "conv2d_backward_weight_split" {
        if s.k > 5 {
            return Err(Error::Gpu(format!(
                "{variant} keeps one kernel row in registers: K <= 5, not {}",
                s.k
            )));
        }
        let dims = (s.batch * s.cin, s.h, s.w, s.pad);
        let xp = padded(ctx, &mut d, inp, dims, "conv input, padded")?;
        let words = [
            s.batch,
            s.cin,
            s.cout,
            hp,
            s.w + 2 * s.pad,
            s.k,
            s.ho(),
            s.wo(),
        ];
        let groups = groups_grid(s.batch * s.cout * s.cin * s.k);
        d.push(ctx.dispatch_grid(variant, &words.map(u), &[partial, dout, &xp], groups)?);
        d.push(batch_sum(ctx, dweight, partial, s.batch, s.weight_len())?);
        return Ok(d);
    }
    if let Some(tile) = wgrad_tile(variant) {
        let (pass, rows) = split_wgrad_pass(ctx, variant, tile, partial, dout, inp, &s, false)?;
        d.push(pass);
        d.push(batch_sum(ctx, dweight, partial, rows, s.weight_len())?);
        return Ok(d);
    }
    if variant == "conv2d_backward_weight_tiled" {
        let taps = unpadded_taps(ctx, &s)?;
        let ws = s.cin * s.k * s.k;
        let (x, y) = (ws.div_ceil(TILE), s.cout.div_ceil(TILE) * s.batch);
        let words = [s.batch, s.cin, s.cout, s.h, s.w, s.ho(), s.wo(), ws, s.pad];
        let bind = [partial, dout, inp, &taps];
        d.push(ctx.dispatch_grid(variant, &words.map(u), &bind, (x, y))?);
        d.push(batch_sum(ctx, dweight, partial, s.batch, s.weight_len())?);
        return Ok(d);
    }
    // The `_t` variants sum WGRAD_IMAGES images per invocation, the `_v4` ones one.
    let (xp, words, imgs) = if variant.starts_with("conv2d_backward_weight_v4") {
        if !s.wo().is_multiple_of(4) {
            return Err(Error::Gpu(format!(
                "{variant} needs an output width that is a multiple of 4, not {}",
                s.wo()
            )));
        }
        let copy = s.batch * s.cin * hp * s.wo() / 4;
        let xp = ctx.tensor(s.k * copy * 4, "conv input, padded and shifted")?;
        let (planes, wr) = (s.batch * s.cin, s.wo());
        d.push(pad2d(ctx, &xp, inp, planes, s.h, s.w, s.pad, wr, s.k)?);
        let words = vec![s.batch, s.cin, s.cout, hp, wr / 4, s.k, s.ho(), copy];
        (xp, words, 1)
    } else {
        let dims = (s.batch * s.cin, s.h, s.w, s.pad);
        let xp = padded(ctx, &mut d, inp, dims, "conv input, padded")?;
        let wp = s.w + 2 * s.pad;
        let words = vec![
            s.batch,
            s.cin,
            s.cout,
            hp,
            wp,
            s.k,
            s.ho(),
            s.wo(),
            WGRAD_IMAGES,
        ];
        (xp, words, WGRAD_IMAGES)
    };
    let groups = s.batch.div_ceil(imgs);
    let x = (s.cin * s.k * s.k)
        .div_ceil(taps)
        .div_ceil(WORKGROUP as usize);
    let y = groups * s.cout.div_ceil(WGRAD_CHANNELS);
    let words: Vec<u32> = words.into_iter().map(u).collect();
    d.push(ctx.dispatch_grid(variant, &words, &[partial, dout, &xp], (x, y))?);
    d.push(batch_sum(ctx, dweight, partial, groups, s.weight_len())?);
    Ok(d)
}

/// dweight `[Co, Ci, K, K]`: pad2d into a padded copy of the input (allocated here, once),
/// per-image partials into `partial` `[B, Co*Ci*K*K]` by the variant autotune measured fastest
/// for this adapter and shape, then batch_sum.
pub fn conv2d_backward_weight(
    ctx: &GpuContext,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let names: Vec<&'static str> = WGRAD_VARIANTS.iter().map(|v| v.0).collect();
    tuned_conv(ctx, "conv2d_backward_weight", &s, &names, |v| {
        conv2d_backward_weight_variant(ctx, v, dweight, dout, inp, partial, s)
    })
}

/// conv2d_backward_bias's variants, the default first: one invocation per (image, channel)
/// plane, or `_split`: a workgroup per plane, positions over its lanes (hardware GPUs).
pub const BIAS_VARIANTS: &[&str] = &["conv2d_backward_bias", "conv2d_backward_bias_split"];

/// dbias `[Co]` with a given variant (tests run them all): per-image sums into `partial`
/// `[B, Co]`, then batch_sum.
pub fn conv2d_backward_bias_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let words = [s.batch, s.cout, s.ho() * s.wo()].map(u);
    let planes = s.batch * s.cout;
    let sums = match variant {
        "conv2d_backward_bias" => ctx.dispatch(variant, &words, &[partial, dout], planes)?,
        "conv2d_backward_bias_split" => {
            ctx.dispatch_grid(variant, &words, &[partial, dout], groups_grid(planes))?
        }
        _ => {
            return Err(Error::Gpu(format!(
                "no conv2d_backward_bias variant {variant}"
            )))
        }
    };
    Ok(vec![sums, batch_sum(ctx, dbias, partial, s.batch, s.cout)?])
}

/// dbias `[Co]`: per-image sums into `partial` `[B, Co]` by the variant autotune measured
/// fastest for this adapter and shape, then batch_sum.
pub fn conv2d_backward_bias(
    ctx: &GpuContext,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(ctx, "conv2d_backward_bias", &s, BIAS_VARIANTS, |v| {
        conv2d_backward_bias_variant(ctx, v, dbias, dout, partial, s)
    })
}

/// conv2d_backward_params' variants: "separate" (conv2d_backward_weight and
/// conv2d_backward_bias, each autotuned), or a split-tiled weight gradient that also sums the
/// bias partials, then batch_sum_pair (hardware GPUs: two passes instead of four).
pub const PARAMS_VARIANTS: &[&str] = &[
    "separate",
    "conv2d_backward_params_tiled32x144",
    "conv2d_backward_params_tiled16x32",
];

/// dweight `[Co, Ci, K, K]` and dbias `[Co]` of a convolution, by the variant autotune
/// measured fastest for this adapter and shape; `partial` is scratch for per-image partials.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_params(
    ctx: &GpuContext,
    dweight: &GpuTensor,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(ctx, "conv2d_backward_params", &s, PARAMS_VARIANTS, |v| {
        conv2d_backward_params_variant(ctx, v, dweight, dbias, dout, inp, partial, s)
    })
}

/// conv2d_backward_params with a given variant (tests run them all).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_params_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    if variant == "separate" {
        let mut d = conv2d_backward_weight(ctx, dweight, dout, inp, partial, s)?;
        d.extend(conv2d_backward_bias(ctx, dbias, dout, partial, s)?);
        return Ok(d);
    }
    let tile = wgrad_tile(variant)
        .filter(|_| variant.starts_with("conv2d_backward_params"))
        .ok_or_else(|| Error::Gpu(format!("no conv2d_backward_params variant {variant}")))?;
    let (pass, rows) = split_wgrad_pass(ctx, variant, tile, partial, dout, inp, &s, true)?;
    let stride = s.weight_len() + s.cout;
    Ok(vec![
        pass,
        batch_sum_pair(ctx, dweight, dbias, partial, rows, stride)?,
    ])
}

/// out_a `[len_a]` and out_b `[len_b]`: the sums over rows of inp `[rows, stride]`'s first
/// len_a columns and the len_b after them (len_a + len_b = stride).
pub fn batch_sum_pair(
    ctx: &GpuContext,
    out_a: &GpuTensor,
    out_b: &GpuTensor,
    inp: &GpuTensor,
    rows: usize,
    stride: usize,
) -> Result<Dispatch> {
    let words = [rows, out_a.len, out_b.len, stride].map(u);
    let grid = groups_grid((out_a.len + out_b.len).div_ceil(16));
    ctx.dispatch_grid("batch_sum_pair", &words, &[out_a, out_b, inp], grid)
}

/// batch_sum's variants: one invocation per column (CPU-type adapters, long rows), or 16
/// lanes per column (`_split`, hardware GPUs, deep sums over few columns).
pub const BATCH_SUM_VARIANTS: &[&str] = &["batch_sum", "batch_sum_split"];

/// out `[len]` = sum over rows of inp `[rows, len]`, by the variant autotune measured fastest.
pub fn batch_sum(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    rows: usize,
    len: usize,
) -> Result<Dispatch> {
    ctx.tune.pick(
        &format!("batch_sum r{rows} n{len}"),
        &variants_for(ctx, BATCH_SUM_VARIANTS),
        |v| batch_sum_variant(ctx, v, out, inp, rows, len),
        |d| ctx.run(&[d]),
    )
}

/// batch_sum with a given variant (tests run them all).
pub fn batch_sum_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    rows: usize,
    len: usize,
) -> Result<Dispatch> {
    let words = [u(rows), u(len)];
    match variant {
        "batch_sum" => ctx.dispatch(variant, &words, &[out, inp], len),
        "batch_sum_split" => {
            let (x, y) = groups_grid(len.div_ceil(16));
            ctx.dispatch_grid(variant, &words, &[out, inp], (x, y))
        }
        _ => Err(Error::Gpu(format!("no batch_sum variant {variant}"))),
    }
}

pub fn maxpool2d_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    ctx.dispatch(
        "maxpool2d_forward",
        &pool_words(&s),
        &[out, inp],
        s.out_len(),
    )
}

pub fn maxpool2d_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    pool_backward(ctx, dinp, dout, inp, s, false)
}

/// dinp `[B, C, H, W]` = relu_backward(maxpool2d_backward(dout, inp), inp) in one pass, where
/// inp is the ReLU's output: the shader of maxpool2d_backward, routing nothing where the
/// window's maximum is 0. GPU only; tested against the two reference functions in a row.
pub fn maxpool2d_relu_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    pool_backward(ctx, dinp, dout, inp, s, true)
}

fn pool_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
    relu: bool,
) -> Result<Dispatch> {
    // One invocation per window, or per input when there is no window.
    let threads = if s.out_len() == 0 {
        s.in_len()
    } else {
        s.out_len()
    };
    let w = pool_words(&s);
    ctx.dispatch(
        "maxpool2d_backward",
        &[w[0], w[1], w[2], w[3], w[4], relu as u32],
        &[dinp, dout, inp],
        threads,
    )
}

/// dinp `[B, C, H, W]` from dout `[B, C, H/2, W/2]` and the codes conv2d_forward_relu_maxpool
/// kept: pooling's and the ReLU's backward passes without reading the activation. H even, W a
/// multiple of 8.
pub fn maxpool2d_relu_backward_argmax(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    codes: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    if !s.h.is_multiple_of(2) || !s.w.is_multiple_of(8) {
        return Err(Error::Gpu(format!(
            "maxpool2d_relu_backward_argmax needs an even height and a width that is a \
             multiple of 8, not {}x{}",
            s.h, s.w
        )));
    }
    let words = s.out_len() / 4;
    ctx.dispatch(
        "maxpool2d_relu_backward_argmax",
        &[words, s.w / 8].map(u),
        &[dinp, dout, codes],
        words,
    )
}

/// dense_forward's variants, the default first: register blocks of 16 outputs x 4 images
/// (CPU-type adapters), the features split over a workgroup per image and 4 outputs (hardware
/// GPUs); autotune picks.
pub const DENSE_FORWARD_VARIANTS: &[&str] = &["dense_forward", "dense_forward_split"];

/// out `[B, O]` = inp `[B, I]` . weight `[O, I]`^T + bias `[O]` with a given variant (tests run
/// them all).
pub fn dense_forward_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: DenseShape,
) -> Result<Dispatch> {
    let bind = [out, inp, weight, bias];
    match variant {
        // DENSE_IMAGES images per invocation, DENSE_OUTPUTS outputs per workgroup (uniform).
        "dense_forward" => {
            let x = s.batch.div_ceil(DENSE_IMAGES).div_ceil(WORKGROUP as usize);
            let y = s.nout.div_ceil(DENSE_OUTPUTS);
            ctx.dispatch_grid(variant, &dense_words(&s), &bind, (x, y))
        }
        "dense_forward_split" => {
            let groups = groups_grid(s.batch * s.nout.div_ceil(4));
            ctx.dispatch_grid(variant, &dense_words(&s), &bind, groups)
        }
        _ => Err(Error::Gpu(format!("no dense_forward variant {variant}"))),
    }
}

/// out `[B, O]` = inp `[B, I]` . weight `[O, I]`^T + bias `[O]` by the variant autotune
/// measured fastest for this adapter and shape.
pub fn dense_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: DenseShape,
) -> Result<Dispatch> {
    let key = format!("dense_forward b{} i{} o{}", s.batch, s.nin, s.nout);
    ctx.tune.pick(
        &key,
        &variants_for(ctx, DENSE_FORWARD_VARIANTS),
        |v| dense_forward_variant(ctx, v, out, inp, weight, bias, s),
        |d| ctx.run(&[d]),
    )
}

/// dinp `[B, I]` = dout `[B, O]` . weight `[O, I]`, by the variant autotune measured fastest:
/// the register-blocked `matmul` (where I allows vec4), or the product as a 1x1 convolution
/// of one image (I pixels in O channels) through a conv2d_forward variant: the tiled ones fill
/// a hardware GPU where matmul's blocks give dense's few rows a handful of workgroups.
pub fn dense_backward_input(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    let key = format!("dense_backward_input b{} i{} o{}", s.batch, s.nin, s.nout);
    ctx.tune.pick(
        &key,
        &product_variants(ctx, "matmul", "dense_backward_input", s.nin),
        |v| dense_backward_input_variant(ctx, v, dinp, dout, weight, s),
        |d| run_all(ctx, d),
    )
}

/// dense_backward_input with a given variant (tests run them all).
pub fn dense_backward_input_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    match variant {
        "matmul" if s.nin.is_multiple_of(4) => Ok(vec![matmul(
            ctx, dinp, dout, weight, s.batch, s.nout, s.nin,
        )?]),
        "dense_backward_input" => Ok(vec![ctx.dispatch(
            "dense_backward_input",
            &dense_words(&s),
            &[dinp, dout, weight],
            s.batch * s.nin,
        )?]),
        v if FORWARD_VARIANTS.contains(&v) => {
            let c = product_shape(s.batch, s.nout, s.nin);
            forward_variant(ctx, v, dinp, weight, dout, None, false, c)
        }
        _ => Err(Error::Gpu(format!(
            "no dense_backward_input variant {variant}"
        ))),
    }
}

/// dweight `[O, I]` = dout `[B, O]`^T . inp `[B, I]`, by the variant autotune measured fastest:
/// `matmul_tn` (where I allows vec4), or dout transposed (conv2d_flip_weight of a 1x1 kernel)
/// and the product as a 1x1 convolution of one image through a conv2d_forward variant.
pub fn dense_backward_weight(
    ctx: &GpuContext,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    let key = format!("dense_backward_weight b{} i{} o{}", s.batch, s.nin, s.nout);
    ctx.tune.pick(
        &key,
        &product_variants(ctx, "matmul_tn", "dense_backward_weight", s.nin),
        |v| dense_backward_weight_variant(ctx, v, dweight, dout, inp, s),
        |d| run_all(ctx, d),
    )
}

/// dense_backward_weight with a given variant (tests run them all).
pub fn dense_backward_weight_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    match variant {
        "matmul_tn" if s.nin.is_multiple_of(4) => Ok(vec![matmul_tn(
            ctx, dweight, dout, inp, s.nout, s.batch, s.nin,
        )?]),
        "dense_backward_weight" => Ok(vec![ctx.dispatch(
            "dense_backward_weight",
            &dense_words(&s),
            &[dweight, dout, inp],
            s.nout * s.nin,
        )?]),
        v if FORWARD_VARIANTS.contains(&v) => {
            // doutᵀ [O, B] (allocated here, once) as the weights of a 1x1 convolution.
            let dt = ctx.tensor(s.batch * s.nout, "d dense out, transposed")?;
            let mut d = vec![conv2d_flip_weight(ctx, &dt, dout, s.batch, s.nout, 1)?];
            let c = product_shape(s.nout, s.batch, s.nin);
            d.extend(forward_variant(ctx, v, dweight, inp, &dt, None, false, c)?);
            Ok(d)
        }
        _ => Err(Error::Gpu(format!(
            "no dense_backward_weight variant {variant}"
        ))),
    }
}

/// c `[m, n]` = a `[m, k]` . b `[k, n]` as the shape of a 1x1 convolution of one image: b is
/// its input (k channels of n pixels), a its weights, c its output (m channels).
fn product_shape(m: usize, k: usize, n: usize) -> Conv2dShape {
    Conv2dShape {
        batch: 1,
        cin: k,
        cout: m,
        h: 1,
        w: n,
        k: 1,
        pad: 0,
    }
}

/// The dense backward passes' variants: the plain kernel (any shape), the register-blocked
/// product `blocked` (n a multiple of 4), then the conv2d_forward variants worth trying here.
fn product_variants(
    ctx: &GpuContext,
    blocked: &'static str,
    plain: &'static str,
    n: usize,
) -> Vec<&'static str> {
    let mut v = Vec::new();
    if n.is_multiple_of(4) {
        v.push(blocked);
    }
    v.push(plain);
    v.extend(
        variants_for(ctx, FORWARD_VARIANTS)
            .into_iter()
            .filter(|f| !matches!(*f, "conv2d_forward_k5c2" | "conv2d_forward_v4s")),
    );
    v
}

pub fn dense_backward_bias(
    ctx: &GpuContext,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    s: DenseShape,
) -> Result<Dispatch> {
    ctx.dispatch(
        "dense_backward_bias",
        &dense_words(&s),
        &[dbias, dout],
        s.nout,
    )
}

pub fn relu_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("relu_forward", &[u(n)], &[out, inp], n)
}

pub fn relu_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("relu_backward", &[u(n)], &[dinp, dout, out], n)
}

pub fn sigmoid_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("sigmoid_forward", &[u(n)], &[out, inp], n)
}

pub fn sigmoid_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("sigmoid_backward", &[u(n)], &[dinp, dout, out], n)
}

pub fn l2norm_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    d: usize,
) -> Result<Dispatch> {
    let eps = crate::shapes::L2_EPS;
    ctx.dispatch("l2norm_forward", &[u(n), u(d), f(eps)], &[out, inp], n)
}

pub fn l2norm_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    d: usize,
) -> Result<Dispatch> {
    let eps = crate::shapes::L2_EPS;
    ctx.dispatch(
        "l2norm_backward",
        &[u(n), u(d), f(eps)],
        &[dinp, dout, out, inp],
        n,
    )
}

/// out `[N, M]` squared distances between rows of x `[N, D]` and y `[M, D]`.
pub fn pairwise_distance(
    ctx: &GpuContext,
    out: &GpuTensor,
    x: &GpuTensor,
    y: &GpuTensor,
    n: usize,
    m: usize,
    d: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "pairwise_distance",
        &[u(n), u(m), u(d)],
        &[out, x, y],
        n * m,
    )
}

/// triplets `[N, 3]` (u32) mined from dist `[N, N]` and labels `[N]` (u32).
pub fn triplet_mine(
    ctx: &GpuContext,
    triplets: &GpuTensor,
    dist: &GpuTensor,
    labels: &GpuTensor,
    n: usize,
    mode: MineMode,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_mine",
        &[u(n), mode.code()],
        &[triplets, dist, labels],
        n,
    )
}

pub fn triplet_loss_forward(
    ctx: &GpuContext,
    losses: &GpuTensor,
    dist: &GpuTensor,
    triplets: &GpuTensor,
    t: usize,
    n: usize,
    margin: f32,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_loss_forward",
        &[u(t), u(n), f(margin)],
        &[losses, dist, triplets],
        t,
    )
}

/// Rows x columns of c each matmul invocation computes.
const MATMUL_ROWS: usize = 16;
const MATMUL_COLUMNS: usize = 16;

/// c `[m, n]` = a `[m, k]` . b `[k, n]` (n a multiple of 4): the plain matrix product that
/// `glassnet bench` measures as the device's ceiling.
pub fn matmul(
    ctx: &GpuContext,
    c: &GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Dispatch> {
    product(ctx, "matmul", c, a, b, m, k, n)
}

/// c `[m, n]` = a^T . b with a stored `[k, m]` and b `[k, n]` (n a multiple of 4).
pub fn matmul_tn(
    ctx: &GpuContext,
    c: &GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Dispatch> {
    product(ctx, "matmul_tn", c, a, b, m, k, n)
}

#[allow(clippy::too_many_arguments)]
fn product(
    ctx: &GpuContext,
    name: &'static str,
    c: &GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Dispatch> {
    if !n.is_multiple_of(4) || m == 0 || k == 0 {
        return Err(Error::Gpu(format!(
            "{name} {m}x{k}x{n}: n must be a multiple of 4 and m, k positive"
        )));
    }
    // Rows from the workgroup id, MATMUL_COLUMNS columns per invocation (tools/gen_kernels.py).
    let x = n.div_ceil(MATMUL_COLUMNS).div_ceil(WORKGROUP as usize);
    let y = m.div_ceil(MATMUL_ROWS);
    ctx.dispatch_grid(name, &[u(m), u(k), u(n / 4)], &[c, a, b], (x, y))
}

/// losses `[T]` and dlogit `[T]` of the Siamese head on pairs `[T, 3]` of x `[N, D]`.
#[allow(clippy::too_many_arguments)]
pub fn siamese_forward(
    ctx: &GpuContext,
    losses: &GpuTensor,
    dlogit: &GpuTensor,
    x: &GpuTensor,
    pairs: &GpuTensor,
    alpha: &GpuTensor,
    beta: &GpuTensor,
    t: usize,
    d: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "siamese_forward",
        &[u(t), u(d)],
        &[losses, dlogit, x, pairs, alpha, beta],
        t,
    )
}

/// dx `[N, D]`, dalpha `[D]`, dbeta `[1]` of the mean Siamese loss (count in stats `[4]`).
#[allow(clippy::too_many_arguments)]
pub fn siamese_backward(
    ctx: &GpuContext,
    dx: &GpuTensor,
    dalpha: &GpuTensor,
    dbeta: &GpuTensor,
    x: &GpuTensor,
    pairs: &GpuTensor,
    dlogit: &GpuTensor,
    alpha: &GpuTensor,
    stats: &GpuTensor,
    n: usize,
    d: usize,
    t: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "siamese_backward",
        &[u(n), u(d), u(t)],
        &[dx, dalpha, dbeta, x, pairs, dlogit, alpha, stats],
        n * d + d + 1,
    )
}

/// stats `[4]` from losses `[T]`: one workgroup.
pub fn triplet_loss_reduce(
    ctx: &GpuContext,
    stats: &GpuTensor,
    losses: &GpuTensor,
    triplets: &GpuTensor,
    t: usize,
) -> Result<Dispatch> {
    ctx.dispatch_grid(
        "triplet_loss_reduce",
        &[u(t)],
        &[stats, losses, triplets],
        (1, 1),
    )
}

#[allow(clippy::too_many_arguments)]
pub fn triplet_loss_backward(
    ctx: &GpuContext,
    dx: &GpuTensor,
    x: &GpuTensor,
    dist: &GpuTensor,
    triplets: &GpuTensor,
    n: usize,
    d: usize,
    t: usize,
    margin: f32,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_loss_backward",
        &[u(n), u(d), u(t), f(margin)],
        &[dx, x, dist, triplets],
        n * d,
    )
}

/// Batch-all pass 1: weights, pair_loss, pair_valid `[N, N]` from dist `[N, N]`, labels `[N]`.
#[allow(clippy::too_many_arguments)]
pub fn triplet_all_forward(
    ctx: &GpuContext,
    weights: &GpuTensor,
    pair_loss: &GpuTensor,
    pair_valid: &GpuTensor,
    dist: &GpuTensor,
    labels: &GpuTensor,
    n: usize,
    margin: f32,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_all_forward",
        &[u(n), f(margin)],
        &[weights, pair_loss, pair_valid, dist, labels],
        n * n,
    )
}

/// Batch-all pass 2: stats `[4]` (one workgroup).
pub fn triplet_all_reduce(
    ctx: &GpuContext,
    stats: &GpuTensor,
    weights: &GpuTensor,
    pair_loss: &GpuTensor,
    pair_valid: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch_grid(
        "triplet_all_reduce",
        &[u(n)],
        &[stats, weights, pair_loss, pair_valid],
        (1, 1),
    )
}

/// Batch-all pass 3: dx `[N, D]`.
pub fn triplet_all_backward(
    ctx: &GpuContext,
    dx: &GpuTensor,
    x: &GpuTensor,
    weights: &GpuTensor,
    stats: &GpuTensor,
    n: usize,
    d: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_all_backward",
        &[u(n), u(d)],
        &[dx, x, weights, stats],
        n * d,
    )
}

/// Uniform words of an Adam step over `n` values.
pub fn adam_words(n: usize, h: &AdamParams) -> [u32; 8] {
    [
        u(n),
        f(h.lr),
        f(h.beta1),
        f(h.beta2),
        f(h.eps),
        f(h.weight_decay),
        f(h.bc1),
        f(h.bc2),
    ]
}

pub fn sgd_words(n: usize, h: &SgdParams) -> [u32; 4] {
    [u(n), f(h.lr), f(h.momentum), f(h.weight_decay)]
}

pub fn adam_update(
    ctx: &GpuContext,
    params: &GpuTensor,
    m: &GpuTensor,
    v: &GpuTensor,
    grads: &GpuTensor,
    h: &AdamParams,
) -> Result<Dispatch> {
    let n = params.len;
    ctx.dispatch("adam_update", &adam_words(n, h), &[params, m, v, grads], n)
}

pub fn sgd_momentum_update(
    ctx: &GpuContext,
    params: &GpuTensor,
    vel: &GpuTensor,
    grads: &GpuTensor,
    h: &SgdParams,
) -> Result<Dispatch> {
    let n = params.len;
    ctx.dispatch(
        "sgd_momentum_update",
        &sgd_words(n, h),
        &[params, vel, grads],
        n,
    )
}
