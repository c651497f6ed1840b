//! The models a server holds: what kind each is (told by its files), the tensors it takes and
//! gives under the v2 protocol, and how a request reaches it — a [`Batcher`] for the models that
//! batch, the generation scheduler ([`llm`]) for the language model.
//!
//! Every model is loaded through the same loaders the CLI uses (`open_run`, `Classifier::open`,
//! `SentenceEmbedder::load`, `TranslationModel::load`, `Whisper::load`, `LanguageModel::open`),
//! so a served model answers what `ferrite predict/classify/embed/translate/transcribe/generate`
//! answers for the same input.
//!
//! Layer: serving.

pub(crate) mod batched;
pub mod llm;

use crate::batcher::{BatchPolicy, Batcher};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::tensor::{Data, InferRequest, NamedTensor, TensorSpec};
use ferrite_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a served model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A `ferrite train` regression or classification run (MLP, CNN, ViT).
    Tabular,
    /// A sentence-embedding model directory (MiniLM).
    Embedding,
    /// A fine-tuned text classifier (run or Hugging Face directory).
    Classifier,
    /// A `ferrite train` translation run.
    Translator,
    /// A GGUF language model.
    Llm,
    /// A Whisper model directory (CTranslate2).
    Whisper,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Tabular,
        Kind::Embedding,
        Kind::Classifier,
        Kind::Translator,
        Kind::Llm,
        Kind::Whisper,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Tabular => "tabular",
            Kind::Embedding => "embedding",
            Kind::Classifier => "classifier",
            Kind::Translator => "translator",
            Kind::Llm => "llm",
            Kind::Whisper => "whisper",
        }
    }

    /// Parses a kind name.
    ///
    /// # Errors
    /// An unknown name; the message lists the kinds.
    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::Invalid {
                op: "serve",
                detail: format!(
                    "unknown model kind '{s}' (one of {})",
                    Kind::ALL.map(Kind::name).join(", ")
                ),
            })
    }

    /// The kind of model at `path`, from its files.
    ///
    /// # Errors
    /// A path that holds no model ferrite serves, named with what was looked for.
    pub fn detect(path: &Path) -> Result<Kind> {
        if path.is_file() {
            if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
                return Ok(Kind::Llm);
            }
            return Err(Error::file(
                path,
                "is a file, and only GGUF language models are served from a file",
            ));
        }
        if !path.is_dir() {
            return Err(Error::file(path, "does not exist"));
        }
        if path.join("model.bin").is_file() {
            return Ok(Kind::Whisper);
        }
        if path.join("model/config.json").is_file() {
            return Ok(Kind::Classifier);
        }
        if path.join("config.toml").is_file() {
            return Ok(match ferrite_train::config::RunKind::of_run_dir(path)? {
                ferrite_train::config::RunKind::Translate => Kind::Translator,
                _ => Kind::Tabular,
            });
        }
        let config = path.join("config.json");
        if config.is_file() {
            let text =
                std::fs::read_to_string(&config).map_err(|e| Error::file(&config, format!("cannot read: {e}")))?;
            return Ok(if text.contains("ForSequenceClassification") {
                Kind::Classifier
            } else {
                Kind::Embedding
            });
        }
        Err(Error::file(
            path,
            "holds no model ferrite serves (a run directory with config.toml, a model directory with \
             config.json or model.bin, or a .gguf file)",
        ))
    }

    /// Whether requests for this kind are batched (Triton's dynamic batcher).
    pub fn batches(self) -> bool {
        matches!(
            self,
            Kind::Tabular | Kind::Embedding | Kind::Classifier | Kind::Translator
        )
    }
}

/// One model to serve, as named on the command line or in the TOML file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub path: PathBuf,
    /// Detected from the files when absent.
    pub kind: Option<Kind>,
    pub policy: BatchPolicy,
}

/// How a request reaches a model.
pub(crate) enum Backend {
    Tabular(Batcher<batched::Rows, batched::RowOutputs>),
    Embedding(Batcher<Vec<String>, batched::Embedded>),
    Classifier(Batcher<Vec<String>, Vec<ferrite_train::finetune::run::Prediction>>),
    Translator(Batcher<Vec<String>, Vec<String>>),
    Whisper(Batcher<Vec<f32>, String>),
    Llm(llm::Generator),
}

/// A loaded model.
pub struct Served {
    pub name: String,
    pub kind: Kind,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub(crate) backend: Backend,
}

impl Served {
    /// Loads the model of `spec` and starts its worker.
    ///
    /// # Errors
    /// A path without a model, or the model's load error (naming the file).
    pub fn load(spec: &ModelSpec, metrics: Arc<Metrics>, limits: &llm::GenerationLimits) -> Result<Served> {
        let kind = match spec.kind {
            Some(k) => k,
            None => Kind::detect(&spec.path)?,
        };
        batched::load(spec, kind, metrics, limits)
    }

    /// The v2 model metadata document.
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "versions": ["1"],
            "platform": format!("ferrite_{}", self.kind.name()),
            "inputs": self.inputs.iter().map(TensorSpec::to_json).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(TensorSpec::to_json).collect::<Vec<_>>(),
        })
    }

    /// Checks every required input is present, every input fits its spec, and nothing else was
    /// sent; returns the inputs present in the order declared (required ones first).
    fn checked<'r>(&self, req: &'r InferRequest) -> ApiResult<Vec<&'r NamedTensor>> {
        if let Some(t) = req
            .inputs
            .iter()
            .find(|t| !self.inputs.iter().any(|s| s.name == t.name))
        {
            let names: Vec<&str> = self.inputs.iter().map(|s| s.name).collect();
            return Err(ApiError::bad(format!(
                "input '{}' is not an input of model '{}' (its inputs: {})",
                t.name,
                self.name,
                names.join(", ")
            )));
        }
        let mut present = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            match req.inputs.iter().find(|t| t.name == spec.name) {
                Some(t) => {
                    spec.check(t)?;
                    present.push(t);
                }
                None if spec.optional => {}
                None => return Err(ApiError::bad(format!("input '{}' is missing", spec.name))),
            }
        }
        Ok(present)
    }

    /// Runs a v2 inference request.
    ///
    /// # Errors
    /// 400 for inputs that do not fit the model (named), 503 for a full queue, the model's errors.
    pub async fn infer(&self, req: &InferRequest) -> ApiResult<Vec<NamedTensor>> {
        let inputs = self.checked(req)?;
        match &self.backend {
            Backend::Tabular(b) => {
                let rows = batched::Rows::from_tensor(inputs[0], &self.inputs[0])?;
                let n = rows.n;
                let out = b.submit(rows, n).await?;
                Ok(out.into_tensors(n))
            }
            Backend::Embedding(b) => {
                let texts = utf8(inputs[0])?;
                let n = texts.len();
                let vectors = b.submit(texts, n).await?.vectors;
                let dim = vectors.first().map_or(0, Vec::len);
                Ok(vec![tensor("embedding", vec![n, dim], Data::Fp32(vectors.concat()))])
            }
            Backend::Classifier(b) => {
                let texts = utf8(inputs[0])?;
                let n = texts.len();
                let preds = b.submit(texts, n).await?;
                let classes = preds.first().map_or(0, |p| p.probabilities.len());
                let labels = preds.iter().map(|p| p.label.as_bytes().to_vec()).collect();
                let probs = preds.iter().flat_map(|p| p.probabilities.iter().map(|x| x.1)).collect();
                Ok(vec![
                    tensor("label", vec![n], Data::Bytes(labels)),
                    tensor("probabilities", vec![n, classes], Data::Fp32(probs)),
                ])
            }
            Backend::Translator(b) => {
                let texts = utf8(inputs[0])?;
                let n = texts.len();
                let out = b.submit(texts, n).await?;
                let bytes = out.into_iter().map(String::into_bytes).collect();
                Ok(vec![tensor("translation", vec![n], Data::Bytes(bytes))])
            }
            Backend::Whisper(b) => {
                let Data::Fp32(samples) = &inputs[0].data else {
                    return Err(ApiError::bad("input 'audio' must be FP32 samples"));
                };
                let text = b.submit(samples.clone(), 1).await?;
                Ok(vec![tensor("text", vec![1], Data::Bytes(vec![text.into_bytes()]))])
            }
            Backend::Llm(g) => {
                let prompt = utf8(inputs[0])?;
                let [prompt] = <[String; 1]>::try_from(prompt)
                    .map_err(|p| ApiError::bad(format!("input 'text_input' holds {} prompts; send one", p.len())))?;
                let params = llm::GenParams::from_v2(&req.inputs)?;
                let done = g.complete(llm::Prompt::Text(prompt), params).await?;
                Ok(vec![tensor(
                    "text_output",
                    vec![1],
                    Data::Bytes(vec![done.text.into_bytes()]),
                )])
            }
        }
    }
}

fn tensor(name: &str, shape: Vec<usize>, data: Data) -> NamedTensor {
    NamedTensor {
        name: name.into(),
        shape,
        data,
    }
}

/// The elements of a BYTES tensor as text.
///
/// # Errors
/// 400 for a non-BYTES tensor or an element that is not UTF-8.
fn utf8(t: &NamedTensor) -> ApiResult<Vec<String>> {
    let Data::Bytes(items) = &t.data else {
        return Err(ApiError::bad(format!("input '{}' must be BYTES", t.name)));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, b)| {
            String::from_utf8(b.clone())
                .map_err(|_| ApiError::bad(format!("input '{}': element {i} is not UTF-8 text", t.name)))
        })
        .collect()
}
