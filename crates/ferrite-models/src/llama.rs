//! A Llama-family decoder (Llama 2/3, SmolLM, …) running straight from a GGUF file: RMSNorm,
//! rotary position embeddings, grouped-query attention with a KV cache, SwiGLU feed-forward,
//! and the output head (tied to the embedding when the file has no `output.weight`).
//!
//! Layer: models. Inference only: weights stay block-quantized in the file's bytes and are
//! multiplied by `ferrite_kernels::quant::quant_matmul` (a quantized path behind the same
//! model, not a second model); activations are `[tokens, width]` row-major f32; RMSNorm is the
//! kernels' `rms_norm`; attention is the fused kernel (`Tensor::fused_attention`, query heads
//! sharing key/value heads) over `ferrite-nn`'s [`KvCache`]. Several rows decode at once (beam
//! search). llama.cpp's converter permutes the rows of Q and K so that RoPE rotates adjacent
//! pairs `(x[2i], x[2i+1])` by `pos · base^(−2i/head_dim)`; that is what `rope` does (GGUF
//! `rope` mode 0).

use crate::formats::gguf::{Gguf, TensorInfo};
use crate::generation::Decoder;
use ferrite_core::{Error, Result, Tensor};
use ferrite_kernels::quant::{quant_matmul, quant_matmul_many, QuantKind, QuantMatrix};
use ferrite_kernels::rows::rms_norm;
use ferrite_nn::KvCache;
use std::sync::RwLock;

/// Shapes and constants from the file's `llama.*` metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub layers: usize,
    pub dim: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_base: f64,
    pub eps: f32,
    pub vocab: usize,
    pub context: usize,
}

impl LlamaConfig {
    /// Reads `{arch}.block_count`, `.embedding_length`, … for the file's `general.architecture`.
    ///
    /// # Errors
    /// A missing key (named), or shapes that do not divide into heads.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.get("general.architecture")?.as_str().unwrap_or_default().to_string();
        if arch != "llama" {
            return Err(Error::file(
                &g.path,
                format!("architecture '{arch}' is not a Llama-family model ferrite runs (llama)"),
            ));
        }
        let key = |k: &str| format!("{arch}.{k}");
        // A model with no width, no layers, no feed-forward width, no context or no vocabulary cannot
        // generate a token; say so here rather than at the first request.
        let positive = |k: String| -> Result<usize> {
            match g.get_usize(&k)? {
                0 => Err(Error::file(
                    &g.path,
                    format!("{k} is 0; a Llama model needs at least 1"),
                )),
                n => Ok(n),
            }
        };
        let dim = positive(key("embedding_length"))?;
        let heads = g.get_usize(&key("attention.head_count"))?;
        let kv_heads = g
            .metadata
            .get(&key("attention.head_count_kv"))
            .and_then(|v| v.as_u64())
            .map_or(heads, |v| v as usize);
        if heads == 0 || kv_heads == 0 || dim % heads != 0 || heads % kv_heads != 0 {
            return Err(Error::file(
                &g.path,
                format!("{heads} heads / {kv_heads} KV heads do not divide the width {dim}"),
            ));
        }
        if (dim / heads) % 2 != 0 {
            return Err(Error::file(
                &g.path,
                format!("head width {dim}/{heads} is odd; rotary positions rotate pairs of values"),
            ));
        }
        // Rotary embeddings over part of each head (rope.dimension_count < head width) are a
        // different model; ferrite rotates whole heads, as Llama does.
        if let Some(rot) = g.metadata.get(&key("rope.dimension_count")).and_then(|v| v.as_u64())
            && rot != (dim / heads) as u64
        {
            return Err(Error::file(
                &g.path,
                format!(
                    "{} = {rot}, but heads are {} wide; ferrite rotates whole heads",
                    key("rope.dimension_count"),
                    dim / heads
                ),
            ));
        }
        let vocab = g.get_strings("tokenizer.ggml.tokens")?.len();
        if vocab == 0 {
            return Err(Error::file(&g.path, "tokenizer.ggml.tokens is empty"));
        }
        Ok(LlamaConfig {
            layers: positive(key("block_count"))?,
            dim,
            ffn: positive(key("feed_forward_length"))?,
            heads,
            kv_heads,
            head_dim: dim / heads,
            rope_base: g
                .metadata
                .get(&key("rope.freq_base"))
                .and_then(|v| v.as_f64())
                .unwrap_or(10_000.0),
            eps: g.get_f64(&key("attention.layer_norm_rms_epsilon"))? as f32,
            vocab,
            context: positive(key("context_length"))?,
        })
    }
}

/// A weight matrix: where its bytes are in the file and how they are stored.
#[derive(Clone, Copy, Debug)]
struct Mat {
    kind: QuantKind,
    start: usize,
    len: usize,
    rows: usize,
    cols: usize,
}

struct Block {
    attn_norm: Vec<f32>,
    q: Mat,
    k: Mat,
    v: Mat,
    o: Mat,
    ffn_norm: Vec<f32>,
    gate: Mat,
    up: Mat,
    down: Mat,
}

/// A loaded Llama-family model (it keeps the file's bytes).
pub struct Llama {
    pub config: LlamaConfig,
    gguf: Gguf,
    embedding: Mat,
    blocks: Vec<Block>,
    norm: Vec<f32>,
    output: Mat,
    /// cos/sin of (position, pair) for the positions used so far, grown on demand: a GGUF may
    /// declare a context of millions of positions, and a table for all of them up front would be
    /// gigabytes (or an abort, for a corrupted `context_length`).
    rope: RwLock<RopeTable>,
}

/// `cos`/`sin` `[positions, head_dim/2]` of the rotation angles `pos · base^(−2i/head_dim)`.
#[derive(Default)]
struct RopeTable {
    positions: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// Extends the table to `positions` rows.
    fn grow(&mut self, c: &LlamaConfig, positions: usize) {
        let half = c.head_dim / 2;
        for pos in self.positions..positions {
            for i in 0..half {
                let theta = pos as f64 * c.rope_base.powf(-2.0 * i as f64 / c.head_dim as f64);
                self.cos.push(theta.cos() as f32);
                self.sin.push(theta.sin() as f32);
            }
        }
        self.positions = self.positions.max(positions);
    }
}

impl Llama {
    /// Loads the model in a GGUF file.
    ///
    /// # Errors
    /// A file that is not a Llama-family GGUF, missing tensors or tensors of the wrong shape
    /// (named with both shapes).
    pub fn load(gguf: Gguf) -> Result<Self> {
        let c = LlamaConfig::from_gguf(&gguf)?;
        let kv = c.kv_heads * c.head_dim;
        let mat = |name: &str, rows: usize, cols: usize| -> Result<Mat> {
            let (info, _) = gguf.tensor(name)?;
            check_dims(&gguf, info, &[cols, rows])?;
            Ok(Mat {
                kind: info.dtype,
                start: info.start,
                len: info.len,
                rows,
                cols,
            })
        };
        let vector = |name: &str, n: usize| -> Result<Vec<f32>> {
            let (info, bytes) = gguf.tensor(name)?;
            check_dims(&gguf, info, &[n])?;
            let m = QuantMatrix {
                kind: info.dtype,
                data: bytes,
                rows: 1,
                cols: n,
            };
            let mut out = vec![0.0; n];
            m.dequantize_row(0, &mut out);
            Ok(out)
        };
        let blocks = (0..c.layers)
            .map(|i| {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                Ok(Block {
                    attn_norm: vector(&n("attn_norm"), c.dim)?,
                    q: mat(&n("attn_q"), c.dim, c.dim)?,
                    k: mat(&n("attn_k"), kv, c.dim)?,
                    v: mat(&n("attn_v"), kv, c.dim)?,
                    o: mat(&n("attn_output"), c.dim, c.dim)?,
                    ffn_norm: vector(&n("ffn_norm"), c.dim)?,
                    gate: mat(&n("ffn_gate"), c.ffn, c.dim)?,
                    up: mat(&n("ffn_up"), c.ffn, c.dim)?,
                    down: mat(&n("ffn_down"), c.dim, c.ffn)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let embedding = mat("token_embd.weight", c.vocab, c.dim)?;
        let output = if gguf.tensors.contains_key("output.weight") {
            mat("output.weight", c.vocab, c.dim)?
        } else {
            embedding
        };
        let norm = vector("output_norm.weight", c.dim)?;
        Ok(Llama {
            config: c,
            gguf,
            embedding,
            blocks,
            norm,
            output,
            rope: RwLock::new(RopeTable::default()),
        })
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.layers)
    }

    fn qm(&self, m: &Mat) -> QuantMatrix<'_> {
        QuantMatrix {
            kind: m.kind,
            data: self.gguf.bytes(m.start, m.len),
            rows: m.rows,
            cols: m.cols,
        }
    }

    /// `x [tokens, m.cols] → [tokens, m.rows]`.
    fn linear(&self, m: &Mat, x: &[f32], tokens: usize) -> Vec<f32> {
        let mut out = vec![0.0; tokens * m.rows];
        quant_matmul(&self.qm(m), x, tokens, &mut out);
        out
    }

    /// `x` through several matrices of the same width at once (one pass for Q/K/V).
    fn linear_many<const N: usize>(&self, ms: [&Mat; N], x: &[f32], tokens: usize) -> [Vec<f32>; N] {
        let mut outs: [Vec<f32>; N] = std::array::from_fn(|i| vec![0.0; tokens * ms[i].rows]);
        let ws: Vec<QuantMatrix> = ms.iter().map(|m| self.qm(m)).collect();
        let mut views: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        quant_matmul_many(&ws, x, tokens, &mut views);
        outs
    }

    /// Logits of the last position after feeding `ids` (one row, at the positions after
    /// `cache.len()`).
    ///
    /// # Errors
    /// No ids, an id outside the vocabulary, or more positions than the context length.
    ///
    /// # Shapes
    /// `ids` (t tokens) → logits of the last one, `[vocab]`.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        Ok(self.forward_inner(ids, 1, cache, None)?.swap_remove(0))
    }

    /// Logits of the last position of each of `rows` rows after feeding `ids`: `rows` rows of
    /// equal length, row-major (one token per row when decoding several hypotheses at once).
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and ids that do not split into `rows` equal rows.
    ///
    /// # Shapes
    /// `ids` (`rows × t` tokens, row-major) → `rows` logit vectors of `[vocab]`.
    pub fn forward_rows(&self, ids: &[u32], rows: usize, cache: &mut KvCache) -> Result<Vec<Vec<f32>>> {
        self.forward_inner(ids, rows, cache, None)
    }

    /// [`forward`](Self::forward) that also returns every layer's attention probabilities for
    /// the new positions: `maps[layer]` is `[heads, new tokens, cached + new tokens]` row-major
    /// (causal: zero past each query's own position). For explanations; the normal path never
    /// keeps them.
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    ///
    /// # Shapes
    /// `ids` (t tokens) → logits `[vocab]` and per layer `[heads, t, cached + t]`.
    pub fn forward_with_attention(&self, ids: &[u32], cache: &mut KvCache) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        let mut maps = Vec::with_capacity(self.config.layers);
        let logits = self.forward_inner(ids, 1, cache, Some(&mut maps))?.swap_remove(0);
        Ok((logits, maps))
    }

    /// Logits after one new token for each of several independent sequences, each with its own
    /// cache (continuous batching, as llama.cpp's server slots and vLLM do): the matrix products
    /// run once over every sequence's row; rotary positions and attention follow each sequence's
    /// own length.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and a token count other than the number of caches.
    ///
    /// # Shapes
    /// `tokens` (one per sequence) → one logit vector `[vocab]` per sequence.
    pub fn forward_sequences(&self, tokens: &[u32], caches: &mut [&mut KvCache]) -> Result<Vec<Vec<f32>>> {
        if tokens.len() != caches.len() {
            return Err(Error::Invalid {
                op: "Llama::forward_sequences",
                detail: format!("{} tokens for {} sequences", tokens.len(), caches.len()),
            });
        }
        let mut parts: Vec<Part> = caches
            .iter_mut()
            .map(|c| Part {
                cache: c,
                rows: 1,
                t: 1,
            })
            .collect();
        self.forward_parts(tokens, &mut parts, None)
    }

    fn forward_inner(
        &self,
        ids: &[u32],
        rows: usize,
        cache: &mut KvCache,
        maps: Option<&mut Vec<Vec<f32>>>,
    ) -> Result<Vec<Vec<f32>>> {
        if ids.is_empty() || rows == 0 || !ids.len().is_multiple_of(rows) {
            return Err(Error::Invalid {
                op: "Llama::forward",
                detail: format!("{} tokens do not make {rows} non-empty rows of one length", ids.len()),
            });
        }
        let t = ids.len() / rows;
        self.forward_parts(ids, &mut [Part { cache, rows, t }], maps)
    }

    /// The forward pass over `ids`: the tokens of every part in order, part by part row-major.
    /// `maps` (attention probabilities) is only kept for a single part.
    fn forward_parts(
        &self,
        ids: &[u32],
        parts: &mut [Part],
        mut maps: Option<&mut Vec<Vec<f32>>>,
    ) -> Result<Vec<Vec<f32>>> {
        const OP: &str = "Llama::forward";
        let c = &self.config;
        let total: usize = parts.iter().map(|p| p.rows * p.t).sum();
        if ids.is_empty() || total != ids.len() || parts.iter().any(|p| p.rows * p.t == 0) {
            return Err(Error::Invalid {
                op: OP,
                detail: format!("{} tokens do not fill the non-empty rows of the batch", ids.len()),
            });
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab) {
            return Err(Error::Invalid {
                op: OP,
                detail: format!("token id {bad} is outside the vocabulary of {}", c.vocab),
            });
        }
        let starts: Vec<usize> = parts.iter().map(|p| p.cache.len()).collect();
        for (p, &start) in parts.iter().zip(&starts) {
            if start + p.t > c.context {
                return Err(Error::Invalid {
                    op: OP,
                    detail: format!(
                        "{start} cached + {} new positions exceed the context length {}",
                        p.t, c.context
                    ),
                });
            }
        }
        let (d, hd, n) = (c.dim, c.head_dim, ids.len());
        let (qw, kw) = (c.heads * hd, c.kv_heads * hd);
        let emb = self.qm(&self.embedding);
        let mut x = vec![0.0f32; n * d];
        for (row, &id) in x.chunks_mut(d).zip(ids) {
            emb.dequantize_row(id as usize, row);
        }
        let scale = 1.0 / (hd as f64).sqrt();
        let eps = c.eps;
        let keep_maps = parts.len() == 1;
        for (l, b) in self.blocks.iter().enumerate() {
            let h = rms_norm(&x, Some(&b.attn_norm), d, eps);
            let [mut q, mut k, v] = self.linear_many([&b.q, &b.k, &b.v], &h, n);
            let mut att = Vec::with_capacity(n * qw);
            let mut at = 0;
            for (p, &start) in parts.iter_mut().zip(&starts) {
                let (rows, t) = (p.rows, p.t);
                let span = at..at + rows * t;
                self.rope(&mut q[span.start * qw..span.end * qw], c.heads, start, t);
                self.rope(&mut k[span.start * kw..span.end * kw], c.kv_heads, start, t);
                // (rows, t, heads, hd) buffers seen as (rows, heads, t, hd).
                let heads_view = |buf: &[f32], heads: usize| -> Result<Tensor> {
                    Tensor::from_vec(buf.to_vec(), [rows, t, heads, hd])?.permute(&[0, 2, 1, 3])
                };
                let (keys, values) = p.cache.append(
                    l,
                    &heads_view(&k[span.start * kw..span.end * kw], c.kv_heads)?,
                    &heads_view(&v[span.start * kw..span.end * kw], c.kv_heads)?,
                )?;
                let q = heads_view(&q[span.start * qw..span.end * qw], c.heads)?;
                let out = match maps.as_deref_mut() {
                    Some(m) if keep_maps => {
                        let (out, probs) = q.fused_attention_with_probs(&keys, &values, None, Some(start), scale)?;
                        m.push(probs.to_vec::<f32>()?);
                        out
                    }
                    _ => q.fused_attention(&keys, &values, None, Some(start), scale)?,
                };
                att.extend(out.permute(&[0, 2, 1, 3])?.to_vec::<f32>()?); // (rows, t, heads, hd)
                at = span.end;
            }
            let o = self.linear(&b.o, &att, n);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let h = rms_norm(&x, Some(&b.ffn_norm), d, eps);
            let [gate, up] = self.linear_many([&b.gate, &b.up], &h, n);
            let act: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(&g, &u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = self.linear(&b.down, &act, n);
            x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
        }
        // The last position of every row of every part.
        let mut last = Vec::new();
        let mut at = 0;
        for p in parts.iter() {
            for r in 0..p.rows {
                let end = at + (r + 1) * p.t;
                last.extend_from_slice(&x[(end - 1) * d..end * d]);
            }
            at += p.rows * p.t;
        }
        let rows = last.len() / d;
        let last = rms_norm(&last, Some(&self.norm), d, eps);
        let logits = self.linear(&self.output, &last, rows);
        Ok(logits.chunks(c.vocab).map(<[f32]>::to_vec).collect())
    }

    /// Rotates adjacent pairs of every head of `x` `[rows·t, heads·head_dim]`; token i of a row
    /// is at position `start + i`.
    fn rope(&self, x: &mut [f32], heads: usize, start: usize, t: usize) {
        let hd = self.config.head_dim;
        let half = hd / 2;
        let needed = start + t;
        // A poisoned lock only means another thread panicked mid-grow; the rows it finished are
        // whole (`positions` is updated last), so the table is still usable.
        if self.rope.read().unwrap_or_else(|e| e.into_inner()).positions < needed {
            let mut table = self.rope.write().unwrap_or_else(|e| e.into_inner());
            // Doubling keeps growth amortized; never past the context (forward checks `needed`).
            let target = needed.next_power_of_two().max(256).min(self.config.context.max(needed));
            table.grow(&self.config, target);
        }
        let table = self.rope.read().unwrap_or_else(|e| e.into_inner());
        for (i, row) in x.chunks_mut(heads * hd).enumerate() {
            let pos = start + i % t;
            let (cos, sin) = (
                &table.cos[pos * half..(pos + 1) * half],
                &table.sin[pos * half..(pos + 1) * half],
            );
            for head in row.chunks_mut(hd) {
                for p in 0..half {
                    let (a, b) = (head[2 * p], head[2 * p + 1]);
                    head[2 * p] = a * cos[p] - b * sin[p];
                    head[2 * p + 1] = a * sin[p] + b * cos[p];
                }
            }
        }
    }
}

/// One share of a forward pass: `rows` rows of `t` new tokens each, on `cache`.
struct Part<'c> {
    cache: &'c mut KvCache,
    rows: usize,
    t: usize,
}

/// A [`Llama`] decoding rows of tokens through the shared generation module.
pub struct LlamaDecoder<'a> {
    model: &'a Llama,
    cache: KvCache,
}

impl<'a> LlamaDecoder<'a> {
    /// A decoder with an empty cache.
    pub fn new(model: &'a Llama) -> Self {
        LlamaDecoder {
            model,
            cache: model.new_cache(),
        }
    }

    /// Feeds a prompt (one row) and returns the logits of the token after it.
    ///
    /// # Errors
    /// As [`Llama::forward`].
    pub fn prime(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        self.model.forward(prompt, &mut self.cache)
    }

    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

impl Decoder for LlamaDecoder<'_> {
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.model.forward_rows(tokens, tokens.len(), &mut self.cache)
    }

    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        self.cache.reorder(rows)
    }
}

fn check_dims(g: &Gguf, info: &TensorInfo, want: &[usize]) -> Result<()> {
    if info.dims != want {
        return Err(Error::file(
            &g.path,
            format!("tensor '{}' is {:?}, the config needs {want:?}", info.name, info.dims),
        ));
    }
    Ok(())
}
