//! Loaders for every kind of model: each starts a worker thread that owns the model (built
//! there, so models need not be `Send`) behind a [`Batcher`], and declares its v2 tensors. The
//! batch functions join the requests' rows, run one pass, and split the answer back.
//!
//! Layer: serving.

use super::llm::{self, GenerationLimits};
use super::{Backend, Kind, ModelSpec, Served};
use crate::batcher::{BatchPolicy, Batcher, RunBatch};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::tensor::{Data, DataType, NamedTensor, TensorSpec};
use ferrite_core::{Result, Tensor};
use ferrite_models::{SentenceEmbedder, Whisper};
use ferrite_train::config::Task;
use ferrite_train::finetune::run::Classifier;
use ferrite_train::run::open_run;
use ferrite_train::seq2seq::run::TranslationModel;
use std::sync::mpsc;
use std::sync::Arc;

/// Rows of raw features (or flattened images) for a `ferrite train` run.
pub struct Rows {
    pub values: Vec<f32>,
    pub n: usize,
}

impl Rows {
    /// The rows of a checked `input` tensor.
    ///
    /// # Errors
    /// 400 for an empty batch.
    pub fn from_tensor(t: &NamedTensor, spec: &TensorSpec) -> ApiResult<Rows> {
        let Data::Fp32(values) = &t.data else {
            return Err(ApiError::bad(format!("input '{}' must be FP32", spec.name)));
        };
        let n = t.shape.first().copied().unwrap_or(0);
        if n == 0 {
            return Err(ApiError::bad(format!("input '{}' holds no rows", spec.name)));
        }
        Ok(Rows {
            values: values.clone(),
            n,
        })
    }
}

/// What a run predicts for one request's rows.
pub struct RowOutputs {
    pub values: Vec<f64>,
    pub probabilities: Option<Vec<Vec<f32>>>,
    pub task: Task,
}

impl RowOutputs {
    /// `prediction` (FP64 target values, or INT64 class ids) and, for classification,
    /// `probabilities` `[n, classes]`.
    pub fn into_tensors(self, n: usize) -> Vec<NamedTensor> {
        let prediction = match self.task {
            Task::Classification => Data::Int64(self.values.iter().map(|&v| v as i64).collect()),
            Task::Regression => Data::Fp64(self.values),
        };
        let mut out = vec![NamedTensor {
            name: "prediction".into(),
            shape: vec![n],
            data: prediction,
        }];
        if let Some(p) = self.probabilities {
            let classes = p.first().map_or(0, Vec::len);
            out.push(NamedTensor {
                name: "probabilities".into(),
                shape: vec![n, classes],
                data: Data::Fp32(p.concat()),
            });
        }
        out
    }
}

/// One request's embeddings and the tokens its texts became.
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: usize,
}

/// Splits `items` (one per row, all requests' rows in order) into each request's share.
fn split<T>(mut items: Vec<T>, counts: impl Iterator<Item = usize>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    for n in counts {
        let rest = items.split_off(n.min(items.len()));
        out.push(std::mem::replace(&mut items, rest));
    }
    out
}

/// Texts of every request in one list, for one pass.
fn join_texts(reqs: &[Vec<String>]) -> Vec<&str> {
    reqs.iter().flatten().map(String::as_str).collect()
}

fn bytes_in(name: &'static str) -> Vec<TensorSpec> {
    vec![TensorSpec::new(name, DataType::Bytes, &[-1])]
}

/// Starts a worker whose `load` also reports the tensor specs the model declares.
fn spawn<I: Send + 'static, O: Send + 'static, S: Send + 'static>(
    spec: &ModelSpec,
    policy: BatchPolicy,
    metrics: Arc<Metrics>,
    load: impl FnOnce() -> Result<(S, RunBatch<I, O>)> + Send + 'static,
) -> Result<(Batcher<I, O>, S)> {
    let (tx, rx) = mpsc::channel();
    let batcher = Batcher::spawn(&spec.name, policy, metrics, move || {
        let (info, run) = load()?;
        let _ = tx.send(info);
        Ok(run)
    })?;
    let info = rx.recv().map_err(|_| ferrite_core::Error::Invalid {
        op: "serve",
        detail: format!("model '{}' did not report its tensors", spec.name),
    })?;
    Ok((batcher, info))
}

pub(super) fn load(spec: &ModelSpec, kind: Kind, metrics: Arc<Metrics>, limits: &GenerationLimits) -> Result<Served> {
    let path = spec.path.clone();
    // Models that do not batch still queue behind one worker: one request at a time.
    let policy = if kind.batches() {
        spec.policy
    } else {
        BatchPolicy {
            max_batch: 1,
            ..spec.policy
        }
    };
    let (inputs, outputs, backend) = match kind {
        Kind::Tabular => {
            let (b, (shape, task)) = spawn(spec, policy, metrics, move || {
                let run = open_run(&path)?;
                let mut shape = vec![-1i64];
                shape.extend(run.scalers.input_shape().iter().map(|&d| d as i64));
                let task = run.scalers.task;
                let width: usize = run.scalers.input_shape().iter().product();
                let f: RunBatch<Rows, RowOutputs> = Box::new(move |reqs: &[Rows]| {
                    let n: usize = reqs.iter().map(|r| r.n).sum();
                    let values: Vec<f32> = reqs.iter().flat_map(|r| r.values.iter().copied()).collect();
                    let x = Tensor::from_vec(values, [n, width])?;
                    let p = run.predict_rows(&x)?;
                    let counts = || reqs.iter().map(|r| r.n);
                    let values = split(p.values, counts());
                    let probs = match p.probabilities {
                        Some(p) => split(p, counts()).into_iter().map(Some).collect(),
                        None => vec![None; reqs.len()],
                    };
                    Ok(values
                        .into_iter()
                        .zip(probs)
                        .map(|(values, probabilities)| RowOutputs {
                            values,
                            probabilities,
                            task,
                        })
                        .collect())
                });
                Ok(((shape, task), f))
            })?;
            let mut outputs = vec![match task {
                Task::Classification => TensorSpec::new("prediction", DataType::Int64, &[-1]),
                Task::Regression => TensorSpec::new("prediction", DataType::Fp64, &[-1]),
            }];
            if task == Task::Classification {
                outputs.push(TensorSpec::new("probabilities", DataType::Fp32, &[-1, -1]));
            }
            (
                vec![TensorSpec::new("input", DataType::Fp32, &shape)],
                outputs,
                Backend::Tabular(b),
            )
        }
        Kind::Embedding => {
            let (b, dim) = spawn(spec, policy, metrics, move || {
                let model = SentenceEmbedder::load(&path)?;
                let dim = model.dim() as i64;
                let f: RunBatch<Vec<String>, Embedded> = Box::new(move |reqs: &[Vec<String>]| {
                    let (vectors, tokens) = model.embed_counted(&join_texts(reqs))?;
                    let counts = || reqs.iter().map(Vec::len);
                    Ok(split(vectors, counts())
                        .into_iter()
                        .zip(split(tokens, counts()))
                        .map(|(vectors, tokens)| Embedded {
                            vectors,
                            tokens: tokens.iter().sum(),
                        })
                        .collect())
                });
                Ok((dim, f))
            })?;
            (
                bytes_in("text"),
                vec![TensorSpec::new("embedding", DataType::Fp32, &[-1, dim])],
                Backend::Embedding(b),
            )
        }
        Kind::Classifier => {
            let (b, classes) = spawn(spec, policy, metrics, move || {
                let model = Classifier::open(&path)?;
                let classes = model.labels.len() as i64;
                let f: RunBatch<Vec<String>, Vec<_>> = Box::new(move |reqs: &[Vec<String>]| {
                    let preds = model.classify(&join_texts(reqs))?;
                    Ok(split(preds, reqs.iter().map(Vec::len)))
                });
                Ok((classes, f))
            })?;
            (
                bytes_in("text"),
                vec![
                    TensorSpec::new("label", DataType::Bytes, &[-1]),
                    TensorSpec::new("probabilities", DataType::Fp32, &[-1, classes]),
                ],
                Backend::Classifier(b),
            )
        }
        Kind::Translator => {
            let (b, ()) = spawn(spec, policy, metrics, move || {
                let model = TranslationModel::load(&path)?;
                let strategy = model.config.decode.strategy(model.config.decode.beam)?;
                let options = model.config.decode.options();
                let f: RunBatch<Vec<String>, Vec<String>> = Box::new(move |reqs: &[Vec<String>]| {
                    // As `ferrite translate`: a blank line stays blank.
                    let all: Vec<String> = reqs.iter().flatten().cloned().collect();
                    let out = model.translate(&all, &strategy, &options)?;
                    Ok(split(out, reqs.iter().map(Vec::len)))
                });
                Ok(((), f))
            })?;
            (
                bytes_in("text"),
                vec![TensorSpec::new("translation", DataType::Bytes, &[-1])],
                Backend::Translator(b),
            )
        }
        Kind::Whisper => {
            let (b, ()) = spawn(spec, policy, metrics, move || {
                let model = Whisper::load(&path)?;
                let f: RunBatch<Vec<f32>, String> = Box::new(move |reqs: &[Vec<f32>]| {
                    reqs.iter()
                        .map(|samples| Ok(model.transcribe_samples(samples, 1)?.text))
                        .collect()
                });
                Ok(((), f))
            })?;
            (
                vec![TensorSpec::new("audio", DataType::Fp32, &[-1])],
                vec![TensorSpec::new("text", DataType::Bytes, &[1])],
                Backend::Whisper(b),
            )
        }
        Kind::Llm => {
            let g = llm::Generator::spawn(&spec.name, &spec.path, spec.policy.queue_bound, limits.clone(), metrics)?;
            (
                vec![
                    TensorSpec::new("text_input", DataType::Bytes, &[1]),
                    TensorSpec::new("max_tokens", DataType::Int32, &[1]).optional(),
                    TensorSpec::new("temperature", DataType::Fp32, &[1]).optional(),
                ],
                vec![TensorSpec::new("text_output", DataType::Bytes, &[1])],
                Backend::Llm(g),
            )
        }
    };
    Ok(Served {
        name: spec.name.clone(),
        kind,
        inputs,
        outputs,
        backend,
    })
}
