//! A Llama-family decoder (Llama 2/3, SmolLM, …) running straight from a GGUF file: RMSNorm,
//! rotary position embeddings, grouped-query attention with a KV cache, SwiGLU feed-forward,
//! and the output head (tied to the embedding when the file has no `output.weight`).
//!
//! Layer: llm. Inference only, on plain `f32` buffers: weights stay block-quantized in the
//! file's bytes and are multiplied by `ferrite_kernels::quant::quant_matmul`; activations are
//! `[tokens, width]` row-major. llama.cpp's converter permutes the rows of Q and K so that RoPE
//! rotates adjacent pairs `(x[2i], x[2i+1])` by `pos · base^(−2i/head_dim)`; that is what
//! `rope` does (GGUF `rope` mode 0).

use crate::gguf::{Gguf, TensorInfo};
use ferrite_core::{Error, Result};
use ferrite_kernels::quant::{dot, quant_matmul, quant_matmul_many, QuantKind, QuantMatrix};

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
        let dim = g.get_usize(&key("embedding_length"))?;
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
        let vocab = g.get_strings("tokenizer.ggml.tokens")?.len();
        Ok(LlamaConfig {
            layers: g.get_usize(&key("block_count"))?,
            dim,
            ffn: g.get_usize(&key("feed_forward_length"))?,
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
            context: g.get_usize(&key("context_length"))?,
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
    /// cos/sin of every (position, pair) up to the context length, `[context, head_dim/2]`.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
}

/// Keys and values of the positions processed so far, per layer: `[positions, kv_heads·head_dim]`.
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    /// Positions cached.
    pub len: usize,
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
        let half = c.head_dim / 2;
        let (mut rope_cos, mut rope_sin) = (
            Vec::with_capacity(c.context * half),
            Vec::with_capacity(c.context * half),
        );
        for pos in 0..c.context {
            for i in 0..half {
                let theta = pos as f64 * c.rope_base.powf(-2.0 * i as f64 / c.head_dim as f64);
                rope_cos.push(theta.cos() as f32);
                rope_sin.push(theta.sin() as f32);
            }
        }
        Ok(Llama {
            config: c,
            gguf,
            embedding,
            blocks,
            norm,
            output,
            rope_cos,
            rope_sin,
        })
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            keys: vec![Vec::new(); self.config.layers],
            values: vec![Vec::new(); self.config.layers],
            len: 0,
        }
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

    /// Logits of the last position after feeding `ids` (the positions after `cache.len`).
    ///
    /// # Errors
    /// No ids, an id outside the vocabulary, or more positions than the context length.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        self.forward_inner(ids, cache, None)
    }

    /// [`forward`](Self::forward) that also returns every layer's attention probabilities for
    /// the new positions: `maps[layer]` is `[heads, new tokens, cached + new tokens]` row-major
    /// (causal: zero past each query's own position). For explanations; the normal path never
    /// builds them.
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    pub fn forward_with_attention(&self, ids: &[u32], cache: &mut KvCache) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        let mut maps = Vec::with_capacity(self.config.layers);
        let logits = self.forward_inner(ids, cache, Some(&mut maps))?;
        Ok((logits, maps))
    }

    fn forward_inner(
        &self,
        ids: &[u32],
        cache: &mut KvCache,
        mut maps: Option<&mut Vec<Vec<f32>>>,
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let t = ids.len();
        if t == 0 {
            return Err(Error::Invalid {
                op: "Llama::forward",
                detail: "no tokens to process".into(),
            });
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab) {
            return Err(Error::Invalid {
                op: "Llama::forward",
                detail: format!("token id {bad} is outside the vocabulary of {}", c.vocab),
            });
        }
        if cache.len + t > c.context {
            return Err(Error::Invalid {
                op: "Llama::forward",
                detail: format!(
                    "{} cached + {t} new positions exceed the context length {}",
                    cache.len, c.context
                ),
            });
        }
        let d = c.dim;
        let emb = self.qm(&self.embedding);
        let mut x = vec![0.0f32; t * d];
        for (row, &id) in x.chunks_mut(d).zip(ids) {
            emb.dequantize_row(id as usize, row);
        }
        for (l, b) in self.blocks.iter().enumerate() {
            let h = rms_norm(&x, &b.attn_norm, c.eps);
            let [mut q, mut k, v] = self.linear_many([&b.q, &b.k, &b.v], &h, t);
            self.rope(&mut q, c.heads, cache.len);
            self.rope(&mut k, c.kv_heads, cache.len);
            cache.keys[l].extend_from_slice(&k);
            cache.values[l].extend_from_slice(&v);
            let mut weights = maps.as_ref().map(|_| vec![0.0f32; c.heads * t * (cache.len + t)]);
            let att = self.attend(
                &q,
                &cache.keys[l],
                &cache.values[l],
                cache.len,
                t,
                weights.as_deref_mut(),
            );
            if let (Some(m), Some(w)) = (maps.as_deref_mut(), weights) {
                m.push(w);
            }
            let o = self.linear(&b.o, &att, t);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let h = rms_norm(&x, &b.ffn_norm, c.eps);
            let [gate, up] = self.linear_many([&b.gate, &b.up], &h, t);
            let act: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(&g, &u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = self.linear(&b.down, &act, t);
            x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
        }
        cache.len += t;
        let last = rms_norm(&x[(t - 1) * d..], &self.norm, c.eps);
        Ok(self.linear(&self.output, &last, 1))
    }

    /// Rotates adjacent pairs of every head of `x` `[tokens, heads·head_dim]`, token i at
    /// position `start + i`.
    fn rope(&self, x: &mut [f32], heads: usize, start: usize) {
        let hd = self.config.head_dim;
        let half = hd / 2;
        for (i, row) in x.chunks_mut(heads * hd).enumerate() {
            let (cos, sin) = (
                &self.rope_cos[(start + i) * half..(start + i + 1) * half],
                &self.rope_sin[(start + i) * half..(start + i + 1) * half],
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

    /// Causal grouped-query attention of `t` new queries (positions `start..start+t`) over all
    /// cached keys/values `[start + t, kv_heads·head_dim]`.
    /// With `weights` (`[heads, t, start + t]`), the probabilities are stored there too.
    fn attend(
        &self,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        start: usize,
        t: usize,
        mut weights: Option<&mut [f32]>,
    ) -> Vec<f32> {
        let c = &self.config;
        let (hd, kvw) = (c.head_dim, c.kv_heads * c.head_dim);
        let group = c.heads / c.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut out = vec![0.0f32; t * c.dim];
        let mut scores = Vec::with_capacity(start + t);
        for i in 0..t {
            let visible = start + i + 1;
            for h in 0..c.heads {
                let kvh = h / group;
                let qh = &q[i * c.dim + h * hd..i * c.dim + (h + 1) * hd];
                scores.clear();
                scores
                    .extend((0..visible).map(|p| dot(qh, &keys[p * kvw + kvh * hd..p * kvw + (kvh + 1) * hd]) * scale));
                let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - m).exp();
                    sum += *s;
                }
                if let Some(w) = weights.as_deref_mut() {
                    let row = &mut w[(h * t + i) * (start + t)..][..visible];
                    row.iter_mut().zip(&scores).for_each(|(o, s)| *o = s / sum);
                }
                let o = &mut out[i * c.dim + h * hd..i * c.dim + (h + 1) * hd];
                for (p, &w) in scores.iter().enumerate() {
                    let v = &values[p * kvw + kvh * hd..p * kvw + (kvh + 1) * hd];
                    let w = w / sum;
                    o.iter_mut().zip(v).for_each(|(a, b)| *a += w * b);
                }
            }
        }
        out
    }
}

/// RMSNorm of each `weight.len()`-wide row: x / √(mean(x²) + eps) · weight.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let d = weight.len();
    let mut out = vec![0.0; x.len()];
    for (o, row) in out.chunks_mut(d).zip(x.chunks(d)) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let r = 1.0 / (ms + eps).sqrt();
        for ((o, &v), &w) in o.iter_mut().zip(row).zip(weight) {
            *o = v * r * w;
        }
    }
    out
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
