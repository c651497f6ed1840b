#!/usr/bin/env python3
"""The peer of `ferrite serve` for MiniLM embeddings in tools/load_serve.py: sentence-transformers
behind FastAPI and uvicorn, answering OpenAI's /v1/embeddings the way such a service is usually
written (one `model.encode` per request, uvicorn's single worker, torch on every core).

    tools/.venv/bin/python tools/st_server.py --model .cache/assets/all-MiniLM-L6-v2 --port 8001
"""

import argparse

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer


class EmbeddingRequest(BaseModel):
    model: str
    input: str | list[str]
    encoding_format: str = "float"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: every core)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu")
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"ok": True}

    @app.post("/v1/embeddings")
    def embeddings(req: EmbeddingRequest):
        texts = [req.input] if isinstance(req.input, str) else req.input
        with torch.inference_mode():
            vectors = model.encode(texts, convert_to_numpy=True)
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
        tokens = sum(len(ids) for ids in model.tokenizer(texts)["input_ids"])
        return {"object": "list", "data": data, "model": req.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
