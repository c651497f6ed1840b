"""Reference values for ferrite-text's metrics: sacreBLEU corpus BLEU, chrF and the 13a tokenizer.

Usage (from the repository root):
    tools/.venv/bin/pip install -r tools/requirements-text.txt
    tools/.venv/bin/python tools/make_text_reference.py

Writes tests/reference/text.json, read by crates/ferrite-text/tests/metrics_reference.rs. Deterministic: the random
corpus uses random.Random(0). Metrics are sacreBLEU defaults: BLEU() (13a, exp smoothing, mixed case, 4-grams) and
CHRF() (char order 6, word order 0, beta 2, whitespace removed), one reference per hypothesis.
"""

import json
import pathlib
import random

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "reference" / "text.json"

CORPORA = {
    "english_punctuation": (
        [
            "The cat sat on the mat, didn't it?",
            'He said "hello" to the well-known author.',
            "Prices rose 3.5% in 2023-2024; costs were $1,000.50.",
            "Visit https://example.com/path?q=1&x=2 (now)!",
            "A dog.",
        ],
        [
            "The cat sat on the mat, did it not?",
            'He said "hi" to the well-known writer.',
            "Prices rose by 3.5% in 2023-2024; costs were $1,000.50.",
            "Visit https://example.com/path?q=1&x=2 today!",
            "The dog.",
        ],
    ),
    "french_accents": (
        [
            "L'été dernier, nous sommes allés à la plage.",
            "« Où est la gare ? » demanda-t-il.",
            "Il coûte 3,50 € — c'est très cher !",
            "Ça marche très bien, merci.",
            "Les élèves ont lu 12 livres.",
        ],
        [
            "L'été dernier, nous sommes allés à la mer.",
            "« Où se trouve la gare ? » demanda-t-il.",
            "Cela coûte 3,50 € — c'est trop cher !",
            "Ça marche très bien, merci.",
            "Les élèves ont lu douze livres.",
        ],
    ),
    "edge_empty_perfect_short": (
        [
            "",
            "exactly the same sentence here .",
            "short",
            "no overlap whatsoever",
        ],
        [
            "an empty hypothesis gets nothing",
            "exactly the same sentence here .",
            "a short hypothesis triggers the brevity penalty",
            "completely different reference text",
        ],
    ),
    "brevity_and_zero_4grams": (
        [
            "the quick brown",
            "fox jumps",
            "over lazy dog the",
        ],
        [
            "the quick brown fox jumps over the lazy dog",
            "a fox jumps high",
            "over the lazy dog",
        ],
    ),
    "entities_and_whitespace": (
        [
            "Tom &amp; Jerry &lt;3 &quot;cartoons&quot; <skipped>",
            "well-\nknown  tabs\there\u00a0nbsp\u3000ideographic",
            "trailing spaces   ",
            "sep\u001cchars\u001fhere",
            "",
        ],
        [
            "Tom & Jerry <3 \"cartoons\"",
            "well-known tabs here nbsp ideographic",
            "trailing spaces",
            "sep chars here",
            "",
        ],
    ),
    "exp_smoothing_no_bigram_match": (
        ["dog the cat a", "mat on sat it"],
        ["a cat the dog", "it sat on mat"],
    ),
    "empty_reference": (
        ["a non-empty hypothesis", "x y"],
        ["", "x y z"],
    ),
    "single_token_no_match": (
        ["Bonjour"],
        ["Hello"],
    ),
}

WORDS = (
    "the a cat dog sat ran on under mat house big small red blue quickly slowly and or but "
    "le la chat chien était sur sous maison grand petit rouge bleu vite lentement et ou mais 1 2 3.5 , . ! ?"
).split()


def random_corpus(rng: random.Random, n: int):
    """Hypotheses are references with random word drops, swaps and substitutions: every n-gram order is exercised."""
    hyps, refs = [], []
    for _ in range(n):
        ref = [rng.choice(WORDS) for _ in range(rng.randint(1, 14))]
        hyp = []
        for w in ref:
            r = rng.random()
            if r < 0.15:
                continue
            hyp.append(rng.choice(WORDS) if r < 0.3 else w)
        if len(hyp) > 1 and rng.random() < 0.3:
            i = rng.randrange(len(hyp) - 1)
            hyp[i], hyp[i + 1] = hyp[i + 1], hyp[i]
        hyps.append(" ".join(hyp))
        refs.append(" ".join(ref))
    return hyps, refs


TOKENIZE_CASES = [
    "",
    "Hello, world!",
    "a..",
    "1,000.50 and 3-4 and x-y",
    "3.14, pi. e,g 5,a a,5",
    "&amp;lt; &quot;quoted&quot; &gt;",
    "well-\nknown <skipped> line\nbreak",
    "L'été, c'est « très » bien — n'est-ce pas ?",
    "path/to/file_name.txt {x} [y] ~z^ `q` |p| @at #hash",
    "  leading and trailing  ",
    "tab\tand\u00a0nbsp\u3000and\u001cfs",
    "U.S.A. e.g. etc.",
    "2023-2024 -5 5- -",
]


def main():
    bleu, chrf, tok = BLEU(), CHRF(), Tokenizer13a()
    corpora = dict(CORPORA)
    corpora["random_mixed_60"] = random_corpus(random.Random(0), 60)
    cases = []
    for name, (hyps, refs) in corpora.items():
        b = bleu.corpus_score(hyps, [refs])
        c = chrf.corpus_score(hyps, [refs])
        cases.append(
            {
                "name": name,
                "hyps": hyps,
                "refs": refs,
                "bleu": {
                    "score": b.score,
                    "precisions": b.precisions,
                    "bp": b.bp,
                    "sys_len": b.sys_len,
                    "ref_len": b.ref_len,
                },
                "chrf": c.score,
            }
        )
    out = {
        "generator": "tools/make_text_reference.py",
        "sacrebleu_version": sacrebleu.__version__,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "corpora": cases,
        "tokenize_13a": [{"input": s, "output": tok(s)} for s in TOKENIZE_CASES],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(cases)} corpora, {len(TOKENIZE_CASES)} tokenizer cases)")


if __name__ == "__main__":
    main()
