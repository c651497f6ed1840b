//! One description of the BERT family's encoders, read from a Hugging Face `config.json`.
//!
//! Layer: models. BERT, RoBERTa and DistilBERT are the same post-LN encoder with different names
//! and embedding details, so each `config.json` dialect is parsed into one [`EncoderConfig`] and
//! the model code has no per-family branches beyond what the config says.

use ferrite_core::{Error, Result};
use ferrite_nn::Activation;
use serde_json::{json, Map, Value};
use std::path::Path;

/// Which checkpoint family, and so which parameter names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// BERT and MiniLM (`model_type = "bert"`).
    Bert,
    /// RoBERTa / XLM-R: BERT's layout, positions counted from `pad_token_id + 1`.
    Roberta,
    /// DistilBERT: no token types and no pooler; its own names.
    DistilBert,
}

impl Family {
    /// The prefix task models keep the encoder under (`bert.encoder…`).
    pub fn base_prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::DistilBert => "distilbert",
        }
    }
}

/// Everything needed to build a BERT-family encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub max_positions: usize,
    /// 0 when the family has no token-type embeddings (DistilBERT).
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: usize,
    pub hidden_dropout: f64,
    pub attention_dropout: f64,
    /// Dropout before a classification head.
    pub classifier_dropout: f64,
    /// Std of the normal initializer for fresh weights (`initializer_range`).
    pub init_std: f64,
    /// Class names by id (`id2label`), if the config has them.
    pub labels: Vec<String>,
    /// The original JSON, kept so a fine-tuned model is saved with every key it was loaded with.
    pub raw: Value,
}

impl EncoderConfig {
    /// Parses a `config.json` value; `source` is named in errors.
    ///
    /// # Errors
    /// An unsupported `model_type` or position embedding type, or a missing / mistyped field.
    pub fn from_json(v: &Value, source: &Path) -> Result<Self> {
        let bad = |detail: String| Error::file(source, detail);
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no \"model_type\" string".into()))?;
        let family = match model_type {
            "bert" => Family::Bert,
            "roberta" | "xlm-roberta" | "camembert" => Family::Roberta,
            "distilbert" => Family::DistilBert,
            other => {
                return Err(bad(format!(
                    "unsupported architecture model_type = \"{other}\" (ferrite loads bert, roberta, xlm-roberta, camembert, distilbert)"
                )));
            }
        };
        let usize_of = |key: &str| -> Result<usize> {
            v.get(key)
                .and_then(Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| bad(format!("\"{key}\" must be a non-negative integer")))
        };
        let f64_or = |key: &str, default: f64| -> Result<f64> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(x) => x.as_f64().ok_or_else(|| bad(format!("\"{key}\" must be a number"))),
            }
        };
        let act_name = |key: &str, default: &str| -> Result<Activation> {
            let name = v.get(key).and_then(Value::as_str).unwrap_or(default);
            hf_activation(name).ok_or_else(|| bad(format!("unsupported {key} \"{name}\"")))
        };
        let labels = parse_labels(v, source)?;
        let cfg = match family {
            Family::Bert | Family::Roberta => {
                if let Some(p) = v.get("position_embedding_type").and_then(Value::as_str)
                    && p != "absolute"
                {
                    return Err(bad(format!(
                        "position_embedding_type \"{p}\" is not supported (only \"absolute\")"
                    )));
                }
                let hidden_dropout = f64_or("hidden_dropout_prob", 0.1)?;
                EncoderConfig {
                    family,
                    vocab_size: usize_of("vocab_size")?,
                    hidden_size: usize_of("hidden_size")?,
                    num_layers: usize_of("num_hidden_layers")?,
                    num_heads: usize_of("num_attention_heads")?,
                    intermediate_size: usize_of("intermediate_size")?,
                    activation: act_name("hidden_act", "gelu")?,
                    max_positions: usize_of("max_position_embeddings")?,
                    type_vocab_size: usize_of("type_vocab_size")?,
                    layer_norm_eps: f64_or("layer_norm_eps", 1e-12)?,
                    pad_token_id: v
                        .get("pad_token_id")
                        .and_then(Value::as_u64)
                        .unwrap_or(if family == Family::Roberta { 1 } else { 0 })
                        as usize,
                    hidden_dropout,
                    attention_dropout: f64_or("attention_probs_dropout_prob", 0.1)?,
                    classifier_dropout: f64_or("classifier_dropout", hidden_dropout)?,
                    init_std: f64_or("initializer_range", 0.02)?,
                    labels,
                    raw: v.clone(),
                }
            }
            Family::DistilBert => EncoderConfig {
                family,
                vocab_size: usize_of("vocab_size")?,
                hidden_size: usize_of("dim")?,
                num_layers: usize_of("n_layers")?,
                num_heads: usize_of("n_heads")?,
                intermediate_size: usize_of("hidden_dim")?,
                activation: act_name("activation", "gelu")?,
                max_positions: usize_of("max_position_embeddings")?,
                type_vocab_size: 0,
                layer_norm_eps: 1e-12,
                pad_token_id: v.get("pad_token_id").and_then(Value::as_u64).unwrap_or(0) as usize,
                hidden_dropout: f64_or("dropout", 0.1)?,
                attention_dropout: f64_or("attention_dropout", 0.1)?,
                classifier_dropout: f64_or("seq_classif_dropout", 0.2)?,
                init_std: f64_or("initializer_range", 0.02)?,
                labels,
                raw: v.clone(),
            },
        };
        cfg.validate(source)?;
        Ok(cfg)
    }

    fn validate(&self, source: &Path) -> Result<()> {
        let bad = |detail: String| Err(Error::file(source, detail));
        if self.num_heads == 0 || !self.hidden_size.is_multiple_of(self.num_heads) {
            return bad(format!(
                "hidden size {} is not divisible by {} attention heads",
                self.hidden_size, self.num_heads
            ));
        }
        if self.vocab_size == 0 || self.max_positions == 0 {
            return bad("vocab_size and max_position_embeddings must be positive".into());
        }
        if self.pad_token_id >= self.vocab_size {
            return bad(format!(
                "pad_token_id {} is outside the vocabulary of {}",
                self.pad_token_id, self.vocab_size
            ));
        }
        if self.num_layers == 0 || self.intermediate_size == 0 {
            return bad("the layer count and intermediate size must be positive".into());
        }
        for (key, p) in [
            ("hidden dropout", self.hidden_dropout),
            ("attention dropout", self.attention_dropout),
            ("classifier dropout", self.classifier_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{key} probability must be in [0, 1), got {p}"));
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return bad(format!("layer_norm_eps must be positive, got {}", self.layer_norm_eps));
        }
        if !(self.init_std >= 0.0 && self.init_std.is_finite()) {
            return bad(format!(
                "initializer_range must be a non-negative number, got {}",
                self.init_std
            ));
        }
        Ok(())
    }

    /// The longest input the position table allows (RoBERTa reserves `pad_token_id + 1` slots).
    pub fn max_input_len(&self) -> usize {
        match self.family {
            Family::Roberta => self.max_positions.saturating_sub(self.pad_token_id + 1),
            _ => self.max_positions,
        }
    }

    /// The config as JSON for saving, with `labels` written as `id2label`/`label2id` and
    /// `architectures` set to `architecture` when given.
    pub fn to_json(&self, architecture: Option<&str>) -> Value {
        let mut obj = self.raw.as_object().cloned().unwrap_or_else(Map::new);
        if !self.labels.is_empty() {
            let id2label: Map<String, Value> = self
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), json!(l)))
                .collect();
            let label2id: Map<String, Value> = self
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), json!(i)))
                .collect();
            obj.insert("id2label".into(), Value::Object(id2label));
            obj.insert("label2id".into(), Value::Object(label2id));
            obj.insert("num_labels".into(), json!(self.labels.len()));
        }
        if let Some(a) = architecture {
            obj.insert("architectures".into(), json!([a]));
        }
        Value::Object(obj)
    }
}

/// Hugging Face's activation names (`ACT2FN`) that ferrite implements.
fn hf_activation(name: &str) -> Option<Activation> {
    Some(match name {
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        "silu" | "swish" => Activation::Silu,
        "tanh" => Activation::Tanh,
        _ => return None,
    })
}

/// `id2label` as a list ordered by id; an error if ids are not 0..n.
fn parse_labels(v: &Value, source: &Path) -> Result<Vec<String>> {
    let Some(map) = v.get("id2label").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut labels = vec![None; map.len()];
    for (k, name) in map {
        let i: usize = k
            .parse()
            .ok()
            .filter(|&i| i < labels.len())
            .ok_or_else(|| Error::file(source, format!("id2label key \"{k}\" is not an id in 0..{}", map.len())))?;
        labels[i] = Some(name.as_str().map_or_else(|| name.to_string(), str::to_string));
    }
    labels
        .into_iter()
        .map(|l| l.ok_or_else(|| Error::file(source, "id2label ids are not 0..n")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_architecture_is_named() {
        let e = EncoderConfig::from_json(&json!({"model_type": "gpt2"}), Path::new("m/config.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("m/config.json") && e.contains("gpt2"), "{e}");
        let e = EncoderConfig::from_json(&json!({"model_type": "bert", "hidden_size": 32}), Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("vocab_size"), "{e}");
    }

    #[test]
    fn labels_round_trip_through_json() {
        let v = json!({"model_type": "distilbert", "vocab_size": 10, "dim": 8, "n_layers": 1, "n_heads": 2,
            "hidden_dim": 16, "max_position_embeddings": 16, "id2label": {"1": "pos", "0": "neg"}});
        let c = EncoderConfig::from_json(&v, Path::new("c.json")).unwrap();
        assert_eq!(c.labels, vec!["neg", "pos"]);
        let back =
            EncoderConfig::from_json(&c.to_json(Some("DistilBertForSequenceClassification")), Path::new("c")).unwrap();
        assert_eq!(back.labels, c.labels);
        assert_eq!(back.raw["label2id"]["pos"], 1);
    }
}
