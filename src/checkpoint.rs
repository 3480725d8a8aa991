//! The model directory a user keeps: `model.safetensors` (weights by name),
//! `metadata.json` (classes, architecture, preprocessing, training configuration, seed,
//! version, device) and `gallery.safetensors` (training embeddings and labels). Written into
//! a staging folder and renamed into place, so a failed run leaves no half-written model.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::preprocess::Preprocess;
use crate::fsio::Staging;
use crate::metric::openset::Rejection;
use crate::metric::scores::Scores;
use crate::model::{Arch, ParamLayout};
use crate::train::{TrainConfig, TrainState};
use crate::{Error, Result};

pub const FORMAT: &str = "glassnet-model";
/// Bumped whenever a model directory's contents change meaning.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metadata {
    pub format: String,
    pub format_version: u32,
    pub glassnet_version: String,
    pub arch: Arch,
    pub classes: Vec<String>,
    pub preprocess: Preprocess,
    /// How pixels were scaled, in words.
    pub normalisation: String,
    pub training: TrainConfig,
    pub seed: u64,
    /// Backend and adapter the model was trained on.
    pub device: String,
    /// Where the training images came from.
    pub data: String,
    pub best_epoch: usize,
    pub validation: Option<Scores>,
    /// Per-class "unknown" thresholds calibrated on the validation split (None: a model
    /// trained without one, or written before models had them: nothing is called unknown).
    #[serde(default)]
    pub rejection: Option<Rejection>,
    /// The good-part operating point (`train --good-class`); absent in older models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good: Option<crate::metric::escape::GoodPoint>,
    /// The kind of images trained on (grey or colour, side range): enrol refuses others.
    /// Absent in older models and for generated training images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<crate::data::profile::InputProfile>,
    /// Classes enrolled into or removed from the gallery after training, oldest first.
    #[serde(default)]
    pub gallery_edits: Vec<GalleryEdit>,
}

/// One `glassnet enrol` change to a model's gallery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalleryEdit {
    pub class: String,
    /// Images added (0 for a removal).
    pub added: usize,
    /// Gallery images removed with the class (0 for an enrolment).
    pub removed: usize,
    /// Where the added images came from.
    pub source: String,
}

pub struct Model {
    pub meta: Metadata,
    /// Flat parameters in `ParamLayout::new(&meta.arch)` order.
    pub params: Vec<f32>,
    /// `[g, embed_dim]` training embeddings and their labels `[g]`.
    pub gallery: Vec<f32>,
    pub gallery_labels: Vec<u32>,
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn st_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Input(format!("{}: {e}", path.display()))
}

fn f32_bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Serialises named f32/u32 tensors.
fn write_tensors(path: &Path, tensors: &[(String, Vec<usize>, Dtype, &[u8])]) -> Result<()> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, shape, dt, data)| {
            Ok((
                n.clone(),
                TensorView::new(*dt, shape.clone(), data).map_err(|e| st_err(path, e))?,
            ))
        })
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = [("format".to_string(), FORMAT.to_string())].into();
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| st_err(path, e))?;
    std::fs::write(path, bytes).map_err(|e| io(path, e))
}

/// Writes the model files into a staging directory.
pub fn write_model(stage: &Staging, model: &Model) -> Result<()> {
    let layout = ParamLayout::new(&model.meta.arch);
    let tensors: Vec<(String, Vec<usize>, Dtype, &[u8])> = layout
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                Dtype::F32,
                f32_bytes(&model.params[t.range()]),
            )
        })
        .collect();
    write_tensors(&stage.path("model.safetensors"), &tensors)?;
    let g = model.gallery_labels.len();
    write_tensors(
        &stage.path("gallery.safetensors"),
        &[
            (
                "embeddings".into(),
                vec![g, model.meta.arch.embed_dim],
                Dtype::F32,
                f32_bytes(&model.gallery),
            ),
            (
                "labels".into(),
                vec![g],
                Dtype::U32,
                bytemuck::cast_slice(&model.gallery_labels),
            ),
        ],
    )?;
    let json = serde_json::to_string_pretty(&model.meta).expect("metadata serialises");
    let p = stage.path("metadata.json");
    std::fs::write(&p, json).map_err(|e| io(&p, e))
}

fn read_tensor<'a>(
    st: &'a safetensors::SafeTensors,
    path: &Path,
    name: &str,
    shape: &[usize],
    dtype: Dtype,
) -> Result<&'a [u8]> {
    let t = st.tensor(name).map_err(|_| {
        Error::Input(format!(
            "{}: no tensor '{name}': the model was written by another architecture or version",
            path.display()
        ))
    })?;
    if t.shape() != shape || t.dtype() != dtype {
        return Err(Error::Input(format!(
            "{}: tensor '{name}' is {:?} {:?}, the metadata's architecture needs {dtype:?} {shape:?}",
            path.display(),
            t.dtype(),
            t.shape()
        )));
    }
    Ok(t.data())
}

/// Reads and checks a model directory.
pub fn load_model(dir: &Path) -> Result<Model> {
    if !dir.is_dir() {
        return Err(Error::Input(format!(
            "--model {}: not a model directory",
            dir.display()
        )));
    }
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| io(&p, e))
    };
    let (meta, weights, gallery) = (
        read("metadata.json")?,
        read("model.safetensors")?,
        read("gallery.safetensors")?,
    );
    parse_model(dir, &meta, &weights, &gallery)
}

/// A model from the bytes of its three files (`dir` names them in errors), with every check
/// `load_model` makes: what the loader fuzz harness runs.
pub fn parse_model(dir: &Path, meta: &[u8], weights: &[u8], gallery: &[u8]) -> Result<Model> {
    let mp = dir.join("metadata.json");
    let probe: serde_json::Value = serde_json::from_slice(meta).map_err(|e| st_err(&mp, e))?;
    if probe.get("format").and_then(|v| v.as_str()) != Some(FORMAT) {
        return Err(Error::Input(format!(
            "{}: not a glassnet model",
            mp.display()
        )));
    }
    let version = probe
        .get("format_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if version != FORMAT_VERSION as u64 {
        return Err(Error::Input(format!(
            "{}: model format version {version}, this glassnet ({}) reads version {FORMAT_VERSION}; retrain or use the glassnet that wrote it",
            mp.display(),
            env!("CARGO_PKG_VERSION")
        )));
    }
    let meta: Metadata = serde_json::from_value(probe).map_err(|e| st_err(&mp, e))?;
    meta.arch.validate().map_err(|e| st_err(&mp, e))?;
    check_metadata(&meta, &mp)?;
    let layout = ParamLayout::new(&meta.arch);
    let wp = dir.join("model.safetensors");
    let st = safetensors::SafeTensors::deserialize(weights).map_err(|e| st_err(&wp, e))?;
    if st.len() != layout.tensors.len() {
        return Err(Error::Input(format!(
            "{}: {} tensors, the architecture in metadata.json has {}: the files come from different models",
            wp.display(),
            st.len(),
            layout.tensors.len()
        )));
    }
    let mut params = vec![0.0f32; layout.total];
    for t in &layout.tensors {
        let data = read_tensor(&st, &wp, &t.name, &t.shape, Dtype::F32)?;
        params[t.range()].copy_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(data));
    }
    let gp = dir.join("gallery.safetensors");
    let gst = safetensors::SafeTensors::deserialize(gallery).map_err(|e| st_err(&gp, e))?;
    let g = gst
        .tensor("labels")
        .map_err(|e| st_err(&gp, e))?
        .shape()
        .first()
        .copied()
        .unwrap_or(0);
    let gallery = bytemuck::pod_collect_to_vec(read_tensor(
        &gst,
        &gp,
        "embeddings",
        &[g, meta.arch.embed_dim],
        Dtype::F32,
    )?);
    let gallery_labels: Vec<u32> =
        bytemuck::pod_collect_to_vec(read_tensor(&gst, &gp, "labels", &[g], Dtype::U32)?);
    if gallery_labels
        .iter()
        .any(|&l| l as usize >= meta.classes.len())
    {
        return Err(Error::Input(format!(
            "{}: a label outside the {} classes",
            gp.display(),
            meta.classes.len()
        )));
    }
    let model = Model {
        meta,
        params,
        gallery,
        gallery_labels,
    };
    check_values(&model, dir)?;
    Ok(model)
}

/// Largest weight magnitude a model may hold: trained networks stay many orders below it,
/// and beyond it the forward pass overflows to infinity (a tampered or damaged file).
pub const MAX_WEIGHT: f32 = 1e6;

fn bad<T>(p: &Path, what: String) -> Result<T> {
    Err(Error::Input(format!("{}: {what}", p.display())))
}

/// Cross-checks metadata fields against each other (read from `mp`), naming the field.
pub fn check_metadata(m: &Metadata, mp: &Path) -> Result<()> {
    if m.classes.is_empty() {
        return bad(mp, "classes: empty".into());
    }
    for (i, c) in m.classes.iter().enumerate() {
        if c.trim().is_empty() {
            return bad(mp, format!("classes[{i}]: an empty name"));
        }
        if m.classes[..i].contains(c) {
            return bad(mp, format!("classes[{i}]: {c:?} is named twice"));
        }
    }
    if m.preprocess.side != m.arch.side {
        return bad(
            mp,
            format!(
                "preprocess.side {} but arch.side {}: the network would read images of another size",
                m.preprocess.side, m.arch.side
            ),
        );
    }
    if m.preprocess.channels() != m.arch.in_channels {
        return bad(
            mp,
            format!(
                "preprocess.colour {:?} gives {} plane(s) but arch.in_channels is {}",
                m.preprocess.colour,
                m.preprocess.channels(),
                m.arch.in_channels
            ),
        );
    }
    if m.training.head != m.arch.head {
        return bad(
            mp,
            format!(
                "training.head {:?} but arch.head {:?}",
                m.training.head, m.arch.head
            ),
        );
    }
    if m.seed != m.training.seed {
        return bad(
            mp,
            format!("seed {} but training.seed {}", m.seed, m.training.seed),
        );
    }
    if m.best_epoch == 0 || m.best_epoch > m.training.epochs {
        return bad(
            mp,
            format!(
                "best_epoch {} outside the {} epochs of training.epochs",
                m.best_epoch, m.training.epochs
            ),
        );
    }
    if let Some(v) = &m.validation {
        let scores = [v.accuracy, v.balanced_accuracy, v.macro_f1];
        if scores.iter().any(|s| !(0.0..=1.0).contains(s)) {
            return bad(mp, format!("validation: scores {scores:?} outside [0, 1]"));
        }
    }
    if let Some(r) = &m.rejection {
        r.check(m.classes.len())
            .map_err(|e| Error::Input(format!("{}: {e}", mp.display())))?;
    }
    if let Some(g) = &m.good {
        g.check(m.classes.len())
            .map_err(|e| Error::Input(format!("{}: {e}", mp.display())))?;
    }
    if let Some(p) = &m.input {
        p.check()
            .map_err(|e| Error::Input(format!("{}: {e}", mp.display())))?;
    }
    Ok(())
}

/// Refuses weights or gallery values that no training produces, naming file and tensor.
pub fn check_values(model: &Model, dir: &Path) -> Result<()> {
    let (wp, gp) = (
        dir.join("model.safetensors"),
        dir.join("gallery.safetensors"),
    );
    let layout = ParamLayout::new(&model.meta.arch);
    for t in &layout.tensors {
        let w = &model.params[t.range()];
        if let Some(i) = w
            .iter()
            .position(|v| !v.is_finite() || v.abs() > MAX_WEIGHT)
        {
            return bad(
                &wp,
                format!(
                    "tensor '{}' value {i} is {}: not a trained weight (NaN, infinite or beyond {MAX_WEIGHT:e}); the file is damaged",
                    t.name, w[i]
                ),
            );
        }
    }
    if let Some(i) = model.gallery.iter().position(|v| !v.is_finite()) {
        return bad(
            &gp,
            format!(
                "embeddings value {i} is {}: the file is damaged",
                model.gallery[i]
            ),
        );
    }
    Ok(())
}

// ---- training checkpoints: what `train --resume` continues from ----

/// The checkpoint file inside a training run's staging folder.
pub const TRAIN_CHECKPOINT: &str = "checkpoint.safetensors";
const TRAIN_CHECKPOINT_FORMAT: &str = "glassnet-train-checkpoint";
const TRAIN_CHECKPOINT_VERSION: &str = "1";

/// FNV-1a over byte slices: a checksum that finds a damaged checkpoint (safetensors keeps
/// none), not a cryptographic hash.
pub fn checksum(parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in parts {
        for &b in *p {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

const STATE_TENSORS: [&str; 4] = ["params", "m", "v", "best_params"];

/// The checksum a checkpoint carries: over its tensors, cursor and run identity, in order.
fn state_checksum(tensors: &[&[f32]], cursor: &str, run: &str) -> String {
    let mut parts: Vec<&[u8]> = tensors.iter().map(|t| f32_bytes(t)).collect();
    parts.extend([cursor.as_bytes(), run.as_bytes()]);
    format!("{:016x}", checksum(&parts))
}

fn state_tensors(s: &TrainState) -> [&[f32]; 4] {
    [&s.params, &s.m, &s.v, &s.best_params]
}

/// Writes a training state atomically (one file: the old checkpoint or the new one, never
/// a mix). `run` identifies the run (settings and data) so that a resume can refuse another.
pub fn write_train_checkpoint(
    path: &Path,
    state: &TrainState,
    run: &serde_json::Value,
) -> Result<()> {
    let cursor = serde_json::to_string(&state.cursor).expect("the cursor serialises");
    let run = run.to_string();
    let tensors = state_tensors(state);
    let checksum = state_checksum(&tensors, &cursor, &run);
    let views: Vec<(String, TensorView)> = STATE_TENSORS
        .iter()
        .zip(tensors)
        .map(|(n, t)| {
            Ok((
                n.to_string(),
                TensorView::new(Dtype::F32, vec![t.len()], f32_bytes(t))
                    .map_err(|e| st_err(path, e))?,
            ))
        })
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = [
        ("format", TRAIN_CHECKPOINT_FORMAT.to_string()),
        ("version", TRAIN_CHECKPOINT_VERSION.to_string()),
        ("cursor", cursor),
        ("run", run),
        ("checksum", checksum),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| st_err(path, e))?;
    crate::fsio::write_atomic(path, &bytes)
}

/// Reads a checkpoint and the run identity it was written with; a damaged or foreign file
/// is an error that names it and what is wrong.
pub fn read_train_checkpoint(path: &Path) -> Result<(TrainState, serde_json::Value)> {
    let damaged = |what: String| {
        Error::Input(format!(
            "{}: damaged training checkpoint ({what})",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| damaged(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let field = |k: &str| {
        meta.get(k)
            .cloned()
            .ok_or_else(|| damaged(format!("no '{k}' in its header")))
    };
    if field("format")? != TRAIN_CHECKPOINT_FORMAT {
        return Err(damaged("not a glassnet training checkpoint".into()));
    }
    let version = field("version")?;
    if version != TRAIN_CHECKPOINT_VERSION {
        return Err(Error::Input(format!(
            "{}: checkpoint version {version}, this glassnet reads version {TRAIN_CHECKPOINT_VERSION}",
            path.display()
        )));
    }
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| damaged(e.to_string()))?;
    let mut tensors: Vec<Vec<f32>> = Vec::new();
    for name in STATE_TENSORS {
        let t = st
            .tensor(name)
            .map_err(|_| damaged(format!("no tensor '{name}'")))?;
        if t.dtype() != Dtype::F32 || t.shape().len() != 1 {
            return Err(damaged(format!("tensor '{name}' is not a flat f32 vector")));
        }
        tensors.push(bytemuck::pod_collect_to_vec(t.data()));
    }
    let (cursor_text, run_text) = (field("cursor")?, field("run")?);
    let slices: Vec<&[f32]> = tensors.iter().map(Vec::as_slice).collect();
    if state_checksum(&slices, &cursor_text, &run_text) != field("checksum")? {
        return Err(damaged("its checksum does not match its contents".into()));
    }
    let cursor = serde_json::from_str(&cursor_text).map_err(|e| damaged(format!("cursor: {e}")))?;
    let run = serde_json::from_str(&run_text).map_err(|e| damaged(format!("run: {e}")))?;
    let [params, m, v, best_params]: [Vec<f32>; 4] = tensors.try_into().expect("four tensors");
    Ok((
        TrainState {
            cursor,
            params,
            m,
            v,
            best_params,
        },
        run,
    ))
}

/// The fields where two run identities differ, as `path: checkpoint A, this run B` lines.
pub fn identity_diff(saved: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    fn walk(at: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value::Object;
        match (a, b) {
            (Object(x), Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let null = serde_json::Value::Null;
                    let sub = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(
                        &sub,
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{at}: checkpoint {a}, this run {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", saved, now, &mut out);
    out
}
