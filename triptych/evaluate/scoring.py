"""Scores for one answer (a line of answers.jsonl) and the per-pipeline summary of a run.

An answer's `scores` (None where a score does not apply):
    em, f1, contains   text match against `answer` + `alt_answers` (answerable questions); these and the
                       next two read the answer without its citation marks ("4 [6]" does not say 6)
    numeric            a number in the answer equals the numeric gold answer (numeric golds only)
    yes_no             the answer starts with the expected Yes/No (AWS yes/no questions only)
    refused            the answer declines (metrics.is_refusal)
    correct            answerable: em or contains or numeric or yes_no; unanswerable: refused
    hit@1, hit@3, hit@5  a gold document holds one of the first k chunks retrieved for the question
                       (the RAG pipelines' retriever, searched 5 deep with its minimum score;
                       retrieval pipelines only)
    source_hit         a gold document among the sources the model was given
    cited              the answer cites at least one given source as [n]
    cited_holds_answer a cited source holds a gold answer (or overlaps the gold span); None if none cited
An error scores as a wrong answer; an unavailable pipeline (e.g. not fine-tuned yet) is not scored.

Each wrong answer also gets one `miss_cause` (MISS_CAUSES; None when right or not scored), and a
pipeline served by a fine-tuned adapter has its summary split by `seen_in_training` (`by_training`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from graphs.registry import PIPELINES
from triptych.evaluate import metrics
from triptych.evaluate.uncertainty import wilson_interval
from triptych.qa import QARecord

HIT_KS = (1, 3, 5)

# Why an answer is wrong, one cause each (see `miss_cause`), in the order charts stack them.
MISS_CAUSES = ("retrieval miss", "read miss", "refused", "unseen fact", "seen but wrong", "wrong",
               "should have refused", "error")  # fmt: skip


def answer_spans(record: QARecord) -> list[str]:
    """The pieces of a multi-span answer (empty for single answers)."""
    spans = record.extra.get("answer_list")
    return [str(s) for s in spans] if isinstance(spans, list) and len(spans) > 1 else []


def score_answer(
    record: QARecord,
    *,
    status: str,
    answer: str,
    sources: Sequence[dict[str, Any]] = (),
    retrieved_docs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """All scores of one pipeline's answer to one gold question (see the module docstring)."""
    if status == "unavailable":
        return {"correct": None}
    golds = record.gold_answers
    spans = answer_spans(record)
    scale = str(record.extra.get("scale") or "")
    refused = metrics.is_refusal(answer) if status == "ok" else False
    scores: dict[str, Any] = {"refused": refused}
    if record.answerable:
        said = metrics.without_citations(answer)  # "4 [6]" does not say 6
        numeric = (
            metrics.spans_numeric_match(said, spans, scale) if spans else metrics.numeric_match(said, golds, scale)
        )
        yes_no = record.extra.get("yes_no_answer")
        scores |= {
            "em": metrics.exact_match(said, golds),
            "f1": round(metrics.token_f1(said, golds), 4),
            "contains": metrics.contains(said, golds, spans),
            "numeric": numeric,
            "yes_no": metrics.yes_no_match(said, str(yes_no) if yes_no else None),
        }
        scores["correct"] = status == "ok" and any(scores[k] for k in ("em", "contains", "numeric", "yes_no"))
    else:
        scores["correct"] = status == "ok" and refused
    if retrieved_docs is not None:
        for k in HIT_KS:
            scores[f"hit@{k}"] = metrics.hit_at(retrieved_docs, record.doc_ids, k)
    if sources or retrieved_docs is not None:
        given = metrics.ranked_documents(str(s["doc_id"]) for s in sources)
        scores["source_hit"] = metrics.hit_at(given, record.doc_ids, len(given)) if given else False
        if not record.doc_ids:
            scores["source_hit"] = None
        by_n = {int(s["n"]): s for s in sources}
        cited = [by_n[n] for n in metrics.cited_numbers(answer) if n in by_n]
        scores["cited"] = bool(cited)
        span = record.extra.get("answer_span")
        scores["cited_holds_answer"] = (
            any(
                metrics.source_holds_answer(
                    str(s["text"]),
                    golds,
                    span=span if isinstance(span, dict) else None,
                    doc_id=str(s["doc_id"]),
                    start=int(s.get("start", 0)),
                    end=int(s.get("end", 0)),
                )
                for s in cited
            )
            if cited and record.answerable
            else None
        )
    return scores


def miss_cause(
    record: QARecord,
    *,
    uses_retrieval: bool,
    uses_adapter: bool,
    status: str,
    scores: dict[str, Any],
    sources: Sequence[dict[str, Any]] = (),
    seen_in_training: bool | None = None,
) -> str | None:
    """Why an answer is wrong (None when it is right or was not scored), one of MISS_CAUSES.

    error: the pipeline failed. should have refused: an unanswerable question got an answer. Then, for
    retrieval pipelines: refused (it declined), retrieval miss (no chunk it was given holds a gold
    answer, by metrics.source_holds_answer: whole-word normalised match, number or gold span), read
    miss (a chunk held it, the answer is still wrong). Fine-tuned without retrieval: unseen fact or
    seen but wrong (by `seen_in_training`; wrong when that is not known). Others: refused or wrong.
    """
    if status == "unavailable" or scores.get("correct") is not False:
        return None
    if status == "error":
        return "error"
    if not record.answerable:
        return "should have refused"
    if uses_retrieval:
        if scores.get("refused"):
            return "refused"
        span = record.extra.get("answer_span")
        held = any(
            metrics.source_holds_answer(
                str(s.get("text", "")),
                record.gold_answers,
                span=span if isinstance(span, dict) else None,
                doc_id=str(s.get("doc_id", "")),
                start=int(s.get("start", 0)),
                end=int(s.get("end", 0)),
            )
            for s in sources
        )
        return "read miss" if held else "retrieval miss"
    if uses_adapter:
        return {True: "seen but wrong", False: "unseen fact"}.get(seen_in_training, "wrong")  # type: ignore[arg-type]
    return "refused" if scores.get("refused") else "wrong"


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0-1) by linear interpolation between the nearest ranks; None for no values."""
    vals = sorted(values)
    if not vals:
        return None
    pos = q * (len(vals) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def timing(values: Iterable[float | None]) -> dict[str, float | None]:
    """median, p95 and mean of the values that are set (seconds, 3 decimals)."""
    vals = [v for v in values if v is not None]
    out = {
        "median": statistics.median(vals) if vals else None,
        "p95": percentile(vals, 0.95),
        "mean": statistics.fmean(vals) if vals else None,
    }
    return {k: round(v, 3) if v is not None else None for k, v in out.items()}


JUDGE_POINTS = {"correct": 1.0, "partially": 0.5, "wrong": 0.0}


def summarize_pipeline(answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of one pipeline over its answers (the `metrics.<pipeline>` object of summary.json)."""
    scored = [a for a in answers if a["status"] != "unavailable"]
    ok = [a for a in scored if a["status"] == "ok"]
    answerable = [a for a in scored if a["answerable"]]
    unanswerable = [a for a in scored if not a["answerable"]]

    def mean_of(rows: Sequence[dict[str, Any]], key: str) -> float | None:
        return _mean(r["scores"].get(key) for r in rows)

    judged = [a["judge"]["verdict"] for a in scored if a.get("judge") and a["judge"].get("verdict") in JUDGE_POINTS]
    by_type: dict[str, dict[str, Any]] = {}
    for answer_type in sorted({a["answer_type"] for a in scored}):
        rows = [a for a in scored if a["answer_type"] == answer_type]
        by_type[answer_type] = {
            "questions": len(rows),
            "correct": mean_of(rows, "correct"),
            "contains": mean_of(rows, "contains"),
            "f1": mean_of(rows, "f1"),
        }
    right = sum(bool(a["scores"].get("correct")) for a in scored)
    interval = wilson_interval(right, len(scored))
    causes = [a.get("miss_cause", "not recorded") for a in scored if a["scores"].get("correct") is False]
    return {
        "questions": len(answers),
        "scored": len(scored),
        "correct_ci95": [round(interval[0], 4), round(interval[1], 4)] if interval else None,
        "miss_causes": {c: causes.count(c) for c in (*MISS_CAUSES, "not recorded") if c in causes},
        "answered": len(ok),
        "errors": sum(a["status"] == "error" for a in answers),
        # answers the model did not finish (token limit, stream stopped): scored as given, never hidden
        "cut_short": sum(bool(a.get("cut_short")) for a in scored),
        "unavailable": sum(a["status"] == "unavailable" for a in answers),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "correct": mean_of(scored, "correct"),
        "exact_match": mean_of(answerable, "em"),
        "f1": mean_of(answerable, "f1"),
        "contains": mean_of(answerable, "contains"),
        "numeric": mean_of(answerable, "numeric"),
        "numeric_questions": sum(a["scores"].get("numeric") is not None for a in answerable),
        "yes_no": mean_of(answerable, "yes_no"),
        "refusal_accuracy": mean_of(unanswerable, "refused"),
        "false_refusal_rate": mean_of(answerable, "refused"),
        **{f"hit@{k}": mean_of(scored, f"hit@{k}") for k in HIT_KS},
        "source_hit": mean_of(scored, "source_hit"),
        "citation_rate": mean_of([a for a in ok if a["answerable"]], "cited"),
        "cited_holds_answer": mean_of(scored, "cited_holds_answer"),
        "ttft_s": timing(a.get("ttft_s") for a in ok),
        "total_s": timing(a.get("total_s") for a in ok),
        # Latency as seen includes waiting for the shared local model behind the other pipelines of the
        # same question; "own" is what the pipeline took once it had the model.
        "queued_s": timing(a.get("queued_s") or 0.0 for a in ok),
        "own_ttft_s": timing(_minus_queue(a, "ttft_s") for a in ok),
        "own_total_s": timing(_minus_queue(a, "total_s") for a in ok),
        "prompt_tokens_mean": _mean(a.get("prompt_tokens") for a in ok),
        "completion_tokens_mean": _mean(a.get("completion_tokens") for a in ok),
        "tokens_total": sum((a.get("prompt_tokens") or 0) + (a.get("completion_tokens") or 0) for a in ok),
        "cost_usd_total": round(sum(a.get("cost_usd") or 0.0 for a in ok), 6),
        "cost_usd_per_answer": round(sum(a.get("cost_usd") or 0.0 for a in ok) / len(ok), 6) if ok else None,
        "judge": {
            "judged": len(judged),
            **{v: judged.count(v) for v in JUDGE_POINTS},
            "score": round(sum(JUDGE_POINTS[v] for v in judged) / len(judged), 4) if judged else None,
        }
        if judged
        else None,
        "by_answer_type": by_type,
    }


def _minus_queue(answer: dict[str, Any], key: str) -> float | None:
    value = answer.get(key)
    return None if value is None else max(0.0, value - (answer.get("queued_s") or 0.0))


def uses_adapter(pipeline: str) -> bool:
    """The pipeline answers with a domain's fine-tuned model (its scores are split seen / unseen)."""
    spec = PIPELINES.get(pipeline)
    return bool(spec and spec.uses_adapter)


def by_training(answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An adapter pipeline's metrics on questions unseen and seen in training, and how many are not known.

    `unseen` is the honest figure: a fine-tuned model answering a question it was trained on recalls it.
    """
    scored = [a for a in answers if a["status"] != "unavailable"]
    return {
        "adapter_runs": sorted({a["adapter_run"] for a in scored if a.get("adapter_run")}),
        "unseen": summarize_pipeline([a for a in scored if a.get("seen_in_training") is False]),
        "seen": summarize_pipeline([a for a in scored if a.get("seen_in_training") is True]),
        "not_recorded": sum(a.get("seen_in_training") is None for a in scored),
    }


def summarize(answers: Sequence[dict[str, Any]], pipelines: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`summarize_pipeline` for each pipeline, in the order given; adapter pipelines add `by_training`."""
    out = {}
    for p in pipelines:
        rows = [a for a in answers if a["pipeline"] == p]
        out[p] = summarize_pipeline(rows)
        if uses_adapter(p):
            out[p]["by_training"] = by_training(rows)
    return out
