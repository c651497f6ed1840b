//! Whisper speech recognition (Radford et al. 2022) from a CTranslate2 model directory
//! (`model.bin`, `config.json`, `tokenizer.json`): log-mel features → a convolutional front end
//! and Transformer encoder → a decoder with cross-attention and a KV cache, greedy decoding
//! from the `<|startoftranscript|>` prompt, audio longer than 30 s in consecutive windows.
//!
//! Layer: llm. Inference on `ferrite_core` tensors without gradient recording. CTranslate2's
//! names: fused QKV projections (`self_attention/linear_0`, `[3·d, d]`), cross-attention query
//! `attention/linear_0` and fused key/value `attention/linear_1` (`[2·d, d]`), pre-LN layers,
//! GELU feed-forward; the output projection is tied to the token embedding (an alias).

use crate::audio::{log_mel, read_wav, resample, HOP, N_MELS, SAMPLE_RATE};
use crate::ct2::Ct2Model;
use ferrite_core::{no_grad, Conv1dOptions, Error, Result, Tensor};
use serde::Serialize;
use std::path::Path;
use tokenizers::Tokenizer;

/// Frames in one 30-second window.
const WINDOW_FRAMES: usize = 3000;

struct Norm {
    gamma: Tensor,
    beta: Tensor,
}

impl Norm {
    fn load(m: &Ct2Model, prefix: &str) -> Result<Self> {
        Ok(Norm {
            gamma: m.tensor(&format!("{prefix}/gamma"))?,
            beta: m.tensor(&format!("{prefix}/beta"))?,
        })
    }
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(self.gamma.shape(), Some(&self.gamma), Some(&self.beta), 1e-5)
    }
}

struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn load(m: &Ct2Model, prefix: &str) -> Result<Self> {
        let b = m.tensor(&format!("{prefix}/bias")).ok();
        Ok(Linear {
            w: m.tensor(&format!("{prefix}/weight"))?,
            b,
        })
    }
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.linear(&self.w, self.b.as_ref())
    }
}

struct Ffn {
    norm: Norm,
    up: Linear,
    down: Linear,
}

impl Ffn {
    fn load(m: &Ct2Model, prefix: &str) -> Result<Self> {
        Ok(Ffn {
            norm: Norm::load(m, &format!("{prefix}/layer_norm"))?,
            up: Linear::load(m, &format!("{prefix}/linear_0"))?,
            down: Linear::load(m, &format!("{prefix}/linear_1"))?,
        })
    }
    /// x + FFN(LN(x))
    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        x.add(&self.down.apply(&self.up.apply(&self.norm.apply(x)?)?.gelu(false)?)?)
    }
}

struct EncoderLayer {
    norm: Norm,
    qkv: Linear,
    out: Linear,
    ffn: Ffn,
}

struct DecoderLayer {
    self_norm: Norm,
    self_qkv: Linear,
    self_out: Linear,
    cross_norm: Norm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    ffn: Ffn,
}

/// A Whisper model and its tokenizer.
pub struct Whisper {
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    enc_pos: Tensor,
    encoder: Vec<EncoderLayer>,
    enc_norm: Norm,
    embed: Tensor,
    dec_pos: Tensor,
    decoder: Vec<DecoderLayer>,
    dec_norm: Norm,
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

/// Splits `[T, H·dh]` into `[H, T, dh]`.
fn heads_of(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (t, d) = (x.shape()[0], x.shape()[1]);
    x.reshape([t, heads, d / heads])?.transpose(0, 1)?.contiguous()
}

/// Scaled dot-product attention of `q` `[Tq, d]` over `k`, `v` `[Tk, d]`; with `causal_from`,
/// query i (at absolute position `causal_from + i`) sees keys up to that position. Fused (see
/// `Tensor::fused_attention`): the encoder's 6 × 1,500 × 1,500 scores never exist at once —
/// unless `probs` asks for the probabilities `[heads, Tq, Tk]` (for `attention_maps`), which
/// then takes the unfused path.
fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal_from: Option<usize>,
    probs: Option<&mut Vec<Tensor>>,
) -> Result<Tensor> {
    let (tq, d) = (q.shape()[0], q.shape()[1]);
    let tk = k.shape()[0];
    let (qh, kh, vh) = (heads_of(q, heads)?, heads_of(k, heads)?, heads_of(v, heads)?);
    let scale = 1.0 / ((d / heads) as f64).sqrt();
    let out = match probs {
        None => qh.fused_attention(&kh, &vh, None, causal_from, scale)?,
        Some(sink) => {
            let mut scores = qh.matmul(&kh.transpose(1, 2)?)?.mul_scalar(scale)?;
            if let Some(start) = causal_from {
                let mask: Vec<f32> = (0..tq)
                    .flat_map(|i| (0..tk).map(move |j| if j > start + i { f32::NEG_INFINITY } else { 0.0 }))
                    .collect();
                scores = scores.add(&Tensor::from_vec(mask, [1, tq, tk])?)?;
            }
            let p = scores.softmax(-1)?;
            let out = p.matmul(&vh)?;
            sink.push(p);
            out
        }
    };
    out.transpose(0, 1)?.contiguous()?.reshape([tq, d])
}

/// Attention probabilities collected while running the model (for `attention_maps`).
#[derive(Default)]
struct Capture {
    encoder: Vec<Tensor>,
    decoder: Vec<Tensor>,
    cross: Vec<Tensor>,
}

/// Every layer's attention over one 30-second window: encoder self-attention over audio frames,
/// decoder self-attention (causal) over tokens, and cross-attention from tokens to frames. Each
/// layer is `[heads, queries, keys]`, frames cut to the ones that hold the audio (20 ms each), so
/// rows over frames sum to less than 1 by the weight that went to the silence padding.
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

fn argmax(v: &[f32]) -> u32 {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0) as u32
}

fn log_softmax(v: &[f32]) -> Vec<f64> {
    let m = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = v.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln() + m;
    v.iter().map(|&x| x as f64 - lse).collect()
}

/// Per decoder layer: self-attention keys/values so far and the cross-attention keys/values.
#[derive(Clone)]
struct DecoderCache {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Vec<(Tensor, Tensor)>,
    len: usize,
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
        let encoder = (0..count("encoder"))
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncoderLayer {
                    norm: Norm::load(&m, &format!("{p}/self_attention/layer_norm"))?,
                    qkv: Linear::load(&m, &format!("{p}/self_attention/linear_0"))?,
                    out: Linear::load(&m, &format!("{p}/self_attention/linear_1"))?,
                    ffn: Ffn::load(&m, &format!("{p}/ffn"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..count("decoder"))
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(DecoderLayer {
                    self_norm: Norm::load(&m, &format!("{p}/self_attention/layer_norm"))?,
                    self_qkv: Linear::load(&m, &format!("{p}/self_attention/linear_0"))?,
                    self_out: Linear::load(&m, &format!("{p}/self_attention/linear_1"))?,
                    cross_norm: Norm::load(&m, &format!("{p}/attention/layer_norm"))?,
                    cross_q: Linear::load(&m, &format!("{p}/attention/linear_0"))?,
                    cross_kv: Linear::load(&m, &format!("{p}/attention/linear_1"))?,
                    cross_out: Linear::load(&m, &format!("{p}/attention/linear_2"))?,
                    ffn: Ffn::load(&m, &format!("{p}/ffn"))?,
                })
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
            enc_norm: Norm::load(&m, "encoder/layer_norm")?,
            encoder,
            embed: m.tensor("decoder/embeddings/weight")?,
            dec_pos: m.tensor("decoder/position_encodings/encodings")?,
            dec_norm: Norm::load(&m, "decoder/layer_norm")?,
            decoder,
            heads: m.scalar("encoder/num_heads")? as usize,
            suppress: ids("suppress_ids"),
            suppress_begin: ids("suppress_ids_begin"),
            sot: id("<|startoftranscript|>")?,
            no_timestamps: id("<|notimestamps|>")?,
            eot: id("<|endoftext|>")?,
            tokenizer,
        })
    }

    /// Encoder states `[1500, d]` of one window of log-mel features `[80, 3000]`; `probs`
    /// collects each layer's attention probabilities.
    fn encode(&self, mel: &Tensor, mut probs: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
        let o = |stride| Conv1dOptions {
            stride,
            padding: 1,
            ..Conv1dOptions::default()
        };
        let x = mel.unsqueeze(0)?;
        let x = x.conv1d(&self.conv1.0, Some(&self.conv1.1), o(1))?.gelu(false)?;
        let x = x.conv1d(&self.conv2.0, Some(&self.conv2.1), o(2))?.gelu(false)?;
        let x = x.squeeze(0)?.t()?; // [1500, d]
        let mut x = x.add(&self.enc_pos.narrow(0, 0, x.shape()[0])?)?;
        let d = x.shape()[1];
        for l in &self.encoder {
            let qkv = l.qkv.apply(&l.norm.apply(&x)?)?;
            let (q, k, v) = (qkv.narrow(1, 0, d)?, qkv.narrow(1, d, d)?, qkv.narrow(1, 2 * d, d)?);
            x = x.add(
                &l.out
                    .apply(&attention(&q, &k, &v, self.heads, None, probs.as_deref_mut())?)?,
            )?;
            x = l.ffn.residual(&x)?;
        }
        self.enc_norm.apply(&x)
    }

    fn start_cache(&self, memory: &Tensor) -> Result<DecoderCache> {
        let d = memory.shape()[1];
        let cross_kv = self
            .decoder
            .iter()
            .map(|l| {
                let kv = l.cross_kv.apply(memory)?;
                Ok((kv.narrow(1, 0, d)?.contiguous()?, kv.narrow(1, d, d)?.contiguous()?))
            })
            .collect::<Result<_>>()?;
        Ok(DecoderCache {
            self_kv: vec![None; self.decoder.len()],
            cross_kv,
            len: 0,
        })
    }

    /// Logits of the last of `ids` (the positions after `cache.len`).
    fn decode_step(&self, ids: &[u32], cache: &mut DecoderCache) -> Result<Vec<f32>> {
        self.decode_step_with(ids, cache, None)
    }

    /// [`Self::decode_step`], collecting the attention probabilities in `capture` when given.
    fn decode_step_with(
        &self,
        ids: &[u32],
        cache: &mut DecoderCache,
        mut capture: Option<&mut Capture>,
    ) -> Result<Vec<f32>> {
        let t = ids.len();
        let idx = Tensor::from_vec(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [t])?;
        let d = self.embed.shape()[1];
        if cache.len + t > self.dec_pos.shape()[0] {
            return Err(Error::Invalid {
                op: "whisper",
                detail: format!("the decoder holds {} positions", self.dec_pos.shape()[0]),
            });
        }
        let mut x = self
            .embed
            .index_select(0, &idx)?
            .add(&self.dec_pos.narrow(0, cache.len, t)?)?;
        for (i, l) in self.decoder.iter().enumerate() {
            let qkv = l.self_qkv.apply(&l.self_norm.apply(&x)?)?;
            let (q, k, v) = (qkv.narrow(1, 0, d)?, qkv.narrow(1, d, d)?, qkv.narrow(1, 2 * d, d)?);
            let (k, v) = match cache.self_kv[i].take() {
                Some((pk, pv)) => (Tensor::cat(&[pk, k], 0)?, Tensor::cat(&[pv, v], 0)?),
                None => (k.contiguous()?, v.contiguous()?),
            };
            let a = attention(
                &q,
                &k,
                &v,
                self.heads,
                Some(cache.len),
                capture.as_deref_mut().map(|c| &mut c.decoder),
            )?;
            cache.self_kv[i] = Some((k, v));
            x = x.add(&l.self_out.apply(&a)?)?;
            let q = l.cross_q.apply(&l.cross_norm.apply(&x)?)?;
            let (ck, cv) = &cache.cross_kv[i];
            let cross = capture.as_deref_mut().map(|c| &mut c.cross);
            x = x.add(&l.cross_out.apply(&attention(&q, ck, cv, self.heads, None, cross)?)?)?;
            x = l.ffn.residual(&x)?;
        }
        cache.len += t;
        let last = self.dec_norm.apply(&x.narrow(0, t - 1, 1)?)?;
        last.matmul(&self.embed.t()?)?.to_vec::<f32>()
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

    /// Decodes one window's encoder states: greedy for `beam <= 1`, else beam search ranked by
    /// log-probability over length (openai/whisper's ranking without a length penalty).
    fn decode_window(&self, memory: &Tensor, max_tokens: usize, beam: usize) -> Result<Vec<u32>> {
        let mut cache = self.start_cache(memory)?;
        let prompt = [self.sot, self.no_timestamps];
        let logits = self.decode_step(&prompt, &mut cache)?;
        let limit = max_tokens.min(self.dec_pos.shape()[0] - prompt.len());
        if beam <= 1 {
            let mut logits = logits;
            let mut out = Vec::new();
            for step in 0..limit {
                self.suppress(&mut logits, step == 0);
                let next = argmax(&logits);
                if next == self.eot {
                    break;
                }
                out.push(next);
                logits = self.decode_step(&[next], &mut cache)?;
            }
            return Ok(out);
        }
        // (tokens, summed log-probability, cache, logits of the next step)
        let mut live = vec![(Vec::new(), 0.0f64, cache, logits)];
        let mut done: Vec<(Vec<u32>, f64)> = Vec::new();
        for step in 0..limit {
            let mut candidates: Vec<(usize, u32, f64)> = Vec::new();
            for (h, (_, score, _, logits)) in live.iter_mut().enumerate() {
                self.suppress(logits, step == 0);
                let lp = log_softmax(logits);
                let mut order: Vec<usize> = (0..lp.len()).collect();
                order.select_nth_unstable_by(beam, |&a, &b| lp[b].total_cmp(&lp[a]));
                candidates.extend(order[..=beam].iter().map(|&i| (h, i as u32, *score + lp[i])));
            }
            candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
            let mut next = Vec::new();
            for (h, tok, score) in candidates {
                if next.len() == beam {
                    break;
                }
                let tokens = &live[h].0;
                if tok == self.eot {
                    if done.len() < beam {
                        done.push((tokens.clone(), score));
                    }
                    continue;
                }
                let mut tokens = tokens.clone();
                tokens.push(tok);
                let mut c = live[h].2.clone();
                let logits = self.decode_step(&[tok], &mut c)?;
                next.push((tokens, score, c, logits));
            }
            live = next;
            if done.len() >= beam || live.is_empty() {
                break;
            }
        }
        done.extend(live.into_iter().map(|(t, s, _, _)| (t, s)));
        let rank = |(t, s): &(Vec<u32>, f64)| s / t.len().max(1) as f64;
        Ok(done
            .into_iter()
            .max_by(|a, b| rank(a).total_cmp(&rank(b)))
            .map(|(t, _)| t)
            .unwrap_or_default())
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
        let mut ids = Vec::new();
        let mut start = 0;
        while start < content.max(1) {
            let memory = self.encode(&window_of(&mel, frames, start)?, None)?;
            ids.push(self.decode_window(&memory, 224, beam)?);
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
        let mut capture = Capture::default();
        let memory = self.encode(&window_of(&mel, frames, 0)?, Some(&mut capture.encoder))?;
        let out = self.decode_window(&memory, 224, 1)?;
        let mut cache = self.start_cache(&memory)?;
        let mut tokens = vec![self.sot, self.no_timestamps];
        tokens.extend_from_slice(&out);
        let transcript = self.transcript(vec![out], first.len(), started)?;
        self.decode_step_with(&tokens, &mut cache, Some(&mut capture))?;
        // An encoder position is two mel frames (20 ms): keep the ones that hold audio.
        let kept = (first.len() / HOP).div_ceil(2).clamp(1, WINDOW_FRAMES / 2);
        let cut = |t: Tensor, axes: &[isize]| -> Result<Tensor> {
            axes.iter().try_fold(t, |t, &a| t.narrow(a, 0, kept))?.contiguous()
        };
        Ok(WhisperAttention {
            encoder: capture
                .encoder
                .into_iter()
                .map(|t| cut(t, &[1, 2]))
                .collect::<Result<_>>()?,
            decoder: capture.decoder,
            cross: capture.cross.into_iter().map(|t| cut(t, &[2])).collect::<Result<_>>()?,
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
        let audio = read_wav(wav)?;
        let samples = resample(&audio.samples, audio.rate, SAMPLE_RATE);
        self.transcribe_samples(&samples, beam)
    }
}
