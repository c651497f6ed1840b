#!/usr/bin/env python3
"""`ferrite serve` driven by the clients people use: tritonclient[http] (binary tensors, its
default, and JSON with binary_data=False) against the seed MLP and MiniLM, and the openai client
(chat, streamed chat, embeddings with its default base64 encoding, transcription). Every answer
must equal what the ferrite CLI prints for the same input.

    bash tools/setup_serve_clients_venv.sh
    tools/.venv-clients/bin/python tools/test_serve_clients.py --ferrite target/debug/ferrite

Needs the assets of scripts/fetch-assets.sh and espeak-ng. Exits 1 on the first mismatch.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import openai
import tritonclient.http as triton

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.environ.get("FERRITE_ASSETS", os.path.join(ROOT, ".cache/assets"))
MINILM = os.path.join(ASSETS, "all-MiniLM-L6-v2")
SMOLLM2 = os.path.join(ASSETS, "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
WHISPER = os.path.join(ASSETS, "whisper-tiny-en")
QUESTION = "What is the capital of France?"


def cli(ferrite, *args, stdin=None):
    out = subprocess.run([ferrite, *args, "--json"], cwd=ROOT, input=stdin, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail and not ok else ''}", flush=True)
    if not ok:
        sys.exit(1)


def close(a, b, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= tol


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ferrite", default=os.path.join(ROOT, "target/release/ferrite"))
    args = ap.parse_args()
    ferrite = os.path.abspath(args.ferrite)
    work = tempfile.mkdtemp(prefix="ferrite-clients-")
    run = os.path.join(work, "mlp")
    cli(ferrite, "train", "examples/seed-mlp.toml", "--out", run)
    rows = np.loadtxt(os.path.join(ROOT, "data/diabetes.csv"), delimiter=",", skiprows=1, max_rows=4)[:, :10]
    csv = os.path.join(work, "rows.csv")
    np.savetxt(csv, rows, delimiter=",", header="age,sex,bmi,bp,s1,s2,s3,s4,s5,s6", comments="", fmt="%.6g")
    rows = np.loadtxt(csv, delimiter=",", skiprows=1).astype(np.float32)
    wav = os.path.join(work, "fox.wav")
    subprocess.run(["espeak-ng", "-w", wav, "The quick brown fox jumps over the lazy dog."], check=True)

    server = subprocess.Popen(
        [ferrite, "serve", "--port", "0", "--json", "--quiet", "--model", f"mlp={run}", "--model", f"minilm={MINILM}",
         "--model", f"smol={SMOLLM2}", "--model", f"whisper={WHISPER}"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = json.loads(server.stdout.readline())["listening"]
        host = url.removeprefix("http://")
        t = triton.InferenceServerClient(host)
        check("tritonclient: server live and ready", t.is_server_live() and t.is_server_ready())
        meta = t.get_model_metadata("mlp")
        check("tritonclient: model metadata", meta["inputs"][0]["shape"] == [-1, 10], str(meta))

        want = cli(ferrite, "predict", "--model", run, "--input", csv)
        for binary in (True, False):
            x = triton.InferInput("input", list(rows.shape), "FP32")
            x.set_data_from_numpy(rows, binary_data=binary)
            out = triton.InferRequestedOutput("prediction", binary_data=binary)
            r = t.infer("mlp", [x], outputs=[out], request_id="r1")
            got = r.as_numpy("prediction")
            check(f"tritonclient MLP (binary_data={binary}) equals ferrite predict", close(got, want, 1e-9), f"{got} vs {want}")

        texts = ["A man is eating food.", "The weather is lovely today."]
        want = np.array([e["embedding"] for e in cli(ferrite, "embed", "--model", MINILM, *texts)])
        for binary in (True, False):
            x = triton.InferInput("text", [len(texts)], "BYTES")
            x.set_data_from_numpy(np.array([s.encode() for s in texts], dtype=np.object_), binary_data=binary)
            out = triton.InferRequestedOutput("embedding", binary_data=binary)
            got = t.infer("minilm", [x], outputs=[out]).as_numpy("embedding")
            check(f"tritonclient MiniLM (binary_data={binary}) equals ferrite embed", close(got, want, 1e-5))

        o = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        check("openai: models listed", sorted(m.id for m in o.models.list()) == ["minilm", "mlp", "smol", "whisper"])
        chat = cli(ferrite, "chat", "--model", SMOLLM2, "--max-tokens", "16", stdin=QUESTION + "\n")
        want = chat["turns"][0]["text"]
        messages = [{"role": "user", "content": QUESTION}]
        r = o.chat.completions.create(model="smol", messages=messages, max_tokens=16, temperature=0)
        check("openai chat equals ferrite chat", r.choices[0].message.content == want, repr(r.choices[0].message.content))
        check("openai chat usage", r.usage.completion_tokens == len(chat["turns"][0]["ids"]))
        started = time.time()
        pieces, finish, usage = [], None, None
        stream = o.chat.completions.create(model="smol", messages=messages, max_tokens=16, temperature=0, stream=True,
                                           stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for c in chunk.choices:
                pieces.append(c.delta.content or "")
                finish = c.finish_reason or finish
        check("openai streamed chat equals ferrite chat", "".join(pieces) == want, repr("".join(pieces)))
        check("openai stream ends with finish_reason and usage", finish == "length" and usage is not None,
              f"{finish} {usage} after {time.time() - started:.1f} s")

        want = np.array([e["embedding"] for e in cli(ferrite, "embed", "--model", MINILM, *texts)])
        r = o.embeddings.create(model="minilm", input=texts)  # the client asks for base64
        got = np.array([d.embedding for d in r.data])
        check("openai embeddings (base64) equal ferrite embed", close(got, want, 1e-5))
        r = o.embeddings.create(model="minilm", input=texts[0], encoding_format="float")
        check("openai embeddings (float) equal ferrite embed", close([r.data[0].embedding], want[:1], 1e-5))

        want = cli(ferrite, "transcribe", "--model", WHISPER, "--input", wav)[0]["text"]
        with open(wav, "rb") as f:
            r = o.audio.transcriptions.create(model="whisper", file=f)
        check("openai transcription equals ferrite transcribe", r.text == want, f"{r.text!r} vs {want!r}")

        try:
            o.chat.completions.create(model="smol", messages=messages, max_tokens=100000)
            check("openai: max_tokens over the cap is refused", False)
        except openai.BadRequestError as e:
            check("openai: max_tokens over the cap is a 400 naming the field", e.body.get("param") == "max_tokens", str(e.body))
        try:
            t.infer("nope", [x])
            check("tritonclient: unknown model is refused", False)
        except triton.InferenceServerException as e:
            check("tritonclient: unknown model is refused with its name", "nope" in e.message(), e.message())
    finally:
        server.terminate()
        code = server.wait(timeout=60)
    check("the server exits 0 on SIGTERM", code == 0, str(code))
    print("serve clients: all checks passed")


if __name__ == "__main__":
    main()
