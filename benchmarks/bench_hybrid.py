"""Does the hybrid earn its place? Five ways to answer unseen questions, on the demo corpora and the shared domains.

    .venv/bin/python benchmarks/bench_hybrid.py                                   # everything (long on a CPU)
    .venv/bin/python benchmarks/bench_hybrid.py --domains hr_handbook --questions 10 --steps 4   # a quick part
    .venv/bin/python benchmarks/bench_hybrid.py --domains general_squad --refusal-share 0.3 --passages 4 --epochs 3

For each domain: a demo corpus trains on its qa.jsonl train split and is scored on its test split; a
shared domain (../shared/eval or TRIPTYCH_SHARED_EVAL) splits its dev questions 70/30 by question with
random.Random(0) (triptych.finetune.dataset.split_by_question). Two adapters are trained on the train
part with `run_local` (closed-book, and with passages, RAFT-style), then five pipelines answer the
test questions, never trained on: prompt, RAG, closed-book fine-tuned, the hybrid with the closed-book
adapter, and the hybrid with the with-passages adapter. Each gets exactly the messages its graph builds
(graphs/prompt.py, graphs/rag.py, graphs/finetuned.py), answered greedily by the same base model in
process (transformers, fp32 weights dequantised from the served GGUF), so every difference is the
pipeline's. Scores: normalised contains and token F1 on answerable questions, refusal accuracy on
unanswerable ones, citation rate ([n] in the answer), Wilson 95 % intervals, and each pipeline's
difference from RAG with a paired bootstrap 95 % interval. Training time is wall and CPU seconds (all
threads; the machine may be shared). Trained adapters are cached under --work (keyed by domain, mode,
configuration and training questions), so a rerun, or a run in parts, does not retrain. One JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._shared_eval import DOMAINS, shared_eval_dir  # noqa: E402
from graphs import finetuned, prompt  # noqa: E402
from graphs.context import PipelineContext  # noqa: E402
from graphs.nodes import NOT_IN_DOCUMENTS  # noqa: E402
from graphs.rag import build_messages_with  # noqa: E402
from triptych.evaluate.metrics import contains, is_refusal, token_f1, without_citations  # noqa: E402
from triptych.evaluate.uncertainty import paired_bootstrap, wilson_interval  # noqa: E402
from triptych.finetune.base_model import cached_base_dir, file_sha256, load_base  # noqa: E402
from triptych.finetune.dataset import domain_records, split_by_question  # noqa: E402
from triptych.finetune.runs import run_local  # noqa: E402
from triptych.finetune.train import TrainConfig  # noqa: E402
from triptych.finetune.with_passages import CLOSED_BOOK, WITH_PASSAGES, CachedEmbed, PassageOptions  # noqa: E402
from triptych.index import IndexStoreError, chroma_client, open_index  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.llm.server import LocalModels  # noqa: E402
from triptych.passages import excerpts_context, select_excerpts  # noqa: E402
from triptych.qa import QARecord, load_qa  # noqa: E402
from triptych.retrieval import retriever_for  # noqa: E402
from triptych.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ("hr_handbook", "support_kb", "compliance_policies")
PIPELINES = ("prompt", "rag", "finetuned", "hybrid_closed_book", "hybrid_with_passages")
CITATION = __import__("re").compile(r"\[\d+\]")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def domain_split(domain: str) -> tuple[list[QARecord], str, Path]:
    """(records with train/test, how they were split, docs folder)."""
    if domain in DEMO:
        return domain_records(ROOT / "corpora", domain), "qa.jsonl train/test", ROOT / "corpora" / domain / "docs"
    eval_dir = shared_eval_dir()
    records = split_by_question(load_qa(eval_dir / domain / "qa_dev.jsonl"), 0.7, seed=0)
    return records, "qa_dev.jsonl 70/30 by question, random.Random(0)", eval_dir / domain / "docs"


def ensure_index(settings: Settings, domain: str, docs: Path, client: Any, embedder: Any) -> float:
    """Ingest the domain's documents into the work folder's Chroma once; seconds spent (0 when it was there)."""
    try:
        if open_index(settings, domain, client=client).all_chunks():
            return 0.0
    except IndexStoreError:
        pass
    t = time.perf_counter()
    ingest_paths(settings, domain, [docs], client=client, embedder=embedder)
    return round(time.perf_counter() - t, 1)


def train_cached(
    settings: Settings, domain: str, mode: str, config: TrainConfig, options: PassageOptions | None,
    records: list[QARecord], work: Path, base_gguf: Path, cache_root: Path,
) -> dict[str, Any]:  # fmt: skip
    """run.json of a finished run for this exact setup: from the cache, else trained now (timed, CPU too)."""
    key_src = {"domain": domain, "mode": mode, "config": asdict(config),
               "options": asdict(options) if options and mode == WITH_PASSAGES else None,
               "train": sorted(r.id for r in records if r.split == "train")}  # fmt: skip
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache = work / "adapters.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    run_id = known.get(key)
    if run_id and (settings.runs_dir / run_id / "adapter").is_dir():
        info = json.loads((settings.runs_dir / run_id / "run.json").read_text())
        info["cached"] = True
        return info
    say(f"{domain}: training the {mode} adapter")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    info = run_local(settings, domain, config, records=records, evaluate=False, activate=False, mode=mode,
                     passage_options=options, base_gguf=base_gguf, cache_root=cache_root, on_status=say,
                     on_progress=lambda p: say(f"  step {p.step}/{p.total_steps} loss {p.loss:.3f}"))  # fmt: skip
    info["bench"] = {"cpu_s": round(time.process_time() - cpu0, 1), "wall_s": round(time.perf_counter() - wall0, 1)}
    (settings.runs_dir / info["run_id"] / "run.json").write_text(json.dumps(info, indent=2))
    known[key] = info["run_id"]
    cache.write_text(json.dumps(known, indent=2))
    info["cached"] = False
    return info


def run_node(node: Any, state: dict[str, Any], ctx: Any) -> list[dict[str, str]]:
    """The messages a graph's build_messages node returns (called directly, as the tests do)."""
    return asyncio.run(node(state, SimpleNamespace(context=ctx)))["messages"]


def build_prompts(
    settings: Settings, domain: str, test: list[QARecord], train: list[QARecord], retriever: Any
) -> dict[str, list[list[dict[str, str]] | None]]:
    """Per pipeline, the messages of each test question (None: answered without the model, no passage)."""
    selection = settings.selection()
    embed = CachedEmbed(retriever.embedder.embed_documents)  # the same vectors, each sentence embedded once
    # the contexts the app builds (graphs/context.py), with no chat model: only the messages are wanted here
    few = PipelineContext(chat=None, model="bench", few_shot=train, prompts_dir=settings.prompts_dir)
    plain = PipelineContext(chat=None, model="bench", prompts_dir=settings.prompts_dir)
    read = PipelineContext(chat=None, model="bench", prompts_dir=settings.prompts_dir, adapter_mode=WITH_PASSAGES)
    out: dict[str, list] = {p: [] for p in PIPELINES}
    for r in test:
        state: dict[str, Any] = {"question": r.question, "domain": domain}
        out["prompt"].append(run_node(prompt.build_messages, state, few))
        out["finetuned"].append(run_node(finetuned.build_messages, state, plain))
        sources = [replace(c, n=i) for i, c in enumerate(retriever.search(r.question), start=1)]
        if not sources:  # graphs.nodes.no_context: the fixed refusal
            for p in ("rag", "hybrid_closed_book", "hybrid_with_passages"):
                out[p].append(None)
            continue
        ctx_text = excerpts_context(select_excerpts(r.question, sources, selection, embed=embed))
        state = {**state, "context": ctx_text}
        out["rag"].append(run_node(build_messages_with("rag_system"), state, plain))
        out["hybrid_closed_book"].append(run_node(build_messages_with("finetuned_rag_system"), state, plain))
        out["hybrid_with_passages"].append(run_node(build_messages_with("finetuned_rag_system"), state, read))
    return out


def generate(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]] | None], max_new: int) -> list[str]:
    """Greedy answers (batches of 8, left-padded); a None conversation is the fixed 'Not in the documents.'."""
    import torch

    answers: list[str] = [NOT_IN_DOCUMENTS] * len(conversations)
    todo = [i for i, c in enumerate(conversations) if c is not None]
    tokenizer.padding_side = "left"
    for start in range(0, len(todo), 8):
        batch = todo[start : start + 8]
        texts = [tokenizer.apply_chat_template(conversations[i], tokenize=False, add_generation_prompt=True)
                 for i in batch]  # fmt: skip
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)  # fmt: skip
        for i, text in zip(batch, tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True),
                           strict=True):  # fmt: skip
            answers[i] = text.strip()
    return answers


def score(answers: list[str], test: list[QARecord]) -> dict[str, Any]:
    """Contains / F1 / citation on answerable questions, refusal accuracy on unanswerable ones."""
    ans = [(a, r) for a, r in zip(answers, test, strict=True) if r.answerable]
    una = [a for a, r in zip(answers, test, strict=True) if not r.answerable]
    hits = [contains(without_citations(a), r.gold_answers) for a, r in ans]  # "4 [6]" does not say 6
    n = len(ans)
    ci = wilson_interval(sum(hits), n)
    refused = [is_refusal(a) for a in una]
    return {
        "n": n,
        "contains": round(100 * sum(hits) / n, 1) if n else None,
        "contains_ci95": [round(100 * ci[0], 1), round(100 * ci[1], 1)] if ci else None,
        "f1": round(100 * sum(token_f1(without_citations(a), r.gold_answers) for a, r in ans) / n, 1) if n else None,
        "citation_rate": round(100 * sum(bool(CITATION.search(a)) for a, _ in ans) / n, 1) if n else None,
        "false_refusals": sum(is_refusal(a) for a, _ in ans),
        "unanswerable_n": len(una),
        "refused_n": sum(refused),
        "refusal_accuracy": round(100 * sum(refused) / len(una), 1) if una else None,
        "_hits": hits,
    }


def bench_domain(domain: str, args: argparse.Namespace, work: Path, client: Any, embedder: Any, base: Any) -> dict:
    settings = Settings(_env_file=None, chroma_path=work / "indexes", data_dir=work / "data")  # type: ignore[call-arg]
    records, split, docs = domain_split(domain)
    ingest_s = ensure_index(settings, domain, docs, client, embedder)
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"][: args.questions or None]
    config = TrainConfig.from_settings(settings, epochs=args.epochs, max_steps=args.steps)
    passages_config = TrainConfig.from_settings(settings, "with-passages", epochs=args.passages_epochs,
                                                max_steps=args.steps)  # fmt: skip
    options = PassageOptions(passages=args.passages or settings.top_k, refusal_share=args.refusal_share,
                             selection=settings.selection())  # fmt: skip
    base_gguf, cache_root = base["gguf"], base["cache_root"]
    runs = {
        CLOSED_BOOK: train_cached(settings, domain, CLOSED_BOOK, config, None, records, work, base_gguf, cache_root),
        WITH_PASSAGES: train_cached(settings, domain, WITH_PASSAGES, passages_config, options, records, work,
                                    base_gguf, cache_root),
    }  # fmt: skip
    retriever = retriever_for(settings, domain, client=client, embedder=embedder)
    prompts = build_prompts(settings, domain, test, train, retriever)
    from peft import PeftModel

    model, tokenizer = base["model"], base["tokenizer"]
    peft = PeftModel.from_pretrained(model, str(settings.runs_dir / runs[CLOSED_BOOK]["run_id"] / "adapter"),
                                     adapter_name="closed")  # fmt: skip
    peft.load_adapter(str(settings.runs_dir / runs[WITH_PASSAGES]["run_id"] / "adapter"), adapter_name="passages")
    peft.eval()
    t = time.perf_counter()
    answers: dict[str, list[str]] = {}
    with peft.disable_adapter():
        for p in ("prompt", "rag"):
            answers[p] = generate(peft, tokenizer, prompts[p], args.max_new_tokens)
    peft.set_adapter("closed")
    for p in ("finetuned", "hybrid_closed_book"):
        answers[p] = generate(peft, tokenizer, prompts[p], args.max_new_tokens)
    peft.set_adapter("passages")
    answers["hybrid_with_passages"] = generate(peft, tokenizer, prompts["hybrid_with_passages"], args.max_new_tokens)
    base["model"] = peft.unload()  # the plain base model again, for the next domain
    scores = {p: score(answers[p], test) for p in PIPELINES}
    for p in PIPELINES:
        if p != "rag" and scores[p]["n"]:
            diff = sum(scores[p]["_hits"]) - sum(scores["rag"]["_hits"])
            ci = paired_bootstrap(scores[p]["_hits"], scores["rag"]["_hits"])
            scores[p]["minus_rag"] = round(100 * diff / scores[p]["n"], 1)
            scores[p]["minus_rag_ci95"] = [round(100 * ci[0], 1), round(100 * ci[1], 1)] if ci else None
    hits = {p: scores[p].pop("_hits") for p in PIPELINES}
    return {
        "split": split,
        "train_questions": len(train),
        "test_questions": len(test),
        "ingest_s": ingest_s,
        "eval_s": round(time.perf_counter() - t, 1),
        "training": {mode: _training(info) for mode, info in runs.items()},
        "scores": scores,
        "examples": [
            {"question": r.question, "gold": r.answer, **{p: answers[p][i] for p in PIPELINES}}
            for i, r in enumerate(test[:3])
        ],  # fmt: skip
        "_hits": hits,
        "_unanswerable": [not r.answerable for r in test],
    }


def _training(info: dict[str, Any]) -> dict[str, Any]:
    tr = info.get("training", {})
    ts = info.get("training_set", {})
    return {
        "run_id": info["run_id"],
        "cached": info.get("cached"),
        "examples": ts.get("examples"),
        "by_kind": ts.get("by_kind"),
        "generator": {k: v for k, v in (ts.get("generator") or {}).items() if k != "skipped_ids"},
        "epochs": info["config"]["epochs"],
        "steps": tr.get("steps"),
        "train_wall_s": tr.get("wall_s"),
        "run_wall_s": (info.get("bench") or {}).get("wall_s"),
        "run_cpu_s": (info.get("bench") or {}).get("cpu_s"),
        "final_loss": tr["loss_curve"][-1] if tr.get("loss_curve") else None,
    }


def pooled(results: dict[str, dict], domains: list[str]) -> dict[str, Any] | None:
    """The demo corpora's test splits together (contains and its interval, refusal accuracy, difference from RAG)."""
    chosen = [results[d] for d in domains if d in results]
    if not chosen:
        return None
    out: dict[str, Any] = {"domains": [d for d in domains if d in results]}
    for p in PIPELINES:
        hits = [h for r in chosen for h in r["_hits"][p]]
        una = sum(r["scores"][p]["unanswerable_n"] for r in chosen)
        refused = sum(r["scores"][p]["refused_n"] for r in chosen)
        ci = wilson_interval(sum(hits), len(hits))
        out[p] = {
            "n": len(hits),
            "contains": round(100 * sum(hits) / len(hits), 1) if hits else None,
            "contains_ci95": [round(100 * ci[0], 1), round(100 * ci[1], 1)] if ci else None,
            "refusal_accuracy": round(100 * refused / una, 1) if una else None,
            "unanswerable_n": una,
        }
        if p != "rag":
            rag = [h for r in chosen for h in r["_hits"]["rag"]]
            d = paired_bootstrap(hits, rag)
            out[p]["minus_rag"] = round(100 * (sum(hits) - sum(rag)) / len(hits), 1) if hits else None
            out[p]["minus_rag_ci95"] = [round(100 * d[0], 1), round(100 * d[1], 1)] if d else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", default=",".join(DEMO + DOMAINS), help="comma-separated (default: all eight)")
    parser.add_argument("--questions", type=int, default=0, help="test questions per domain (0: all)")
    parser.add_argument("--steps", type=int, default=None, help="stop each training after this many steps")
    parser.add_argument("--epochs", type=int, default=None, help="default: TRIPTYCH_FINETUNE_EPOCHS")
    parser.add_argument(
        "--passages-epochs",
        type=int,
        default=None,
        help="epochs of the with-passages adapter (default: TRIPTYCH_FINETUNE_PASSAGES_EPOCHS)",
    )
    parser.add_argument("--passages", type=int, default=0, help="chunks per with-passages example (0: TRIPTYCH_TOP_K)")
    parser.add_argument("--refusal-share", type=float, default=0.1, help="share of distractor-only examples")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "bench_hybrid", help="indexes, runs, cache")
    parser.add_argument("--base-cache", type=Path, default=None, help="where the base model's safetensors are cached")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = Settings(_env_file=None, chroma_path=args.work / "indexes", data_dir=args.work / "data")  # type: ignore[call-arg]
    from triptych.embeddings import load_embedder

    embedder = load_embedder(settings.embedding_model, settings.embedding_batch_size)
    client = chroma_client(settings)
    gguf = LocalModels(settings).model_path()
    cache_root = args.base_cache or settings.data_dir
    model, tokenizer = load_base(cached_base_dir(gguf, cache_root, file_sha256(gguf)))
    base = {"gguf": gguf, "cache_root": cache_root, "model": model, "tokenizer": tokenizer}
    results: dict[str, dict] = {}
    for domain in [d.strip() for d in args.domains.split(",") if d.strip()]:
        say(f"== {domain}")
        results[domain] = bench_domain(domain, args, args.work, client, embedder, base)
    demo = pooled(results, list(DEMO))
    for r in results.values():
        r.pop("_hits")
        r.pop("_unanswerable")
    shared = [d for d in results if d not in DEMO]
    passages_epochs = args.passages_epochs or settings.finetune_passages_epochs
    hybrid_beats = [d for d in shared if (results[d]["scores"]["hybrid_with_passages"].get("minus_rag") or 0) >= 5]
    print(json.dumps({
        "command": " ".join(sys.argv),
        "settings": {"top_k": settings.top_k, "context_budget_tokens": settings.context_budget_tokens,
                     "finetune_epochs": settings.finetune_epochs, "passages_epochs": passages_epochs,
                     "refusal_share": args.refusal_share, "passages": args.passages or settings.top_k,
                     "max_steps": args.steps, "questions": args.questions or "all"},
        "domains": results,
        "demo_pooled": demo,
        "targets": {
            "shared_domains_hybrid_beats_rag_by_5": f"{len(hybrid_beats)} of {len(shared)}: {', '.join(hybrid_beats)}",
            "demo_hybrid_minus_rag": demo["hybrid_with_passages"]["minus_rag"] if demo else None,
            "demo_refusal_hybrid_vs_rag": [demo["hybrid_with_passages"]["refusal_accuracy"],
                                           demo["rag"]["refusal_accuracy"]] if demo else None,
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
