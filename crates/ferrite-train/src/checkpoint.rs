//! Saving and loading a `Sequential`: parameters (under their names), optimizer state (under
//! `optimizer.<slot>.<param>`), and JSON metadata describing the model, in one safetensors file
//! written atomically.
//!
//! Layer: train.

use crate::model::{LayerConfig, Sequential};
use ferrite_core::{Error, Result, Tensor};
use ferrite_nn::checkpoint::{load_safetensors, save_safetensors};
use ferrite_nn::LinearInit;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const FORMAT: &str = "ferrite-sequential-v1";

/// The architecture of a `Sequential`, stored in checkpoint metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    pub fn from_spec(spec: &ModelSpec) -> Result<Sequential> {
        let mut m = Sequential::with_options(&spec.input_shape, spec.seed, spec.init);
        for l in &spec.layers {
            m = m.add(l.clone())?;
        }
        Ok(m)
    }

    fn metadata(&self, extra: &BTreeMap<String, String>) -> Result<HashMap<String, String>> {
        let mut meta: HashMap<String, String> = extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        meta.insert("format".into(), FORMAT.into());
        meta.insert(
            "model".into(),
            serde_json::to_string(&self.spec()).map_err(|e| Error::Invalid {
                op: "save",
                detail: e.to_string(),
            })?,
        );
        Ok(meta)
    }

    /// Saves the parameters, buffers (batch-norm statistics) and architecture (no optimizer state).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let tensors: BTreeMap<String, Tensor> = self.vars.state().into_iter().collect();
        save_safetensors(path, &tensors, Some(self.metadata(&BTreeMap::new())?))
    }

    /// Saves a resumable checkpoint: parameters, optimizer state and step, plus `extra` metadata.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>, extra: &BTreeMap<String, String>) -> Result<()> {
        let mut tensors: BTreeMap<String, Tensor> = self.vars.state().into_iter().collect();
        let mut meta = self.metadata(extra)?;
        if let Some(c) = &self.compiled {
            for (k, v) in c.optimizer.state()? {
                tensors.insert(format!("optimizer.{k}"), v);
            }
            meta.insert("optimizer".into(), c.optimizer.name().into());
            meta.insert("optimizer_steps".into(), c.optimizer.steps().to_string());
            meta.insert("lr".into(), c.optimizer.lr().to_string());
        }
        save_safetensors(path, &tensors, Some(meta))
    }

    /// Loads a model saved by [`Sequential::save`] or [`Sequential::save_checkpoint`].
    ///
    /// # Errors
    /// A missing, truncated or corrupt file, a file that is not a ferrite model, or parameters
    /// that do not match the stored architecture — each naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Sequential> {
        let path = path.as_ref();
        let (tensors, meta) = load_safetensors(path)?;
        let spec = spec_from_meta(path, &meta)?;
        let model = Sequential::from_spec(&spec)
            .map_err(|e| Error::file(path, format!("stored architecture is invalid: {e}")))?;
        let params: BTreeMap<String, Tensor> = tensors
            .into_iter()
            .filter(|(k, _)| !k.starts_with("optimizer."))
            .collect();
        model.vars.load(&params, &path.display().to_string())?;
        Ok(model)
    }

    /// Restores parameters and (if compiled) optimizer state from a checkpoint into this model,
    /// returning the checkpoint's metadata.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<HashMap<String, String>> {
        let path = path.as_ref();
        let (tensors, meta) = load_safetensors(path)?;
        let spec = spec_from_meta(path, &meta)?;
        if spec.layers != self.configs || spec.input_shape != self.input_shape {
            return Err(Error::file(path, "checkpoint architecture differs from this model"));
        }
        let (opt, params): (BTreeMap<String, Tensor>, BTreeMap<String, Tensor>) =
            tensors.into_iter().partition(|(k, _)| k.starts_with("optimizer."));
        self.vars.load(&params, &path.display().to_string())?;
        if let Some(c) = &mut self.compiled {
            let steps: u64 = meta.get("optimizer_steps").and_then(|s| s.parse().ok()).unwrap_or(0);
            let state: BTreeMap<String, Tensor> = opt
                .into_iter()
                .map(|(k, v)| (k.trim_start_matches("optimizer.").to_string(), v))
                .collect();
            c.optimizer
                .load_state(&state, steps)
                .map_err(|e| Error::file(path, format!("optimizer state: {e}")))?;
            if let Some(lr) = meta.get("lr").and_then(|s| s.parse().ok()) {
                c.optimizer.set_lr(lr);
            }
        }
        Ok(meta)
    }
}

fn spec_from_meta(path: &Path, meta: &HashMap<String, String>) -> Result<ModelSpec> {
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
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
