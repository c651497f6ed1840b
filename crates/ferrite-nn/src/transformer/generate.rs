//! Decoding a [`Transformer`]: greedy, beam search (beam size, length penalty) and sampling
//! (temperature, top-k, top-p), batched over source sentences, stopping at EOS, on the
//! incremental KV cache so each new token costs O(T) rather than re-running the prefix.
//!
//! Layer: nn. Beam search follows Hugging Face's `BeamSearchScorer` with `early_stopping=True`:
//! at each step the 2K best continuations are ranked; an EOS among the top K closes a
//! hypothesis with score `sum log p / len^length_penalty` (len counts EOS); a sentence is done
//! when it has K closed hypotheses or reaches its length limit. With K = 1 this is exactly
//! greedy decoding (tested).

use super::model::{pad_ids, KvCache, Memory, Transformer, PAD_ID};
use ferrite_core::{no_grad, Error, Result, Rng, Tensor};

/// How to pick tokens.
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    Greedy,
    Beam {
        size: usize,
        length_penalty: f64,
    },
    Sample {
        temperature: f64,
        /// Keep only the k most likely tokens (0 = all).
        top_k: usize,
        /// Keep the smallest set of tokens whose probability reaches p (1.0 = all).
        top_p: f64,
        seed: u64,
    },
}

/// Special ids and length limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    pub bos: u32,
    pub eos: u32,
    /// At most `max_len_a · source_len + max_len_b` tokens are generated (EOS included),
    /// and never more than the model's position table allows.
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
    match *strategy {
        Strategy::Greedy => greedy(model, &memory, &limits, opts),
        Strategy::Beam { size, length_penalty } => beam(model, &memory, &limits, opts, size, length_penalty),
        Strategy::Sample {
            temperature,
            top_k,
            top_p,
            seed,
        } => sample(model, &memory, &limits, opts, temperature, top_k, top_p, seed),
    }
}

/// Greedy decoding that re-runs the decoder over the whole prefix at every step (no cache).
/// Slower by a factor of the output length; kept to test the cache against.
pub fn greedy_uncached(model: &Transformer, sources: &[Vec<u32>], opts: &DecodeOptions) -> Result<Vec<Vec<u32>>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let _g = no_grad();
    let (memory, limits) = prepare(model, sources, opts)?;
    let b = sources.len();
    let mut prefix: Vec<Vec<u32>> = vec![vec![opts.bos]; b];
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut done = vec![false; b];
    for step in 0..limits.iter().copied().max().unwrap_or(0) {
        let ids = ids_tensor(&prefix)?;
        let logits = model.decode(&ids, None, &memory, false)?;
        let last = logits.narrow(1, step, 1)?;
        let rows = rows_f32(&last)?;
        for i in 0..b {
            let tok = argmax(&rows[i]) as u32;
            prefix[i].push(if done[i] { PAD_ID as u32 } else { tok });
            if !done[i] {
                advance(&mut out[i], &mut done[i], tok, limits[i], opts.eos);
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(out)
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
    let src = ids_tensor(sources)?;
    let memory = model.encode(&src, &lens, false)?;
    let limits = lens
        .iter()
        .map(|&l| ((opts.max_len_a * l as f64) as usize + opts.max_len_b).clamp(1, cfg.max_positions))
        .collect();
    Ok((memory, limits))
}

/// Right-padded `[B, T]` i64 ids.
fn ids_tensor(seqs: &[Vec<u32>]) -> Result<Tensor> {
    pad_ids(seqs.iter().map(Vec::as_slice))
}

/// `[N, 1, V]` logits as N rows.
fn rows_f32(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let v = *logits.shape().last().unwrap_or(&1);
    Ok(logits.to_vec::<f32>()?.chunks(v.max(1)).map(<[f32]>::to_vec).collect())
}

/// Index of the largest value (the first one on ties, as `torch.argmax`).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

/// Appends `tok` unless it is EOS; marks the sentence done at EOS or at its length limit.
fn advance(out: &mut Vec<u32>, done: &mut bool, tok: u32, limit: usize, eos: u32) {
    if tok == eos {
        *done = true;
        return;
    }
    out.push(tok);
    if out.len() >= limit {
        *done = true;
    }
}

/// The step loop shared by greedy decoding and sampling: `pick` chooses a token from row i's logits.
fn step_loop(
    model: &Transformer,
    memory: &Memory,
    limits: &[usize],
    opts: &DecodeOptions,
    mut pick: impl FnMut(&[f32]) -> usize,
) -> Result<Vec<Vec<u32>>> {
    let b = limits.len();
    let mut cache = model.start_cache(memory)?;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut done = vec![false; b];
    let mut input = vec![opts.bos as i64; b];
    for _ in 0..limits.iter().copied().max().unwrap_or(0) {
        let logits = model.decode_step(&Tensor::from_vec(input.clone(), [b, 1])?, &mut cache)?;
        for (i, row) in rows_f32(&logits)?.iter().enumerate() {
            if done[i] {
                input[i] = PAD_ID;
                continue;
            }
            let tok = pick(row) as u32;
            input[i] = tok as i64;
            advance(&mut out[i], &mut done[i], tok, limits[i], opts.eos);
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(out)
}

fn greedy(model: &Transformer, memory: &Memory, limits: &[usize], opts: &DecodeOptions) -> Result<Vec<Vec<u32>>> {
    step_loop(model, memory, limits, opts, argmax)
}

#[allow(clippy::too_many_arguments)]
fn sample(
    model: &Transformer,
    memory: &Memory,
    limits: &[usize],
    opts: &DecodeOptions,
    temperature: f64,
    top_k: usize,
    top_p: f64,
    seed: u64,
) -> Result<Vec<Vec<u32>>> {
    let valid = temperature > 0.0 && top_p > 0.0 && top_p <= 1.0;
    if !valid {
        return Err(Error::Invalid {
            op: "generate",
            detail: format!("sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature} and {top_p}"),
        });
    }
    let mut rng = Rng::new(seed);
    step_loop(model, memory, limits, opts, |row| {
        sample_token(row, temperature, top_k, top_p, &mut rng)
    })
}

/// Draws a token from softmax(row / temperature) restricted to the top-k, then to the top-p
/// nucleus (Holtzman et al. 2020), as Hugging Face's warpers apply them.
pub fn sample_token(row: &[f32], temperature: f64, top_k: usize, top_p: f64, rng: &mut Rng) -> usize {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    if top_k > 0 {
        idx.truncate(top_k.max(1));
    }
    let max = row[idx[0]] as f64;
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| ((row[i] as f64 - max) / temperature).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    // Nucleus: the shortest prefix (in probability order) whose mass reaches top_p.
    let mut mass = 0.0;
    let mut keep = probs.len();
    for (i, p) in probs.iter().enumerate() {
        mass += p;
        if mass >= top_p {
            keep = i + 1;
            break;
        }
    }
    let kept: f64 = probs[..keep].iter().sum();
    let mut u = rng.uniform() * kept;
    for (i, p) in probs[..keep].iter().enumerate() {
        u -= p;
        if u <= 0.0 {
            return idx[i];
        }
    }
    idx[keep - 1]
}

/// One sentence's beam state.
struct Sentence {
    /// Closed hypotheses: (normalized score, tokens without EOS).
    finished: Vec<(f64, Vec<u32>)>,
    done: bool,
}

/// `log_softmax` of one row, in f64.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
    row.iter().map(|&x| x as f64 - lse).collect()
}

fn beam(
    model: &Transformer,
    memory: &Memory,
    limits: &[usize],
    opts: &DecodeOptions,
    k: usize,
    length_penalty: f64,
) -> Result<Vec<Vec<u32>>> {
    if k == 0 {
        return Err(Error::Invalid {
            op: "generate",
            detail: "beam size must be at least 1".into(),
        });
    }
    let b = limits.len();
    let n = b * k;
    // Each source repeated once per beam: rows b*k .. b*k+k belong to sentence b.
    let rep: Vec<i64> = (0..n).map(|r| (r / k) as i64).collect();
    let memory = memory.index_select(&Tensor::from_vec(rep, [n])?)?;
    let mut cache: KvCache = model.start_cache(&memory)?;
    let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); n];
    // Only the first beam of each sentence is live at the start, so the K beams don't duplicate.
    let mut scores: Vec<f64> = (0..n)
        .map(|r| if r % k == 0 { 0.0 } else { f64::NEG_INFINITY })
        .collect();
    let mut sents: Vec<Sentence> = (0..b)
        .map(|_| Sentence {
            finished: Vec::new(),
            done: false,
        })
        .collect();
    let mut input = vec![opts.bos as i64; n];
    let norm = |score: f64, len: usize| score / (len as f64).powf(length_penalty);
    for step in 0..limits.iter().copied().max().unwrap_or(0) {
        let logits = model.decode_step(&Tensor::from_vec(input.clone(), [n, 1])?, &mut cache)?;
        let rows = rows_f32(&logits)?;
        let mut source_row: Vec<i64> = (0..n as i64).collect();
        let mut next_tokens = tokens.clone();
        let mut next_scores = scores.clone();
        for (s, sent) in sents.iter_mut().enumerate() {
            if sent.done {
                continue;
            }
            // The 2K best (score, beam, token) continuations, best first, ties to lower indices.
            let mut cands: Vec<(f64, usize, usize)> = Vec::with_capacity(k * rows[0].len());
            for j in 0..k {
                let r = s * k + j;
                if scores[r] == f64::NEG_INFINITY {
                    continue;
                }
                for (v, lp) in log_softmax(&rows[r]).into_iter().enumerate() {
                    cands.push((scores[r] + lp, j, v));
                }
            }
            let by_score = |a: &(f64, usize, usize), c: &(f64, usize, usize)| {
                c.0.total_cmp(&a.0).then(a.1.cmp(&c.1)).then(a.2.cmp(&c.2))
            };
            let top = (2 * k).min(cands.len());
            if top < cands.len() {
                cands.select_nth_unstable_by(top - 1, by_score);
                cands.truncate(top);
            }
            cands.sort_by(by_score);
            let mut kept = 0;
            for (rank, &(score, j, v)) in cands.iter().enumerate() {
                let from = s * k + j;
                if v as u32 == opts.eos {
                    if rank < k {
                        sent.finished
                            .push((norm(score, tokens[from].len() + 1), tokens[from].clone()));
                    }
                    continue;
                }
                if kept < k {
                    let to = s * k + kept;
                    source_row[to] = from as i64;
                    next_tokens[to] = tokens[from].clone();
                    next_tokens[to].push(v as u32);
                    next_scores[to] = score;
                    kept += 1;
                }
            }
            for j in kept..k {
                next_scores[s * k + j] = f64::NEG_INFINITY;
            }
            if sent.finished.len() >= k {
                sent.done = true;
            } else if step + 1 >= limits[s] {
                // Out of length: the live beams close as they are.
                for j in 0..kept {
                    let r = s * k + j;
                    sent.finished
                        .push((norm(next_scores[r], next_tokens[r].len()), next_tokens[r].clone()));
                }
                sent.done = true;
            }
        }
        tokens = next_tokens;
        scores = next_scores;
        if sents.iter().all(|s| s.done) {
            break;
        }
        cache.reorder(&Tensor::from_vec(source_row, [n])?)?;
        for r in 0..n {
            input[r] = tokens[r].last().map_or(PAD_ID, |&t| t as i64);
        }
    }
    Ok(sents
        .into_iter()
        .map(|s| {
            s.finished
                .into_iter()
                .fold(None::<(f64, Vec<u32>)>, |best, h| match best {
                    Some(b) if b.0 >= h.0 => Some(b),
                    _ => Some(h),
                })
                .map(|(_, t)| t)
                .unwrap_or_default()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_respects_top_k_and_top_p() {
        let row = [0.0f32, 5.0, 4.0, -3.0];
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let t = sample_token(&row, 1.0, 2, 1.0, &mut rng);
            assert!(t == 1 || t == 2);
            assert_eq!(sample_token(&row, 1.0, 0, 0.5, &mut rng), 1);
        }
        // A very low temperature is greedy.
        assert_eq!(sample_token(&row, 1e-3, 0, 1.0, &mut rng), 1);
    }

    #[test]
    fn log_softmax_normalizes() {
        let l = log_softmax(&[1.0, 2.0, 3.0]);
        let s: f64 = l.iter().map(|x| x.exp()).sum();
        assert!((s - 1.0).abs() < 1e-12);
    }
}
