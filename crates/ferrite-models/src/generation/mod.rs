//! Decoding, once for every model: a model that produces next-token logits implements the small
//! [`Decoder`] trait, and [`generate`] runs greedy decoding, sampling ([`Sampler`]) or beam search
//! ([`beam`]) over a batch of rows, stopping each row at a stop token or its length limit. The seq2seq
//! Transformer, Whisper and Llama all decode through here (candle's `LogitsProcessor` plays this
//! role there).
//!
//! Layer: models (generation). Rows that finish leave the batch (the decoder is told through
//! [`Decoder::reorder`]), so a long sentence never makes finished ones keep computing.

pub mod beam;
pub mod chat;
pub mod sampler;

pub use beam::Ranking;
pub use beam::{check_beam, MAX_BEAM};
pub use chat::{chatml_default_system, chatml_prompt, Message};
pub use sampler::{argmax, Sampler, SamplingOptions};

use ferrite_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// A model being decoded token by token over a batch of rows (sentences, or beams of them). Its
/// state — a [`KvCache`](ferrite_nn::KvCache) — holds every row's positions so far.
pub trait Decoder {
    /// Feeds one token per row (`tokens.len()` = rows) and returns each row's next-token logits
    /// (f32, one vector of vocabulary size per row).
    ///
    /// # Errors
    /// Model failures (a token outside the vocabulary, a sequence past the model's length).
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>>;

    /// Keeps the rows `rows`, in that order (a row may repeat): finished rows leave, beams follow
    /// their hypotheses, a source is expanded into its beams.
    ///
    /// # Errors
    /// A row outside the batch.
    fn reorder(&mut self, rows: &[usize]) -> Result<()>;
}

/// How the next token is chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The most likely token ([`argmax`]).
    Greedy,
    /// A draw from the filtered distribution ([`Sampler`]).
    Sample(SamplingOptions),
    /// Beam search with `size` beams per row, hypotheses ranked by `ranking`.
    Beam { size: usize, ranking: Ranking },
}

/// Why a row stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// It produced a stop token (not included in its tokens).
    Stop,
    /// It reached its length limit.
    Length,
}

/// One row's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub tokens: Vec<u32>,
    pub finish: Finish,
}

/// Where decoding starts: the model has consumed each row's prompt (a BOS, a source's decoder
/// prefix, a chat prompt) and gives the logits of the first token to choose.
pub struct Start {
    /// Next-token logits of each row.
    pub logits: Vec<Vec<f32>>,
    /// Each row's ids so far, for the repetition penalty (may be empty).
    pub history: Vec<Vec<u32>>,
    /// The most tokens each row may generate (stop token not counted).
    pub max_tokens: Vec<usize>,
}

/// Decodes every row of `start` with `strategy`, stopping a row at any of `stop` or at its
/// length limit. `on_token(row, token)` sees each token as it is chosen (greedy and sampled
/// decoding; beam search only knows its tokens at the end).
///
/// # Errors
/// Bad strategy parameters (a beam of 0, sampling options out of range), rows and limits of
/// different counts, a decoder returning the wrong number of rows, and model failures.
pub fn generate(
    decoder: &mut dyn Decoder,
    start: Start,
    strategy: &Strategy,
    stop: &[u32],
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<Vec<Decoded>> {
    let n = start.logits.len();
    if start.max_tokens.len() != n || !(start.history.is_empty() || start.history.len() == n) {
        return Err(Error::Invalid {
            op: "generate",
            detail: format!(
                "{n} rows of logits but {} length limits and {} histories",
                start.max_tokens.len(),
                start.history.len()
            ),
        });
    }
    match strategy {
        Strategy::Greedy => step_loop(decoder, start, stop, &mut |l, _| argmax(l), on_token),
        Strategy::Sample(o) => {
            let mut sampler = Sampler::new(o.clone())?;
            step_loop(decoder, start, stop, &mut |l, h| sampler.sample(l, h), on_token)
        }
        Strategy::Beam { size, ranking } => beam::search(decoder, start, stop, *size, *ranking),
    }
}

/// Checks that a decoder answered with one logits row per row fed.
pub(crate) fn check_rows(logits: &[Vec<f32>], rows: usize) -> Result<()> {
    if logits.len() != rows {
        return Err(Error::Invalid {
            op: "generate",
            detail: format!("the decoder returned {} rows of logits for {rows} rows", logits.len()),
        });
    }
    Ok(())
}

/// Greedy decoding and sampling: `pick(logits, history)` chooses each live row's token.
fn step_loop(
    decoder: &mut dyn Decoder,
    start: Start,
    stop: &[u32],
    pick: &mut dyn FnMut(&[f32], &[u32]) -> u32,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<Vec<Decoded>> {
    let n = start.logits.len();
    let mut out: Vec<Decoded> = (0..n)
        .map(|_| Decoded {
            tokens: Vec::new(),
            finish: Finish::Length,
        })
        .collect();
    let mut history = if start.history.is_empty() {
        vec![Vec::new(); n]
    } else {
        start.history
    };
    // `live[i]` is the original row behind the decoder's row i.
    let mut live: Vec<usize> = (0..n).collect();
    let mut logits = start.logits;
    let empty: Vec<usize> = (0..n).filter(|&r| start.max_tokens[r] > 0).collect();
    if empty.len() < n {
        decoder.reorder(&empty)?;
        logits = empty.iter().map(|&r| std::mem::take(&mut logits[r])).collect();
        live = empty;
    }
    while !live.is_empty() {
        let (mut next, mut feed, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &r) in live.iter().enumerate() {
            let tok = pick(&logits[i], &history[r]);
            if stop.contains(&tok) {
                out[r].finish = Finish::Stop;
                continue;
            }
            out[r].tokens.push(tok);
            history[r].push(tok);
            on_token(r, tok);
            if out[r].tokens.len() < start.max_tokens[r] {
                next.push(r);
                feed.push(tok);
                kept.push(i);
            }
        }
        if next.is_empty() {
            break;
        }
        if kept.len() < live.len() {
            decoder.reorder(&kept)?;
        }
        logits = decoder.step(&feed)?;
        check_rows(&logits, feed.len())?;
        live = next;
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A toy decoder over vocabulary 0..5: after token t the logits favour (t + 1) mod 5 (2.0
    /// against 0.0), except after 3, where the stop token 4 leads only narrowly (1.9).
    pub(crate) struct Counter {
        pub rows: Vec<u32>,
        pub steps: usize,
    }

    pub(crate) fn counter_logits(last: u32) -> Vec<f32> {
        let mut l = vec![0.0f32; 5];
        l[((last + 1) % 5) as usize] = 2.0;
        if last == 3 {
            l[4] = 1.9;
        }
        l
    }

    impl Decoder for Counter {
        fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
            assert_eq!(tokens.len(), self.rows.len(), "fed one token per row");
            self.steps += 1;
            self.rows = tokens.to_vec();
            Ok(tokens.iter().map(|&t| counter_logits(t)).collect())
        }
        fn reorder(&mut self, rows: &[usize]) -> Result<()> {
            self.rows = rows.iter().map(|&r| self.rows[r]).collect();
            Ok(())
        }
    }

    #[test]
    fn greedy_rows_stop_at_the_stop_token_or_their_limit_and_leave_the_batch() {
        let mut d = Counter {
            rows: vec![0, 2, 1],
            steps: 0,
        };
        let start = Start {
            logits: vec![counter_logits(0), counter_logits(2), counter_logits(1)],
            history: Vec::new(),
            max_tokens: vec![10, 1, 0],
        };
        let mut seen = Vec::new();
        let out = generate(&mut d, start, &Strategy::Greedy, &[4], &mut |r, t| seen.push((r, t))).unwrap();
        // Row 0 counts 1, 2, 3, then stops; row 1 hits its limit of one token; row 2 may not start.
        assert_eq!(out[0].tokens, vec![1, 2, 3]);
        assert_eq!(out[0].finish, Finish::Stop);
        assert_eq!((out[1].tokens.clone(), out[1].finish), (vec![3], Finish::Length));
        assert_eq!((out[2].tokens.clone(), out[2].finish), (vec![], Finish::Length));
        assert_eq!(seen, vec![(0, 1), (1, 3), (0, 2), (0, 3)]);
        // Steps only for rows still going: after the first choice only row 0 was fed.
        assert_eq!(d.steps, 3);
    }

    #[test]
    fn bad_requests_are_errors() {
        let mut d = Counter {
            rows: vec![0],
            steps: 0,
        };
        let start = || Start {
            logits: vec![counter_logits(0)],
            history: Vec::new(),
            max_tokens: vec![3],
        };
        let beam0 = Strategy::Beam {
            size: 0,
            ranking: Ranking::LengthPenalty(1.0),
        };
        assert!(generate(&mut d, start(), &beam0, &[4], &mut |_, _| {}).is_err());
        let hot = Strategy::Sample(SamplingOptions {
            top_p: 2.0,
            ..SamplingOptions::default()
        });
        assert!(generate(&mut d, start(), &hot, &[4], &mut |_, _| {}).is_err());
        let mut bad = start();
        bad.max_tokens.push(1);
        assert!(generate(&mut d, bad, &Strategy::Greedy, &[4], &mut |_, _| {}).is_err());
    }
}
