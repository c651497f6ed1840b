//! Checkpoints for every model: its tensors under their names, and for a resumable checkpoint the
//! optimizer state (under `optimizer.<slot>.<param>`) and the typed run position
//! ([`TrainState`]), in one safetensors file written atomically. A `Sequential` also stores its
//! architecture, so its files rebuild the model on their own.
//!
//! Layer: train.

use crate::model::{LayerConfig, Sequential};
use crate::step::{TrainState, TrainStep};
use ferrite_core::{Error, Result, Tensor};
use ferrite_nn::checkpoint::{load_safetensors, save_safetensors};
use ferrite_nn::{LinearInit, VarMap};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Metadata key of the serialized [`TrainState`].
const TRAIN_STATE: &str = "ferrite.train_state";
/// Metadata format tag of a `Sequential` model file.
const SEQUENTIAL_FORMAT: &str = "ferrite-sequential-v1";

/// What a checkpoint holds besides the model's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointContent {
    /// Only the model's tensors: a model file.
    Weights,
    /// Also the optimizer state and the run's position, to resume training exactly.
    Resumable,
}

/// Writes `tensors` (and, for a resumable checkpoint, `step`'s optimizer state and run state)
/// with `metadata` to `path`, atomically.
///
/// # Errors
/// An unwritable path (named).
pub fn save_checkpoint(
    path: &Path,
    tensors: &[(String, Tensor)],
    step: &TrainStep,
    content: CheckpointContent,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut all: BTreeMap<String, Tensor> = tensors.iter().map(|(n, t)| (n.clone(), t.detach())).collect();
    let mut meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    meta.insert("step".into(), step.state.step.to_string());
    if content == CheckpointContent::Resumable {
        for (k, v) in step.optimizer_state()? {
            all.insert(format!("optimizer.{k}"), v);
        }
        meta.insert("optimizer".into(), step.optimizer_name().into());
        let state = serde_json::to_string(&step.state).map_err(|e| Error::file(path, e.to_string()))?;
        meta.insert(TRAIN_STATE.into(), state);
    }
    save_safetensors(path, &all, Some(meta))
}

/// A checkpoint read back.
pub struct Checkpoint {
    /// The model's tensors.
    pub tensors: BTreeMap<String, Tensor>,
    /// Optimizer state tensors (`slot.param`), empty in a model file.
    pub optimizer: BTreeMap<String, Tensor>,
    /// The run's position, in a resumable checkpoint.
    pub state: Option<TrainState>,
    pub metadata: HashMap<String, String>,
}

/// Reads a checkpoint written by [`save_checkpoint`] (or any safetensors file of a model's
/// tensors).
///
/// # Errors
/// A missing, truncated or corrupt file, or a run state that does not parse — naming the file.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let (tensors, metadata) = load_safetensors(path)?;
    let (optimizer, tensors): (BTreeMap<String, Tensor>, BTreeMap<String, Tensor>) =
        tensors.into_iter().partition(|(k, _)| k.starts_with("optimizer."));
    let optimizer = optimizer
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches("optimizer.").to_string(), v))
        .collect();
    let state = metadata
        .get(TRAIN_STATE)
        .map(|s| serde_json::from_str(s).map_err(|e| Error::file(path, format!("invalid training state: {e}"))))
        .transpose()?;
    Ok(Checkpoint {
        tensors,
        optimizer,
        state,
        metadata,
    })
}

impl Checkpoint {
    /// Puts the run back: the tensors into `vars` (strict names and shapes), the optimizer state
    /// and run position into `step`.
    ///
    /// # Errors
    /// A model file (no run state), or tensors or optimizer state that do not fit (named with
    /// `source`).
    pub fn resume(&self, vars: &VarMap, step: &mut TrainStep, source: &Path) -> Result<()> {
        let state = self
            .state
            .clone()
            .ok_or_else(|| Error::file(source, "holds model weights only, not a resumable training state"))?;
        vars.load(&self.tensors, &source.display().to_string())?;
        step.restore(&self.optimizer, state)
            .map_err(|e| Error::file(source, format!("optimizer state: {e}")))
    }
}

/// The architecture of a `Sequential`, stored in its files' metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub input_shape: Vec<usize>,
    pub layers: Vec<LayerConfig>,
    pub init: LinearInit,
    pub seed: u64,
}

impl Sequential {
    /// The architecture, enough to rebuild the model.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            input_shape: self.input_shape.clone(),
            layers: self.configs.clone(),
            init: self.init,
            seed: self.seed,
        }
    }

    /// Builds a model from a spec (freshly initialized).
    ///
    /// # Errors
    /// Layers that do not fit together (see [`Sequential::add`]).
    pub fn from_spec(spec: &ModelSpec) -> Result<Sequential> {
        let mut m = Sequential::with_options(&spec.input_shape, spec.seed, spec.init);
        for l in &spec.layers {
            m = m.add(l.clone())?;
        }
        Ok(m)
    }

    /// The metadata every file of this model carries: its format and architecture.
    ///
    /// # Errors
    /// Never for a model built from configs.
    pub fn checkpoint_metadata(&self) -> Result<BTreeMap<String, String>> {
        let spec = serde_json::to_string(&self.spec()).map_err(|e| Error::Invalid {
            op: "save",
            detail: e.to_string(),
        })?;
        Ok(BTreeMap::from([
            ("format".to_string(), SEQUENTIAL_FORMAT.to_string()),
            ("model".to_string(), spec),
        ]))
    }

    /// Saves the parameters, buffers (batch-norm statistics) and architecture (no optimizer state).
    ///
    /// # Errors
    /// An unwritable path (named).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let tensors: BTreeMap<String, Tensor> = self.vars.state().into_iter().collect();
        let meta: HashMap<String, String> = self.checkpoint_metadata()?.into_iter().collect();
        save_safetensors(path, &tensors, Some(meta))
    }

    /// Loads a model saved by [`Sequential::save`] or checkpointed while training.
    ///
    /// # Errors
    /// A missing, truncated or corrupt file, a file that is not a ferrite model, or parameters
    /// that do not match the stored architecture — each naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Sequential> {
        let path = path.as_ref();
        let ckpt = load_checkpoint(path)?;
        let spec = spec_from_meta(path, &ckpt.metadata)?;
        let model = Sequential::from_spec(&spec)
            .map_err(|e| Error::file(path, format!("stored architecture is invalid: {e}")))?;
        model.vars.load(&ckpt.tensors, &path.display().to_string())?;
        Ok(model)
    }

    /// Resumes training from a checkpoint written while fitting this (compiled) model:
    /// parameters, optimizer state and run position.
    ///
    /// # Errors
    /// A file of another architecture, a model file without training state, or a model that
    /// is not compiled.
    pub fn resume_from(&mut self, path: impl AsRef<Path>) -> Result<TrainState> {
        let path = path.as_ref();
        let ckpt = load_checkpoint(path)?;
        if spec_from_meta(path, &ckpt.metadata)? != self.spec() {
            return Err(Error::file(path, "checkpoint architecture differs from this model"));
        }
        let vars = self.vars.clone();
        let step = self.trainer_mut()?;
        ckpt.resume(&vars, step, path)?;
        Ok(step.state.clone())
    }
}

fn spec_from_meta(path: &Path, meta: &HashMap<String, String>) -> Result<ModelSpec> {
    if meta.get("format").map(String::as_str) != Some(SEQUENTIAL_FORMAT) {
        return Err(Error::file(
            path,
            format!(
                "not a ferrite model checkpoint (metadata format is {:?})",
                meta.get("format")
            ),
        ));
    }
    let json = meta
        .get("model")
        .ok_or_else(|| Error::file(path, "checkpoint metadata has no model description"))?;
    serde_json::from_str(json).map_err(|e| Error::file(path, format!("invalid model description: {e}")))
}
