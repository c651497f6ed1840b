#!/usr/bin/env python3
"""Load tests of `ferrite serve` over loopback with wrk (Debian's `wrk`), side by side with the
peers in the same run:

  mlp       v2 infer on the seed MLP          — requests/s, p50/p99 at concurrency 1, 8, 32
  minilm    /v1/embeddings on MiniLM          — the same, and at concurrency 16 against
            sentence-transformers behind FastAPI/uvicorn (tools/st_server.py, tools/.venv)
  leak      RSS of the server after 10k, 50k and 100k+ MLP requests (flat = no leak)
  conn      10,000 connections held open at once (this process holds one end, the server the
            other: each under a 20,000-descriptor limit), then dropped; the server must answer
  llm       SmolLM2 tokens/s: one stream through the server vs `ferrite chat`, vs llama.cpp's
            llama-server (tools/build_llama_cpp.sh) on the same GGUF, and 4 concurrent streams

    python3 tools/load_serve.py --ferrite target/release/ferrite [--seconds 10] [--only mlp,minilm,leak,conn,llm] [--json]

Every non-2xx response is counted and reported (it must be 0 within the queue bound). Prints a
Markdown table (and one JSON document with --json). Needs the assets of scripts/fetch-assets.sh.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.environ.get("FERRITE_ASSETS", os.path.join(ROOT, ".cache/assets"))
MINILM = os.path.join(ASSETS, "all-MiniLM-L6-v2")
SMOLLM2 = os.path.join(ASSETS, "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
LLAMA_SERVER = os.path.join(ROOT, "tools/.llama.cpp/build/bin/llama-server")
MLP_BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32",
                                   "data": [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]}]})
EMBED_BODY = json.dumps({"model": "minilm", "input": "A man is eating a piece of bread.", "encoding_format": "float"})
PROMPT = "Write a short story about a robot who learns to paint."


def wait_ready(port, path, proc, seconds=120):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} never became ready")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, body, connections, seconds, threads=2):
    """Runs wrk with a POST body; returns requests/s, p50/p99 in ms, requests and non-2xx."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        script = f.name
    out = subprocess.run(["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-s", script, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script)

    def ms(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms(50), "p99_ms": ms(99),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def start_ferrite(ferrite, models, extra=()):
    port = free_port()
    args = [ferrite, "serve", "--port", str(port), "--quiet", *extra]
    for m in models:
        args += ["--model", m]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_ready(port, "/v2/health/ready", proc)
    return proc, port


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def chat_stream_tokens(port, max_tokens, path="/v1/chat/completions", model="smol"):
    """One streamed greedy chat; returns (completion tokens, seconds from first to last token,
    time of the first token, time of the last)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True},
                       "ignore_eos": True})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, body, {"Content-Type": "application/json"})
    r = c.getresponse()
    first = last = None
    tokens = 0
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        for ch in chunk.get("choices", []):
            if ch.get("delta", {}).get("content"):
                now = time.time()
                first = first or now
                last = now
    return tokens, (last - first) if first and last else 0.0, first or 0.0, last or 0.0


def concurrent_streams(port, n, streams, server, model):
    """`streams` chats at once: tokens/s over the wall time (prompts included) and over the
    decode window (first token of any stream to the last token of all, as the one-stream figure
    is measured)."""
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(streams) as ex:
        results = list(ex.map(lambda _: chat_stream_tokens(port, n, model=model), range(streams)))
    wall = time.time() - started
    total = sum(r[0] for r in results)
    window = max(r[3] for r in results) - min(r[2] for r in results)
    return {"case": f"smollm2 {streams} streams", "server": server, "tokens": total,
            "tokens_per_s": round(total / window, 1),
            "note": f"aggregate over the decode window; {total / wall:.1f} tokens/s over the wall time, prompts included"}


def run_mlp(args, rows):
    run = os.path.join(tempfile.mkdtemp(prefix="ferrite-load-"), "mlp")
    subprocess.run([args.ferrite, "train", "examples/seed-mlp.toml", "--out", run, "--json"], cwd=ROOT,
                   check=True, capture_output=True)
    proc, port = start_ferrite(args.ferrite, [f"mlp={run}"], ["--queue", "1024"])
    try:
        for c in (1, 8, 32):
            r = wrk(f"http://127.0.0.1:{port}/v2/models/mlp/infer", MLP_BODY, c, args.seconds)
            rows.append({"case": "mlp v2 infer", "server": "ferrite", "concurrency": c, **r})
        if "leak" in args.only:
            total, marks = 0, []
            for target in (10_000, 50_000, 100_000):
                while total < target:
                    total += wrk(f"http://127.0.0.1:{port}/v2/models/mlp/infer", MLP_BODY, 8, 2)["requests"]
                marks.append((total, round(rss_mb(proc.pid), 1)))
            rows.append({"case": "mlp RSS after N requests", "server": "ferrite", "rss_mb": marks})
    finally:
        stop(proc)


def run_connections(args, rows):
    import resource
    import socket
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20_000), hard))
    run = os.path.join(tempfile.mkdtemp(prefix="ferrite-load-"), "mlp")
    subprocess.run([args.ferrite, "train", "examples/seed-mlp.toml", "--out", run, "--json"], cwd=ROOT,
                   check=True, capture_output=True)
    proc, port = start_ferrite(args.ferrite, [f"mlp={run}"])
    try:
        started, held = time.time(), []
        half = b"POST /v2/models/mlp/infer HTTP/1.1\r\nContent-Length: 200\r\n\r\n{\"inp"
        for i in range(10_000):
            s = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                s.sendall(half)
            held.append(s)
        opened = time.time() - started
        rss = rss_mb(proc.pid)
        for s in held:
            s.close()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/v2/health/ready")
        status = c.getresponse().status
        rows.append({"case": "10,000 connections held, then dropped", "server": "ferrite", "concurrency": 10_000,
                     "note": f"opened in {opened:.1f} s, server RSS {rss:.0f} MB while held, then /v2/health/ready {status}"})
        if status != 200:
            raise SystemExit("the server did not answer after 10,000 connections")
    finally:
        stop(proc)


def run_minilm(args, rows):
    proc, port = start_ferrite(args.ferrite, [f"minilm={MINILM}"], ["--queue", "1024"])
    try:
        for c in (1, 8, 16, 32):
            r = wrk(f"http://127.0.0.1:{port}/v1/embeddings", EMBED_BODY, c, args.seconds)
            rows.append({"case": "minilm /v1/embeddings", "server": "ferrite", "concurrency": c, **r})
    finally:
        stop(proc)
    py = os.path.join(ROOT, "tools/.venv/bin/python")
    if not os.path.exists(py):
        print("minilm: no tools/.venv (bash tools/setup_venv.sh, then requirements-bert.txt and "
              "requirements-serve-reference.txt): skipping sentence-transformers", file=sys.stderr)
        return
    port = free_port()
    st = subprocess.Popen([py, os.path.join(ROOT, "tools/st_server.py"), "--model", MINILM, "--port", str(port)],
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, "/health", st)
        for c in (1, 16):
            r = wrk(f"http://127.0.0.1:{port}/v1/embeddings", EMBED_BODY, c, args.seconds)
            rows.append({"case": "minilm /v1/embeddings", "server": "sentence-transformers + FastAPI", "concurrency": c, **r})
    finally:
        stop(st)


def run_llm(args, rows):
    n = args.tokens
    # The CLI's own decode rate on the same conversation (`ferrite chat`, greedy).
    out = subprocess.run([args.ferrite, "chat", "--model", SMOLLM2, "--max-tokens", str(n), "--json"],
                         cwd=ROOT, input=PROMPT + "\n", capture_output=True, text=True, check=True)
    g = json.loads(out.stdout)["turns"][0]
    rows.append({"case": "smollm2 one stream", "server": "ferrite chat (CLI)", "tokens": len(g["ids"]),
                 "tokens_per_s": round(g["generated_tokens_per_s"], 1)})
    proc, port = start_ferrite(args.ferrite, [f"smol={SMOLLM2}"], ["--max-tokens-cap", str(4 * n)])
    try:
        chat_stream_tokens(port, 8)  # warm up
        tokens, secs, _, _ = chat_stream_tokens(port, n)
        rows.append({"case": "smollm2 one stream", "server": "ferrite serve", "tokens": tokens,
                     "tokens_per_s": round((tokens - 1) / secs, 1)})
        rows.append(concurrent_streams(port, n, 4, "ferrite serve", "smol"))
    finally:
        stop(proc)
    if not os.path.exists(LLAMA_SERVER):
        print("llm: no llama-server (bash tools/build_llama_cpp.sh): skipping llama.cpp", file=sys.stderr)
        return
    port = free_port()
    threads = str(os.cpu_count())
    ls = subprocess.Popen([LLAMA_SERVER, "-m", SMOLLM2, "--port", str(port), "-t", threads, "-c", "4096", "-np", "4",
                           "--no-webui"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, "/health", ls)
        chat_stream_tokens(port, 8, model="smol")
        tokens, secs, _, _ = chat_stream_tokens(port, n, model="smol")
        rows.append({"case": "smollm2 one stream", "server": "llama.cpp llama-server", "tokens": tokens,
                     "tokens_per_s": round((tokens - 1) / secs, 1)})
        rows.append(concurrent_streams(port, n, 4, "llama.cpp llama-server", "smol"))
    finally:
        stop(ls)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ferrite", default=os.path.join(ROOT, "target/release/ferrite"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--only", default="mlp,minilm,leak,conn,llm")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.ferrite = os.path.abspath(args.ferrite)
    args.only = args.only.split(",")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    rows = []
    if "mlp" in args.only or "leak" in args.only:
        run_mlp(args, rows)
    if "conn" in args.only:
        run_connections(args, rows)
    if "minilm" in args.only:
        run_minilm(args, rows)
    if "llm" in args.only:
        run_llm(args, rows)
    if args.json:
        print(json.dumps(rows))
        return
    print("| case | server | concurrency | req/s | p50 ms | p99 ms | non-2xx | tokens/s | RSS MB | note |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['server']} | {r.get('concurrency', '')} | {r.get('rps', '')} | "
              f"{r.get('p50_ms', '')} | {r.get('p99_ms', '')} | {r.get('non_2xx', '')} | {r.get('tokens_per_s', '')} | "
              f"{r.get('rss_mb', '')} | {r.get('note', '')} |")


if __name__ == "__main__":
    main()
