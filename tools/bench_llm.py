#!/usr/bin/env python3
"""llama.cpp side of the LLM inference benchmark (`ferrite bench llm` prints the same keys).

    bash tools/build_llama_cpp.sh                      # llama-bench + llama-completion
    python3 tools/bench_llm.py [--model .cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf]
        [--threads 1,2] [--reps 5] [--bin-dir tools/.llama.cpp/build/bin]

Stdlib only. For each thread count T:

1. ``llama-bench -m MODEL -p 9,128 -n 64 -d 0,9 -t T -r REPS -o json`` (CPU, default batch
   sizes, warm-up run on, model mmap'ed). It times prompt processing of 9 and 128 tokens
   (``pp``, one batch from an empty cache) and generation of 64 tokens one at a time
   (``tg``) both from an empty cache (depth 0) and after 9 cached tokens (depth 9, what
   ``ferrite bench llm`` does: 64 greedy steps after a 9-token prompt). The rates reported
   are the median over the REPS samples (llama-bench's own ``avg_ts`` is their mean; both
   are kept). Tokens are random ids; llama-bench skips sampling, so ``tg`` is forward passes.
2. A plain generation run for memory: ``llama-completion -m MODEL -t T -c 256 -n 64
   --ignore-eos --temp 0 -no-cnv -p "Once upon a time, there was a little"``;
   ``peak_rss_mb`` is that child's ``ru_maxrss`` (``os.wait4``) / 1024, MiB. The GGUF is
   mmap'ed, so the ~94 MiB of weights count once touched. The child's own perf line
   (``common_perf_print: eval time``) is parsed into ``completion_tokens_per_s``
   as a cross-check (it includes sampling).

One JSON line per thread count on stdout (a ``#`` line with the build goes to stderr):

    {"bench":"llm","impl":"llama.cpp","threads":1,"prompt_tokens":128,
     "prompt_tokens_per_s":..,"generated_tokens":64,"generated_tokens_per_s":..,
     "peak_rss_mb":..,"gen_depth":9,"generated_tokens_per_s_depth0":..,
     "short_prompt_tokens":9,"short_prompt_tokens_per_s":..,"prompt_tokens_per_s_stddev":..,
     "generated_tokens_per_s_stddev":..,"completion_tokens_per_s":..,"reps":5,
     "llama_cpp":"<build_commit>","model":"<file name>"}
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, ".cache", "assets", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_BIN = os.path.join(ROOT, "tools", ".llama.cpp", "build", "bin")
PROMPT = "Once upon a time, there was a little"
GEN = 64
LONG, SHORT, DEPTH = 128, 9, 9


def run_bench(exe, model, threads, reps):
    cmd = [exe, "-m", model, "-p", "%d,%d" % (SHORT, LONG), "-n", str(GEN),
           "-d", "0,%d" % DEPTH, "-t", str(threads), "-r", str(reps), "-o", "json"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-4000:])
        raise SystemExit("llama-bench failed (exit %d): %s" % (r.returncode, " ".join(cmd)))
    rows = json.loads(r.stdout)
    out = {}
    for row in rows:
        key = ("pp" if row["n_gen"] == 0 else "tg", row["n_prompt"] or row["n_gen"], row["n_depth"])
        out[key] = row
    return out


def rate(row):
    samples = row.get("samples_ts") or [row["avg_ts"]]
    return statistics.median(samples)


def run_completion(exe, model, threads):
    cmd = [exe, "-m", model, "-t", str(threads), "-c", "256", "-n", str(GEN),
           "--ignore-eos", "--temp", "0", "-no-cnv", "-p", PROMPT]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, log = out.read(), err.read()
    if p.returncode != 0:
        sys.stderr.write(log[-4000:])
        raise SystemExit("llama-completion failed (exit %d): %s" % (p.returncode, " ".join(cmd)))
    tps = None
    # "common_perf_print:        eval time = ... ( 20.44 ms per token, 48.92 tokens per second)"
    # (older builds: llama_perf_context_print); "prompt eval time" does not match.
    m = re.search(r"_print:\s+eval time =.*?([\d.]+) tokens per second", log)
    if m:
        tps = float(m.group(1))
    return usage.ru_maxrss / 1024.0, tps, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5, help="llama-bench -r (default 5)")
    ap.add_argument("--bin-dir", default=DEFAULT_BIN)
    args = ap.parse_args()

    bench = os.path.join(args.bin_dir, "llama-bench")
    completion = os.path.join(args.bin_dir, "llama-completion")
    for exe in (bench, completion):
        if not os.access(exe, os.X_OK):
            raise SystemExit("%s missing: run bash tools/build_llama_cpp.sh" % exe)
    if not os.path.isfile(args.model):
        raise SystemExit("model not found: %s (bash scripts/fetch-assets.sh smollm2)" % args.model)

    announced = False
    for t in [int(x) for x in args.threads.split(",") if x.strip()]:
        res = run_bench(bench, args.model, t, args.reps)
        pp, pp_short = res[("pp", LONG, 0)], res[("pp", SHORT, 0)]
        tg, tg0 = res[("tg", GEN, DEPTH)], res[("tg", GEN, 0)]
        if not announced:
            print("# llama.cpp %s (build %s), %s, cpu: %s" % (
                pp["build_commit"], pp["build_number"], pp.get("backends"), pp.get("cpu_info")),
                file=sys.stderr)
            announced = True
        rss, ctps, text = run_completion(completion, args.model, t)
        print("# completion (t=%d): %r" % (t, text[-120:]), file=sys.stderr)
        print(json.dumps({
            "bench": "llm",
            "impl": "llama.cpp",
            "threads": t,
            "prompt_tokens": LONG,
            "prompt_tokens_per_s": round(rate(pp), 1),
            "generated_tokens": GEN,
            "generated_tokens_per_s": round(rate(tg), 1),
            "peak_rss_mb": round(rss, 1),
            "gen_depth": DEPTH,
            "generated_tokens_per_s_depth0": round(rate(tg0), 1),
            "short_prompt_tokens": SHORT,
            "short_prompt_tokens_per_s": round(rate(pp_short), 1),
            "prompt_tokens_per_s_mean": round(pp["avg_ts"], 1),
            "prompt_tokens_per_s_stddev": round(pp["stddev_ts"], 1),
            "generated_tokens_per_s_mean": round(tg["avg_ts"], 1),
            "generated_tokens_per_s_stddev": round(tg["stddev_ts"], 1),
            "completion_tokens_per_s": ctps,
            "reps": args.reps,
            "llama_cpp": pp["build_commit"],
            "model": os.path.basename(args.model),
        }), flush=True)


if __name__ == "__main__":
    main()
