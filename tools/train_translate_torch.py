#!/usr/bin/env python3
"""PyTorch twin of a ferrite translation run: same data, tokenizer, architecture, batching,
schedule and decoding, so the two can be compared side by side.

Usage (from the repository root):
    tools/.venv/bin/pip install -r tools/requirements-translate.txt
    tools/.venv/bin/python tools/train_translate_torch.py RUN_DIR --minutes 25 --threads 2 [--json]
        [--config examples/translate-en-fr.toml] [--max-steps N] [--greedy]

RUN_DIR is a ferrite run directory (`ferrite train examples/translate-en-fr.toml`): it must hold
data/{train,valid,test}.tsv (UTF-8 `src<TAB>tgt` lines) and tokenizer.json (Hugging Face
`tokenizers` JSON; <pad>=0, <s>=1, </s>=2, <unk>=3). The run's own RUN_DIR/config.toml is used when
present, otherwise --config. Its [data], [model], [training] and [decode] sections are read with
ferrite's defaults for missing keys; --minutes / --max-steps override [training].

What it does, mirroring crates/ferrite-train/src/seq2seq:
  * Examples: source = tokens + [EOS], decoder input = [BOS] + tokens, target = tokens + [EOS];
    each side cut to data.max_tokens (EOS kept last). Pairs empty after tokenization are dropped;
    training pairs follow data.too_long (truncate / drop / error), validation pairs are truncated.
  * Model: shared token embedding (N(0, d^-1/2), scaled by sqrt(d)) + sinusoidal or learned
    positions + dropout, nn.TransformerEncoder / nn.TransformerDecoder (batch_first; pre-LN adds a
    final LayerNorm to each stack), output projection tied to the embedding (no bias).
    Layer weights keep PyTorch's default init (as ferrite's layers do).
  * Batches: ferrite's token_batches, bit for bit (SplitMix64 shuffle, stable sort by
    max(src_len, tgt_len), greedy cut at batch_size * longest <= batch_tokens, shuffled batch
    order, seed splitmix64(seed ^ epoch)), so with the same tokenizer the batch sequence is the
    same as ferrite's.
  * Loss: cross entropy with ignore_index=0 and label smoothing, mean over non-pad tokens.
    AdamW(betas, eps, weight_decay), grad-norm clipping, lr per step t (0-based):
    inverse_sqrt: lr * min((t+1)/w, sqrt(w/(t+1))); cosine: linear warmup lr*(t+1)/w, then
    cosine from lr to 0 at max_steps.
  * Budget: training wall time (steps + validation, not tokenization) or max_steps, whichever
    comes first. Validation loss every valid_every steps and at the end (stderr). The weights with
    the best validation loss are restored before testing (ferrite keeps that checkpoint too).
  * Test: beam search (Hugging Face BeamSearchScorer, early stopping; score = sum log p /
    len**length_penalty with len counting EOS; at most int(max_len_a*src_len + max_len_b) tokens,
    src_len including EOS, at most max_positions) on an incremental K/V cache built from the
    PyTorch layers' own weights (checked against the full decoder on the first batch), or greedy
    with --greedy. Sources are cut to max_tokens - 1 tokens + EOS; 256 / beam sentences per
    batch in length order. Hypotheses are detokenized and scored with sacreBLEU corpus BLEU and
    chrF against the raw test targets.

Output: a summary on stderr; with --json one JSON line on stdout
  {"impl":"pytorch","minutes":..,"train_seconds":..,"steps":..,"epochs":..,"train_tokens_per_s":..,
   "final_valid_loss":..,"best_valid_loss":..,"bleu":..,"chrf":..,"test_sentences":..,
   "decode":"beam4","decode_seconds":..,"threads":..,"parameters":..,"torch":..}
which is also written to RUN_DIR/torch_result.json (test hypotheses: RUN_DIR/torch_hypotheses.txt).
`train_tokens_per_s` counts non-pad source + target tokens; `epochs` = those tokens / the training
set's. The model class is also used by `bench_torch.py transformer-step`.
"""
import argparse
import copy
import json
import math
import os
import sys
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, BOS, EOS, UNK = 0, 1, 2, 3
MASK64 = (1 << 64) - 1


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact (erf) GELU
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "swish": F.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "linear": lambda x: x,
    "none": lambda x: x,
}


def sinusoidal_table(max_len, d):
    """[max_len, d]: pe[pos, 2i] = sin(pos / 10000^(2i/d)), pe[pos, 2i+1] = cos(same); float32
    as in the PyTorch tutorial (and ferrite's positional.rs)."""
    pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return pe


class Positions(nn.Module):
    """Adds a fixed sinusoidal or a learned (N(0, 0.02)) position table, from `offset`."""

    def __init__(self, kind, max_positions, d):
        super().__init__()
        if kind == "sinusoidal":
            self.register_buffer("table", sinusoidal_table(max_positions, d), persistent=False)
            self.learned = None
        elif kind == "learned":
            self.learned = nn.Embedding(max_positions, d)
            nn.init.normal_(self.learned.weight, 0.0, 0.02)
        else:
            raise ValueError(f"positional must be 'sinusoidal' or 'learned', got {kind!r}")

    def forward(self, x, offset=0):
        table = self.table if self.learned is None else self.learned.weight
        t = x.shape[1]
        if offset + t > table.shape[0]:
            raise ValueError(f"sequence of length {t} at offset {offset} exceeds max_positions {table.shape[0]}")
        return x + table[offset:offset + t]


class Seq2SeqTransformer(nn.Module):
    """ferrite's encoder-decoder Transformer (crates/ferrite-nn/src/transformer/model.rs) on
    PyTorch's nn.TransformerEncoder / nn.TransformerDecoder. Padding is id 0; masks are bool with
    True = masked (PyTorch's convention)."""

    def __init__(self, vocab, d_model, heads, encoder_layers, decoder_layers, ffn, dropout=0.1,
                 activation="relu", norm_first=False, positional="sinusoidal", max_positions=512,
                 share_embeddings=True, tie_output=True, tgt_vocab=None):
        super().__init__()
        tgt_vocab = vocab if tgt_vocab is None else tgt_vocab
        if share_embeddings and tgt_vocab != vocab:
            raise ValueError("share_embeddings needs equal source and target vocabularies")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.d_model = d_model
        self.max_positions = max_positions
        self.dropout = nn.Dropout(dropout)
        self.src_embed = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.src_embed.weight, 0.0, d_model ** -0.5)
        if share_embeddings:
            self.tgt_embed = self.src_embed
        else:
            self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
            nn.init.normal_(self.tgt_embed.weight, 0.0, d_model ** -0.5)
        if tie_output:
            self.output = None  # logits = x @ tgt_embed.weight.T
        else:
            self.output = nn.Linear(d_model, tgt_vocab, bias=False)
            nn.init.xavier_uniform_(self.output.weight)
        # "relu"/"gelu" go in as strings (PyTorch's own choice); others as callables.
        act = activation if activation in ("relu", "gelu") else ACTIVATIONS[activation]
        layer_args = dict(d_model=d_model, nhead=heads, dim_feedforward=ffn, dropout=dropout,
                          activation=act, batch_first=True, norm_first=norm_first)
        # Each stack owns its position table (only matters for "learned").
        self.src_pos = Positions(positional, max_positions, d_model)
        self.tgt_pos = Positions(positional, max_positions, d_model)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer_args), encoder_layers,
            norm=nn.LayerNorm(d_model) if norm_first else None, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer_args), decoder_layers,
            norm=nn.LayerNorm(d_model) if norm_first else None)

    def _embed(self, table, pos, ids, offset=0):
        x = table(ids) * math.sqrt(self.d_model)
        return self.dropout(pos(x, offset))

    def project(self, x):
        if self.output is None:
            return F.linear(x, self.tgt_embed.weight)
        return self.output(x)

    def encode(self, src, src_pad=None):
        """src [B, Ts] int64; src_pad [B, Ts] bool (True = padding) or None. -> [B, Ts, d]."""
        return self.encoder(self._embed(self.src_embed, self.src_pos, src), src_key_padding_mask=src_pad)

    def decode(self, tgt_in, memory, src_pad=None, tgt_pad=None):
        """Teacher-forced logits [B, Tt, V] with a causal mask."""
        t = tgt_in.shape[1]
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tgt_in.device), diagonal=1)
        x = self._embed(self.tgt_embed, self.tgt_pos, tgt_in)
        x = self.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=tgt_pad,
                         memory_key_padding_mask=src_pad)
        return self.project(x)

    def forward(self, src, tgt_in, src_pad=None, tgt_pad=None):
        return self.decode(tgt_in, self.encode(src, src_pad), src_pad, tgt_pad)

    # --- incremental decoding (eval only) ---------------------------------------------------
    # nn.TransformerDecoderLayer has no K/V cache, so one decoder step is recomputed here from the
    # layers' own parameters: the same formulas as PyTorch's layer (dropout off).

    def start_cache(self, memory, src_pad, max_len=None):
        """Projects the memory's cross-attention keys/values once per layer and allocates the
        self-attention key/value buffers [N, heads, max_len, head_dim] (max_len: the most steps
        that will be decoded; default max_positions)."""
        max_len = min(max_len or self.max_positions, self.max_positions)
        layers = []
        for layer in self.decoder.layers:
            mha = layer.multihead_attn
            d, h = mha.embed_dim, mha.num_heads
            w, b = mha.in_proj_weight, mha.in_proj_bias
            k = _split_heads(F.linear(memory, w[d:2 * d], b[d:2 * d]), h)
            v = _split_heads(F.linear(memory, w[2 * d:], b[2 * d:]), h)
            buf = memory.new_empty(2, memory.shape[0], h, max_len, d // h)
            layers.append({"mem_k": k, "mem_v": v, "k": buf[0], "v": buf[1]})
        keep = None if src_pad is None else ~src_pad[:, None, None, :]
        return {"layers": layers, "len": 0, "mem_keep": keep}

    def decode_step(self, ids, cache):
        """ids [N, 1] (the newest token of each row) -> logits [N, V]; extends the cache."""
        x = self._embed(self.tgt_embed, self.tgt_pos, ids, offset=cache["len"])
        for layer, c in zip(self.decoder.layers, cache["layers"]):
            x = _decoder_layer_step(layer, x, c, cache["len"], cache["mem_keep"])
        if self.decoder.norm is not None:
            x = self.decoder.norm(x)
        cache["len"] += ids.shape[1]
        return self.project(x[:, -1])

    @staticmethod
    def reorder_cache(cache, index):
        """Keeps rows `index` of the self-attention cache (beam reordering within a sentence, so
        the cross-attention memory rows stay valid)."""
        n = cache["len"]
        for c in cache["layers"]:
            c["k"][:, :, :n] = c["k"][:, :, :n].index_select(0, index)
            c["v"][:, :, :n] = c["v"][:, :, :n].index_select(0, index)


def _split_heads(x, h):
    b, t, d = x.shape
    return x.view(b, t, h, d // h).transpose(1, 2)


def _attend(mha, q_in, k, v, keep):
    """Scaled dot-product attention of q_in [N, T, d] against split k, v [N, h, S, dh];
    `keep` [N, 1, 1, S] bool (True = attend) or None."""
    d, h = mha.embed_dim, mha.num_heads
    q = _split_heads(F.linear(q_in, mha.in_proj_weight[:d], mha.in_proj_bias[:d]), h)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    return mha.out_proj(out.transpose(1, 2).reshape(q_in.shape[0], q_in.shape[1], d))


def _self_attn_step(mha, y, c, pos):
    """Self-attention of the new position `pos` (y [N, 1, d]) over positions 0..pos."""
    d, h = mha.embed_dim, mha.num_heads
    w, b = mha.in_proj_weight, mha.in_proj_bias
    end = pos + y.shape[1]
    c["k"][:, :, pos:end] = _split_heads(F.linear(y, w[d:2 * d], b[d:2 * d]), h)
    c["v"][:, :, pos:end] = _split_heads(F.linear(y, w[2 * d:], b[2 * d:]), h)
    # One new position attends to everything cached: all of it is in its past.
    return _attend(mha, y, c["k"][:, :, :end], c["v"][:, :, :end], None)


def _decoder_layer_step(layer, x, c, pos, mem_keep):
    def ff(y):
        return layer.linear2(layer.activation(layer.linear1(y)))

    def ca(y):
        return _attend(layer.multihead_attn, y, c["mem_k"], c["mem_v"], mem_keep)

    if layer.norm_first:
        x = x + _self_attn_step(layer.self_attn, layer.norm1(x), c, pos)
        x = x + ca(layer.norm2(x))
        return x + ff(layer.norm3(x))
    x = layer.norm1(x + _self_attn_step(layer.self_attn, x, c, pos))
    x = layer.norm2(x + ca(x))
    return layer.norm3(x + ff(x))


# ----------------------------------------------------------------------------------------------
# Config, data and batching
# ----------------------------------------------------------------------------------------------

# ferrite's defaults for keys a config may omit (crates/ferrite-train/src/seq2seq/config.rs,
# crates/ferrite-nn/src/transformer/model.rs).
DEFAULTS = {
    "data": {"max_tokens": 64, "too_long": "truncate"},
    "model": {"dropout": 0.0, "activation": "relu", "norm_first": False, "positional": "sinusoidal",
              "max_positions": 512, "share_embeddings": True, "tie_output": True},
    "training": {"minutes": 0.0, "max_steps": 0, "batch_tokens": 4096, "lr": 7e-4, "warmup_steps": 1000,
                 "schedule": "inverse_sqrt", "label_smoothing": 0.1, "clip_norm": 1.0, "weight_decay": 0.0,
                 "betas": [0.9, 0.98], "eps": 1e-9, "valid_every": 500, "threads": None},
    "decode": {"beam": 4, "length_penalty": 1.0, "max_len_a": 1.5, "max_len_b": 10},
}


def load_config(path):
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    cfg = {"seed": int(raw.get("seed", 0))}
    for section, defaults in DEFAULTS.items():
        cfg[section] = {**defaults, **raw.get(section, {})}
    for key in ("d_model", "heads", "encoder_layers", "decoder_layers", "ffn"):
        if key not in cfg["model"]:
            raise SystemExit(f"{path}: [model] needs {key}")
    return cfg


def read_tsv(path):
    """`src<TAB>tgt` lines as ferrite's read_tsv: optional BOM, \\r\\n ok, blank lines skipped."""
    pairs = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    for n, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
            raise SystemExit(f"{path}: line {n}: expected `source<TAB>target` with both sides non-empty")
        pairs.append((cols[0], cols[1]))
    return pairs


def encode_all(tok, texts):
    """Token ids without special tokens (same as tok.encode(t, add_special_tokens=False))."""
    return [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=False)]


def to_examples(tok, pairs, max_tokens, too_long, what):
    """(src + [EOS], [BOS] + tgt, tgt + [EOS]) per pair; each side at most max_tokens."""
    keep = max(max_tokens, 2) - 1
    srcs = encode_all(tok, (p[0] for p in pairs))
    tgts = encode_all(tok, (p[1] for p in pairs))
    out, cut, dropped = [], 0, 0
    for i, (s, t) in enumerate(zip(srcs, tgts)):
        if not s or not t:
            dropped += 1
            continue
        if len(s) > keep or len(t) > keep:
            if too_long == "drop":
                dropped += 1
                continue
            if too_long == "error":
                raise SystemExit(f"{what} pair {i + 1} is longer than max_tokens {max_tokens}: {pairs[i][0]!r}")
            cut += 1
            s, t = s[:keep], t[:keep]
        out.append((s + [EOS], [BOS] + t, t + [EOS]))
    if cut or dropped:
        print(f"{what}: {cut} pairs truncated to {max_tokens} tokens, {dropped} dropped "
              "(too long or empty after tokenization)", file=sys.stderr)
    return out


def splitmix64(x):
    """One SplitMix64 output for state x (ferrite-train's data::splitmix64)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class SplitMix64:
    """The PRNG of ferrite-text's batch.rs (fixed stream, so batches match ferrite's)."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        return (self.next_u64() * n) >> 64

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def token_batches(lengths, max_tokens, seed):
    """ferrite_text::token_batches: length-bucketed index batches with batch_size * longest <=
    max_tokens (a longer single example gets its own batch), in shuffled order."""
    rng = SplitMix64(seed)
    key = [max(s, t) for s, t in lengths]
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: key[i])  # stable: equal lengths keep their shuffled order
    batches, cur, longest = [], [], 0
    for i in order:
        new_longest = max(longest, key[i])
        if cur and (len(cur) + 1) * new_longest > max_tokens:
            batches.append(cur)
            cur, longest = [], key[i]
        else:
            longest = new_longest
        cur.append(i)
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def eval_batches(examples, max_tokens):
    """Unshuffled batches in length order (ferrite's evaluation batching)."""
    length = [max(len(e[0]), len(e[1])) for e in examples]
    order = sorted(range(len(examples)), key=lambda i: length[i])
    out, cur, longest = [], [], 0
    for i in order:
        if cur and (len(cur) + 1) * max(longest, length[i]) > max_tokens:
            out.append(cur)
            cur, longest = [], 0
        longest = max(longest, length[i])
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def pad(seqs):
    """Right-padded [B, T] int64 tensor and its padding mask (True = pad), from the lengths (an
    id 0 inside a sequence, e.g. a literal "<pad>" in the text, is not masked; ferrite likewise)."""
    lens = torch.tensor([len(s) for s in seqs])
    t = int(lens.max())
    ids = torch.tensor([s + [PAD] * (t - len(s)) for s in seqs], dtype=torch.long)
    return ids, torch.arange(t)[None, :] >= lens[:, None]


def make_batch(examples, idx):
    src, src_pad = pad([examples[i][0] for i in idx])
    tgt_in, tgt_pad = pad([examples[i][1] for i in idx])
    tgt_out, _ = pad([examples[i][2] for i in idx])
    return src, src_pad, tgt_in, tgt_pad, tgt_out


def batch_loss(model, batch, label_smoothing):
    src, src_pad, tgt_in, tgt_pad, tgt_out = batch
    logits = model(src, tgt_in, src_pad, tgt_pad)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                           ignore_index=PAD, label_smoothing=label_smoothing)


def learning_rate(t, tr):
    """lr at 0-based step t (ferrite's LrSchedule::InverseSqrt / Warmup+Cosine)."""
    base, w = tr["lr"], max(int(tr["warmup_steps"]), 1)
    if tr["schedule"] == "inverse_sqrt":
        s = t + 1
        return base * min(s / w, math.sqrt(w / s))
    if tr["schedule"] == "cosine":
        if t < tr["warmup_steps"]:
            return base * (t + 1) / w
        t_max = max(int(tr["max_steps"]) - int(tr["warmup_steps"]), 1)
        p = min(t - int(tr["warmup_steps"]), t_max) / t_max
        return base * 0.5 * (1.0 + math.cos(math.pi * p))
    raise SystemExit(f"unknown schedule {tr['schedule']!r}")


@torch.no_grad()
def evaluate_loss(model, examples, batch_tokens, label_smoothing):
    """Mean per-target-token loss over `examples`, dropout off."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for idx in eval_batches(examples, batch_tokens):
        n = sum(len(examples[i][2]) for i in idx)
        total += batch_loss(model, make_batch(examples, idx), label_smoothing).item() * n
        tokens += n
    model.train(was_training)
    return total / tokens if tokens else float("nan")


def train(model, train_ex, valid_ex, cfg, max_seconds):
    """The training loop of ferrite's train_seq2seq. Returns a report dict."""
    tr = cfg["training"]
    max_steps = int(tr["max_steps"])
    if max_steps == 0 and max_seconds <= 0:
        raise SystemExit("set --minutes or [training] max_steps: training would never stop")
    opt = torch.optim.AdamW(model.parameters(), lr=tr["lr"], betas=tuple(tr["betas"]), eps=tr["eps"],
                            weight_decay=tr["weight_decay"])
    lengths = [(len(e[0]), len(e[1])) for e in train_ex]
    train_tokens = sum(len(e[0]) + len(e[2]) for e in train_ex)
    valid_every = int(tr["valid_every"])
    report = {"history": [], "best_valid_loss": None, "final_valid_loss": None}
    best_state = None
    step, epoch, tokens = 0, 0, 0
    interval_loss, interval_steps = 0.0, 0
    model.train()
    started = time.perf_counter()
    done = False
    while not done:
        for idx in token_batches(lengths, tr["batch_tokens"], splitmix64((cfg["seed"] ^ epoch) & MASK64)):
            lr = learning_rate(step, tr)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = make_batch(train_ex, idx)
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(model, batch, tr["label_smoothing"])
            loss.backward()
            if tr["clip_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tr["clip_norm"])
            opt.step()
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise SystemExit(f"loss became {loss_value} at step {step}; lower the learning rate")
            step += 1
            interval_loss += loss_value
            interval_steps += 1
            tokens += sum(len(train_ex[i][0]) + len(train_ex[i][2]) for i in idx)
            secs = time.perf_counter() - started
            out_of_budget = (max_steps > 0 and step >= max_steps) or (max_seconds > 0 and secs >= max_seconds)
            if (valid_every > 0 and step % valid_every == 0) or out_of_budget:
                train_loss = interval_loss / max(interval_steps, 1)
                valid_loss = (evaluate_loss(model, valid_ex, tr["batch_tokens"], tr["label_smoothing"])
                              if valid_ex else None)
                report["history"].append((step, train_loss, valid_loss))
                report["final_valid_loss"] = valid_loss
                if valid_loss is None or report["best_valid_loss"] is None or valid_loss < report["best_valid_loss"]:
                    report["best_valid_loss"] = valid_loss
                    best_state = copy.deepcopy(model.state_dict())
                vl = "-" if valid_loss is None else f"{valid_loss:.4f}"
                print(f"step {step}: train loss {train_loss:.4f}, valid loss {vl}, "
                      f"{tokens / secs:.0f} tok/s, lr {lr:.2e}, {secs:.0f} s", file=sys.stderr, flush=True)
                interval_loss, interval_steps = 0.0, 0
                if out_of_budget:
                    done = True
                    break
        else:
            epoch += 1
    seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    report.update(steps=step, seconds=seconds, tokens_per_s=tokens / max(seconds, 1e-9),
                  epochs=tokens / max(train_tokens, 1))
    return report


# ----------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------

def _length_limits(src_lens, dec, max_positions):
    return [min(max(int(dec["max_len_a"] * n) + int(dec["max_len_b"]), 1), max_positions) for n in src_lens]


def _check_cache(model, memory, src_pad, steps=4):
    """The incremental step must match the full decoder over the same prefix."""
    rows = min(memory.shape[0], 4)
    memory, src_pad = memory[:rows], src_pad[:rows]
    cache = model.start_cache(memory, src_pad, steps)
    prefix = torch.full((rows, 1), BOS, dtype=torch.long)
    for _ in range(min(steps, model.max_positions)):
        step_logits = model.decode_step(prefix[:, -1:], cache)
        full_logits = model.decode(prefix, memory, src_pad)[:, -1]
        err = (step_logits - full_logits).abs().max().item()
        if err > 1e-3 * max(1.0, full_logits.abs().max().item()):
            raise RuntimeError(f"incremental decoding disagrees with the full decoder (max |diff| {err:.3g})")
        prefix = torch.cat([prefix, step_logits.argmax(-1, keepdim=True)], dim=1)


def greedy(model, memory, src_pad, limits):
    n = memory.shape[0]
    cache = model.start_cache(memory, src_pad, max(limits))
    out = [[] for _ in range(n)]
    done = [False] * n
    inp = torch.full((n, 1), BOS, dtype=torch.long)
    for _ in range(max(limits)):
        toks = model.decode_step(inp, cache).argmax(-1).tolist()
        for i, t in enumerate(toks):
            if done[i]:
                toks[i] = PAD
                continue
            if t == EOS:
                done[i] = True
            else:
                out[i].append(t)
                done[i] = len(out[i]) >= limits[i]
        if all(done):
            break
        inp = torch.tensor(toks, dtype=torch.long).unsqueeze(1)
    return out


def beam_search(model, memory, src_pad, limits, k, length_penalty):
    """ferrite's generate.rs beam search (Hugging Face BeamSearchScorer, early_stopping=True):
    each step ranks each sentence's 2K best continuations; an EOS ranked in the top K closes a
    hypothesis with score sum log p / len**length_penalty (len counts EOS), the first K non-EOS
    continuations become the new beams; a sentence is done with K closed hypotheses or at its
    length limit (its live beams then close as they are)."""
    b = memory.shape[0]
    n = b * k
    rep = torch.arange(n) // k
    memory, src_pad = memory.index_select(0, rep), src_pad.index_select(0, rep)
    cache = model.start_cache(memory, src_pad, max(limits))
    tokens = [[] for _ in range(n)]
    # Only the first beam of each sentence is live at first, so the K beams don't duplicate.
    scores = [0.0 if r % k == 0 else float("-inf") for r in range(n)]
    finished = [[] for _ in range(b)]
    done = [False] * b
    inp = torch.full((n, 1), BOS, dtype=torch.long)
    norm = lambda s, length: s / (length ** length_penalty)  # noqa: E731
    for step in range(max(limits)):
        logp = model.decode_step(inp, cache).double().log_softmax(-1)
        v = logp.shape[-1]
        cand = (torch.tensor(scores, dtype=torch.float64)[:, None] + logp).view(b, k * v)
        top_scores, top_idx = cand.topk(min(2 * k, k * v), dim=1)
        top_scores, top_idx = top_scores.tolist(), top_idx.tolist()
        source_row = list(range(n))
        next_tokens = list(tokens)
        next_scores = list(scores)
        for s in range(b):
            if done[s]:
                continue
            kept = 0
            for rank, (score, flat) in enumerate(zip(top_scores[s], top_idx[s])):
                if score == float("-inf"):
                    break
                j, tok = divmod(flat, v)
                src_row = s * k + j
                if tok == EOS:
                    if rank < k:
                        finished[s].append((norm(score, len(tokens[src_row]) + 1), tokens[src_row]))
                    continue
                if kept < k:
                    to = s * k + kept
                    source_row[to] = src_row
                    next_tokens[to] = tokens[src_row] + [tok]
                    next_scores[to] = score
                    kept += 1
            for r in range(s * k + kept, (s + 1) * k):
                next_scores[r] = float("-inf")
            if len(finished[s]) >= k:
                done[s] = True
            elif step + 1 >= limits[s]:
                for r in range(s * k, s * k + kept):
                    finished[s].append((norm(next_scores[r], len(next_tokens[r])), next_tokens[r]))
                done[s] = True
        tokens, scores = next_tokens, next_scores
        if all(done):
            break
        model.reorder_cache(cache, torch.tensor(source_row, dtype=torch.long))
        inp = torch.tensor([t[-1] if t else PAD for t in tokens], dtype=torch.long).unsqueeze(1)
    # Best closed hypothesis per sentence (the first on ties); empty if none.
    return [max(f, key=lambda h: h[0])[1] if f else [] for f in finished]


@torch.no_grad()
def translate(model, tok, sentences, max_tokens, dec, beam):
    """Detokenized translations of `sentences` (input order kept)."""
    model.eval()
    encoded = [ids[:max_tokens - 1] + [EOS] for ids in encode_all(tok, sentences)]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    per_batch = max(256 // max(beam, 1), 1)
    out = [""] * len(sentences)
    checked = False
    for start in range(0, len(order), per_batch):
        chunk = order[start:start + per_batch]
        src, src_pad = pad([encoded[i] for i in chunk])
        memory = model.encode(src, src_pad)
        if not checked:
            _check_cache(model, memory, src_pad)
            checked = True
        limits = _length_limits([len(encoded[i]) for i in chunk], dec, model.max_positions)
        if beam <= 1:
            ids = greedy(model, memory, src_pad, limits)
        else:
            ids = beam_search(model, memory, src_pad, limits, beam, dec["length_penalty"])
        for i, hyp in zip(chunk, ids):
            out[i] = tok.decode(hyp, skip_special_tokens=True)
    return out


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def build_model(cfg, vocab):
    m = cfg["model"]
    return Seq2SeqTransformer(
        vocab, m["d_model"], m["heads"], m["encoder_layers"], m["decoder_layers"], m["ffn"],
        dropout=m["dropout"], activation=m["activation"], norm_first=m["norm_first"],
        positional=m["positional"], max_positions=m["max_positions"],
        share_embeddings=m["share_embeddings"], tie_output=m["tie_output"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", help="ferrite run directory (data/*.tsv, tokenizer.json)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="training wall-time budget (default: [training].minutes)")
    ap.add_argument("--max-steps", type=int, default=None, help="override [training].max_steps (0 = none)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: [training].threads, else all cores)")
    ap.add_argument("--config", default="examples/translate-en-fr.toml",
                    help="config used when RUN_DIR/config.toml is absent")
    ap.add_argument("--greedy", action="store_true", help="greedy test decoding instead of [decode].beam")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line on stdout")
    args = ap.parse_args()

    from sacrebleu import corpus_bleu, corpus_chrf
    from tokenizers import Tokenizer

    run_dir = args.run_dir
    cfg_path = os.path.join(run_dir, "config.toml")
    if not os.path.isfile(cfg_path):
        cfg_path = args.config
    cfg = load_config(cfg_path)
    tr, dec = cfg["training"], cfg["decode"]
    if args.minutes is not None:
        tr["minutes"] = args.minutes
    if args.max_steps is not None:
        tr["max_steps"] = args.max_steps
    threads = args.threads or tr["threads"] or os.cpu_count() or 1
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # only settable before any parallel work has started
    torch.manual_seed(cfg["seed"])

    tok = Tokenizer.from_file(os.path.join(run_dir, "tokenizer.json"))
    for name, want in (("<pad>", PAD), ("<s>", BOS), ("</s>", EOS), ("<unk>", UNK)):
        if tok.token_to_id(name) != want:
            raise SystemExit(f"tokenizer.json: {name} must have id {want}, has {tok.token_to_id(name)}")
    vocab = tok.get_vocab_size(with_added_tokens=True)
    data = os.path.join(run_dir, "data")
    max_tokens = int(cfg["data"]["max_tokens"])
    train_ex = to_examples(tok, read_tsv(os.path.join(data, "train.tsv")), max_tokens,
                           cfg["data"]["too_long"], "train")
    valid_ex = to_examples(tok, read_tsv(os.path.join(data, "valid.tsv")), max_tokens, "truncate", "valid")
    test_pairs = read_tsv(os.path.join(data, "test.tsv"))
    if not train_ex:
        raise SystemExit("no training examples")

    model = build_model(cfg, vocab)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"# torch {torch.__version__}, {threads} threads, config {cfg_path}; {len(train_ex)} train / "
          f"{len(valid_ex)} valid / {len(test_pairs)} test pairs, vocabulary {vocab}, {n_params} parameters",
          file=sys.stderr, flush=True)

    report = train(model, train_ex, valid_ex, cfg, float(tr["minutes"]) * 60.0)

    beam = 1 if args.greedy else int(dec["beam"])
    t0 = time.perf_counter()
    hyps = translate(model, tok, [p[0] for p in test_pairs], max_tokens, dec, beam)
    decode_seconds = time.perf_counter() - t0
    refs = [p[1] for p in test_pairs]
    bleu = corpus_bleu(hyps, [refs])
    chrf = corpus_chrf(hyps, [refs])

    result = {
        "impl": "pytorch",
        "minutes": float(tr["minutes"]),  # the budget; train_seconds is what was used
        "train_seconds": round(report["seconds"], 2),
        "steps": report["steps"],
        "epochs": round(report["epochs"], 4),
        "train_tokens_per_s": round(report["tokens_per_s"], 1),
        "final_valid_loss": report["final_valid_loss"],
        "best_valid_loss": report["best_valid_loss"],
        "bleu": round(bleu.score, 4),
        "chrf": round(chrf.score, 4),
        "test_sentences": len(test_pairs),
        "decode": "greedy" if beam <= 1 else f"beam{beam}",
        "decode_seconds": round(decode_seconds, 2),
        "threads": threads,
        "parameters": n_params,
        "torch": torch.__version__,
    }
    line = json.dumps(result)
    with open(os.path.join(run_dir, "torch_result.json"), "w", encoding="utf-8") as f:
        f.write(line + "\n")
    with open(os.path.join(run_dir, "torch_hypotheses.txt"), "w", encoding="utf-8") as f:
        f.writelines(h + "\n" for h in hyps)
    print(f"{report['steps']} steps in {report['seconds']:.0f} s ({report['epochs']:.2f} epochs, "
          f"{report['tokens_per_s']:.0f} tok/s); test BLEU {bleu.score:.2f}, chrF {chrf.score:.2f} "
          f"on {len(test_pairs)} sentences ({result['decode']}, {decode_seconds:.1f} s)", file=sys.stderr)
    if args.json:
        print(line, flush=True)


if __name__ == "__main__":
    main()
