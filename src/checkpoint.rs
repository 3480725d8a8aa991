//! The model directory a user keeps: `model.safetensors` (weights by name),
//! `metadata.json` (classes, architecture, preprocessing, training configuration, seed,
//! version, device) and `gallery.safetensors` (training embeddings and labels). Written into
//! a staging folder and renamed into place, so a failed run leaves no half-written model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::preprocess::Preprocess;
use crate::eval::metrics::Scores;
use crate::model::{Arch, ParamLayout};
use crate::train::TrainConfig;
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

/// A staging directory beside `dir`, renamed onto it by `commit`.
pub struct Staging {
    pub tmp: PathBuf,
    dir: PathBuf,
}

impl Staging {
    /// Refuses a `dir` that exists and is not empty.
    pub fn new(dir: &Path) -> Result<Staging> {
        if dir.exists()
            && std::fs::read_dir(dir)
                .map_err(|e| io(dir, e))?
                .next()
                .is_some()
        {
            return Err(Error::Input(format!(
                "--out {}: directory exists and is not empty; choose another",
                dir.display()
            )));
        }
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Errors name the folder the user asked for, not only the staging path beside it.
        let out_err = |at: &Path, source| Error::Io {
            path: format!("--out {} (creating {})", dir.display(), at.display()),
            source,
        };
        std::fs::create_dir_all(parent).map_err(|e| out_err(parent, e))?;
        let name = dir.file_name().ok_or_else(|| {
            Error::Input(format!("--out {}: not a directory name", dir.display()))
        })?;
        let tmp = parent.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| out_err(&tmp, e))?;
        Ok(Staging {
            tmp,
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.tmp.join(file)
    }

    pub fn commit(self) -> Result<PathBuf> {
        if self.dir.exists() {
            std::fs::remove_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        }
        std::fs::rename(&self.tmp, &self.dir).map_err(|e| io(&self.dir, e))?;
        Ok(self.dir.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Only reached un-renamed on failure: leave nothing behind.
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
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
    let mp = dir.join("metadata.json");
    let text = std::fs::read_to_string(&mp).map_err(|e| io(&mp, e))?;
    let probe: serde_json::Value = serde_json::from_str(&text).map_err(|e| st_err(&mp, e))?;
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
    let layout = ParamLayout::new(&meta.arch);
    let wp = dir.join("model.safetensors");
    let bytes = std::fs::read(&wp).map_err(|e| io(&wp, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| st_err(&wp, e))?;
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
    let gbytes = std::fs::read(&gp).map_err(|e| io(&gp, e))?;
    let gst = safetensors::SafeTensors::deserialize(&gbytes).map_err(|e| st_err(&gp, e))?;
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
    Ok(Model {
        meta,
        params,
        gallery,
        gallery_labels,
    })
}
