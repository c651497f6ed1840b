#!/usr/bin/env python3
"""faster-whisper (CTranslate2) side of the speech-to-text benchmark.

    tools/.venv/bin/pip install --no-deps -r tools/requirements-whisper.txt
    tools/.venv/bin/python tools/bench_whisper.py [--model .cache/assets/whisper-tiny-en]
        [--audio WAV] [--threads 1,2] [--compute-types float32,int8] [--runs 3] [--warmup 1]

Loads the CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json,
vocabulary.txt) with ``WhisperModel(dir, device="cpu", compute_type=C, cpu_threads=T)``
(``num_workers`` 1) and transcribes one audio file with ``beam_size=1``,
``without_timestamps=True``, ``language="en"``, ``vad_filter=False`` (other options at
faster-whisper's defaults, e.g. ``condition_on_previous_text=True`` and the temperature
fallback list, which a clean short clip never reaches). The timed call is the whole
pipeline from the file path: PyAV decode + resample to 16 kHz mono, the numpy log-mel
feature extractor, the encoder and greedy decoding, with the lazy segment generator fully
consumed. Model load is not timed. ``--warmup`` untimed calls, then ``--runs`` timed ones;
``seconds`` is their median.

Default audio: ``espeak-ng -w /tmp/fox.wav "The quick brown fox jumps over the lazy dog."``
(made if missing; 22.05 kHz mono 16-bit, ~2.6 s).

Each (compute type, thread count) runs in a fresh child process (this script with
``--child``), so ``peak_rss_mb`` (the child's ``ru_maxrss`` / 1024, MiB) covers one model
only; it includes the Python interpreter and the imports (numpy, av, tokenizers,
ctranslate2, huggingface_hub). One JSON line per child on stdout:

    {"bench":"whisper","impl":"faster-whisper","compute_type":"float32",
     "ct2_compute_type":"float32","threads":1,
     "audio_seconds":..,"seconds":..,"runs_seconds":[..],"load_seconds":..,
     "real_time_factor":..,"text":"..","peak_rss_mb":..,"faster_whisper":"1.2.1",
     "ctranslate2":"4.8.5"}

``real_time_factor`` = seconds / audio_seconds (lower is faster). ``ct2_compute_type`` is
what CTranslate2 actually runs (``int8`` becomes ``int8_float32`` on CPU: int8 weights and
GEMMs, float32 activations and the rest). The model.bin holds float16 weights; they are
converted at load. On AMD CPUs CTranslate2 does not use its bundled MKL (it checks the
vendor) and runs its GEMMs with oneDNN; ``CT2_VERBOSE=1`` logs the choice.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, ".cache", "assets", "whisper-tiny-en")
DEFAULT_AUDIO = "/tmp/fox.wav"
DEFAULT_SENTENCE = "The quick brown fox jumps over the lazy dog."


def make_default_audio(path):
    if os.path.exists(path):
        return
    exe = shutil.which("espeak-ng")
    if exe is None:
        sys.exit("espeak-ng not found (apt-get install espeak-ng) and %s is missing" % path)
    subprocess.run([exe, "-w", path, DEFAULT_SENTENCE], check=True)


def child(args):
    # Thread counts: CTranslate2 takes cpu_threads itself (intra_threads); cap numpy's BLAS
    # too so the feature extractor runs under the same budget.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import ctranslate2
    import faster_whisper
    from faster_whisper import WhisperModel, decode_audio

    audio_seconds = len(decode_audio(args.audio)) / 16000.0

    t0 = time.perf_counter()
    model = WhisperModel(
        args.model,
        device="cpu",
        compute_type=args.compute_type,
        cpu_threads=args.threads,
        num_workers=1,
        local_files_only=True,
    )
    load_seconds = time.perf_counter() - t0

    def run():
        segments, _info = model.transcribe(
            args.audio,
            beam_size=1,
            without_timestamps=True,
            language="en",
            vad_filter=False,
        )
        return "".join(s.text for s in segments).strip()

    for _ in range(args.warmup):
        run()
    times = []
    text = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        text = run()
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "bench": "whisper",
                "impl": "faster-whisper",
                "compute_type": args.compute_type,
                "ct2_compute_type": model.model.compute_type,
                "threads": args.threads,
                "audio_seconds": round(audio_seconds, 3),
                "seconds": round(seconds, 4),
                "runs_seconds": [round(t, 4) for t in times],
                "load_seconds": round(load_seconds, 3),
                "real_time_factor": round(seconds / audio_seconds, 4),
                "text": text,
                "peak_rss_mb": round(peak, 1),
                "faster_whisper": faster_whisper.__version__,
                "ctranslate2": ctranslate2.__version__,
            }
        ),
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--audio", default=DEFAULT_AUDIO,
                    help="audio file (any format PyAV reads); default %s, made with "
                         "espeak-ng if missing" % DEFAULT_AUDIO)
    ap.add_argument("--threads", default="1,2", help="comma-separated cpu_threads values")
    ap.add_argument("--compute-types", default="float32,int8",
                    help="comma-separated CTranslate2 compute types")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compute-type", default="float32", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        args.threads = int(args.threads)
        child(args)
        return

    if not os.path.isfile(os.path.join(args.model, "model.bin")):
        sys.exit("no CTranslate2 model at %s (bash scripts/fetch-assets.sh whisper?)" % args.model)
    if args.audio == DEFAULT_AUDIO:
        make_default_audio(args.audio)
    elif not os.path.exists(args.audio):
        sys.exit("audio file not found: %s" % args.audio)

    failed = 0
    for ct in [c.strip() for c in args.compute_types.split(",") if c.strip()]:
        for t in [int(x) for x in args.threads.split(",") if x.strip()]:
            cmd = [
                sys.executable, os.path.abspath(__file__), "--child",
                "--model", args.model, "--audio", args.audio,
                "--threads", str(t), "--compute-type", ct,
                "--runs", str(args.runs), "--warmup", str(args.warmup),
            ]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            if r.returncode != 0:
                print("# %s threads=%d failed (exit %d)" % (ct, t, r.returncode), file=sys.stderr)
                failed += 1
                continue
            sys.stdout.write(r.stdout)
            sys.stdout.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
