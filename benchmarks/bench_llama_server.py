"""Today's server against llama.cpp's own `llama-server` with continuous batching, on one demo question's three columns.

Today each column's generation waits its turn on a `llama_cpp.server` process (one request at a
time). llama.cpp's `llama-server` decodes several requests at once (`--parallel N`), so the three
columns could stream together. This benchmark measures both on the exact messages the pipelines
send for N demo test questions (RAG's retrieved passages included; the fine-tuned column's messages
on the base model, as the adapter's cost is small next to decoding): each column's time to first
token from the moment all three are sent, the time to the last answer, tokens generated, and the
servers' resident memory. Designs alternate from question to question. Prints one JSON object.

`llama-server` is not in llama-cpp-python's wheel; build it from the llama.cpp that
llama-cpp-python's sdist vendors:

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 && tar xzf llama_cpp_python-0.3.36.tar.gz
    cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B build -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \\
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON
    cmake --build build --target llama-server
    .venv/bin/python benchmarks/bench_llama_server.py --llama-server build/bin/llama-server --questions 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai
import psutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphs.compare import Comparison  # noqa: E402
from graphs.context import load_prompt  # noqa: E402
from triptych.index import chroma_client  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.llm.server import LocalModels, free_port  # noqa: E402
from triptych.qa import domain_qa  # noqa: E402
from triptych.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


async def three_at_once(base_url: str, model: str, columns: dict[str, list[dict]], max_tokens: int) -> dict:
    """Send every column's request at the same moment; each one's ttft and end, from that moment."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", timeout=600)
    t0 = time.perf_counter()

    async def one(messages: list[dict]) -> dict:
        ttft, pieces, finish = None, 0, None
        stream = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=0, stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                ttft = ttft if ttft is not None else time.perf_counter() - t0
                pieces += 1
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        return {"ttft_s": ttft, "end_s": time.perf_counter() - t0, "tokens": pieces, "finish": finish}

    results = await asyncio.gather(*(one(m) for m in columns.values()))
    await client.close()
    return dict(zip(columns, results, strict=True))


def rss_mib(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def start_llama_server(
    binary: Path, model: Path, parallel: int, threads: int, n_ctx: int
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
           "-tb", str(threads), "-c", str(n_ctx * parallel), "--parallel", str(parallel), "--cont-batching",
           "--alias", "smollm2", "--no-webui"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, f"{url}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"llama-server did not come up: {' '.join(cmd)}")


def summary(runs: list[dict]) -> dict:
    def med(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    columns = runs[0]["columns"].keys()
    return {
        "last_answer_s": med([r["last_s"] for r in runs]),
        "ttft_s": {c: med([r["columns"][c]["ttft_s"] for r in runs]) for c in columns},
        "tokens": {c: med([r["columns"][c]["tokens"] for r in runs]) for c in columns},
        "rss_mib": round(max(r["rss_mib"] for r in runs)),
        "n": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-server", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--domain", default="hr_handbook")
    parser.add_argument("--parallel", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        settings = Settings(_env_file=None, chroma_path=Path(tmp) / "idx", data_dir=Path(tmp) / "data")  # type: ignore[call-arg]
        ingest_paths(settings, args.domain, [REPO / "corpora" / args.domain / "docs"], client=chroma_client(settings))
        models = LocalModels(settings)
        runner = Comparison(settings, models)
        questions = [r.question for r in domain_qa(REPO / "corpora", args.domain, "test") if r.answerable]
        finetuned_system = load_prompt("finetuned_system", settings.prompts_dir)
        today_server = models.base()
        llama, llama_url = start_llama_server(
            args.llama_server, models.model_path(), args.parallel, settings.local_threads, settings.local_n_ctx
        )
        runs: dict[str, list[dict]] = {"llama_cpp_server_queued": [], "llama_server_parallel": []}
        try:
            for i, question in enumerate(questions[: args.questions]):
                results = runner.run(question, args.domain, ["prompt", "rag"])
                columns = {
                    "prompt": results["prompt"].messages,
                    "rag": results["rag"].messages,
                    "finetuned": [{"role": "system", "content": finetuned_system},
                                  {"role": "user", "content": question}],
                }  # fmt: skip
                designs = list(runs)
                for design in designs if i % 2 == 0 else designs[::-1]:
                    if design == "llama_server_parallel":
                        out = asyncio.run(three_at_once(llama_url, "smollm2", columns, settings.max_tokens))
                        rss = rss_mib(llama.pid)
                    else:  # today: one request at a time on llama_cpp.server, as the queue sends them
                        out, t0 = {}, time.perf_counter()
                        for name, messages in columns.items():
                            one = asyncio.run(three_at_once(today_server.base_url, today_server.spec.alias,
                                                            {name: messages}, settings.max_tokens))[name]  # fmt: skip
                            offset = time.perf_counter() - t0 - one["end_s"]  # when this one was sent
                            out[name] = {**one, "ttft_s": one["ttft_s"] + offset, "end_s": one["end_s"] + offset}
                        rss = rss_mib(today_server.pid)
                    runs[design].append({"columns": out, "last_s": max(c["end_s"] for c in out.values()),
                                         "rss_mib": rss})  # fmt: skip
        finally:
            llama.kill()
            models.close()
    report = {"benchmark": "llama_server", "domain": args.domain, "questions": len(runs["llama_server_parallel"]),
              "parallel": args.parallel, "threads": settings.local_threads, "max_tokens": settings.max_tokens,
              **{k: summary(v) for k, v in runs.items()}}  # fmt: skip
    a, b = report["llama_cpp_server_queued"]["last_answer_s"], report["llama_server_parallel"]["last_answer_s"]
    report["last_answer_sooner_pct"] = round(100 * (a - b) / a, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
