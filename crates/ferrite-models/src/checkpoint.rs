//! Finding and reading a Hugging Face model directory: `config.json` plus weights in
//! `model.safetensors`, or shards listed by `model.safetensors.index.json`.
//!
//! Layer: models. Weights may be f32, f16 or bf16; they are converted to the model's dtype when
//! loaded into it. Non-parameter buffers some checkpoints carry (`position_ids`) are dropped here,
//! so the strict name check in [`load_weights_into`] only sees parameters.

use ferrite_core::{Error, Result, Tensor};
use ferrite_nn::checkpoint::load_safetensors;
use ferrite_nn::VarMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The files of a pretrained model directory.
#[derive(Clone, Debug)]
pub struct ModelDir {
    pub dir: PathBuf,
    /// The parsed `config.json`.
    pub config: serde_json::Value,
    /// Weight files, in load order.
    pub weight_files: Vec<PathBuf>,
}

impl ModelDir {
    /// Opens `dir`, reads `config.json` and locates the weights.
    ///
    /// # Errors
    /// A missing directory or `config.json`, malformed JSON, no safetensors weights (a
    /// `pytorch_model.bin` alone is named as unsupported), or an index naming a missing shard.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::file(dir, "model directory not found"));
        }
        let config_path = dir.join("config.json");
        let config = read_json(&config_path)?;
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let weight_files = if single.is_file() {
            vec![single]
        } else if index.is_file() {
            shard_files(&index)?
        } else if dir.join("pytorch_model.bin").is_file() {
            return Err(Error::file(
                dir,
                "only pytorch_model.bin found; ferrite reads safetensors weights (convert with `safetensors` or save_pretrained(safe_serialization=True))",
            ));
        } else {
            return Err(Error::file(dir, "no model.safetensors or model.safetensors.index.json"));
        };
        Ok(ModelDir {
            dir: dir.to_path_buf(),
            config,
            weight_files,
        })
    }

    /// `config.json`'s path, for error messages.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `config.json`'s `model_type` (`"bert"`, `"roberta"`, `"distilbert"`, …).
    pub fn model_type(&self) -> Result<&str> {
        self.config
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::file(self.config_path(), "no \"model_type\" string"))
    }

    /// Reads every weight file into one name → tensor map, without buffers such as `position_ids`.
    ///
    /// # Errors
    /// An unreadable or malformed weight file, or a name present in two shards.
    pub fn load_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut all = BTreeMap::new();
        for f in &self.weight_files {
            let (tensors, _) = load_safetensors(f)?;
            for (name, t) in tensors {
                if is_buffer(&name) {
                    continue;
                }
                if all.insert(name.clone(), t).is_some() {
                    return Err(Error::file(f, format!("tensor {name} appears in more than one shard")));
                }
            }
        }
        Ok(all)
    }

    /// An optional JSON file inside the directory (`tokenizer_config.json`, `modules.json`, …).
    pub fn optional_json(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let p = self.dir.join(name);
        if p.is_file() {
            read_json(&p).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Reads and parses a JSON file, naming it in every error.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not valid JSON: {e}")))
}

/// Buffers saved beside parameters by some `transformers` versions; never trainable.
fn is_buffer(name: &str) -> bool {
    name.ends_with("position_ids") || name.ends_with("embeddings.token_type_ids")
}

fn shard_files(index: &Path) -> Result<Vec<PathBuf>> {
    let json = read_json(index)?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::file(index, "no \"weight_map\" object"))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files = BTreeSet::new();
    for (name, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| Error::file(index, format!("weight_map entry {name} is not a file name")))?;
        files.insert(file.to_string());
    }
    files
        .into_iter()
        .map(|f| {
            let p = dir.join(&f);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::file(index, format!("shard {f} listed in the index is missing")))
            }
        })
        .collect()
}

/// What loading pretrained weights into a model did besides copying.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Model parameters the checkpoint lacked, left at their fresh initialization (a new head).
    pub initialized: Vec<String>,
    /// Checkpoint tensors the model has no place for (the head of a task model loaded as a bare
    /// encoder), skipped.
    pub ignored: Vec<String>,
}

/// Copies checkpoint weights into a model's parameters with Hugging Face's prefix rules: a task
/// model keeps its encoder under `base_prefix` (`"bert"`, `"distilbert"`, `"roberta"`), a bare
/// encoder has no prefix, and either kind of checkpoint loads into either kind of model.
/// Parameters the checkpoint lacks are an error unless `may_be_fresh(name)` holds (a new task
/// head); checkpoint tensors outside the encoder are ignored only when the model is a bare encoder.
///
/// # Errors
/// Missing or unexpected names (listed), or a shape mismatch (named), citing `source`.
pub fn load_weights_into(
    vars: &VarMap,
    tensors: BTreeMap<String, Tensor>,
    base_prefix: &str,
    may_be_fresh: impl Fn(&str) -> bool,
    source: &Path,
) -> Result<LoadReport> {
    let dotted = format!("{base_prefix}.");
    let names: Vec<String> = vars.vars().into_iter().map(|(n, _)| n).collect();
    let model_prefixed = names.iter().any(|n| n.starts_with(&dotted));
    let ckpt_prefixed = tensors.keys().any(|n| n.starts_with(&dotted));
    let mut report = LoadReport::default();
    let aligned: BTreeMap<String, Tensor> = match (model_prefixed, ckpt_prefixed) {
        (false, true) => tensors
            .into_iter()
            .filter_map(|(n, t)| match n.strip_prefix(&dotted) {
                Some(rest) => Some((rest.to_string(), t)),
                None => {
                    report.ignored.push(n);
                    None
                }
            })
            .collect(),
        (true, false) => {
            // A bare-encoder checkpoint for a task model: every tensor belongs to the encoder.
            tensors.into_iter().map(|(n, t)| (format!("{dotted}{n}"), t)).collect()
        }
        _ => tensors,
    };
    report.initialized = vars.load_partial(&aligned, &source.display().to_string(), may_be_fresh)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_and_config_are_named() {
        let e = ModelDir::open("/nonexistent/model").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/model") && e.contains("not found"), "{e}");
        let dir = std::env::temp_dir().join(format!("ferrite-modeldir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = ModelDir::open(&dir).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("cannot read"), "{e}");
        std::fs::write(dir.join("config.json"), "{\"model_type\": \"bert\"}").unwrap();
        let e = ModelDir::open(&dir).unwrap_err().to_string();
        assert!(e.contains("no model.safetensors"), "{e}");
        std::fs::write(dir.join("pytorch_model.bin"), b"x").unwrap();
        let e = ModelDir::open(&dir).unwrap_err().to_string();
        assert!(e.contains("pytorch_model.bin"), "{e}");
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            "{\"weight_map\": {\"a\": \"s1.safetensors\"}}",
        )
        .unwrap();
        let e = ModelDir::open(&dir).unwrap_err().to_string();
        assert!(e.contains("shard s1.safetensors"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
