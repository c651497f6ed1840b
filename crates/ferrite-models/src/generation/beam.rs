//! Beam search over any [`Decoder`], with the two rankings the models need.
//!
//! Layer: models (generation). The search is Hugging Face's `BeamSearchScorer` with
//! `early_stopping=True`: each step ranks the 2K best continuations of a row's K beams; a stop
//! token among the top K closes a hypothesis; a row is done when it has K closed hypotheses or
//! reaches its length limit (its live beams then close as they are). With K = 1 this is exactly
//! greedy decoding (tested). Hypotheses are ranked by [`Ranking`]: Hugging Face's length penalty
//! (the seq2seq Transformer), or the mean log-probability openai/whisper uses.

use super::{check_rows, Decoded, Decoder, Finish, Start};
use ferrite_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How closed hypotheses are compared.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ranking {
    /// Hugging Face: `Σ log p / len^α`, where len counts the stop token of a hypothesis it closed.
    LengthPenalty(f64),
    /// openai/whisper's maximum-likelihood ranker: `Σ log p / len`, len without the stop token
    /// (at least 1).
    MeanLogProb,
}

impl Ranking {
    /// The rank of a hypothesis of `tokens` tokens (stop token not counted) with summed
    /// log-probability `score`, closed by a stop token or by the length limit.
    fn rank(self, score: f64, tokens: usize, by_stop: bool) -> f64 {
        match self {
            Ranking::LengthPenalty(alpha) => score / ((tokens + usize::from(by_stop)) as f64).powf(alpha),
            Ranking::MeanLogProb => score / tokens.max(1) as f64,
        }
    }
}

/// `log_softmax` of one row, in f64.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
    row.iter().map(|&x| x as f64 - lse).collect()
}

/// A row's search: its K beams (tokens, summed log-probability; −∞ = unused) and the hypotheses
/// it has closed (rank, tokens, closed by a stop token).
struct Search {
    row: usize,
    beams: Vec<(Vec<u32>, f64)>,
    closed: Vec<(f64, Vec<u32>, bool)>,
}

/// Beam search with `k` beams per row of `start` (see the module docs).
/// The widest beam accepted: each beam is one more row through the model at every step, and past a
/// few dozen the search only costs time (Hugging Face's and Whisper's defaults are 4 and 5).
pub const MAX_BEAM: usize = 64;

/// Checks a beam size: 1 (greedy) to [`MAX_BEAM`].
///
/// # Errors
/// A beam of 0 or above [`MAX_BEAM`].
pub fn check_beam(k: usize) -> Result<()> {
    if !(1..=MAX_BEAM).contains(&k) {
        return Err(Error::Invalid {
            op: "beam",
            detail: format!("beam size {k} must be between 1 and {MAX_BEAM}"),
        });
    }
    Ok(())
}

pub(super) fn search(
    decoder: &mut dyn Decoder,
    start: Start,
    stop: &[u32],
    k: usize,
    ranking: Ranking,
) -> Result<Vec<Decoded>> {
    check_beam(k)?;
    let n = start.logits.len();
    // Each row becomes k beams; only the first is live at the start, so the k beams don't
    // duplicate one another.
    let expand: Vec<usize> = (0..n).flat_map(|r| std::iter::repeat_n(r, k)).collect();
    decoder.reorder(&expand)?;
    let mut logits: Vec<Vec<f32>> = expand.iter().map(|&r| start.logits[r].clone()).collect();
    let mut live: Vec<Search> = (0..n)
        .map(|row| Search {
            row,
            beams: (0..k)
                .map(|j| (Vec::new(), if j == 0 { 0.0 } else { f64::NEG_INFINITY }))
                .collect(),
            closed: Vec::new(),
        })
        .collect();
    let mut done: Vec<Option<Decoded>> = vec![None; n];
    let mut step = 0;
    loop {
        // Rows out of length before their first token (a limit of 0) have nothing to choose.
        let mut next_live = Vec::new();
        let (mut sources, mut feed) = (Vec::new(), Vec::new());
        for (si, mut s) in std::mem::take(&mut live).into_iter().enumerate() {
            let limit = start.max_tokens[s.row];
            if limit == 0 {
                let row = s.row;
                done[row] = Some(best(s));
                continue;
            }
            // The 2K best (score, beam, token) continuations, best first, ties to lower indices.
            let mut cands: Vec<(f64, usize, usize)> = Vec::new();
            for (j, (_, score)) in s.beams.iter().enumerate() {
                if *score == f64::NEG_INFINITY {
                    continue;
                }
                for (v, lp) in log_softmax(&logits[si * k + j]).into_iter().enumerate() {
                    cands.push((score + lp, j, v));
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
            let mut beams: Vec<(Vec<u32>, f64)> = Vec::with_capacity(k);
            let mut from: Vec<usize> = Vec::with_capacity(k);
            for (rank, &(score, j, v)) in cands.iter().enumerate() {
                let tokens = &s.beams[j].0;
                if stop.contains(&(v as u32)) {
                    if rank < k {
                        s.closed
                            .push((ranking.rank(score, tokens.len(), true), tokens.clone(), true));
                    }
                    continue;
                }
                if beams.len() < k {
                    let mut t = tokens.clone();
                    t.push(v as u32);
                    beams.push((t, score));
                    from.push(si * k + j);
                }
            }
            if s.closed.len() >= k || beams.is_empty() {
                let row = s.row;
                done[row] = Some(best(s));
                continue;
            }
            if step + 1 >= limit {
                // Out of length: the live beams close as they are.
                for (t, score) in beams {
                    s.closed.push((ranking.rank(score, t.len(), false), t, false));
                }
                let row = s.row;
                done[row] = Some(best(s));
                continue;
            }
            // Unused beams follow the first one (their scores stay −∞).
            while beams.len() < k {
                beams.push((beams[0].0.clone(), f64::NEG_INFINITY));
                from.push(from[0]);
            }
            feed.extend(
                beams
                    .iter()
                    .map(|(t, _)| *t.last().expect("ferrite bug: a beam has a token")),
            );
            sources.extend(from);
            s.beams = beams;
            next_live.push(s);
        }
        live = next_live;
        if live.is_empty() {
            break;
        }
        decoder.reorder(&sources)?;
        logits = decoder.step(&feed)?;
        check_rows(&logits, feed.len())?;
        step += 1;
    }
    Ok(done
        .into_iter()
        .map(|d| d.expect("ferrite bug: every row ends with a result"))
        .collect())
}

/// The best closed hypothesis of a row (the first of equals), or an empty output.
fn best(s: Search) -> Decoded {
    s.closed
        .into_iter()
        .fold(None::<(f64, Vec<u32>, bool)>, |b, h| match b {
            Some(b) if b.0 >= h.0 => Some(b),
            _ => Some(h),
        })
        .map_or(
            Decoded {
                tokens: Vec::new(),
                finish: Finish::Length,
            },
            |(_, tokens, by_stop)| Decoded {
                tokens,
                finish: if by_stop { Finish::Stop } else { Finish::Length },
            },
        )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{counter_logits, Counter};
    use super::super::{generate, Strategy};
    use super::*;

    fn start(rows: &[u32], max: usize) -> Start {
        Start {
            logits: rows.iter().map(|&t| counter_logits(t)).collect(),
            history: Vec::new(),
            max_tokens: vec![max; rows.len()],
        }
    }

    #[test]
    fn beam_of_one_is_greedy() {
        for rows in [vec![0u32], vec![0, 2, 3, 1]] {
            let greedy = generate(
                &mut Counter {
                    rows: rows.clone(),
                    steps: 0,
                },
                start(&rows, 6),
                &Strategy::Greedy,
                &[4],
                &mut |_, _| {},
            )
            .unwrap();
            let beam = generate(
                &mut Counter {
                    rows: rows.clone(),
                    steps: 0,
                },
                start(&rows, 6),
                &Strategy::Beam {
                    size: 1,
                    ranking: Ranking::LengthPenalty(1.0),
                },
                &[4],
                &mut |_, _| {},
            )
            .unwrap();
            assert_eq!(beam, greedy);
        }
    }

    #[test]
    fn wider_beams_rank_by_the_chosen_rule() {
        // From 2 the model says 3, then narrowly the stop (4) over counting on. A beam of 2 closes
        // "3" at the second step and "3 1 2 3" at the fifth (Σ log p −0.90 and −4.13): a length
        // penalty of 1, or the mean log-probability, prefer the short one; a penalty of 2 divides
        // the long one's sum by 25 and prefers it.
        let run = |ranking| {
            generate(
                &mut Counter {
                    rows: vec![2],
                    steps: 0,
                },
                start(&[2], 6),
                &Strategy::Beam { size: 2, ranking },
                &[4],
                &mut |_, _| {},
            )
            .unwrap()
            .remove(0)
        };
        for (ranking, want) in [
            (Ranking::LengthPenalty(1.0), vec![3]),
            (Ranking::LengthPenalty(2.0), vec![3, 1, 2, 3]),
            (Ranking::MeanLogProb, vec![3]),
        ] {
            let d = run(ranking);
            assert_eq!((d.tokens, d.finish), (want, Finish::Stop), "{ranking:?}");
        }
        // Out of length, live beams close as they are.
        let short = generate(
            &mut Counter {
                rows: vec![0],
                steps: 0,
            },
            start(&[0], 2),
            &Strategy::Beam {
                size: 3,
                ranking: Ranking::LengthPenalty(1.0),
            },
            &[4],
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!((short[0].tokens.clone(), short[0].finish), (vec![1, 2], Finish::Length));
    }
}
