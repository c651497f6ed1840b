//! Whisper speech recognition (Radford et al. 2022) from a CTranslate2 model directory
//! (`model.bin`, `config.json`, `tokenizer.json`): log-mel features → a convolutional front end
//! and Transformer encoder → a decoder with cross-attention on a KV cache, greedy decoding or beam
//! search (mean log-probability ranking, as openai/whisper) from the `<|startoftranscript|>`
//! prompt, audio longer than 30 s in consecutive windows.
//!
//! Layer: models, built from `ferrite-nn` blocks: the encoder and decoder layers are nn's pre-LN
//! `EncoderLayer` / `DecoderLayer` (GELU feed-forward), their projections nn `Linear`s, the norms
//! nn `LayerNorm`s, the cache nn's `KvCache`; decoding is the shared generation module. Inference
//! without gradient recording. CTranslate2's names: fused QKV projections
//! (`self_attention/linear_0`, `[3·d, d]`, split into q, k, v views), cross-attention query
//! `attention/linear_0` and fused key/value `attention/linear_1` (`[2·d, d]`); the output
//! projection is tied to the token embedding (an alias).

use crate::formats::ct2::Ct2Model;
use crate::formats::wav::{read_wav, resample, Audio};
use crate::generation::{generate, Decoder, Ranking, Start, Strategy};
use crate::whisper_mel::{log_mel, HOP, N_MELS, SAMPLE_RATE};
use ferrite_core::{no_grad, Conv1dOptions, Error, Result, Tensor};
use ferrite_nn::transformer::{
    causal_mask, DecoderLayer, DecoderMasks, EncoderLayer, FeedForward, MultiHeadAttention, NeedWeights,
    TransformerLayerConfig,
};
use ferrite_nn::{Activation, KvCache, LayerNorm, Linear, Module};
use serde::Serialize;
use std::path::Path;
use tokenizers::Tokenizer;

/// Frames in one 30-second window.
const WINDOW_FRAMES: usize = 3000;
/// Tokens decoded per window at most (openai/whisper's `sample_len`).
const MAX_TOKENS: usize = 224;

/// A CTranslate2 layer norm (`gamma`, `beta`) as an nn `LayerNorm`.
fn norm(m: &Ct2Model, prefix: &str) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: m.tensor(&format!("{prefix}/gamma"))?,
        bias: m.tensor(&format!("{prefix}/beta"))?,
        eps: 1e-5,
    })
}

/// A CTranslate2 linear layer (`weight` `[out, in]`, optional `bias`), split by rows into
/// `parts` equal linears (views, no copy): fused QKV → q, k, v.
fn linears(m: &Ct2Model, prefix: &str, parts: usize) -> Result<Vec<Linear>> {
    let w = m.tensor(&format!("{prefix}/weight"))?;
    let b = m.tensor(&format!("{prefix}/bias")).ok();
    let rows = w.shape()[0];
    if w.ndim() != 2 || rows % parts != 0 {
        return Err(Error::file(
            &m.path,
            format!(
                "{prefix}/weight is {:?}: not {parts} stacked [d, d] projections",
                w.shape()
            ),
        ));
    }
    let n = rows / parts;
    (0..parts)
        .map(|i| {
            let bias = b.as_ref().map(|b| b.narrow(0, i * n, n)).transpose()?;
            Linear::from_parts(w.narrow(0, i * n, n)?, bias)
        })
        .collect()
}

fn linear(m: &Ct2Model, prefix: &str) -> Result<Linear> {
    Ok(linears(m, prefix, 1)?.remove(0))
}

fn feed_forward(m: &Ct2Model, prefix: &str) -> Result<FeedForward> {
    FeedForward::from_parts(
        linear(m, &format!("{prefix}/linear_0"))?,
        linear(m, &format!("{prefix}/linear_1"))?,
        Activation::Gelu,
        0.0,
    )
}

/// Attention probabilities of every layer over one 30-second window: encoder self-attention over
/// audio frames, decoder self-attention (causal) over tokens, and cross-attention from tokens to
/// frames. Each layer is `[1, heads, queries, keys]`, frames cut to the ones that hold the audio
/// (20 ms each), so rows over frames sum to less than 1 by the weight that went to the silence
/// padding.
pub struct WhisperAttention {
    pub transcript: Transcript,
    /// The decoder's input: `<|startoftranscript|>`, `<|notimestamps|>`, then the transcript.
    pub tokens: Vec<u32>,
    /// Encoder positions kept (20 ms of audio each).
    pub frames: usize,
    pub heads: usize,
    pub encoder: Vec<Tensor>,
    pub decoder: Vec<Tensor>,
    pub cross: Vec<Tensor>,
}

/// A transcription and how it was made.
#[derive(Clone, Debug, Serialize)]
pub struct Transcript {
    pub text: String,
    /// Generated token ids per 30-second window.
    pub ids: Vec<Vec<u32>>,
    pub audio_seconds: f64,
    pub seconds: f64,
    /// Audio seconds per wall second.
    pub realtime_factor: f64,
}

/// A Whisper model and its tokenizer.
pub struct Whisper {
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    /// `[1500, d]` sinusoidal positions of the encoder.
    enc_pos: Tensor,
    encoder: Vec<EncoderLayer>,
    enc_norm: LayerNorm,
    /// `[vocab, d]` token embedding, also the output projection.
    embed: Tensor,
    /// `[448, d]` learned positions of the decoder.
    dec_pos: Tensor,
    decoder: Vec<DecoderLayer>,
    dec_norm: LayerNorm,
    heads: usize,
    pub tokenizer: Tokenizer,
    /// Token ids never generated (config.json `suppress_ids`), and at the first step
    /// (`suppress_ids_begin`).
    suppress: Vec<u32>,
    suppress_begin: Vec<u32>,
    sot: u32,
    no_timestamps: u32,
    eot: u32,
}

/// Log-mel features `[80, frames]` (row-major) of the samples plus 30 s of silence, as Whisper
/// computes them, so the last window is full and the clamping sees the same maximum.
fn padded_mel(samples: &[f32]) -> (Vec<f32>, usize) {
    let mut padded = samples.to_vec();
    padded.extend(std::iter::repeat_n(0.0, SAMPLE_RATE * 30));
    let mel = log_mel(&padded);
    let frames = mel.len() / N_MELS;
    (mel, frames)
}

/// The `[80, 3000]` window of `mel` (`[80, frames]`) that starts at frame `start`.
fn window_of(mel: &[f32], frames: usize, start: usize) -> Result<Tensor> {
    let window: Vec<f32> = (0..N_MELS)
        .flat_map(|m| {
            mel[m * frames + start..m * frames + start + WINDOW_FRAMES]
                .iter()
                .copied()
        })
        .collect();
    Tensor::from_vec(window, [N_MELS, WINDOW_FRAMES])
}

impl Whisper {
    /// Loads a CTranslate2 Whisper directory.
    ///
    /// # Errors
    /// Missing files or variables (named), a model that is not Whisper.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let m = Ct2Model::open(dir.join("model.bin"))?;
        if m.spec != "WhisperSpec" {
            return Err(Error::file(&m.path, format!("spec '{}' is not WhisperSpec", m.spec)));
        }
        let count = |prefix: &str| {
            (0..)
                .take_while(|i| {
                    m.variables
                        .keys()
                        .any(|k| k.starts_with(&format!("{prefix}/layer_{i}/")))
                })
                .count()
        };
        let heads = usize::try_from(m.scalar("encoder/num_heads")?)
            .ok()
            .filter(|&h| h > 0)
            .ok_or_else(|| Error::file(&m.path, "encoder/num_heads must be a positive count"))?;
        let embed = m.tensor("decoder/embeddings/weight")?;
        let d = embed.shape().get(1).copied().unwrap_or(0);
        if d == 0 || d % heads != 0 {
            return Err(Error::file(
                &m.path,
                format!("{heads} heads do not divide the width {d}"),
            ));
        }
        let attention = |prefix: &str, qkv: Vec<Linear>, out: Linear| -> Result<MultiHeadAttention> {
            let [q, k, v]: [Linear; 3] = qkv
                .try_into()
                .map_err(|_| Error::file(&m.path, format!("{prefix}: expected q, k, v projections")))?;
            MultiHeadAttention::from_linears(q, k, v, out, heads, 0.0)
                .map_err(|e| Error::file(&m.path, format!("{prefix}: {e}")))
        };
        let config = |ff: &FeedForward| TransformerLayerConfig {
            d_model: d,
            heads,
            ffn: ff.hidden(),
            dropout: 0.0,
            activation: Activation::Gelu,
            norm_first: true,
            eps: 1e-5,
        };
        let encoder = (0..count("encoder"))
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                let sa = format!("{p}/self_attention");
                let attn = attention(
                    &sa,
                    linears(&m, &format!("{sa}/linear_0"), 3)?,
                    linear(&m, &format!("{sa}/linear_1"))?,
                )?;
                let ff = feed_forward(&m, &format!("{p}/ffn"))?;
                let c = config(&ff);
                Ok(EncoderLayer::from_parts(
                    attn,
                    ff,
                    norm(&m, &format!("{sa}/layer_norm"))?,
                    norm(&m, &format!("{p}/ffn/layer_norm"))?,
                    &c,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..count("decoder"))
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                let (sa, ca) = (format!("{p}/self_attention"), format!("{p}/attention"));
                let self_attn = attention(
                    &sa,
                    linears(&m, &format!("{sa}/linear_0"), 3)?,
                    linear(&m, &format!("{sa}/linear_1"))?,
                )?;
                let mut qkv = linears(&m, &format!("{ca}/linear_0"), 1)?;
                qkv.extend(linears(&m, &format!("{ca}/linear_1"), 2)?);
                let cross_attn = attention(&ca, qkv, linear(&m, &format!("{ca}/linear_2"))?)?;
                let ff = feed_forward(&m, &format!("{p}/ffn"))?;
                let c = config(&ff);
                Ok(DecoderLayer::from_parts(
                    self_attn,
                    cross_attn,
                    ff,
                    norm(&m, &format!("{sa}/layer_norm"))?,
                    norm(&m, &format!("{ca}/layer_norm"))?,
                    norm(&m, &format!("{p}/ffn/layer_norm"))?,
                    &c,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| Error::file(&tok_path, format!("cannot load the tokenizer: {e}")))?;
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| Error::file(&tok_path, format!("token {t} is missing")))
        };
        let cfg_path = dir.join("config.json");
        let cfg: serde_json::Value = std::fs::read_to_string(&cfg_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let ids = |k: &str| -> Vec<u32> {
            cfg[k].as_array().map_or(Vec::new(), |a| {
                a.iter().filter_map(|v| v.as_u64().map(|v| v as u32)).collect()
            })
        };
        Ok(Whisper {
            conv1: (m.tensor("encoder/conv1/weight")?, m.tensor("encoder/conv1/bias")?),
            conv2: (m.tensor("encoder/conv2/weight")?, m.tensor("encoder/conv2/bias")?),
            enc_pos: m.tensor("encoder/position_encodings/encodings")?,
            enc_norm: norm(&m, "encoder/layer_norm")?,
            encoder,
            embed,
            dec_pos: m.tensor("decoder/position_encodings/encodings")?,
            dec_norm: norm(&m, "decoder/layer_norm")?,
            decoder,
            heads,
            suppress: ids("suppress_ids"),
            suppress_begin: ids("suppress_ids_begin"),
            sot: id("<|startoftranscript|>")?,
            no_timestamps: id("<|notimestamps|>")?,
            eot: id("<|endoftext|>")?,
            tokenizer,
        })
    }

    /// Encoder states of one window of log-mel features; `probs` collects each layer's attention
    /// probabilities `[1, heads, 1500, 1500]`.
    ///
    /// # Shapes
    /// `mel` `[80, 3000]` → `[1, 1500, d]`.
    fn encode(&self, mel: &Tensor, mut probs: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
        let o = |stride| Conv1dOptions {
            stride,
            padding: 1,
            ..Conv1dOptions::default()
        };
        let x = mel.unsqueeze(0)?;
        let x = x.conv1d(&self.conv1.0, Some(&self.conv1.1), o(1))?.gelu(false)?;
        let x = x.conv1d(&self.conv2.0, Some(&self.conv2.1), o(2))?.gelu(false)?;
        let x = x.transpose(1, 2)?; // (1, 1500, d)
        let mut x = x.add(&self.enc_pos.narrow(0, 0, x.shape()[1])?)?;
        for l in &self.encoder {
            x = match probs.as_deref_mut() {
                None => l.forward(&x, None, None, false)?,
                Some(sink) => {
                    let (y, w) = l.forward_weights(&x, None, None, NeedWeights::PerHead, false)?;
                    sink.extend(w);
                    y
                }
            };
        }
        self.enc_norm.forward(&x, false)
    }

    /// Token embeddings plus the positions from `offset`: `ids` `[B, T]` → `[B, T, d]`.
    fn embed(&self, ids: &Tensor, offset: usize) -> Result<Tensor> {
        let t = ids.shape()[1];
        let positions = self.dec_pos.shape()[0];
        if offset + t > positions {
            return Err(Error::Invalid {
                op: "whisper",
                detail: format!("the decoder holds {positions} positions, asked for {}", offset + t),
            });
        }
        self.embed.embedding(ids)?.add(&self.dec_pos.narrow(0, offset, t)?)
    }

    /// Logits of the last position of each row: `x` `[B, T, d]` → B rows of vocabulary size.
    fn logits(&self, x: &Tensor) -> Result<Vec<Vec<f32>>> {
        let t = x.shape()[1];
        let last = self.dec_norm.forward(&x.narrow(1, t - 1, 1)?, false)?;
        let logits = last.matmul(&self.embed.t()?)?; // (B, 1, vocab)
        let v = self.embed.shape()[0];
        Ok(logits.to_vec::<f32>()?.chunks(v).map(<[f32]>::to_vec).collect())
    }

    /// Masks tokens Whisper never emits here: `suppress_ids`, `suppress_ids_begin` at the first
    /// step, and every special or timestamp token after `<|notimestamps|>`.
    fn suppress(&self, logits: &mut [f32], first: bool) {
        let begin: &[u32] = if first { &self.suppress_begin } else { &[] };
        for &s in self.suppress.iter().chain(begin) {
            if let Some(v) = logits.get_mut(s as usize) {
                *v = f32::NEG_INFINITY;
            }
        }
        for v in logits.iter_mut().skip(self.no_timestamps as usize + 1) {
            *v = f32::NEG_INFINITY;
        }
    }

    /// Decodes one window's encoder states `[1, 1500, d]` with `strategy`.
    fn decode_window(&self, memory: &Tensor, strategy: &Strategy) -> Result<Vec<u32>> {
        let mut decoder = WhisperDecoder::new(self, memory)?;
        let prompt = [self.sot, self.no_timestamps];
        let logits = decoder.prime(&prompt)?;
        let start = Start {
            logits: vec![logits],
            history: Vec::new(),
            max_tokens: vec![MAX_TOKENS.min(self.dec_pos.shape()[0] - prompt.len())],
        };
        Ok(generate(&mut decoder, start, strategy, &[self.eot], &mut |_, _| {})?
            .swap_remove(0)
            .tokens)
    }

    /// Greedy decoding for `beam <= 1`, else beam search ranked by mean log-probability
    /// (openai/whisper's ranking without a length penalty).
    fn strategy(beam: usize) -> Strategy {
        if beam <= 1 {
            Strategy::Greedy
        } else {
            Strategy::Beam {
                size: beam,
                ranking: Ranking::MeanLogProb,
            }
        }
    }

    /// Transcribes 16 kHz samples: 30-second windows, each decoded greedily (`beam <= 1`) or by
    /// beam search.
    ///
    /// # Errors
    /// Model failures.
    pub fn transcribe_samples(&self, samples: &[f32], beam: usize) -> Result<Transcript> {
        let started = std::time::Instant::now();
        let _g = no_grad();
        let (mel, frames) = padded_mel(samples);
        let content = samples.len() / HOP;
        let strategy = Self::strategy(beam);
        let mut ids = Vec::new();
        let mut start = 0;
        while start < content.max(1) {
            let memory = self.encode(&window_of(&mel, frames, start)?, None)?;
            ids.push(self.decode_window(&memory, &strategy)?);
            start += WINDOW_FRAMES;
        }
        self.transcript(ids, samples.len(), started)
    }

    /// The transcript of per-window token ids for `samples` samples, timed from `started`.
    fn transcript(&self, ids: Vec<Vec<u32>>, samples: usize, started: std::time::Instant) -> Result<Transcript> {
        let texts = ids
            .iter()
            .map(|out| {
                let text = self.tokenizer.decode(out, true).map_err(|e| Error::Invalid {
                    op: "whisper",
                    detail: format!("cannot decode tokens: {e}"),
                })?;
                Ok(text.trim().to_string())
            })
            .collect::<Result<Vec<_>>>()?;
        let seconds = started.elapsed().as_secs_f64();
        let audio_seconds = samples as f64 / SAMPLE_RATE as f64;
        Ok(Transcript {
            text: texts.join(" ").trim().to_string(),
            ids,
            audio_seconds,
            seconds,
            realtime_factor: audio_seconds / seconds.max(1e-9),
        })
    }

    /// Transcribes the first 30-second window of 16 kHz `samples` greedily (the encoder run once,
    /// capturing its attention), then runs the decoder once more over its own transcript with
    /// every attention captured (see [`WhisperAttention`]).
    ///
    /// # Errors
    /// Model failures.
    pub fn attention_maps(&self, samples: &[f32]) -> Result<WhisperAttention> {
        let started = std::time::Instant::now();
        let _g = no_grad();
        let first = &samples[..samples.len().min(SAMPLE_RATE * 30)];
        let (mel, frames) = padded_mel(first);
        let mut encoder = Vec::new();
        let memory = self.encode(&window_of(&mel, frames, 0)?, Some(&mut encoder))?;
        let out = self.decode_window(&memory, &Strategy::Greedy)?;
        let mut tokens = vec![self.sot, self.no_timestamps];
        tokens.extend_from_slice(&out);
        let transcript = self.transcript(vec![out], first.len(), started)?;
        // The whole transcript in one uncached pass, every attention kept.
        let ids = Tensor::from_vec(
            tokens.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(),
            [1, tokens.len()],
        )?;
        let causal = causal_mask(tokens.len(), tokens.len())?;
        let masks = DecoderMasks {
            tgt_mask: Some(&causal),
            ..DecoderMasks::default()
        };
        let (mut decoder, mut cross) = (Vec::new(), Vec::new());
        let mut x = self.embed(&ids, 0)?;
        for l in &self.decoder {
            let (y, sw, cw) = l.forward_weights(&x, &memory, masks, NeedWeights::PerHead, false)?;
            decoder.extend(sw);
            cross.extend(cw);
            x = y;
        }
        // An encoder position is two mel frames (20 ms): keep the ones that hold audio.
        let kept = (first.len() / HOP).div_ceil(2).clamp(1, WINDOW_FRAMES / 2);
        let cut = |t: Tensor, axes: &[isize]| -> Result<Tensor> {
            axes.iter().try_fold(t, |t, &a| t.narrow(a, 0, kept))?.contiguous()
        };
        Ok(WhisperAttention {
            encoder: encoder.into_iter().map(|t| cut(t, &[2, 3])).collect::<Result<_>>()?,
            decoder,
            cross: cross.into_iter().map(|t| cut(t, &[3])).collect::<Result<_>>()?,
            transcript,
            tokens,
            frames: kept,
            heads: self.heads,
        })
    }

    /// Transcribes a 16-bit PCM WAV file (any rate; resampled to 16 kHz).
    ///
    /// # Errors
    /// Unreadable or unsupported audio (named), model failures.
    pub fn transcribe_file(&self, wav: impl AsRef<Path>, beam: usize) -> Result<Transcript> {
        self.transcribe_audio(&read_wav(wav)?, beam)
    }

    /// Transcribes audio read by [`read_wav`] (any rate; resampled to 16 kHz).
    ///
    /// # Errors
    /// Model failures.
    pub fn transcribe_audio(&self, audio: &Audio, beam: usize) -> Result<Transcript> {
        let samples = resample(&audio.samples, audio.rate, SAMPLE_RATE);
        self.transcribe_samples(&samples, beam)
    }
}

/// Whisper's decoder over a batch of rows (beams of one window), on a KV cache whose
/// cross-attention keys come from the window's encoder states.
struct WhisperDecoder<'a> {
    model: &'a Whisper,
    cache: KvCache,
}

impl<'a> WhisperDecoder<'a> {
    fn new(model: &'a Whisper, memory: &Tensor) -> Result<Self> {
        let mut cache = KvCache::new(model.decoder.len());
        for (i, l) in model.decoder.iter().enumerate() {
            l.start_cache(memory, &mut cache, i)?;
        }
        Ok(WhisperDecoder { model, cache })
    }

    /// Runs `ids` `[B, T]` after the cached positions; the last position's logits per row.
    fn run(&mut self, ids: Tensor) -> Result<Vec<Vec<f32>>> {
        let mut x = self.model.embed(&ids, self.cache.len())?;
        for (i, l) in self.model.decoder.iter().enumerate() {
            x = l.forward_cached(&x, &mut self.cache, i, None)?;
        }
        self.model.logits(&x)
    }

    /// Feeds the prompt (one row) and returns the first token's logits, suppressed as at the
    /// first step.
    fn prime(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        let ids = Tensor::from_vec(
            prompt.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(),
            [1, prompt.len()],
        )?;
        let mut logits = self.run(ids)?.swap_remove(0);
        self.model.suppress(&mut logits, true);
        Ok(logits)
    }
}

impl Decoder for WhisperDecoder<'_> {
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let ids = Tensor::from_vec(
            tokens.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(),
            [tokens.len(), 1],
        )?;
        let mut rows = self.run(ids)?;
        for l in &mut rows {
            self.model.suppress(l, false);
        }
        Ok(rows)
    }

    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        self.cache.reorder(rows)
    }
}
