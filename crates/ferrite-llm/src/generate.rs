//! Text generation with a `Llama`: sampling (greedy, temperature, top-k, top-p, repetition
//! penalty, seeded), streaming of decoded text, stop tokens, timing; and the ChatML prompt
//! format SmolLM2 and many instruct models use.
//!
//! Layer: llm. Semantics follow llama.cpp's samplers: the repetition penalty divides positive
//! and multiplies negative logits of tokens seen in the last `repeat_last_n` ids; then
//! temperature, top-k, top-p (the smallest set whose probability reaches p) and a draw.

use crate::llama::Llama;
use ferrite_core::{Error, Result, Rng};
use serde::Serialize;
use std::time::Instant;
use tokenizers::Tokenizer;

/// How the next token is chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingOptions {
    /// 0 = greedy (argmax).
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    pub top_p: f32,
    /// > 1 discourages repeating recent tokens (1 = off).
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

/// Chooses tokens from logits.
pub struct Sampler {
    pub options: SamplingOptions,
    rng: Rng,
}

impl Sampler {
    pub fn new(options: SamplingOptions) -> Self {
        let rng = Rng::new(options.seed);
        Sampler { options, rng }
    }

    /// The next token given the logits and the ids so far (prompt included).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let o = &self.options;
        let mut l = logits.to_vec();
        if o.repeat_penalty != 1.0 {
            let from = history.len().saturating_sub(o.repeat_last_n);
            let mut seen = history[from..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(v) = l.get_mut(id as usize) {
                    *v = if *v > 0.0 {
                        *v / o.repeat_penalty
                    } else {
                        *v * o.repeat_penalty
                    };
                }
            }
        }
        let argmax = |l: &[f32]| (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap_or(0) as u32;
        if o.temperature <= 0.0 {
            return argmax(&l);
        }
        let mut order: Vec<usize> = (0..l.len()).collect();
        order.sort_unstable_by(|&a, &b| l[b].total_cmp(&l[a]));
        if o.top_k > 0 {
            order.truncate(o.top_k);
        }
        let m = l[order[0]];
        let mut probs: Vec<f64> = order
            .iter()
            .map(|&i| (((l[i] - m) / o.temperature) as f64).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if o.top_p < 1.0 {
            let mut acc = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    acc += p;
                    acc >= o.top_p as f64
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            order.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let mut u = self.rng.uniform() * total;
        for (p, &i) in probs.iter().zip(&order) {
            if u < *p {
                return i as u32;
            }
            u -= p;
        }
        order[order.len() - 1] as u32
    }
}

/// What `generate` returns (the `--json` output of `ferrite generate`).
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

/// Generates up to `max_tokens` tokens after `prompt_ids`, calling `on_text` with each new piece
/// of decoded text as it is produced; stops at any of `stop_ids`.
///
/// # Errors
/// An empty prompt, ids outside the vocabulary, or a prompt longer than the context.
pub fn generate(
    model: &Llama,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    max_tokens: usize,
    sampler: &mut Sampler,
    stop_ids: &[u32],
    mut on_text: impl FnMut(&str),
) -> Result<Generation> {
    let mut cache = model.new_cache();
    let started = Instant::now();
    let mut logits = model.forward(prompt_ids, &mut cache)?;
    let prompt_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut history = prompt_ids.to_vec();
    let mut ids = Vec::new();
    let mut shown = String::new();
    let mut stop = "max_tokens";
    while ids.len() < max_tokens {
        let next = sampler.sample(&logits, &history);
        if stop_ids.contains(&next) {
            stop = "eos";
            break;
        }
        ids.push(next);
        history.push(next);
        let text = decode(tokenizer, &ids)?;
        // A multi-byte character split across tokens decodes to U+FFFD until it is complete.
        if !text.ends_with('\u{fffd}') && text.len() > shown.len() && text.starts_with(&shown) {
            on_text(&text[shown.len()..]);
            shown = text;
        }
        if ids.len() == max_tokens {
            break;
        }
        if cache.len >= model.config.context {
            stop = "context";
            break;
        }
        logits = model.forward(&[next], &mut cache)?;
    }
    let generate_seconds = started.elapsed().as_secs_f64();
    let text = decode(tokenizer, &ids)?;
    if text.len() > shown.len() && text.starts_with(&shown) {
        on_text(&text[shown.len()..]);
    }
    Ok(Generation {
        prompt_ids: prompt_ids.to_vec(),
        prompt_tokens_per_s: prompt_ids.len() as f64 / prompt_seconds.max(1e-9),
        generated_tokens_per_s: ids.len() as f64 / generate_seconds.max(1e-9),
        ids,
        text,
        stop: stop.into(),
        prompt_seconds,
        generate_seconds,
    })
}

fn decode(tokenizer: &Tokenizer, ids: &[u32]) -> Result<String> {
    tokenizer.decode(ids, true).map_err(|e| Error::Invalid {
        op: "generate",
        detail: format!("cannot decode tokens: {e}"),
    })
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A ChatML prompt (`<|im_start|>role\ncontent<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n`), with `default_system` prepended when the conversation does not
/// start with a system message — what SmolLM2's chat template renders.
pub fn chatml_prompt(messages: &[Message], default_system: Option<&str>) -> String {
    let mut s = String::new();
    if let (Some(sys), Some(first)) = (default_system, messages.first()) {
        if first.role != "system" {
            s.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
        }
    }
    for m in messages {
        s.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content));
    }
    s.push_str("<|im_start|>assistant\n");
    s
}

/// The default system message of a ChatML Jinja template like SmolLM2's
/// (`…'<|im_start|>system\nYou are …<|im_end|>\n'…`), if it has one; `Err` when the template
/// is not ChatML (ferrite does not run arbitrary Jinja).
pub fn chatml_default_system(template: &str) -> Result<Option<String>> {
    if !template.contains("<|im_start|>") {
        return Err(Error::Invalid {
            op: "chat",
            detail: "the model's chat template is not ChatML (<|im_start|>…<|im_end|>); ferrite renders ChatML only"
                .into(),
        });
    }
    let marker = "<|im_start|>system\n";
    Ok(template.find(marker).and_then(|i| {
        let rest = &template[i + marker.len()..];
        rest.find("<|im_end|>").map(|j| rest[..j].to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_rules() {
        let logits = [1.0f32, 3.0, 2.0, -1.0];
        assert_eq!(Sampler::new(SamplingOptions::default()).sample(&logits, &[]), 1);
        // The penalty divides the leader's positive logit: 3/2 < 2.
        let mut s = Sampler::new(SamplingOptions {
            repeat_penalty: 2.0,
            ..SamplingOptions::default()
        });
        assert_eq!(s.sample(&logits, &[1]), 2);
        // top_k = 1 is greedy whatever the temperature; seeded draws repeat.
        let mut s = Sampler::new(SamplingOptions {
            temperature: 5.0,
            top_k: 1,
            ..SamplingOptions::default()
        });
        assert!((0..20).all(|_| s.sample(&logits, &[]) == 1));
        let opts = SamplingOptions {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 7,
            ..SamplingOptions::default()
        };
        let draw = |o: &SamplingOptions| {
            let mut s = Sampler::new(o.clone());
            (0..200).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        let a = draw(&opts);
        assert_eq!(a, draw(&opts));
        let share = a.iter().filter(|&&t| t == 1).count() as f64 / 200.0;
        // softmax([1, 3, 2, -1])[1] ≈ 0.66
        assert!((share - 0.66).abs() < 0.1, "{share}");
        // top_p = 0.5 keeps only the leader (its probability alone passes 0.5).
        let only = draw(&SamplingOptions { top_p: 0.5, ..opts });
        assert!(only.iter().all(|&t| t == 1));
    }

    #[test]
    fn chatml_rendering() {
        let m = [Message {
            role: "user".into(),
            content: "Hi".into(),
        }];
        assert_eq!(
            chatml_prompt(&m, Some("Be brief.")),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let t = "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}";
        assert_eq!(
            chatml_default_system(t).unwrap().as_deref(),
            Some("You are a helpful AI assistant named SmolLM")
        );
        assert!(chatml_default_system("{{ bos_token }}[INST]").is_err());
    }
}
