//! ferrite-text: the text pipeline: tokenizers, corpora, batching and text metrics.
//!
//! Layer: data, beside `ferrite-train` (it depends only on `ferrite-core` for the error type, never on tensors,
//! layers or the training loop), so it can be tested and used without building a model.
//!
//! Data flow, in file order:
//! 1. corpora: [`read_tsv`]/[`write_tsv`] (`tsv.rs`); gettext catalogs: [`read_mo`], [`extract_gettext_pairs`]
//!    (`gettext/`);
//! 2. a deterministic split: [`split_by_hash`] (`split.rs`);
//! 3. subword ids: [`TextTokenizer`] (`tokenizer.rs`), saved as a standard Hugging Face `tokenizer.json`;
//! 4. batches of similar length under a token budget: [`token_batches`] (`batch.rs`);
//! 5. evaluation: sacreBLEU-compatible [`corpus_bleu`] and [`corpus_chrf`] (`metrics/`).
//!
//! Labelled text tables (CSV with RFC 4180 quoting, TSV, JSON Lines) for classification: [`TextTable`]
//! (`table.rs`).
//!
//! Pretrained models' tokenizers (BERT WordPiece, RoBERTa BPE, …): [`PretrainedTokenizer`] (`pretrained.rs`)
//! encodes batches to padded ids, attention masks and token-type ids.

#![forbid(unsafe_code)]

mod batch;
mod email;
mod gettext;
mod metrics;
mod pretrained;
mod split;
mod table;
mod tokenizer;
mod tsv;
mod whitespace;

pub use batch::token_batches;
pub use email::{email_text, read_spam_assassin, LabelledEmail};
pub use gettext::{extract_gettext_pairs, read_mo, GettextStats};
pub use metrics::{corpus_bleu, corpus_chrf, tokenize_13a, Bleu};
pub use pretrained::{EncodedBatch, PretrainedTokenizer};
pub use split::{check_fractions, split_by_hash};
pub use table::TextTable;
pub use tokenizer::{TextTokenizer, TokenizerKind};
pub use tsv::{read_tsv, write_tsv, Pair};
pub use whitespace::normalize_whitespace;

/// Id of `"<pad>"` in every tokenizer; padding positions carry it.
pub const PAD: u32 = 0;
/// Id of `"<s>"` (beginning of sequence) in every tokenizer; the decoder input starts with it.
pub const BOS: u32 = 1;
/// Id of `"</s>"` (end of sequence) in every tokenizer; generation stops at it.
pub const EOS: u32 = 2;
/// Id of `"<unk>"` in every tokenizer; characters never seen in training encode to it.
pub const UNK: u32 = 3;

/// The special token strings, in id order: `SPECIAL_TOKENS[PAD as usize] == "<pad>"` and so on.
pub const SPECIAL_TOKENS: [&str; 4] = ["<pad>", "<s>", "</s>", "<unk>"];
