//! A language model ready to use: the decoder, its tokenizer, stop tokens and chat template, all
//! from one GGUF file; and text generation with it — streamed pieces of text, stop tokens,
//! timing — on the shared generation module.
//!
//! Layer: models.

use crate::formats::gguf::Gguf;
use crate::formats::gguf_tokenizer::tokenizer_from_gguf;
use crate::generation::{chatml_default_system, generate as decode, Finish, Start, Strategy};
use crate::llama::{Llama, LlamaDecoder};
use ferrite_core::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;
use tokenizers::Tokenizer;

/// What [`LanguageModel::generate`] returns (the `--json` output of `ferrite generate`).
#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    pub ids: Vec<u32>,
    pub text: String,
    /// `eos` (a stop token), `max_tokens` or `context` (the context window is full).
    pub stop: String,
    pub prompt_seconds: f64,
    pub generate_seconds: f64,
    pub prompt_tokens_per_s: f64,
    pub generated_tokens_per_s: f64,
}

/// Generated ids turned into text as they arrive: [`push`](Self::push) returns each new piece
/// once it decodes cleanly (a multi-byte character split across tokens decodes to U+FFFD until
/// its last token comes), [`finish`](Self::finish) whatever is left. `ferrite generate` and the
/// server's streams both print through here.
#[derive(Clone, Debug, Default)]
pub struct TextStream {
    pub ids: Vec<u32>,
    /// The text given out so far.
    pub text: String,
}

impl TextStream {
    /// Adds a token; the new text, when there is some.
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn push(&mut self, model: &LanguageModel, tok: u32) -> Result<Option<String>> {
        self.ids.push(tok);
        let text = model.decode(&self.ids)?;
        Ok(self.advance(text, true))
    }

    /// The text not yet given out (a trailing incomplete character included).
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn finish(&mut self, model: &LanguageModel) -> Result<Option<String>> {
        let text = model.decode(&self.ids)?;
        Ok(self.advance(text, false))
    }

    fn advance(&mut self, text: String, hold_partial: bool) -> Option<String> {
        if (hold_partial && text.ends_with('\u{fffd}'))
            || text.len() <= self.text.len()
            || !text.starts_with(&self.text)
        {
            return None;
        }
        let piece = text[self.text.len()..].to_string();
        self.text = text;
        Some(piece)
    }
}

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
            if let Some(id) = tokenizer.token_to_id(t)
                && !stop_ids.contains(&id)
            {
                stop_ids.push(id);
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

    /// Checks a request for `max_tokens` new tokens against the context length, so a caller can
    /// refuse it before printing or queueing anything.
    ///
    /// # Errors
    /// `max_tokens` above the model's context length.
    pub fn check_max_tokens(&self, max_tokens: usize) -> Result<()> {
        let context = self.llama.config.context;
        if max_tokens > context {
            return Err(Error::Invalid {
                op: "generate",
                detail: format!("max_tokens {max_tokens} is more than the model's whole context of {context} tokens"),
            });
        }
        Ok(())
    }

    /// Generates up to `max_tokens` tokens after `prompt_ids` with `strategy`, calling `on_text`
    /// with each new piece of decoded text as it is produced (greedy and sampled decoding; beam
    /// search gives its text at the end); stops at any of the model's stop ids.
    ///
    /// # Errors
    /// An empty prompt, ids outside the vocabulary, a prompt longer than the context, a
    /// `max_tokens` above the context length, bad strategy parameters.
    pub fn generate(
        &self,
        prompt_ids: &[u32],
        max_tokens: usize,
        strategy: &Strategy,
        mut on_text: impl FnMut(&str),
    ) -> Result<Generation> {
        self.check_max_tokens(max_tokens)?;
        let started = Instant::now();
        let mut decoder = LlamaDecoder::new(&self.llama);
        let logits = decoder.prime(prompt_ids)?;
        let prompt_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        // The last token chosen is never fed, so a full context still allows one more.
        let room = self.llama.config.context + 1 - decoder.len();
        let limit = max_tokens.min(room);
        let start = Start {
            logits: vec![logits],
            history: vec![prompt_ids.to_vec()],
            max_tokens: vec![limit],
        };
        let mut stream = TextStream::default();
        let mut failed = None;
        let out = decode(
            &mut decoder,
            start,
            strategy,
            &self.stop_ids,
            &mut |_, tok| match stream.push(self, tok) {
                Ok(Some(piece)) => on_text(&piece),
                Ok(None) => {}
                Err(e) => failed = Some(e),
            },
        )?
        .swap_remove(0);
        if let Some(e) = failed {
            return Err(e);
        }
        let generate_seconds = started.elapsed().as_secs_f64();
        // Beam search names its tokens only at the end.
        stream.ids.clone_from(&out.tokens);
        if let Some(piece) = stream.finish(self)? {
            on_text(&piece);
        }
        let text = stream.text;
        let stop = match out.finish {
            Finish::Stop => "eos",
            Finish::Length if limit < max_tokens => "context",
            Finish::Length => "max_tokens",
        };
        Ok(Generation {
            prompt_ids: prompt_ids.to_vec(),
            prompt_tokens_per_s: prompt_ids.len() as f64 / prompt_seconds.max(1e-9),
            generated_tokens_per_s: out.tokens.len() as f64 / generate_seconds.max(1e-9),
            ids: out.tokens,
            text,
            stop: stop.into(),
            prompt_seconds,
            generate_seconds,
        })
    }

    /// The text of token ids (special tokens skipped).
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| Error::Invalid {
            op: "generate",
            detail: format!("cannot decode tokens: {e}"),
        })
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
