//! A pretrained model's `tokenizer.json` (BERT WordPiece, RoBERTa byte-level BPE, …) loaded with the
//! pure-Rust `tokenizers` crate, with batch encoding to padded id rows, attention masks and
//! token-type ids.
//!
//! Layer: data (text). Why our own padding instead of the file's: a `tokenizer.json` may carry
//! its own padding and truncation (all-MiniLM-L6-v2's pads every sequence to 128), which is
//! invisible to the caller and wrong for mean pooling. We switch both off at load and apply the
//! caller's `max_len` and pad-to-longest explicitly, so what a model sees is always stated.

use ferrite_core::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// A batch of encoded texts, padded on the right to the longest row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedBatch {
    /// `[batch][len]` token ids, padded with the tokenizer's pad id.
    pub ids: Vec<Vec<u32>>,
    /// `[batch][len]`: 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<Vec<u32>>,
    /// `[batch][len]` segment ids (0 for a single text; 1 for the second text of a pair).
    pub type_ids: Vec<Vec<u32>>,
    /// Real (unpadded) length of each row.
    pub lengths: Vec<usize>,
    /// Rows that were cut to `max_len`.
    pub truncated: Vec<bool>,
}

impl EncodedBatch {
    /// Padded length of every row.
    pub fn seq_len(&self) -> usize {
        self.ids.first().map_or(0, Vec::len)
    }
}

/// Runs a call into `tokenizers`, which trusts what it deserialized (a post-processor template
/// naming a special token it does not define panics at encode time): a panic becomes an error
/// naming the file.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    ferrite_core::error::catch_panic(f).map_err(|p| {
        Error::file(
            path,
            format!("the tokenizer failed to {what} ({p}); the file is inconsistent"),
        )
    })
}

/// A pretrained tokenizer, loaded from a Hugging Face `tokenizer.json`.
#[derive(Clone)]
pub struct PretrainedTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    pad_id: u32,
    max_len: Option<usize>,
}

impl PretrainedTokenizer {
    /// Loads `tokenizer.json`, switching off the padding and truncation stored in the file.
    ///
    /// The pad id is the file's padding id if it has one, else the id of `[PAD]` or `<pad>`, else 0.
    ///
    /// # Errors
    /// A missing or malformed file: the message names it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::file(path, "tokenizer file not found"));
        }
        let mut inner = guarded(path, "load", || Tokenizer::from_file(path))?
            .map_err(|e| Error::file(path, format!("not a valid tokenizer.json: {e}")))?;
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .or_else(|| inner.token_to_id("<pad>"))
            .unwrap_or(0);
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::file(path, format!("cannot disable truncation: {e}")))?;
        Ok(PretrainedTokenizer {
            inner,
            path: path.to_path_buf(),
            pad_id,
            max_len: None,
        })
    }

    /// The id used for padding positions.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Number of entries in the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of `id`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Encodes one text with the special tokens (`[CLS] … [SEP]`), unpadded, cut to `max_len`.
    ///
    /// # Errors
    /// A tokenizer failure, naming the file.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode_one(text, None)?.get_ids().to_vec())
    }

    /// One encoding (a text or a pair), special tokens included; a panic inside `tokenizers` on a
    /// malformed file becomes an error naming it.
    fn encode_one(&self, text: &str, pair: Option<&str>) -> Result<tokenizers::Encoding> {
        guarded(&self.path, "encode", || match pair {
            None => self.inner.encode(text, true),
            Some(p) => self.inner.encode((text, p), true),
        })?
        .map_err(|e| Error::file(&self.path, format!("cannot encode {text:?}: {e}")))
    }

    /// Decodes ids to text, skipping special tokens.
    ///
    /// # Errors
    /// A tokenizer failure, naming the file.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        guarded(&self.path, "decode", || self.inner.decode(ids, true))?
            .map_err(|e| Error::file(&self.path, format!("cannot decode: {e}")))
    }

    /// The token strings of one encoded text (for explaining and debugging).
    ///
    /// # Errors
    /// A tokenizer failure, naming the file.
    pub fn tokens(&self, text: &str) -> Result<Vec<String>> {
        Ok(self.encode_one(text, None)?.get_tokens().to_vec())
    }

    /// Limits every encoding to `max_len` tokens, special tokens included, truncating the longer
    /// text of a pair first (Hugging Face's `longest_first`, the `truncation=True` default).
    ///
    /// # Errors
    /// `max_len` too small to hold the special tokens.
    pub fn set_max_len(&mut self, max_len: usize) -> Result<()> {
        let params = tokenizers::TruncationParams {
            max_length: max_len,
            strategy: tokenizers::TruncationStrategy::LongestFirst,
            stride: 0,
            direction: tokenizers::TruncationDirection::Right,
        };
        self.inner
            .with_truncation(Some(params))
            .map_err(|e| Error::file(&self.path, format!("cannot truncate to {max_len} tokens: {e}")))?;
        self.max_len = Some(max_len);
        Ok(())
    }

    /// The truncation length set by [`set_max_len`](Self::set_max_len).
    pub fn max_len(&self) -> Option<usize> {
        self.max_len
    }

    /// Encodes single texts (`pairs = None`) or text pairs and pads them on the right to the
    /// longest row. Rows longer than [`max_len`](Self::max_len) are truncated and flagged.
    ///
    /// # Errors
    /// A pair list of the wrong length, or a tokenizer failure.
    pub fn encode_batch(&self, texts: &[&str], pairs: Option<&[&str]>) -> Result<EncodedBatch> {
        if let Some(p) = pairs
            && p.len() != texts.len()
        {
            return Err(Error::Invalid {
                op: "encode_batch",
                detail: format!("{} texts but {} second texts", texts.len(), p.len()),
            });
        }
        let mut rows = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let enc = self.encode_one(text, pairs.map(|p| p[i]))?;
            let truncated = !enc.get_overflowing().is_empty();
            rows.push((enc.get_ids().to_vec(), enc.get_type_ids().to_vec(), truncated));
        }
        let len = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let mut out = EncodedBatch {
            ids: Vec::new(),
            attention_mask: Vec::new(),
            type_ids: Vec::new(),
            lengths: Vec::new(),
            truncated: Vec::new(),
        };
        for (mut ids, mut types, truncated) in rows {
            let n = ids.len();
            ids.resize(len, self.pad_id);
            types.resize(len, 0);
            out.ids.push(ids);
            out.type_ids.push(types);
            out.attention_mask.push((0..len).map(|j| u32::from(j < n)).collect());
            out.lengths.push(n);
            out.truncated.push(truncated);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_named() {
        let e = PretrainedTokenizer::from_file("/nonexistent/tokenizer.json")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("/nonexistent/tokenizer.json") && e.contains("not found"),
            "{e}"
        );
    }
}
