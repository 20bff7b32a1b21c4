"""Embedded model server speed and memory: start-up, prompt (prefill) and generation tokens/s, RSS.

Measures the bundled GGUF as shipped (Q4_1) and the Q8_0 copy the servers load (`q8_copy`), one after
the other. Prints one JSON object. Run on an idle machine: llama.cpp slows about 5x when another
process holds a core.

    .venv/bin/python benchmarks/bench_local_model.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import openai
import psutil

from triptych.llm.server import LocalModelServer, ServerSpec, bundled_model_path, q8_copy

REPS = int(os.environ.get("BENCH_REPS", "3"))
LONG_PROMPT = " ".join(["The quarterly report lists revenue, costs and headcount for each region."] * 40)


def measure(path: Path) -> dict:
    """Start-up, median prompt and generation tokens/s and peak RSS of a server of `path`."""
    spec = ServerSpec(path, "bench", n_threads=os.cpu_count() or 2, n_ctx=2048)
    t0 = time.perf_counter()
    server = LocalModelServer(spec).start()
    ready_s = time.perf_counter() - t0
    client = openai.OpenAI(base_url=server.base_url, api_key="unused")
    proc = psutil.Process(server.pid)
    prefill, gen, peak = [], [], proc.memory_info().rss
    try:
        for i in range(REPS):
            # prefill: a long prompt, one token out (a different prompt each time: no prompt cache)
            t = time.perf_counter()
            r = client.chat.completions.create(
                model="bench", max_tokens=1, temperature=0, messages=[{"role": "user", "content": f"{i} {LONG_PROMPT}"}]
            )
            prefill.append(r.usage.prompt_tokens / (time.perf_counter() - t))
            # generation: a short prompt, many tokens out, timed from the first streamed token
            stream = client.chat.completions.create(
                model="bench",
                max_tokens=128,
                temperature=0,
                stream=True,
                messages=[{"role": "user", "content": f"Write a long story about a lighthouse keeper, part {i}."}],
            )
            first, n = None, 0
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    n += 1
                    first = first or time.perf_counter()
            if first and n > 1:
                gen.append((n - 1) / (time.perf_counter() - first))
            peak = max(peak, proc.memory_info().rss)
    finally:
        server.stop()
    return {
        "model": spec.model_path.name, "file_mb": round(path.stat().st_size / 1e6, 1), "threads": spec.n_threads,
        "ready_s": round(ready_s, 2), "prompt_tok_per_s_median": round(statistics.median(prefill), 1),
        "generation_tok_per_s_median": round(statistics.median(gen), 1),
        "server_rss_mb_peak": round(peak / 2**20, 1),
    }  # fmt: skip


def main() -> None:
    shipped = bundled_model_path()
    with tempfile.TemporaryDirectory(prefix="triptych-bench-q8-") as tmp:
        t = time.perf_counter()
        copy = q8_copy(shipped, Path(tmp))
        made_s = time.perf_counter() - t
        models = [measure(shipped), {**measure(copy), "made_in_s": round(made_s, 2)}]
    load = os.getloadavg()[0]
    print(json.dumps({"benchmark": "local_model", "reps": REPS, "models": models, "load_average_1m": load}))


if __name__ == "__main__":
    main()
