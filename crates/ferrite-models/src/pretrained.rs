//! A pretrained encoder with an optional task head — `AutoModel`,
//! `AutoModelForSequenceClassification` and `AutoModelForTokenClassification` in one type — and
//! loading it from / saving it to a Hugging Face model directory.
//!
//! Layer: models. Heads keep `transformers`' names and shapes per family, so a checkpoint
//! fine-tuned in PyTorch loads here and one fine-tuned here loads in PyTorch.

use crate::bert::{hf_linear, Encoder, EncoderInput, EncoderOutput};
use crate::checkpoint::{load_weights_into, LoadReport, ModelDir};
use crate::config::{EncoderConfig, Family};
use ferrite_core::fs::write_atomic;
use ferrite_core::{Error, Result, Rng, Tensor};
use ferrite_nn::checkpoint::save_safetensors;
use ferrite_nn::{Activation, Init, Linear, Module, Tap, VarBuilder, VarMap};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What the model computes on top of the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Hidden states only (`AutoModel`).
    Encoder,
    /// One label per text (`…ForSequenceClassification`), with this many classes.
    SequenceClassification(usize),
    /// One label per token (`…ForTokenClassification`), with this many classes.
    TokenClassification(usize),
}

impl Task {
    /// The task a checkpoint was saved for, from `architectures` and `id2label` in its config.
    pub fn from_config(config: &EncoderConfig) -> Task {
        let arch = config
            .raw
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(|a| a.as_str())
            .unwrap_or("");
        // transformers' rule: `id2label` fixes the number of labels; without it `num_labels`
        // does, and without both there are 2.
        let n = if config.labels.is_empty() {
            config
                .raw
                .get("num_labels")
                .and_then(|n| n.as_u64())
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .unwrap_or(2)
        } else {
            config.labels.len()
        };
        if arch.ends_with("ForSequenceClassification") {
            Task::SequenceClassification(n)
        } else if arch.ends_with("ForTokenClassification") {
            Task::TokenClassification(n)
        } else {
            Task::Encoder
        }
    }

    fn architecture(self, family: Family) -> String {
        let base = match family {
            Family::Bert => "Bert",
            Family::Roberta => "Roberta",
            Family::DistilBert => "DistilBert",
        };
        match self {
            Task::Encoder => format!("{base}Model"),
            Task::SequenceClassification(_) => format!("{base}ForSequenceClassification"),
            Task::TokenClassification(_) => format!("{base}ForTokenClassification"),
        }
    }
}

enum Head {
    /// BERT: dropout → `classifier` on the pooler output.
    Pooled { classifier: Linear },
    /// DistilBERT: `pre_classifier` → ReLU → dropout → `classifier` on the first token.
    PreClassifier { pre: Linear, classifier: Linear },
    /// RoBERTa: dropout → `classifier.dense` → tanh → dropout → `classifier.out_proj` on `<s>`.
    Dense { dense: Linear, out_proj: Linear },
    /// Every family: dropout → `classifier` on each token.
    Token { classifier: Linear },
}

/// An encoder plus task head, with its parameters in one [`VarMap`] under checkpoint names.
pub struct PretrainedModel {
    pub encoder: Encoder,
    pub task: Task,
    pub vars: VarMap,
    head: Option<Head>,
}

impl PretrainedModel {
    /// A freshly initialized model (Hugging Face's initialization, seeded): the from-scratch
    /// baseline for a pretrained one, or the shell a checkpoint is loaded into.
    pub fn new(config: &EncoderConfig, task: Task, with_pooler: bool, seed: u64) -> Result<Self> {
        let vars = VarMap::new();
        Self::build(config, task, with_pooler, VarBuilder::new(&vars, seed), vars)
    }

    fn build(config: &EncoderConfig, task: Task, with_pooler: bool, root: VarBuilder, vars: VarMap) -> Result<Self> {
        let base = match task {
            Task::Encoder => root.clone(),
            _ => root.pp(config.family.base_prefix()),
        };
        let needs_pooler = matches!(task, Task::SequenceClassification(_)) && config.family == Family::Bert;
        let encoder = Encoder::new(&base, config, with_pooler || needs_pooler)?;
        let (h, std) = (config.hidden_size, config.init_std);
        let head = match task {
            Task::Encoder => None,
            Task::SequenceClassification(n) | Task::TokenClassification(n) if n == 0 => {
                return Err(Error::Invalid {
                    op: "PretrainedModel",
                    detail: "a classification head needs at least one label".into(),
                });
            }
            Task::SequenceClassification(n) => Some(match config.family {
                Family::Bert => Head::Pooled {
                    classifier: hf_linear(&root.pp("classifier"), h, n, std)?,
                },
                Family::DistilBert => Head::PreClassifier {
                    pre: hf_linear(&root.pp("pre_classifier"), h, h, std)?,
                    classifier: hf_linear(&root.pp("classifier"), h, n, std)?,
                },
                Family::Roberta => Head::Dense {
                    dense: hf_linear(&root.pp("classifier.dense"), h, h, std)?,
                    out_proj: hf_linear(&root.pp("classifier.out_proj"), h, n, std)?,
                },
            }),
            Task::TokenClassification(n) => Some(Head::Token {
                classifier: hf_linear(&root.pp("classifier"), h, n, std)?,
            }),
        };
        Ok(PretrainedModel {
            encoder,
            task,
            vars,
            head,
        })
    }

    /// Loads a Hugging Face model directory for `task` (`None`: the task its config names).
    ///
    /// A task model loads from a bare-encoder checkpoint with a freshly initialized head (and
    /// pooler, if the checkpoint has none) — the start of fine-tuning; a bare encoder loads from a
    /// task checkpoint and ignores the head. The report lists both.
    ///
    /// # Errors
    /// Missing files, an unsupported architecture, and any other missing, unexpected or
    /// wrongly shaped weight (all listed, naming the file).
    pub fn load(dir: impl AsRef<Path>, task: Option<Task>) -> Result<(Self, LoadReport)> {
        Self::load_from(&ModelDir::open(dir)?, task)
    }

    /// [`load`](Self::load) from an already opened directory.
    ///
    /// # Errors
    /// As for [`load`](Self::load).
    pub fn load_from(dir: &ModelDir, task: Option<Task>) -> Result<(Self, LoadReport)> {
        let config = EncoderConfig::from_json(&dir.config, &dir.config_path())?;
        let task = task.unwrap_or_else(|| Task::from_config(&config));
        let tensors = dir.load_tensors()?;
        let source = dir.weight_files.first().cloned().unwrap_or_else(|| dir.dir.clone());
        check_config_sizes(&config, &tensors, &dir.config_path(), &source)?;
        let has_pooler = tensors.keys().any(|k| k.contains("pooler.dense.weight"));
        let vars = VarMap::new();
        // Sizes the weights do not pin down (a head, a missing table) still come from the config.
        let model = Self::build(&config, task, has_pooler, VarBuilder::for_loading(&vars), vars)
            .map_err(|e| e.attributed_to(dir.config_path(), Some("cannot build the model it describes")))?;
        let prefix = format!("{}.", config.family.base_prefix());
        let is_task_model = task != Task::Encoder;
        let may_be_fresh = |n: &str| {
            is_task_model && (!n.starts_with(&prefix) || (!has_pooler && n.starts_with(&format!("{prefix}pooler."))))
        };
        let report = load_weights_into(&model.vars, tensors, config.family.base_prefix(), may_be_fresh, &source)?;
        // What the checkpoint lacked (a new head, a pooler) is initialized as transformers does:
        // every such parameter belongs to a linear layer, weight N(0, initializer_range), bias 0.
        let mut rng = Rng::new(0);
        for name in &report.initialized {
            if let Some(p) = model.vars.get(name)
                && name.ends_with("weight")
            {
                let std = config.init_std;
                p.assign_(&Init::Normal { mean: 0.0, std }.tensor(p.shape(), &mut rng)?)?;
            }
        }
        Ok((model, report))
    }

    /// The encoder's output (hidden states, pooler output, optional attention maps).
    ///
    /// # Errors
    /// See [`Encoder::forward`].
    ///
    /// # Shapes
    /// `input_ids` `[B, T]` → hidden states `[B, T, H]`, pooler `[B, H]`, attention maps `[B, heads, T, T]` per layer.
    pub fn encode(&self, input: &EncoderInput, train: bool, output_attentions: bool) -> Result<EncoderOutput> {
        self.encoder.forward(input, train, output_attentions)
    }

    /// Class logits: `[B, labels]` for sequence classification, `[B, T, labels]` per token.
    ///
    /// # Errors
    /// A model without a head, or bad inputs (see [`Encoder::forward`]).
    ///
    /// # Shapes
    /// `input_ids` `[B, T]` → `[B, labels]` (sequence) or `[B, T, labels]` (token classification).
    pub fn logits(&self, input: &EncoderInput, train: bool) -> Result<Tensor> {
        let out = self.encode(input, train, false)?;
        self.head_logits(&out, train)
    }

    /// Class logits from word embeddings `[B, T, H]` in place of the ids' (see
    /// [`Encoder::forward_embeds`]): what attributions with respect to the input embeddings use.
    ///
    /// # Errors
    /// As [`logits`](Self::logits), and embeddings of the wrong shape.
    ///
    /// # Shapes
    /// `words` `[B, T, H]` → `[B, labels]` (sequence) or `[B, T, labels]`.
    pub fn logits_from_embeds(&self, input: &EncoderInput, words: &Tensor, train: bool) -> Result<Tensor> {
        let out = self.encoder.forward_embeds(input, words, train, false)?;
        self.head_logits(&out, train)
    }

    /// Applies the task head to an encoder output.
    ///
    /// # Errors
    /// A model without a head.
    pub fn head_logits(&self, out: &EncoderOutput, train: bool) -> Result<Tensor> {
        self.head_logits_with(out, train, None)
    }

    /// The head in training mode for DP-SGD, recording a [`Tap`] per linear layer (the head is
    /// all linear layers, so every head parameter gets per-example gradients).
    ///
    /// # Errors
    /// A model without a head.
    pub fn head_logits_tapped(&self, out: &EncoderOutput, taps: &mut Vec<Tap>) -> Result<Tensor> {
        self.head_logits_with(out, true, Some(taps))
    }

    fn head_logits_with(&self, out: &EncoderOutput, train: bool, mut taps: Option<&mut Vec<Tap>>) -> Result<Tensor> {
        let p = self.encoder.config.classifier_dropout;
        let mut lin = |x: &Tensor, l: &Linear| match taps.as_deref_mut() {
            Some(t) => l.forward_tapped(x, train, t),
            None => x.linear(&l.weight, l.bias.as_ref()),
        };
        let first = || out.last_hidden_state.narrow(1, 0, 1)?.squeeze(1);
        match &self.head {
            None => Err(Error::Invalid {
                op: "PretrainedModel::logits",
                detail: "this model has no task head (load it with a classification task)".into(),
            }),
            Some(Head::Pooled { classifier }) => {
                let pooled = out.pooler_output.as_ref().ok_or_else(|| Error::Invalid {
                    op: "PretrainedModel::logits",
                    detail: "BERT sequence classification needs the pooler".into(),
                })?;
                lin(&pooled.dropout(p, train)?, classifier)
            }
            Some(Head::PreClassifier { pre, classifier }) => {
                let x = Activation::Relu.apply(&lin(&first()?, pre)?)?;
                lin(&x.dropout(p, train)?, classifier)
            }
            Some(Head::Dense { dense, out_proj }) => {
                let x = lin(&first()?.dropout(p, train)?, dense)?.tanh()?;
                lin(&x.dropout(p, train)?, out_proj)
            }
            Some(Head::Token { classifier }) => lin(&out.last_hidden_state.dropout(p, train)?, classifier),
        }
    }

    /// Names of the task head's parameters (for a linear probe or separate learning rates).
    pub fn is_head_param(&self, name: &str) -> bool {
        self.task != Task::Encoder && !name.starts_with(&format!("{}.", self.encoder.config.family.base_prefix()))
    }

    /// Saves a Hugging Face model directory: `config.json` (with `architectures` and `labels`),
    /// `model.safetensors`, and `tokenizer.json` copied from `tokenizer` if given. Each file is
    /// written atomically.
    ///
    /// # Errors
    /// An unwritable directory or an unreadable tokenizer file, naming the path.
    pub fn save(&self, dir: impl AsRef<Path>, labels: &[String], tokenizer: Option<&Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create directory: {e}")))?;
        let mut config = self.encoder.config.clone();
        if !labels.is_empty() {
            config.labels = labels.to_vec();
        }
        let arch = self.task.architecture(config.family);
        let json = serde_json::to_string_pretty(&config.to_json(Some(&arch))).map_err(|e| Error::Invalid {
            op: "PretrainedModel::save",
            detail: e.to_string(),
        })?;
        write_atomic(dir.join("config.json"), json.as_bytes())?;
        let tensors: BTreeMap<String, Tensor> = self.vars.vars().into_iter().map(|(n, t)| (n, t.detach())).collect();
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        save_safetensors(dir.join("model.safetensors"), &tensors, Some(meta))?;
        if let Some(src) = tokenizer {
            let bytes = std::fs::read(src).map_err(|e| Error::file(src, format!("cannot read: {e}")))?;
            write_atomic(dir.join("tokenizer.json"), &bytes)?;
        }
        Ok(())
    }
}

/// Checks `config.json`'s sizes against the weights before anything is allocated from them: a
/// `vocab_size` or `num_hidden_layers` of 10¹² must be an error naming both files, not an
/// allocation failure. Compares the word and position tables' shapes and the layer count.
fn check_config_sizes(
    config: &EncoderConfig,
    tensors: &std::collections::BTreeMap<String, ferrite_core::Tensor>,
    config_path: &Path,
    weights: &Path,
) -> Result<()> {
    let mismatch = |field: &str, says: String, name: &str, shape: &[usize]| {
        Err(Error::file(
            config_path,
            format!(
                "{field} says {says}, but {name} in {} has shape {shape:?}",
                weights.display()
            ),
        ))
    };
    let find = |suffix: &str| tensors.iter().find(|(n, _)| n.ends_with(suffix));
    let (h, v, p, t, f) = (
        config.hidden_size,
        config.vocab_size,
        config.max_positions,
        config.type_vocab_size,
        config.intermediate_size,
    );
    // Every size the model allocates from the config, against the tensor that holds it.
    let expected: [(&str, &str, [usize; 2]); 5] = [
        ("embeddings.word_embeddings.weight", "vocab_size × hidden_size", [v, h]),
        (
            "embeddings.position_embeddings.weight",
            "max_position_embeddings × hidden_size",
            [p, h],
        ),
        (
            "embeddings.token_type_embeddings.weight",
            "type_vocab_size × hidden_size",
            [t, h],
        ),
        (
            "layer.0.intermediate.dense.weight",
            "intermediate_size × hidden_size",
            [f, h],
        ),
        ("layer.0.ffn.lin1.weight", "hidden_dim × dim", [f, h]),
    ];
    for (suffix, field, want) in expected {
        if let Some((name, tensor)) = find(suffix)
            && tensor.shape() != want
        {
            return mismatch(field, format!("{want:?}"), name, tensor.shape());
        }
    }
    let layers = tensors
        .keys()
        .filter_map(|n| {
            let rest = &n[n.find("layer.")? + "layer.".len()..];
            rest[..rest.find('.')?].parse::<usize>().ok()
        })
        .max()
        .map(|i| i + 1);
    if let Some(found) = layers
        && found != config.num_layers
    {
        return Err(Error::file(
            config_path,
            format!(
                "num_hidden_layers says {}, but {} holds {found} layers",
                config.num_layers,
                weights.display()
            ),
        ));
    }
    Ok(())
}
