"""Measured cost figures of one domain, priced with the configured prices: what the cost card and chart show.

Per question, from the domain's newest evaluation run and its comparison history (answers that came
back, made with the endpoint configured now): a remote endpoint's mean prompt and completion tokens x
its PRICE_IN/OUT_PER_1K; a local one's mean CPU seconds (what the model servers used for the answer)
x TRIPTYCH_COST_MACHINE_USD_PER_HOUR / TRIPTYCH_COST_MACHINE_VCPUS, or, where no answer recorded its
CPU time (older records), its mean busy seconds (total time less the wait in the local model's queue)
x TRIPTYCH_COST_MACHINE_USD_PER_HOUR. One-off: the index build (seconds per chunk
measured by ingestion, recorded here, x the chunks the index holds now) and the active adapter's
training (its run's wall time, or a hosted job's trained tokens x TRIPTYCH_COST_HOSTED_TRAINING_USD_PER_1K).
A figure that was never measured is said to be "not recorded"; its pipeline is left off the chart.
Each break-even is said in questions and in questions a day: the one-offs spread over
TRIPTYCH_COST_HORIZON_DAYS (an index or adapter is rebuilt about that often).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych import costs
from triptych.costs import BreakEven, CostLine
from triptych.jsonl import read_jsonl
from triptych.settings import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from triptych.ingest import IngestReport

log = logging.getLogger(__name__)

COSTS_DIR = "costs"
BUILDS_FILE = "index_builds.jsonl"
OTHER = "other endpoint"


def builds_path(settings: Settings) -> Path:
    """Where index builds are recorded: TRIPTYCH_DATA_DIR/costs/index_builds.jsonl."""
    return settings.data_dir / COSTS_DIR / BUILDS_FILE


def record_index_build(settings: Settings, report: IngestReport, cpu_s: float | None = None) -> None:
    """Append one ingestion batch that stored chunks (wall time, chunks, and the CPU time of the process
    meanwhile, `cpu_s`, when known); never fails the ingestion.
    """
    if not report.chunks:
        return
    line = {
        "domain": report.domain,
        "embedding_model": report.embedding_model,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(report.seconds, 3),
        "cpu_s": None if cpu_s is None else round(cpu_s, 3),
        "chunks": report.chunks,
        "files": len(report.stored),
    }
    path = builds_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    except OSError as exc:
        log.warning("could not record the index build time in %s: %s", path, exc)


def index_builds(settings: Settings, domain: str) -> list[dict[str, Any]]:
    """The recorded builds of a domain's index for the configured embedding model, oldest first."""
    path = builds_path(settings)
    if not path.is_file():
        return []
    return [
        b
        for _, b in read_jsonl(path)
        if isinstance(b, dict) and b.get("domain") == domain and b.get("embedding_model") == settings.embedding_model
    ]


@dataclass(frozen=True)
class PerQuestion:
    """One pipeline's measured cost of a question: means over `n` answers, priced by tokens, CPU or machine time."""

    pipeline: str
    label: str
    local: bool  # priced by machine time, else by tokens
    n: int
    from_eval: int
    from_history: int
    prompt_tokens: float | None
    completion_tokens: float | None
    busy_s: float | None
    usd: float | None  # None: nothing measured
    other_endpoint: int = 0  # answers left out: made with another endpoint than the one configured now
    cpu_s: float | None = None  # local: the mean CPU seconds it was priced by; None: priced by busy seconds
    no_cpu: int = 0  # local answers left out: without CPU time, where others of the pipeline have it

    @property
    def basis(self) -> str:
        """How the figure was priced, for the card."""
        if self.usd is None:
            return "not recorded"
        if self.local and self.cpu_s is not None:
            return f"{self.cpu_s:.2f} CPU-s"
        if self.local:
            return f"{self.busy_s:.2f} s of machine time (CPU time not recorded)"
        return f"{self.prompt_tokens:.0f} prompt + {self.completion_tokens:.0f} completion tokens"


@dataclass(frozen=True)
class OneOff:
    """A cost paid once before the first answer; `usd` None when it was never measured."""

    what: str
    usd: float | None
    detail: str


@dataclass
class DomainCosts:
    """Everything the cost card and chart show for one domain."""

    domain: str
    per_question: dict[str, PerQuestion]
    one_off: dict[str, list[OneOff]]  # per pipeline, the one-offs it needs
    lines: list[CostLine]
    crossings: list[BreakEven]
    eval_run: str | None
    machine_usd_per_hour: float
    machine_vcpus: int  # a local answer's CPU second costs 1/machine_vcpus of a machine second
    horizon_days: int  # the one-offs are spread over these days: each crossing is also said a day
    notes: list[str] = field(default_factory=list)

    @property
    def axis_questions(self) -> float:
        """Where the chart's question axis ends."""
        return costs.questions_axis(self.crossings)

    def sentences(self) -> list[str]:
        """The break-even points in words, fewest questions first."""
        return [crossing_sentence(be, self.per_question, self.horizon_days) for be in self.crossings]


def crossing_sentence(be: BreakEven, measured: dict[str, PerQuestion], horizon_days: int) -> str:
    """'RAG's longer prompts cost more than Fine-tuned after about 440 questions (about 15 a day over 30 days): ...'.

    The questions a day are those that reach the crossing within `horizon_days`, the days the one-off is spread over.
    """
    dear, cheap = be.cheaper_first, be.cheaper_after
    md, mc = measured.get(dear.pipeline), measured.get(cheap.pipeline)
    reason = why_dearer(md, mc) if md and mc else "answers"
    saved = dear.per_question_usd - cheap.per_question_usd
    return (
        f"{dear.label}'s {reason} cost more than {cheap.label} after about {costs.about(be.questions)} questions "
        f"({costs.daily(be.questions, horizon_days)}): {cheap.label}'s one-off {costs.usd(cheap.one_off_usd)} "
        f"is paid back at {costs.usd(saved)} saved per question."
    )


def why_dearer(dear: PerQuestion, cheap: PerQuestion) -> str:
    """What the sentence blames for `dear`'s higher cost per question, by the basis it was priced on.

    Tokens: longer prompts. CPU seconds (both priced by them): CPU-heavier answers. Busy seconds (both
    priced by them): slower answers. Anything else, or no such difference: just "answers".
    """
    if not dear.local and (dear.prompt_tokens or 0) > (cheap.prompt_tokens or 0):
        return "longer prompts"
    if dear.cpu_s is not None and cheap.cpu_s is not None:
        return "CPU-heavier answers" if dear.cpu_s > cheap.cpu_s else "answers"
    both_by_busy_time = dear.local and cheap.local and dear.cpu_s is None and cheap.cpu_s is None
    if both_by_busy_time and (dear.busy_s or 0) > (cheap.busy_s or 0):
        return "slower answers"
    return "answers"


# --- per question ---------------------------------------------------------------------------------


def _same_endpoint(snapshot: dict[str, Any] | None, settings: Settings, endpoint: str) -> bool:
    """Whether answers made under `snapshot` used the endpoint configured now (True when the snapshot lacks it)."""
    then = (snapshot or {}).get(endpoint)
    if not isinstance(then, dict):
        return True
    now = settings.endpoint(endpoint)
    return then.get("model") == now.model and (then.get("base_url") or None) == (now.base_url or None)


def _answer_rows(settings: Settings, domain: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """(origin, answer) pairs that came back: the newest evaluation run of the domain, then its history.

    The origin is "eval" or "history", or "other endpoint" for an answer made with another endpoint
    than the pipeline's configured one now (its figures say nothing about today's bill).
    """
    from graphs.registry import PIPELINES
    from triptych.evaluate.store import RunNotFoundError, list_runs, load_run
    from triptych.history import list_history

    rows: list[tuple[str, dict[str, Any]]] = []
    eval_run = None
    runs = [r for r in list_runs(settings) if r.domain == domain]
    loaded = None
    for run in runs:  # the newest run that can be read
        try:
            loaded, eval_run = load_run(settings, run.run_id), run.run_id
            break
        except (RunNotFoundError, OSError, ValueError) as exc:
            log.warning("evaluation run %s is unreadable, skipped for costs: %s", run.run_id, exc)
    if loaded is not None:
        snapshot = loaded.manifest.get("settings")
        for a in loaded.answers:
            spec = PIPELINES.get(a.get("pipeline", ""))
            if spec and a.get("status") == "ok":
                rows.append(("eval" if _same_endpoint(snapshot, settings, spec.endpoint) else OTHER, a))
    for record in list_history(settings):
        if record.domain != domain:
            continue
        for pid, result in record.results.items():
            spec = PIPELINES.get(pid)
            answered = not result.error and (result.answer or not result.notice)
            if spec and answered:
                same = _same_endpoint(record.settings, settings, spec.endpoint)
                rows.append(("history" if same else OTHER, result.to_dict()))
    return rows, eval_run


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def per_question(settings: Settings, domain: str) -> tuple[dict[str, PerQuestion], str | None]:
    """Each measured pipeline's cost of one question, and the evaluation run the answers came from."""
    from graphs.registry import PIPELINES

    rows, eval_run = _answer_rows(settings, domain)
    out: dict[str, PerQuestion] = {}
    for pid, spec in PIPELINES.items():
        mine = [(origin, a) for origin, a in rows if a.get("pipeline") == pid]
        if not mine:
            continue
        endpoint = settings.endpoint(spec.endpoint)
        needed = "total_s" if endpoint.is_local else "prompt_tokens"
        used = [(origin, a) for origin, a in mine if origin != OTHER and a.get(needed) is not None]
        # A local pipeline is priced by CPU seconds where its answers recorded them (the others are left out),
        # else (older records, several generations at once) by busy seconds.
        metered = [(origin, a) for origin, a in used if a.get("cpu_s") is not None] if endpoint.is_local else []
        no_cpu = len(used) - len(metered) if metered else 0
        used = metered or used
        busy = [max(0.0, a["total_s"] - (a.get("queued_s") or 0.0)) for _, a in used] if endpoint.is_local else []
        cpu = _mean([float(a["cpu_s"]) for _, a in metered])
        tokens_in = _mean([float(a["prompt_tokens"]) for _, a in used if a.get("prompt_tokens") is not None])
        tokens_out = _mean([float(a["completion_tokens"]) for _, a in used if a.get("completion_tokens") is not None])
        price: float | None = None
        if cpu is not None:
            price = costs.cpu_cost(cpu, settings.cost_machine_usd_per_hour, settings.cost_machine_vcpus)
        elif used and endpoint.is_local:
            price = costs.machine_cost(sum(busy) / len(busy), settings.cost_machine_usd_per_hour)
        elif used:
            price = costs.token_cost(tokens_in or 0.0, tokens_out or 0.0, endpoint.price_in_per_1k,
                                     endpoint.price_out_per_1k)  # fmt: skip
        out[pid] = PerQuestion(
            pipeline=pid,
            label=spec.label,
            local=endpoint.is_local,
            n=len(used),
            from_eval=sum(1 for o, _ in used if o == "eval"),
            from_history=sum(1 for o, _ in used if o == "history"),
            prompt_tokens=tokens_in,
            completion_tokens=tokens_out,
            busy_s=_mean(busy),
            usd=price,
            other_endpoint=sum(1 for o, _ in mine if o == OTHER),
            cpu_s=cpu,
            no_cpu=no_cpu,
        )
    return out, eval_run


# --- one-off --------------------------------------------------------------------------------------


def index_one_off(settings: Settings, domain: str, *, client: ClientAPI | None = None) -> OneOff:
    """The index build: measured seconds per chunk x the chunks the index holds now, at the machine price."""
    builds = index_builds(settings, domain)
    if not builds:
        return OneOff(
            "index build",
            None,
            f"not recorded: no build of {domain}'s index was timed (indexes built before timing was kept); "
            f"`triptych index delete {domain}` then `triptych ingest ... --domain {domain}` measures one",
        )
    seconds = sum(float(b["seconds"]) for b in builds)
    chunks = sum(int(b["chunks"]) for b in builds)
    cpu = [float(b["cpu_s"]) for b in builds if b.get("cpu_s") is not None]
    cpu_note = f"; {sum(cpu):.1f} s of CPU time over the recorded builds" if cpu else ""
    now = _chunks_now(settings, domain, client)
    held = now if now is not None else chunks
    build_s = seconds / chunks * held
    where = f"{held} chunks in the index now" if now is not None else f"{chunks} chunks built (index not readable now)"
    return OneOff(
        "index build",
        costs.machine_cost(build_s, settings.cost_machine_usd_per_hour),
        f"{build_s:.1f} s of machine time: {seconds:.1f} s for {chunks} chunks in {len(builds)} timed "
        f"build{'s' if len(builds) != 1 else ''} ({1000 * seconds / chunks:.0f} ms a chunk), {where}{cpu_note}",
    )


def _chunks_now(settings: Settings, domain: str, client: ClientAPI | None) -> int | None:
    from triptych.index import open_index

    try:
        return open_index(settings, domain, client=client).count_chunks()
    except Exception:  # noqa: BLE001 - no index, or Chroma unreachable: fall back to the recorded chunks
        return None


def finetune_one_off(settings: Settings, domain: str, *, passages_first: bool = False) -> OneOff:
    """The active adapter's training: a local run's wall time at the machine price, a hosted job's tokens x price.

    With `passages_first` (the hybrid column), the adapter that column answers with: the with-passages one if any.
    """
    from graphs.registry import NotFineTuned, local_adapter
    from triptych.finetune import registry

    endpoint = settings.finetuned
    if endpoint.is_local:
        try:
            adapter = local_adapter(settings, domain, passages_first=passages_first)
        except NotFineTuned:
            adapter = None
        info = registry.read_run(settings, adapter.run_id) if adapter else None
        if not adapter or not info:
            return OneOff("fine-tuning", None, f"not recorded: {domain} has no trained adapter yet")
        training = info.get("training") or {}
        scoring = float(info.get("eval_before_s") or 0) + float(info.get("eval_after_s") or 0)
        if info.get("wall_s") is not None:
            seconds = max(0.0, float(info["wall_s"]) - scoring)
            how = f"run {adapter.run_id}: {float(info['wall_s']):.0f} s wall time" + (
                f" less {scoring:.0f} s of scoring before and after" if scoring else ""
            )
        elif training.get("wall_s") is not None:
            seconds = float(training["wall_s"])
            how = f"run {adapter.run_id}: {seconds:.0f} s of training"
        else:
            return OneOff("fine-tuning", None, f"not recorded: run {adapter.run_id} kept no wall time")
        steps = training.get("steps")
        if steps and training.get("s_per_step"):
            how += f" ({steps} steps at {training['s_per_step']:.2f} s a step)"
        return OneOff("fine-tuning", costs.machine_cost(seconds, settings.cost_machine_usd_per_hour), how)
    if endpoint.provider.name == "openai":
        hosted = [r for r in registry.list_runs(settings) if r.domain == domain and r.kind == "openai" and r.active]
        tokens = hosted[-1].info.get("trained_tokens") if hosted else None
        if not tokens:
            return OneOff("fine-tuning", None, f"not recorded: no finished hosted job for {domain} reports its tokens")
        price = settings.cost_hosted_training_usd_per_1k
        return OneOff(
            "fine-tuning",
            tokens / 1000 * price,
            f"hosted job of run {hosted[-1].run_id}: {tokens:,} trained tokens at {costs.usd(price)} per 1K",
        )
    return OneOff("fine-tuning", None, f"not recorded: {endpoint.model} serves its own fine-tuned model")


def domain_costs(settings: Settings, domain: str, *, client: ClientAPI | None = None) -> DomainCosts:
    """The domain's measured costs, its cost lines (pipelines with every figure measured) and their crossings."""
    from graphs.registry import PIPELINES

    measured, eval_run = per_question(settings, domain)
    index = None
    ft: dict[bool, OneOff] = {}  # by passages_first: the hybrid may answer with another adapter
    one_off: dict[str, list[OneOff]] = {}
    notes: list[str] = []
    lines: list[CostLine] = []
    for pid, pq in measured.items():
        spec = PIPELINES[pid]
        needs: list[OneOff] = []
        if spec.uses_retrieval:
            index = index or index_one_off(settings, domain, client=client)
            needs.append(index)
        if spec.uses_adapter:
            if spec.passages_first not in ft:
                ft[spec.passages_first] = finetune_one_off(settings, domain, passages_first=spec.passages_first)
            needs.append(ft[spec.passages_first])
        one_off[pid] = needs
        missing = [o.what for o in needs if o.usd is None]
        if pq.usd is None or missing:
            what = ", ".join(missing + (["cost per question"] if pq.usd is None else []))
            verb = "are" if "," in what else "is"
            notes.append(f"{pq.label} is left off the chart: its {what} {verb} not recorded.")
            continue
        lines.append(CostLine(pid, pq.label, sum(o.usd or 0.0 for o in needs), pq.usd))
    for pid, pq in measured.items():
        endpoint = settings.endpoint(PIPELINES[pid].endpoint)
        if pq.other_endpoint:
            notes.append(
                f"{pq.label}: {pq.other_endpoint} answers made with another endpoint than {endpoint.model} are "
                "not counted; ask again (or evaluate) to measure this one."
            )
        if pq.no_cpu:
            notes.append(
                f"{pq.label}: priced by the CPU time of the {pq.n} answers that recorded it; {pq.no_cpu} without it "
                "(made before it was recorded, or with TRIPTYCH_LOCAL_CONCURRENCY above 1) are not counted."
            )
        if not pq.local and endpoint.price_in_per_1k == 0 and endpoint.price_out_per_1k == 0:
            var = f"TRIPTYCH_{PIPELINES[pid].endpoint.upper()}__PRICE_IN_PER_1K / __PRICE_OUT_PER_1K"
            notes.append(f"{pq.label}'s endpoint ({endpoint.model}) has no price: set {var}.")
    if lines and all(line.one_off_usd == 0 and line.per_question_usd == 0 for line in lines):
        notes.append(
            "Every cost is zero at the configured prices: set TRIPTYCH_COST_MACHINE_USD_PER_HOUR and the "
            "endpoints' PRICE_IN/OUT_PER_1K."
        )
    return DomainCosts(
        domain=domain,
        per_question=measured,
        one_off=one_off,
        lines=lines,
        crossings=costs.break_evens(lines),
        eval_run=eval_run,
        machine_usd_per_hour=settings.cost_machine_usd_per_hour,
        machine_vcpus=settings.cost_machine_vcpus,
        horizon_days=settings.cost_horizon_days,
        notes=notes,
    )
