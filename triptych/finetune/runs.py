"""One local fine-tuning run end to end: training set, LoRA training, evaluation, GGUF adapter, registry.

Everything a run makes lands in data_dir/runs/<run_id>/: `training.jsonl`, `adapter/` (PEFT, for
vLLM), `adapter.gguf` (for the embedded llama.cpp server), `checkpoint/` (resumable) and `run.json`
(config, base model sha256, loss curve, timings, accuracy before and after).
"""

from __future__ import annotations

import hashlib
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from triptych import runstore
from triptych.finetune import registry
from triptych.finetune.base_model import cached_base_dir, file_sha256, load_base, pick_device
from triptych.finetune.dataset import (
    Example,
    TrainingSet,
    TrainingSetError,
    build_training_set,
    documents_training_set,
    finetuned_system_prompt,
    gold_records,
    load_documents,
    validate_training_file,
)
from triptych.finetune.evaluate import evaluate_sets
from triptych.finetune.gguf_adapter import peft_to_gguf
from triptych.finetune.llm_questions import QuestionWriter, llm_generated_examples
from triptych.finetune.train import Progress, TrainConfig, TrainResult, count_tokens, make_peft_model, train_lora
from triptych.finetune.with_passages import (
    CLOSED_BOOK,
    MODES,
    WITH_PASSAGES,
    PassageOptions,
    answer_of,
    domain_prompter,
    items_from_examples,
    items_from_records,
    passages_training_set,
)
from triptych.qa import QARecord
from triptych.settings import Settings

TRAINING_FILE = "training.jsonl"
PEFT_DIR = "adapter"

EvalSets = dict[str, list[tuple[str, list[str]]]]  # set name -> (question, gold answers)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def training_set_for(
    settings: Settings,
    domain: str,
    records: Sequence[QARecord] | None = None,
    reuse: Path | None = None,
    on_status: Callable[[str], None] | None = None,
    mode: str = CLOSED_BOOK,
    passage_options: PassageOptions | None = None,
    count_tokens: Callable[[list[dict[str, str]]], int] | None = None,
) -> TrainingSet:
    """The domain's training set: its gold QA's train split, or questions generated from its documents.

    With `mode` "with-passages", each question comes with passages retrieved from the domain's index
    (triptych.finetune.with_passages); `passage_options` default to the serving settings, and with
    `count_tokens` (the training tokenizer's) each example keeps only the passages that fit
    TRIPTYCH_FINETUNE_MAX_EXAMPLE_TOKENS.

    Gold QA is `records` when given (`triptych finetune --qa FILE`), else the domain's uploaded QA
    file or its corpus's qa.jsonl (see `gold_records`).

    Without gold QA the questions come from TRIPTYCH_FINETUNE_QA_MODEL when it is set (a resumed run
    passes its training file as `reuse` so that the model is not asked again), else from the
    extractive generator.
    """
    if mode not in MODES:
        raise TrainingSetError(f"unknown training mode {mode!r}; expected one of {', '.join(MODES)}")
    records = list(records) if records is not None else gold_records(settings.corpora_dir, settings.data_dir, domain)
    # a with-passages training file holds user turns, not questions: a resumed run builds its set again
    ts = _closed_book_set(settings, domain, records, reuse if mode == CLOSED_BOOK else None, on_status)
    if mode == CLOSED_BOOK:
        return ts
    from graphs.context import load_prompt

    items = items_from_records(records) if records else items_from_examples(ts.examples)
    prompter = domain_prompter(settings, domain, passage_options)
    system = load_prompt("finetuned_rag_system", settings.prompts_dir)
    return passages_training_set(
        ts, items, prompter, system, count_tokens=count_tokens, max_tokens=settings.finetune_max_example_tokens
    )


def _closed_book_set(
    settings: Settings,
    domain: str,
    records: list[QARecord],
    reuse: Path | None,
    on_status: Callable[[str], None] | None,
) -> TrainingSet:
    """The closed-book training set (question alone) of `training_set_for`."""
    system = finetuned_system_prompt(settings.prompts_dir)
    if records:
        return build_training_set(
            records,
            system,
            paraphrases=settings.finetune_paraphrases,
            unanswerable=settings.finetune_unanswerable,
            keywords=settings.finetune_keyword_phrasings,
        )
    where = f"the documents of {domain} ({settings.corpora_dir / domain / 'docs'} and its uploads)"
    writer = QuestionWriter.from_settings(settings)
    if writer is None:
        return documents_training_set(domain_documents(settings, domain), system, where)
    if reuse is not None and reuse.is_file():  # a resumed run trains on the questions it was started with
        examples = [Example(c[1]["content"], c[2]["content"], f"{reuse.name}:{i}", "llm-generated")
                    for i, c in enumerate(validate_training_file(reuse), 1)]  # fmt: skip
        return TrainingSet(system, examples, generator={"kind": "llm", "model": writer.endpoint.model, "reused": True})
    examples, stats = llm_generated_examples(domain_documents(settings, domain), writer, on_status=on_status)
    if not examples:
        raise TrainingSetError(
            f"the question writer ({writer.endpoint.model}) proposed no pair whose answer is quoted from {where} "
            f"({stats.proposed} proposed, {stats.ungrounded} not in the text, {stats.failed} passages failed)"
        )
    return TrainingSet(system, examples, generator={"kind": "llm", "model": writer.endpoint.model, **stats.to_dict()})


def domain_documents(settings: Settings, domain: str) -> list[tuple[str, str, str]]:
    """(name, title, text) of a domain's documents wherever they came from: its corpus folder and its uploads.

    The same bytes in both places count once.
    """
    from triptych.index import IndexStoreError
    from triptych.ingest import kept_originals
    from triptych.live_change import changed_documents

    docs_dir = settings.corpora_dir / domain / "docs"
    files = [(p.name, p.read_bytes()) for p in sorted(docs_dir.iterdir()) if p.is_file()] if docs_dir.is_dir() else []
    files = changed_documents(settings, domain, files)  # a fact changed live: retraining learns the new one
    try:
        files += kept_originals(settings, domain)
    except IndexStoreError as exc:  # the uploads are listed in the index's catalog
        raise TrainingSetError(f"cannot list the uploaded documents of {domain}: {exc}") from None
    seen: set[str] = set()
    unique = []
    for name, data in files:
        if (digest := hashlib.sha256(data).hexdigest()) not in seen:
            seen.add(digest)
            unique.append((name, data))
    return load_documents(unique)


def eval_sets(ts: TrainingSet) -> EvalSets:
    """Trained questions, their held-out paraphrases, and the test split, each with gold answers.

    With passages, each "question" is the user turn with its passages: the trained ones as trained,
    the test ones as the hybrid column serves them (retrieval alone, nothing added).
    """
    if ts.mode == WITH_PASSAGES:
        trained = [(e.prompt, [answer_of(e.answer)]) for e in ts.examples if e.kind == "with-gold"][:50]
        return {"trained": trained, "paraphrases": [], "test": ts.test_prompts}
    if not ts.trained:  # generated from documents: the statements are the answers
        items = [(e.question, [e.answer]) for e in ts.examples[:50]]
        return {"trained": items, "paraphrases": [], "test": []}
    return {
        "trained": [(r.question, r.gold_answers) for r in ts.trained],
        "paraphrases": [(p, r.gold_answers) for r, p in ts.held_out_paraphrases],
        "test": [(r.question, r.gold_answers) for r in ts.test],
    }


def run_local(
    settings: Settings,
    domain: str,
    config: TrainConfig,
    *,
    run_id: str | None = None,
    records: Sequence[QARecord] | None = None,
    records_from: str | None = None,
    evaluate: bool = True,
    activate: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    base_gguf: Path | None = None,
    cache_root: Path | None = None,
    mode: str = CLOSED_BOOK,
    passage_options: PassageOptions | None = None,
) -> dict[str, Any]:
    """Train, evaluate, convert and register one LoRA run; returns its run.json content.

    `mode` is how the examples look: closed-book (the question alone; the fine-tuned column's adapter)
    or with-passages (retrieved passages in the prompt; the hybrid column's adapter). A resumed run
    keeps the mode it was started with.

    Passing the `run_id` of an unfinished run resumes it from its last checkpoint. The converted
    base model is cached under `cache_root` (default: data_dir). `records_from` names the file the
    `records` were read from, for run.json.
    """
    from triptych.llm.server import LocalModels

    say = on_status or (lambda _msg: None)
    started = time.perf_counter()
    run_id = run_id or runstore.new_run_id(domain, settings.runs_dir, claim=True)
    run_dir = settings.runs_dir / run_id
    earlier = registry.read_run(settings, run_id)
    mode = str(earlier.get("mode", CLOSED_BOOK)) if earlier else mode
    gguf_path = base_gguf or LocalModels(settings).model_path()
    say(f"base model {gguf_path.name}: hashing and loading (converted to safetensors once, then cached)")
    sha, device = file_sha256(gguf_path), pick_device()
    model, tokenizer = load_base(cached_base_dir(gguf_path, cache_root or settings.data_dir, sha), device)
    counter = count_tokens(tokenizer)
    ts = training_set_for(settings, domain, records, reuse=run_dir / TRAINING_FILE, on_status=say, mode=mode,
                          passage_options=passage_options, count_tokens=counter)  # fmt: skip
    if records_from:
        ts.generator = {**ts.generator, "file": records_from}
    train_path = ts.write(run_dir / TRAINING_FILE)
    conversations = validate_training_file(train_path, count_tokens=counter, max_tokens=config.max_example_tokens)
    info = _run_info(run_id, domain, config, ts, base={"path": str(gguf_path), "sha256": sha}, device=device)
    registry.write_run(settings, run_id, info)
    sets = eval_sets(ts)
    if evaluate:
        say(f"scoring the base model on {sum(len(v) for v in sets.values())} questions")
        _score(info, "before", model, tokenizer, ts.system, sets)
        registry.write_run(settings, run_id, info)
    model = make_peft_model(model, config)
    say(f"training: {len(conversations)} examples, {config.epochs} epochs, rank {config.rank}, on {device}")
    result = train_lora(model, tokenizer, conversations, config, run_dir, on_progress=on_progress, cancel=cancel)
    info["training"] = _training_summary(result)
    if result.cancelled:
        resume = f"triptych finetune --domain {domain} --resume {run_id}"
        info.update(status="cancelled", resume=resume, peak_rss_mib=peak_rss_mib())
        registry.write_run(settings, run_id, info)
        return info
    model.save_pretrained(run_dir / PEFT_DIR)
    if evaluate:
        say("scoring the fine-tuned model")
        _score(info, "after", model, tokenizer, ts.system, sets)
    _register(settings, info, gguf_path, started=started, activate=activate, say=say)
    return info


def _register(
    settings: Settings,
    info: dict[str, Any],
    gguf_path: Path,
    *,
    started: float,
    activate: bool,
    say: Callable[[str], None],
) -> None:
    """Convert a trained run's adapter for llama.cpp, drop its checkpoint, record it done, activate it if asked.

    `started` is the run's perf_counter start: its wall time includes the conversion.
    """
    domain, run_id = info["domain"], info["run_id"]
    run_dir = settings.runs_dir / run_id
    peft_to_gguf(run_dir / PEFT_DIR, gguf_path, run_dir / registry.ADAPTER_FILE, name=f"ft-{domain}-{run_id}")
    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
    info.update(status="done", wall_s=round(time.perf_counter() - started, 1), peak_rss_mib=peak_rss_mib())
    registry.write_run(settings, run_id, info)
    if activate:
        registry.activate(settings, domain, run_id)
        say(f"active adapter for {domain}: {run_id}")


def _run_info(
    run_id: str, domain: str, config: TrainConfig, ts: TrainingSet, *, base: dict[str, str], device: str
) -> dict[str, Any]:
    """run.json as a local run starts: what is trained, on what, from which training set."""
    return {
        "run_id": run_id,
        "domain": domain,
        "kind": "local",
        "mode": ts.mode,
        "status": "training",
        "base_model": base,
        "config": asdict(config),
        "device": device,
        "system_prompt": ts.system,
        "training_set": {
            "file": TRAINING_FILE,
            "examples": len(ts.examples),
            "by_kind": _count_kinds(ts),
            "trained_questions": len(ts.trained),
            "test_questions_held_out": len(ts.test),
            "generator": ts.generator,
        },
    }


def _training_summary(result: TrainResult) -> dict[str, Any]:
    """run.json's `training`: steps, timings, throughput and the loss curve."""
    return {
        "steps": result.steps,
        "total_steps": result.total_steps,
        "resumed_from": result.resumed_from,
        "wall_s": round(result.wall_s, 1),
        "s_per_step": round(result.s_per_step, 3) if result.s_per_step else None,
        "tokens": result.tokens,
        "tokens_per_s": round(result.tokens_per_s, 1) if result.tokens_per_s else None,
        "loss_curve": result.loss_curve,
    }


def _score(
    info: dict[str, Any],
    when: str,
    model: Any,
    tokenizer: Any,
    system: str,
    sets: dict[str, list[tuple[str, list[str]]]],
) -> None:
    """Put the model's accuracy on `sets` into run.json as accuracy_<when>, with eval_<when>_s."""
    t = time.perf_counter()
    info[f"accuracy_{when}"] = evaluate_sets(model, tokenizer, system, sets)
    info[f"eval_{when}_s"] = round(time.perf_counter() - t, 1)


def _count_kinds(ts: TrainingSet) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in ts.examples:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return counts
