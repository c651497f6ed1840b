//! Subword and character tokenizers, stored as standard Hugging Face `tokenizer.json` files.
//!
//! Layer: text. Both kinds are one `tokenizers` pipeline, sentencepiece style:
//! - normalizer: `\s+` → `" "`, then strip both ends (exactly [`crate::normalize_whitespace`]); no Unicode normalization,
//!   so decoded text keeps the input's code points;
//! - pre-tokenizer: Metaspace (`' '` → `'▁'`, a `'▁'` prepended, split before each `'▁'`), so spaces are ordinary
//!   symbols and decoding restores them exactly;
//! - model: BPE with `unk_token = "<unk>"`; a character tokenizer is BPE with no merges, which is what a character
//!   tokenizer is, and loads in any `tokenizers` version;
//! - decoder: Metaspace (`'▁'` → `' '`, the leading one dropped).
//!
//! Hence `decode(encode(s)) == normalize_whitespace(s)` whenever every character of `s` was seen in training. A literal
//! `'▁'` in the input decodes as a space (as in sentencepiece).

use crate::{BOS, EOS, PAD, SPECIAL_TOKENS};
use ferrite_core::{Error, Result};
use std::collections::BTreeSet;
use std::path::Path;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BpeTrainerBuilder, Vocab, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{NormalizerWrapper, Replace, Sequence, Strip};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, Tokenizer};

/// The word-boundary symbol of sentencepiece and the Metaspace pre-tokenizer (U+2581).
const SPACE_MARK: char = '▁';

/// Which vocabulary [`TextTokenizer::train`] builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// One token per character: the four specials, `'▁'` and every character seen.
    Char,
    /// Byte-pair encoding (Sennrich et al. 2016) over characters, trained to a target vocabulary size.
    Bpe,
}

/// A trained tokenizer: wraps `tokenizers::Tokenizer` and fixes the special ids `PAD = 0, BOS = 1, EOS = 2,
/// UNK = 3`.
#[derive(Clone, Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
    kind: TokenizerKind,
}

impl TextTokenizer {
    /// Trains a tokenizer on `texts`.
    ///
    /// `Char` ignores `vocab_size`: its vocabulary is the specials, `'▁'` and every non-whitespace character seen
    /// (sorted by code point, so the ids are deterministic). `Bpe` runs the `tokenizers` BPE trainer with
    /// `vocab_size` counting the specials; every character seen is kept even if that exceeds `vocab_size`, so seen
    /// text never maps to UNK. Characters not seen in training encode to [`crate::UNK`], one per character.
    ///
    /// ```
    /// use ferrite_text::{TextTokenizer, TokenizerKind, UNK};
    /// let tok = TextTokenizer::train(TokenizerKind::Char, 0, ["le chat", "the cat"]).unwrap();
    /// let ids = tok.encode("the  chat ").unwrap();
    /// assert_eq!(tok.decode(&ids).unwrap(), "the chat");
    /// assert_eq!(tok.encode("x").unwrap(), vec![4, UNK]); // '▁' then the unseen 'x'
    /// ```
    ///
    /// # Errors
    /// [`Error::Invalid`] if `texts` has no non-whitespace character, or `Bpe` is asked for `vocab_size <= 5`
    /// (the four specials and `'▁'` leave no room for text).
    pub fn train<'a>(kind: TokenizerKind, vocab_size: usize, texts: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let texts: Vec<&str> = texts.into_iter().collect();
        let alphabet: BTreeSet<char> = texts
            .iter()
            .flat_map(|t| t.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        if alphabet.is_empty() {
            return Err(invalid(
                "TextTokenizer::train",
                "no training text (every text is empty or whitespace)",
            ));
        }
        let inner = match kind {
            TokenizerKind::Char => char_tokenizer(&alphabet)?,
            TokenizerKind::Bpe => bpe_tokenizer(vocab_size, &texts)?,
        };
        Ok(TextTokenizer::wrap(inner, kind))
    }

    /// Loads a `tokenizer.json` written by [`TextTokenizer::save`] (or any BPE tokenizer with the same specials).
    ///
    /// The kind is `Char` when the BPE model has no merges, else `Bpe`.
    ///
    /// # Errors
    /// [`Error::File`] naming `path` if it cannot be read or parsed, its model is not BPE, its unknown token is not
    /// `"<unk>"` (unknown characters would be dropped silently), or a special token does not have its fixed id.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not valid JSON: {e}")))?;
        let model = &json["model"];
        if model["type"] != "BPE" {
            return Err(Error::file(
                path,
                format!("tokenizer model type is {}, expected \"BPE\"", model["type"]),
            ));
        }
        if model["unk_token"] != SPECIAL_TOKENS[crate::UNK as usize] {
            return Err(Error::file(
                path,
                format!("model unk_token is {}, expected \"<unk>\"", model["unk_token"]),
            ));
        }
        let no_merges = model["merges"].as_array().is_none_or(|m| m.is_empty());
        // `tokenizers` panics on some inconsistent models (a merge longer than its vocabulary's
        // tokens): caught, it is one more way the file is invalid.
        let inner: Tokenizer = ferrite_core::error::catch_panic(|| text.parse::<Tokenizer>())
            .map_err(|p| {
                Error::file(
                    path,
                    format!("not a valid tokenizer.json: the tokenizer library failed on it ({p})"),
                )
            })?
            .map_err(|e| Error::file(path, format!("not a valid tokenizer.json: {e}")))?;
        for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
            match inner.token_to_id(token) {
                Some(found) if found as usize == id => {}
                found => {
                    let found = found.map_or("no id".to_string(), |f| format!("id {f}"));
                    return Err(Error::file(
                        path,
                        format!("special token {token:?} has {found}, expected id {id}"),
                    ));
                }
            }
        }
        // Every id must index the vocabulary, or encoding yields ids that decode refuses.
        let n = inner.get_vocab_size(true);
        if let Some((token, id)) = inner.get_vocab(true).into_iter().find(|(_, id)| *id as usize >= n) {
            return Err(Error::file(
                path,
                format!("token {token:?} has id {id}, outside the vocabulary of {n} (ids must be 0..{n})"),
            ));
        }
        let kind = if no_merges {
            TokenizerKind::Char
        } else {
            TokenizerKind::Bpe
        };
        Ok(TextTokenizer::wrap(inner, kind))
    }

    /// Writes the tokenizer as a pretty-printed `tokenizer.json`, atomically (temp file + rename).
    ///
    /// # Errors
    /// [`Error::File`] naming `path` if it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| Error::file(path, format!("cannot serialize tokenizer: {e}")))?;
        ferrite_core::fs::write_atomic(path, json.as_bytes())
    }

    /// Token ids of `text`, without BOS/EOS (the caller adds them where the model needs them).
    ///
    /// Whitespace is normalized first; the special token strings in `text` (e.g. a literal `"</s>"`) are encoded as
    /// ordinary characters, never as special ids, so corpus text cannot inject an EOS.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the underlying tokenizer fails (it does not for tokenizers built by this crate).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| invalid("TextTokenizer::encode", e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`. PAD, BOS and EOS are skipped (so a padded or generated sequence decodes cleanly); UNK is
    /// rendered as the text `"<unk>"` so that lost characters stay visible in translations and BLEU counts them
    /// as wrong.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first id outside `0..vocab_size()`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size()) {
            return Err(invalid(
                "TextTokenizer::decode",
                format!(
                    "token id {bad} is outside the vocabulary of {} tokens",
                    self.vocab_size()
                ),
            ));
        }
        let kept: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| id != PAD && id != BOS && id != EOS)
            .collect();
        self.inner
            .decode(&kept, false)
            .map_err(|e| invalid("TextTokenizer::decode", e.to_string()))
    }

    /// Number of token ids, specials included; ids are `0..vocab_size()`.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Which kind of vocabulary this is.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// The token string of `id`, if it is in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    fn wrap(mut inner: Tokenizer, kind: TokenizerKind) -> Self {
        // Not stored in tokenizer.json, so set on every construction path.
        inner.set_encode_special_tokens(true);
        TextTokenizer { inner, kind }
    }
}

fn invalid(op: &'static str, detail: impl Into<String>) -> Error {
    Error::Invalid {
        op,
        detail: detail.into(),
    }
}

/// A tokenizer around `model` with the shared normalizer, pre-tokenizer, decoder and special tokens.
fn pipeline(model: BPE) -> Result<Tokenizer> {
    let op = "TextTokenizer::train";
    let collapse = Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(|e| invalid(op, e.to_string()))?;
    let normalizer = Sequence::new(vec![NormalizerWrapper::from(collapse), Strip::new(true, true).into()]);
    let metaspace = Metaspace::new(SPACE_MARK, PrependScheme::Always, true);
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(|e| invalid(op, e.to_string()))?;
    tokenizer.with_pre_tokenizer(Some(metaspace.clone()));
    tokenizer.with_decoder(Some(DecoderWrapper::from(metaspace)));
    Ok(tokenizer)
}

fn special_tokens() -> Vec<AddedToken> {
    SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect()
}

fn char_tokenizer(alphabet: &BTreeSet<char>) -> Result<Tokenizer> {
    let op = "TextTokenizer::train";
    let mut vocab: Vocab = SPECIAL_TOKENS.iter().map(|t| t.to_string()).zip(0..).collect();
    for c in std::iter::once(SPACE_MARK).chain(alphabet.iter().copied()) {
        let next = vocab.len() as u32;
        vocab.entry(c.to_string()).or_insert(next);
    }
    let model = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .unk_token(SPECIAL_TOKENS[crate::UNK as usize].to_string())
        .build()
        .map_err(|e| invalid(op, e.to_string()))?;
    let mut tokenizer = pipeline(model)?;
    tokenizer
        .add_special_tokens(special_tokens())
        .map_err(|e| invalid(op, e.to_string()))?;
    Ok(tokenizer)
}

fn bpe_tokenizer(vocab_size: usize, texts: &[&str]) -> Result<Tokenizer> {
    let op = "TextTokenizer::train";
    if vocab_size <= SPECIAL_TOKENS.len() + 1 {
        return Err(invalid(
            op,
            format!("BPE vocab_size {vocab_size} must exceed the 4 special tokens plus '▁'"),
        ));
    }
    let model = BPE::builder()
        .unk_token(SPECIAL_TOKENS[crate::UNK as usize].to_string())
        .build()
        .map_err(|e| invalid(op, e.to_string()))?;
    let mut tokenizer = pipeline(model)?;
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(0)
        .show_progress(false)
        .special_tokens(special_tokens())
        .build()
        .into();
    tokenizer
        .train(&mut trainer, texts.iter().copied())
        .map_err(|e| invalid(op, e.to_string()))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_have_fixed_ids() {
        for kind in [TokenizerKind::Char, TokenizerKind::Bpe] {
            let tok = TextTokenizer::train(kind, 40, ["hello world", "bonjour le monde"]).unwrap();
            for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
                assert_eq!(tok.id_to_token(id as u32).as_deref(), Some(*token), "{kind:?}");
            }
            assert_eq!(tok.kind(), kind);
        }
    }

    #[test]
    fn literal_special_strings_are_plain_text() {
        let tok = TextTokenizer::train(TokenizerKind::Char, 0, ["a </s> <s> <pad> <unk> b"]).unwrap();
        let ids = tok.encode("a </s> b").unwrap();
        assert!(!ids.contains(&EOS), "{ids:?}");
        assert_eq!(tok.decode(&ids).unwrap(), "a </s> b");
    }

    #[test]
    fn bad_arguments() {
        assert!(TextTokenizer::train(TokenizerKind::Char, 0, [" ", ""]).is_err());
        assert!(TextTokenizer::train(TokenizerKind::Bpe, 5, ["abc"]).is_err());
        let tok = TextTokenizer::train(TokenizerKind::Char, 0, ["abc"]).unwrap();
        assert!(tok.decode(&[tok.vocab_size() as u32]).is_err());
    }
}
