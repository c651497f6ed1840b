//! The synthetic seq2seq acceptance task: a tiny Transformer learns to reverse random sequences
//! and must reach ≥ 99% exact match with greedy decoding (lengths 5–20, 20 symbols, 3000 steps:
//! the slow suite, `scripts/acceptance.sh`). CI runs a short version of the same task (lengths
//! 3–6, 8 symbols, 250 steps) that still has to learn it. The trained model also checks that beam
//! search with beam 1 equals greedy decoding and that KV-cached decoding gives the same tokens as
//! re-running the decoder on the whole prefix.

use ferrite_core::Rng;
use ferrite_models::{
    generate, greedy_uncached, DecodeOptions, Positional, Ranking, Strategy, Transformer, TransformerConfig,
};
use ferrite_nn::{Activation, LrSchedule, VarBuilder, VarMap};
use ferrite_train::seq2seq::{train_seq2seq, Example, Seq2SeqOptions};

const BOS: u32 = 1;
const EOS: u32 = 2;
/// Ids 0..4 are pad/bos/eos/unk; the task's symbols start at 4.
const FIRST: u32 = 4;

/// One size of the task.
struct Task {
    min_len: usize,
    max_len: usize,
    symbols: u32,
    train: usize,
    d_model: usize,
    steps: usize,
    warmup: usize,
    lr: f64,
    batch_tokens: usize,
}

fn random_sequences(rng: &mut Rng, task: &Task, n: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|_| {
            let len = task.min_len + rng.below(task.max_len - task.min_len + 1);
            (0..len)
                .map(|_| FIRST + rng.below(task.symbols as usize) as u32)
                .collect()
        })
        .collect()
}

fn reversed(s: &[u32]) -> Vec<u32> {
    s.iter().rev().copied().collect()
}

/// Trains on `task` and returns the model and the test sources with their reversals.
fn train_reversal(task: &Task) -> (VarMap, Transformer, Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let mut rng = Rng::new(7);
    let train: Vec<Example> = random_sequences(&mut rng, task, task.train)
        .iter()
        .map(|s| Example::new(s, &reversed(s), BOS, EOS, 32).0)
        .collect();
    let test_src = random_sequences(&mut rng, task, 300);
    let vocab = (FIRST + task.symbols) as usize;
    let cfg = TransformerConfig {
        src_vocab: vocab,
        tgt_vocab: vocab,
        d_model: task.d_model,
        heads: 4,
        encoder_layers: 2,
        decoder_layers: 2,
        ffn: 2 * task.d_model,
        dropout: 0.0,
        activation: Activation::Relu,
        norm_first: true,
        positional: Positional::Sinusoidal,
        max_positions: 64,
        share_embeddings: true,
        tie_output: true,
    };
    let vars = VarMap::new();
    let model = Transformer::new(&VarBuilder::new(&vars, 1), &cfg).unwrap();
    let opts = Seq2SeqOptions {
        max_steps: task.steps,
        batch_tokens: task.batch_tokens,
        lr: task.lr,
        // Annealing to zero matters here: exact match needs every token right, and the last
        // steps at a small learning rate remove the remaining noise.
        schedule: LrSchedule::Warmup {
            warmup: task.warmup,
            then: Box::new(LrSchedule::Cosine {
                t_max: task.steps - task.warmup,
                eta_min: 0.0,
            }),
        },
        label_smoothing: 0.0,
        valid_every: 0,
        seed: 3,
        ..Seq2SeqOptions::default()
    };
    let report = train_seq2seq(&model, &vars, &train, &[], &opts, &mut []).unwrap();
    eprintln!(
        "reversal: {} steps in {:.1} s, final loss {:.4}",
        report.steps, report.seconds, report.train_loss
    );
    let sources: Vec<Vec<u32>> = test_src.iter().map(|s| [s.as_slice(), &[EOS]].concat()).collect();
    let targets = test_src.iter().map(|s| reversed(s)).collect();
    (vars, model, sources, targets)
}

fn exact_match(out: &[Vec<u32>], targets: &[Vec<u32>]) -> f64 {
    out.iter().zip(targets).filter(|(o, t)| o == t).count() as f64 / out.len() as f64
}

/// Greedy exact match on the test sequences ≥ `bound`, and the decoding identities.
fn check(task: &Task, bound: f64) {
    let (_vars, model, sources, targets) = train_reversal(task);
    let opts = DecodeOptions {
        bos: BOS,
        eos: EOS,
        max_len_a: 1.0,
        max_len_b: 4,
    };
    let greedy = generate(&model, &sources, &Strategy::Greedy, &opts).unwrap();
    let rate = exact_match(&greedy, &targets);
    eprintln!("reversal exact match: {:.1}% of {}", 100.0 * rate, sources.len());
    assert!(rate >= bound, "exact match {rate:.3} < {bound}");
    let beam1 = Strategy::Beam {
        size: 1,
        ranking: Ranking::LengthPenalty(1.0),
    };
    assert_eq!(
        generate(&model, &sources, &beam1, &opts).unwrap(),
        greedy,
        "beam search with beam 1 must equal greedy decoding"
    );
    let few = &sources[..40];
    assert_eq!(greedy_uncached(&model, few, &opts).unwrap(), greedy[..40].to_vec());
    let beam4 = Strategy::Beam {
        size: 4,
        ranking: Ranking::LengthPenalty(1.0),
    };
    let beam = generate(&model, few, &beam4, &opts).unwrap();
    let beam_rate = exact_match(&beam, &targets[..40]);
    assert!(beam_rate >= bound - 0.025, "beam 4 exact match {beam_rate:.3}");
}

/// CI: lengths 3–6 over 8 symbols in 250 steps.
#[test]
fn learns_to_reverse_short_sequences() {
    let task = Task {
        min_len: 3,
        max_len: 6,
        symbols: 8,
        train: 4000,
        d_model: 32,
        steps: 250,
        warmup: 30,
        lr: 5e-3,
        batch_tokens: 512,
    };
    check(&task, 0.9);
}

/// The acceptance run: lengths 5–20 over 20 symbols, 3000 steps, ≥ 99% exact match.
#[test]
#[cfg_attr(not(feature = "slow"), ignore = "slow: scripts/acceptance.sh runs it")]
fn slow_learns_to_reverse_sequences() {
    let task = Task {
        min_len: 5,
        max_len: 20,
        symbols: 20,
        train: 20_000,
        d_model: 64,
        steps: 3000,
        warmup: 200,
        lr: 3e-3,
        batch_tokens: 1024,
    };
    check(&task, 0.99);
}
