"""Ingestion throughput on the five shared corpora, against raw sentence-transformers encoding.

Ingests every document of ../shared/eval (or TRIPTYCH_SHARED_EVAL) into a throw-away embedded
Chroma folder with the configured chunking and embedding model and, right after each domain,
encodes exactly the same chunk texts with SentenceTransformer.encode in the same process (domain by
domain, so that other load on a shared machine hits both measurements alike). overhead_ratio =
pipeline seconds / encode-only seconds: what validation, parsing, chunking and Chroma add on top of
the model. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._shared_eval import DOMAINS, shared_eval_dir  # noqa: E402
from triptych.embeddings import load_embedder  # noqa: E402
from triptych.index import DomainIndex, chroma_client  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.settings import Settings  # noqa: E402


def main() -> None:
    eval_dir = shared_eval_dir()
    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        settings = Settings(_env_file=None, chroma_path=Path(tmp) / "indexes")  # type: ignore[call-arg]
        started = time.perf_counter()
        embedder = load_embedder(settings.embedding_model, settings.embedding_batch_size)
        embedder.embed_documents(["warm-up"])
        load_s = time.perf_counter() - started
        client = chroma_client(settings)

        per_domain = {}
        files = size = chunks = 0
        pipeline_s = encode_s = 0.0
        chunk_mb = 0.0
        for domain in DOMAINS:
            docs = eval_dir / domain / "docs"
            report = ingest_paths(settings, domain, [docs], client=client, embedder=embedder)
            if report.refused:
                sys.exit(f"{domain}: refused {[(o.doc_id, o.reason) for o in report.refused]}")
            texts = [c.text for c in DomainIndex(client, domain, settings.embedding_model, create=False).all_chunks()]
            assert len(texts) == report.chunks, (len(texts), report.chunks)
            started = time.perf_counter()
            embedder.model.encode(
                texts,
                batch_size=settings.embedding_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            domain_encode_s = time.perf_counter() - started
            per_domain[domain] = {
                "files": len(report.stored),
                "chunks": report.chunks,
                "mb": round(report.bytes / 1e6, 3),
                "pipeline_s": round(report.seconds, 2),
                "encode_only_s": round(domain_encode_s, 2),
                "overhead_ratio": round(report.seconds / domain_encode_s, 3),
            }
            files += len(report.stored)
            size += report.bytes
            chunks += report.chunks
            pipeline_s += report.seconds
            encode_s += domain_encode_s
            chunk_mb += sum(len(t.encode()) for t in texts) / 1e6

    import torch

    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "corpora": list(DOMAINS),
                "embedding_model": settings.embedding_model,
                "batch_size": settings.embedding_batch_size,
                "chunk_size": settings.chunk_size,
                "chunk_overlap": settings.chunk_overlap,
                "files": files,
                "file_mb": round(size / 1e6, 3),
                "chunks": chunks,
                "chunk_text_mb": round(chunk_mb, 3),
                "model_load_s": round(load_s, 2),
                "pipeline_s": round(pipeline_s, 2),
                "pipeline_chunks_per_s": round(chunks / pipeline_s, 2),
                "pipeline_mb_per_s": round(size / 1e6 / pipeline_s, 4),
                "encode_only_s": round(encode_s, 2),
                "encode_only_chunks_per_s": round(chunks / encode_s, 2),
                "encode_only_mb_per_s": round(chunk_mb / encode_s, 4),
                "overhead_ratio": round(pipeline_s / encode_s, 3),
                "per_domain": per_domain,
                "torch_threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
