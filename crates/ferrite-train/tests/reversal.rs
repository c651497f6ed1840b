//! The synthetic acceptance task: a tiny Transformer learns to reverse random sequences
//! (length 5–20, vocabulary 20) and must reach ≥ 99% exact match with greedy decoding. The same
//! trained model then checks that beam search with beam 1 equals greedy decoding and that
//! KV-cached decoding gives the same tokens as re-running the decoder on the whole prefix.

use ferrite_core::{set_num_threads, Rng};
use ferrite_models::{
    generate, greedy_uncached, DecodeOptions, Positional, Ranking, Strategy, Transformer, TransformerConfig,
};
use ferrite_nn::{Activation, LrSchedule, VarBuilder, VarMap};
use ferrite_train::seq2seq::{train_seq2seq, Example, Seq2SeqOptions};

const BOS: u32 = 1;
const EOS: u32 = 2;
/// Ids 0..4 are pad/bos/eos/unk; the task's 20 symbols are 4..24.
const FIRST: u32 = 4;
const SYMBOLS: u32 = 20;

fn random_sequences(rng: &mut Rng, n: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|_| {
            let len = 5 + rng.below(16);
            (0..len).map(|_| FIRST + rng.below(SYMBOLS as usize) as u32).collect()
        })
        .collect()
}

fn reversed(s: &[u32]) -> Vec<u32> {
    s.iter().rev().copied().collect()
}

#[test]
fn learns_to_reverse_sequences() {
    set_num_threads(2);
    let mut rng = Rng::new(7);
    let train: Vec<Example> = random_sequences(&mut rng, 20_000)
        .iter()
        .map(|s| Example::new(s, &reversed(s), BOS, EOS, 32).0)
        .collect();
    let test_src = random_sequences(&mut rng, 300);
    let cfg = TransformerConfig {
        src_vocab: (FIRST + SYMBOLS) as usize,
        tgt_vocab: (FIRST + SYMBOLS) as usize,
        d_model: 64,
        heads: 4,
        encoder_layers: 2,
        decoder_layers: 2,
        ffn: 128,
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
        max_steps: 3000,
        batch_tokens: 1024,
        lr: 3e-3,
        // Annealing to zero matters here: exact match needs every token right, and the last
        // steps at a small learning rate remove the remaining noise.
        schedule: LrSchedule::Warmup {
            warmup: 200,
            then: Box::new(LrSchedule::Cosine {
                t_max: 2800,
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
    let dopts = DecodeOptions {
        bos: BOS,
        eos: EOS,
        max_len_a: 1.0,
        max_len_b: 4,
    };
    let greedy = generate(&model, &sources, &Strategy::Greedy, &dopts).unwrap();
    let exact = greedy.iter().zip(&test_src).filter(|(g, s)| **g == reversed(s)).count();
    let rate = exact as f64 / test_src.len() as f64;
    eprintln!(
        "reversal exact match: {exact}/{} = {:.1}%",
        test_src.len(),
        100.0 * rate
    );
    assert!(rate >= 0.99, "exact match {rate:.3} < 0.99");

    let beam1 = generate(
        &model,
        &sources,
        &Strategy::Beam {
            size: 1,
            ranking: Ranking::LengthPenalty(1.0),
        },
        &dopts,
    )
    .unwrap();
    assert_eq!(beam1, greedy, "beam search with beam 1 must equal greedy decoding");

    let few = &sources[..40];
    assert_eq!(greedy_uncached(&model, few, &dopts).unwrap(), greedy[..40].to_vec());

    let beam4 = generate(
        &model,
        few,
        &Strategy::Beam {
            size: 4,
            ranking: Ranking::LengthPenalty(1.0),
        },
        &dopts,
    )
    .unwrap();
    let beam_exact = beam4.iter().zip(&test_src).filter(|(g, s)| **g == reversed(s)).count();
    assert!(beam_exact >= 39, "beam 4 exact match {beam_exact}/40");
}
