//! Decoding a seq2seq [`Transformer`]: the model as a [`Decoder`] over its KV cache, so greedy
//! decoding, sampling and beam search (HF length penalty) come from the shared generation
//! module, batched over source sentences, each stopping at EOS or its length limit.
//!
//! Layer: models. An uncached decoder that re-runs the whole prefix every step is kept to test
//! the cache against.

use crate::generation::{generate as decode, Decoder, Start, Strategy};
use crate::seq2seq::{pad_ids, Memory, Transformer};
use ferrite_core::{no_grad, Error, Result, Tensor};
use ferrite_nn::KvCache;

/// Special ids and length limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    pub bos: u32,
    pub eos: u32,
    /// At most `max_len_a · source_len + max_len_b` tokens are generated (EOS not counted),
    /// and never more than fit the decoder's position table after BOS (`max_positions − 1`), so
    /// BOS + output can always be run again (attention maps).
    pub max_len_a: f64,
    pub max_len_b: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            bos: 1,
            eos: 2,
            max_len_a: 1.5,
            max_len_b: 10,
        }
    }
}

/// The Transformer's decoder over a batch of rows, one token per row and step, on a KV cache.
pub struct Seq2SeqDecoder<'a> {
    model: &'a Transformer,
    cache: KvCache,
    /// `[rows, 1, 1, Ts]` key-padding mask of each row's source.
    memory_mask: Tensor,
}

impl<'a> Seq2SeqDecoder<'a> {
    /// A decoder attending to `memory` (one row per source).
    ///
    /// # Errors
    /// A memory that does not fit the model.
    pub fn new(model: &'a Transformer, memory: &Memory) -> Result<Self> {
        Ok(Seq2SeqDecoder {
            model,
            cache: model.start_cache(memory)?,
            memory_mask: memory.attention_mask()?,
        })
    }
}

/// `[N, 1, V]` logits as N rows.
fn rows_f32(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let v = *logits.shape().last().unwrap_or(&1);
    Ok(logits.to_vec::<f32>()?.chunks(v.max(1)).map(<[f32]>::to_vec).collect())
}

fn column(tokens: &[u32]) -> Result<Tensor> {
    Tensor::from_vec(
        tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>(),
        [tokens.len(), 1],
    )
}

fn row_index(rows: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()])
}

impl Decoder for Seq2SeqDecoder<'_> {
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        rows_f32(
            &self
                .model
                .decode_step(&column(tokens)?, &mut self.cache, &self.memory_mask)?,
        )
    }

    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        self.cache.reorder(rows)?;
        self.memory_mask = self.memory_mask.index_select(0, &row_index(rows)?)?;
        Ok(())
    }
}

/// The same decoder without a cache: every step runs the decoder over each row's whole prefix.
/// Slower by a factor of the output length; kept to test the cache against.
pub struct UncachedDecoder<'a> {
    model: &'a Transformer,
    memory: Memory,
    prefixes: Vec<Vec<u32>>,
}

impl Decoder for UncachedDecoder<'_> {
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        for (p, &t) in self.prefixes.iter_mut().zip(tokens) {
            p.push(t);
        }
        let ids = pad_ids(self.prefixes.iter().map(Vec::as_slice))?;
        let t = ids.shape()[1];
        let logits = self.model.decode(&ids, None, &self.memory, false)?;
        rows_f32(&logits.narrow(1, t - 1, 1)?)
    }

    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        self.prefixes = rows.iter().map(|&r| self.prefixes[r].clone()).collect();
        self.memory = self.memory.index_select(&row_index(rows)?)?;
        Ok(())
    }
}

/// Encodes the padded sources and computes each sentence's output-length limit.
fn prepare(model: &Transformer, sources: &[Vec<u32>], opts: &DecodeOptions) -> Result<(Memory, Vec<usize>)> {
    let cfg = model.config();
    let lens: Vec<usize> = sources.iter().map(Vec::len).collect();
    if let Some(i) = lens.iter().position(|&l| l == 0) {
        return Err(Error::Invalid {
            op: "generate",
            detail: format!("source {i} is empty"),
        });
    }
    if let Some(&id) = sources.iter().flatten().find(|&&id| id as usize >= cfg.src_vocab) {
        return Err(Error::Invalid {
            op: "generate",
            detail: format!("token id {id} is outside the source vocabulary of {}", cfg.src_vocab),
        });
    }
    let memory = model.encode(&pad_ids(sources.iter().map(Vec::as_slice))?, &lens, false)?;
    let limits = lens
        .iter()
        .map(|&l| {
            let most = cfg.max_positions.saturating_sub(1).max(1);
            ((opts.max_len_a * l as f64) as usize + opts.max_len_b).clamp(1, most)
        })
        .collect();
    Ok((memory, limits))
}

/// Primes `decoder` with BOS on every row and decodes.
fn run(
    decoder: &mut dyn Decoder,
    limits: Vec<usize>,
    strategy: &Strategy,
    opts: &DecodeOptions,
) -> Result<Vec<Vec<u32>>> {
    let logits = decoder.step(&vec![opts.bos; limits.len()])?;
    let start = Start {
        logits,
        history: Vec::new(),
        max_tokens: limits,
    };
    let out = decode(decoder, start, strategy, &[opts.eos], &mut |_, _| {})?;
    Ok(out.into_iter().map(|d| d.tokens).collect())
}

/// Encodes `sources` (each already ending in EOS) and generates one output per source, without
/// BOS/EOS. Inference only: runs under `no_grad`.
///
/// # Errors
/// An empty source, an id outside the vocabulary, or invalid strategy parameters.
pub fn generate(
    model: &Transformer,
    sources: &[Vec<u32>],
    strategy: &Strategy,
    opts: &DecodeOptions,
) -> Result<Vec<Vec<u32>>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let _g = no_grad();
    let (memory, limits) = prepare(model, sources, opts)?;
    run(&mut Seq2SeqDecoder::new(model, &memory)?, limits, strategy, opts)
}

/// Greedy decoding through [`UncachedDecoder`]: what [`generate`] with `Strategy::Greedy` must
/// reproduce.
///
/// # Errors
/// As [`generate`].
pub fn greedy_uncached(model: &Transformer, sources: &[Vec<u32>], opts: &DecodeOptions) -> Result<Vec<Vec<u32>>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let _g = no_grad();
    let (memory, limits) = prepare(model, sources, opts)?;
    let mut decoder = UncachedDecoder {
        model,
        memory,
        prefixes: vec![Vec::new(); sources.len()],
    };
    run(&mut decoder, limits, &Strategy::Greedy, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::{Ranking, SamplingOptions};
    use crate::seq2seq::{Positional, TransformerConfig};
    use ferrite_nn::{Activation, VarBuilder, VarMap};

    fn tiny() -> (VarMap, Transformer) {
        let map = VarMap::new();
        let cfg = TransformerConfig {
            src_vocab: 13,
            tgt_vocab: 13,
            d_model: 16,
            heads: 4,
            encoder_layers: 1,
            decoder_layers: 2,
            ffn: 32,
            dropout: 0.0,
            activation: Activation::Relu,
            norm_first: true,
            positional: Positional::Sinusoidal,
            max_positions: 32,
            share_embeddings: true,
            tie_output: true,
        };
        let m = Transformer::new(&VarBuilder::new(&map, 5), &cfg).unwrap();
        (map, m)
    }

    /// An untrained model's outputs are arbitrary, but every strategy must agree with its
    /// reference: the cache with re-running the prefix, beam 1 with greedy, and seeded sampling
    /// with itself.
    #[test]
    fn strategies_agree_with_their_references() {
        let (_map, m) = tiny();
        let sources = vec![vec![5u32, 6, 7, 2], vec![8, 2], vec![9, 10, 11, 12, 3, 2]];
        let opts = DecodeOptions::default();
        let greedy = generate(&m, &sources, &Strategy::Greedy, &opts).unwrap();
        assert_eq!(greedy, greedy_uncached(&m, &sources, &opts).unwrap());
        let beam1 = Strategy::Beam {
            size: 1,
            ranking: Ranking::LengthPenalty(1.0),
        };
        assert_eq!(generate(&m, &sources, &beam1, &opts).unwrap(), greedy);
        let sample = Strategy::Sample(SamplingOptions {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.9,
            seed: 3,
            ..SamplingOptions::default()
        });
        let a = generate(&m, &sources, &sample, &opts).unwrap();
        assert_eq!(a, generate(&m, &sources, &sample, &opts).unwrap());
        for (out, src) in a.iter().zip(&sources) {
            assert!(out.len() <= (1.5 * src.len() as f64) as usize + 10);
            assert!(out.iter().all(|&t| t != opts.eos && (t as usize) < 13));
        }
        let beam4 = Strategy::Beam {
            size: 4,
            ranking: Ranking::LengthPenalty(1.0),
        };
        assert_eq!(generate(&m, &sources, &beam4, &opts).unwrap().len(), 3);
        let e = generate(&m, &[vec![50]], &Strategy::Greedy, &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("50"), "{e}");
    }
}
