//! ONNX export of a model's embedder, and a check of the written file by an independent
//! runtime (tract).
//!
//! The graph takes the preprocessed input `[N, C, side, side]` (grey, C = 1, or red, green
//! and blue, C = 3, in [-1, 1], what `Preprocess::apply_picture` yields; N is dynamic) and has two outputs: `embedding` `[N, D]`, as
//! the engines compute it (conv + ReLU + 2x2 max-pool blocks, flatten, dense, then the
//! head: sigmoid, or division by the row norm floored at `L2_EPS`), and `distances`
//! `[N, G]`, squared Euclidean distances to the model's gallery (carried as an
//! initializer), so a consumer classifies with one argmin and the sidecar's labels.
//! Opset 17 (IR version 8): the Reduce* ops still take `axes` as an attribute there.

use prost::Message;
use serde::Serialize;
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::checkpoint::{Metadata, Model};
use crate::fold::folded;
use crate::model::{Arch, Head, ParamLayout, Pooling};
use crate::shapes::L2_EPS;
use crate::{Error, Result};

pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
const IR_VERSION: i64 = 8;
pub const INPUT: &str = "input";
pub const EMBEDDING: &str = "embedding";
pub const DISTANCES: &str = "distances";

/// What a consumer needs beside the .onnx file: the classes of the gallery rows, the
/// preprocessing that makes the input tensor, and the names and shapes of the graph's ends.
#[derive(Clone, Debug, Serialize)]
pub struct Sidecar {
    pub format: &'static str,
    pub glassnet_version: &'static str,
    pub glassnet_commit: &'static str,
    pub opset: i64,
    /// `[N, 1, side, side]`, NCHW, float32.
    pub input: TensorSpec,
    pub outputs: Vec<TensorSpec>,
    /// In words, and as recorded in the model (`Preprocess`), to replay exactly.
    pub preprocess_steps: String,
    pub preprocess: crate::data::preprocess::Preprocess,
    pub normalisation: String,
    pub arch: Arch,
    pub classes: Vec<String>,
    /// Class index (into `classes`) of each row of the gallery, i.e. of each column of
    /// `distances`.
    pub gallery_labels: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TensorSpec {
    pub name: &'static str,
    /// Dimensions; "N" is the dynamic batch.
    pub shape: Vec<String>,
    pub meaning: String,
}

/// Builds the sidecar description of `model`'s exported graph.
pub fn sidecar(model: &Model) -> Sidecar {
    let m: &Metadata = &model.meta;
    let a = &m.arch;
    let (side, c) = (a.side.to_string(), a.in_channels.to_string());
    let planes = if a.in_channels == 3 {
        "red, green and blue planes"
    } else {
        "grey images"
    };
    Sidecar {
        format: "glassnet-onnx",
        glassnet_version: env!("CARGO_PKG_VERSION"),
        glassnet_commit: env!("GLASSNET_COMMIT"),
        opset: OPSET,
        input: TensorSpec {
            name: INPUT,
            shape: vec!["N".into(), c, side.clone(), side],
            meaning: format!("preprocessed {planes}, NCHW float32 in [-1, 1] (see preprocess)"),
        },
        outputs: vec![
            TensorSpec {
                name: EMBEDDING,
                shape: vec!["N".into(), a.embed_dim.to_string()],
                meaning: format!("embedding ({:?} head)", a.head),
            },
            TensorSpec {
                name: DISTANCES,
                shape: vec!["N".into(), model.gallery_labels.len().to_string()],
                meaning: "squared Euclidean distance to each gallery image; the nearest one's \
                          label (gallery_labels) is glassnet predict's class"
                    .into(),
            },
        ],
        preprocess_steps: m.preprocess.describe(),
        preprocess: m.preprocess.clone(),
        normalisation: m.normalisation.clone(),
        arch: a.clone(),
        classes: m.classes.clone(),
        gallery_labels: model.gallery_labels.clone(),
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn initializer(name: &str, shape: &[usize], values: &[f32]) -> pb::TensorProto {
    debug_assert_eq!(shape.iter().product::<usize>(), values.len());
    pb::TensorProto {
        name: name.into(),
        dims: dims(shape),
        data_type: pb::tensor_proto::DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn float_value(name: &str, dims_: &[&str]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims_
        .iter()
        .map(|d| Dimension {
            value: Some(match d.parse::<i64>() {
                Ok(n) => Value::DimValue(n),
                Err(_) => Value::DimParam(d.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Nodes and initializers, appended in order; each node's output is named after the node.
#[derive(Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    init: Vec<pb::TensorProto>,
}

impl Graph {
    /// Adds `op(inputs)` named `name`, returns its output's name.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attribute: Vec<pb::AttributeProto>,
    ) -> String {
        self.nodes.push(pb::NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.into()],
            attribute,
            ..Default::default()
        });
        name.into()
    }

    fn constant(&mut self, name: &str, shape: &[usize], values: &[f32]) -> String {
        self.init.push(initializer(name, shape, values));
        name.into()
    }
}

/// The embedder: conv blocks, global pooling when the architecture has it, flatten, dense,
/// head. Returns the embedding's name.
fn embedder(g: &mut Graph, arch: &Arch, params: &[f32]) -> Result<String> {
    arch.validate().map_err(Error::Input)?;
    // Batch normalisation folded into the convolutions: the graph has no normalisation
    // node, and runs as fast as an unnormalised network.
    let (arch, params) = folded(arch, params);
    let (arch, params) = (&arch, &params[..]);
    let layout = ParamLayout::new(arch);
    let tensor = |g: &mut Graph, t: &crate::model::TensorInfo| {
        g.constant(&t.name, &t.shape, &params[t.range()])
    };
    let mut x = INPUT.to_string();
    for l in 0..arch.channels.len() {
        let s = arch.conv(l, 1);
        let (w, b) = layout.conv(l);
        let (w, b) = (tensor(g, w), tensor(g, b));
        let p = s.pad as i64;
        let conv = g.node(
            "Conv",
            &format!("conv{}", l + 1),
            &[&x, &w, &b],
            vec![
                ints("kernel_shape", &[s.k as i64, s.k as i64]),
                ints("pads", &[p, p, p, p]),
                ints("strides", &[1, 1]),
            ],
        );
        let relu = g.node("Relu", &format!("relu{}", l + 1), &[&conv], vec![]);
        // Floor mode (the default): an odd side loses its last row and column, as
        // `maxpool2d_forward` does.
        x = g.node(
            "MaxPool",
            &format!("pool{}", l + 1),
            &[&relu],
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        );
    }
    if arch.pooling == Pooling::AvgMax {
        // [N, C, 1, 1] twice, means first: the order of global_avgmax_pool_forward.
        let avg = g.node("GlobalAveragePool", "global_avg", &[&x], vec![]);
        let max = g.node("GlobalMaxPool", "global_max", &[&x], vec![]);
        x = g.node(
            "Concat",
            "global_avgmax",
            &[&avg, &max],
            vec![int("axis", 1)],
        );
    }
    let flat = g.node("Flatten", "flatten", &[&x], vec![int("axis", 1)]);
    let (w, b) = layout.dense();
    let (w, b) = (tensor(g, w), tensor(g, b));
    let fc = g.node("Gemm", "fc", &[&flat, &w, &b], vec![int("transB", 1)]);
    Ok(match arch.head {
        Head::Sigmoid => g.node("Sigmoid", EMBEDDING, &[&fc], vec![]),
        Head::L2 => {
            let norm = g.node(
                "ReduceL2",
                "fc_norm",
                &[&fc],
                vec![ints("axes", &[1]), int("keepdims", 1)],
            );
            let eps = g.constant("l2_eps", &[], &[L2_EPS]);
            let floor = g.node("Max", "fc_norm_floored", &[&norm, &eps], vec![]);
            g.node("Div", EMBEDDING, &[&fc, &floor], vec![])
        }
    })
}

/// `distances` `[N, G]` = |e|^2 - 2 e G^T + |g|^2 from the embedding `e` `[N, D]`.
fn gallery_distances(g: &mut Graph, emb: &str, gallery: &[f32], rows: usize, d: usize) {
    let mut gt = vec![0.0f32; d * rows];
    for (r, row) in gallery.chunks(d).enumerate() {
        for (k, &v) in row.iter().enumerate() {
            gt[k * rows + r] = v;
        }
    }
    let gsq: Vec<f32> = gallery
        .chunks(d)
        .map(|row| row.iter().map(|v| v * v).sum())
        .collect();
    let gt = g.constant("gallery_t", &[d, rows], &gt);
    let gsq = g.constant("gallery_sq", &[1, rows], &gsq);
    let minus2 = g.constant("minus_two", &[], &[-2.0]);
    let zero = g.constant("zero", &[], &[0.0]);
    let esq = g.node(
        "ReduceSumSquare",
        "embedding_sq",
        &[emb],
        vec![ints("axes", &[1]), int("keepdims", 1)],
    );
    let dot = g.node("MatMul", "gallery_dot", &[emb, &gt], vec![]);
    let cross = g.node("Mul", "gallery_cross", &[&dot, &minus2], vec![]);
    let part = g.node("Add", "gallery_part", &[&cross, &esq], vec![]);
    let sum = g.node("Add", "gallery_sum", &[&part, &gsq], vec![]);
    // Rounding can take a zero distance below zero.
    g.node("Max", DISTANCES, &[&sum, &zero], vec![]);
}

/// The ONNX model of `model`'s embedder and gallery distances.
pub fn onnx_model(model: &Model) -> Result<pb::ModelProto> {
    let arch = &model.meta.arch;
    let d = arch.embed_dim;
    let rows = model.gallery_labels.len();
    if rows == 0 || model.gallery.len() != rows * d {
        return Err(Error::Input(format!(
            "the model's gallery has {} labels and {} values ({d} per embedding): nothing to export distances to",
            rows,
            model.gallery.len()
        )));
    }
    let mut g = Graph::default();
    let emb = embedder(&mut g, arch, &model.params)?;
    gallery_distances(&mut g, &emb, &model.gallery, rows, d);
    let (side, c) = (arch.side.to_string(), arch.in_channels.to_string());
    let (ds, rs) = (d.to_string(), rows.to_string());
    let graph = pb::GraphProto {
        name: "glassnet_embedder".into(),
        node: g.nodes,
        initializer: g.init,
        input: vec![float_value(INPUT, &["N", &c, &side, &side])],
        output: vec![
            float_value(EMBEDDING, &["N", &ds]),
            float_value(DISTANCES, &["N", &rs]),
        ],
        doc_string: arch.describe(),
        ..Default::default()
    };
    let props = [
        ("glassnet_commit", env!("GLASSNET_COMMIT").to_string()),
        ("classes", model.meta.classes.join(",")),
        ("preprocess", model.meta.preprocess.describe()),
    ];
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "glassnet".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: props
            .into_iter()
            .map(|(k, v)| pb::StringStringEntryProto {
                key: k.into(),
                value: v,
            })
            .collect(),
        ..Default::default()
    })
}

/// The serialised ONNX file.
pub fn onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    Ok(onnx_model(model)?.encode_to_vec())
}

/// Outputs of an ONNX file run by tract: `(embedding [n, d], distances [n, g])`.
pub struct TractOutputs {
    pub embedding: Vec<f32>,
    pub distances: Vec<f32>,
}

fn tract_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Input(format!("tract, {what}: {e}"))
}

/// Runs `images` `[n, arch.in_channels, arch.side, arch.side]` through an ONNX file with
/// tract (optimised plan for this batch size).
pub fn run_tract(onnx: &[u8], arch: &Arch, images: &[f32]) -> Result<TractOutputs> {
    let (c, side) = (arch.in_channels, arch.side);
    let n = images.len() / arch.image_len();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &*onnx)
        .map_err(|e| tract_err("reading the model", e))?
        .with_input_fact(0, f32::fact([n, c, side, side]).into())
        .map_err(|e| tract_err("input shape", e))?
        .into_optimized()
        .map_err(|e| tract_err("optimising", e))?
        .into_runnable()
        .map_err(|e| tract_err("planning", e))?;
    let input = Tensor::from_shape(&[n, c, side, side], images)
        .map_err(|e| tract_err("input tensor", e))?;
    let out = plan
        .run(tvec!(input.into_tvalue()))
        .map_err(|e| tract_err("running", e))?;
    let take = |i: usize| -> Result<Vec<f32>> {
        Ok(out[i]
            .to_plain_array_view::<f32>()
            .map_err(|e| tract_err("reading an output", e))?
            .iter()
            .copied()
            .collect())
    };
    Ok(TractOutputs {
        embedding: take(0)?,
        distances: take(1)?,
    })
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
