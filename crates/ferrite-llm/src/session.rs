//! A language model ready to use: the decoder, its tokenizer, stop tokens and chat template, all
//! from one GGUF file.
//!
//! Layer: llm.

use crate::generate::chatml_default_system;
use crate::gguf::Gguf;
use crate::llama::Llama;
use crate::tokenizer::tokenizer_from_gguf;
use ferrite_core::{Error, Result};
use std::path::Path;
use tokenizers::Tokenizer;

pub struct LanguageModel {
    pub llama: Llama,
    pub tokenizer: Tokenizer,
    /// Generation stops at these ids: the file's EOS token, and `<|endoftext|>` / `<|im_end|>`
    /// when the vocabulary has them.
    pub stop_ids: Vec<u32>,
    /// The BOS id to prepend to prompts, when `tokenizer.ggml.add_bos_token` asks for it.
    pub bos: Option<u32>,
    pub chat_template: Option<String>,
}

impl LanguageModel {
    /// Opens a GGUF model file.
    ///
    /// # Errors
    /// An unreadable or malformed file, an unsupported architecture or tokenizer (named).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let g = Gguf::open(path)?;
        let tokenizer = tokenizer_from_gguf(&g)?;
        let meta_id = |k: &str| g.metadata.get(k).and_then(|v| v.as_u64()).map(|v| v as u32);
        let mut stop_ids: Vec<u32> = meta_id("tokenizer.ggml.eos_token_id").into_iter().collect();
        for t in ["<|endoftext|>", "<|im_end|>", "<|eot_id|>"] {
            if let Some(id) = tokenizer.token_to_id(t) {
                if !stop_ids.contains(&id) {
                    stop_ids.push(id);
                }
            }
        }
        let add_bos = g
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let bos = if add_bos {
            meta_id("tokenizer.ggml.bos_token_id")
        } else {
            None
        };
        let chat_template = g
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        Ok(LanguageModel {
            llama: Llama::load(g)?,
            tokenizer,
            stop_ids,
            bos,
            chat_template,
        })
    }

    /// Token ids of `text` (special tokens such as `<|im_start|>` recognized), BOS first when
    /// the model wants it.
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| Error::Invalid {
            op: "encode",
            detail: format!("cannot tokenize the prompt: {e}"),
        })?;
        Ok(self.bos.into_iter().chain(enc.get_ids().iter().copied()).collect())
    }

    /// The default system message of the model's ChatML template (see
    /// [`chatml_default_system`]).
    ///
    /// # Errors
    /// A template that is not ChatML.
    pub fn default_system(&self) -> Result<Option<String>> {
        match &self.chat_template {
            Some(t) => chatml_default_system(t),
            None => Ok(None),
        }
    }
}
