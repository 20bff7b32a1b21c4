"""The pipelines Triptych can compare, with uniform metadata the UI and CLI loop over.

Adding a pipeline is one module with a `compile()` plus one entry here. Each spec also builds what
its graph needs for one question (`build_context`): its model, retriever and few-shot examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from langgraph.graph.state import CompiledStateGraph

from graphs import finetuned, finetuned_rag, prompt, rag
from graphs.context import PipelineContext, RetrieverLike
from triptych.finetune import registry as finetuned_models
from triptych.llm.factory import make_chat_model, resolve_endpoint
from triptych.llm.queue import ModelQueue
from triptych.llm.server import LocalModels, LoraRef
from triptych.qa import domain_qa
from triptych.settings import EndpointConfig, Settings


class NotFineTuned(Exception):
    """The domain has no fine-tuned model yet; the message says what to run."""


def fine_tuned_model(
    settings: Settings,
    cfg: EndpointConfig,
    domain: str | None,
    adapter_run: str = "",
    *,
    passages_first: bool = False,
) -> tuple[LoraRef | None, str | None]:
    """The domain's fine-tuned model: `(lora, None)` for a local adapter, `(None, "ft:...")` for a hosted one.

    `(None, None)` where the endpoint serves the fine-tuned model itself (a custom URL) or OpenAI has
    none for the domain yet (the configured base model answers). Raises NotFineTuned for a local
    endpoint without an adapter. `adapter_run` picks a run's adapter instead of the domain's active one;
    with `passages_first` (the hybrid column), the domain's with-passages adapter answers when it has one,
    else its closed-book one.
    """
    if cfg.is_local:
        if adapter_run:
            if not domain:
                raise NotFineTuned("pick a domain: adapters are trained per domain")
            adapter = picked_adapter(settings, domain, adapter_run)
        else:
            adapter = local_adapter(settings, domain, passages_first=passages_first)
        family = f"ft-{domain}" + ("-passages" if adapter.mode == finetuned_models.WITH_PASSAGES else "")
        return LoraRef(adapter.alias, adapter.gguf_path, family=family), None
    if cfg.provider.name == "openai" and domain:
        return None, finetuned_models.hosted_model(settings, domain)
    return None, None


def picked_adapter(settings: Settings, domain: str, run_id: str) -> finetuned_models.ActiveAdapter:
    """A fine-tuning run's adapter for `domain` (a setup's pick), or NotFineTuned saying why it cannot answer."""
    info = finetuned_models.read_run(settings, run_id)
    path = settings.runs_dir / run_id / finetuned_models.ADAPTER_FILE
    if info is None or not path.is_file():
        raise NotFineTuned(
            f"the setup's adapter {run_id!r} has no {finetuned_models.ADAPTER_FILE} in {settings.runs_dir}: "
            "pick another (`triptych finetune status`) or leave it empty for the domain's active adapter"
        )
    if info.get("domain") != domain:
        raise NotFineTuned(f"the setup's adapter {run_id!r} was trained for {info.get('domain')!r}, not {domain!r}")
    return finetuned_models.ActiveAdapter(
        domain, run_id, path, mode=str(info.get("mode") or finetuned_models.CLOSED_BOOK)
    )


def local_adapter(
    settings: Settings, domain: str | None, *, passages_first: bool = False
) -> finetuned_models.ActiveAdapter:
    """The local adapter a fine-tuned pipeline answers with (NotFineTuned, saying what to run, when none)."""
    if not domain:
        raise NotFineTuned("pick a domain: adapters are trained per domain")
    adapter = None
    if passages_first:
        adapter = finetuned_models.active_adapter(settings, domain, finetuned_models.WITH_PASSAGES)
    adapter = adapter or finetuned_models.active_adapter(settings, domain)
    if adapter is None:
        raise NotFineTuned(finetuned_models.missing_adapter_notice(settings, domain))
    return adapter


def adapter_notice(settings: Settings, spec_id: str, domain: str | None) -> tuple[str | None, str | None]:
    """(mode, line) saying which kind of adapter answers in a hybrid column; (None, None) elsewhere or without one."""
    spec = PIPELINES.get(spec_id)
    if spec is None or not spec.passages_first or not settings.endpoint(spec.endpoint).is_local:
        return None, None
    try:
        adapter = local_adapter(settings, domain, passages_first=True)
    except NotFineTuned:
        return None, None
    if adapter.mode == finetuned_models.WITH_PASSAGES:
        return adapter.mode, f"with-passages adapter {adapter.run_id}: trained to read retrieved passages"
    return adapter.mode, (
        f"closed-book adapter {adapter.run_id}: trained on questions alone, it tends to ignore the passages; "
        f"`triptych finetune --domain {domain} --mode with-passages` trains one that reads them"
    )


def default_pipelines(settings: Settings, domain: str | None = None) -> list[str]:
    """The pipelines selected by default: the hybrid joins them once a with-passages adapter exists."""
    chosen = list(DEFAULT_PIPELINES)
    if finetuned_models.has_passages_adapter(settings, domain):
        chosen += [p.id for p in PIPELINES.values() if p.passages_first and p.id not in chosen]
    return chosen


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline: what it is called, what it changes, how to build it, which endpoint it uses."""

    id: str
    label: str
    what_changed: str  # one line for the column header
    build: Callable[[], CompiledStateGraph]
    endpoint: str  # whose settings it uses: prompt, rag or finetuned
    uses_retrieval: bool = False
    uses_adapter: bool = False  # needs the domain's fine-tuned model
    uses_few_shot: bool = False  # shows the domain's training Q&A as examples
    default: bool = True  # selected unless the user changes it
    passages_first: bool = False  # answers with the domain's with-passages adapter when it has one

    def graph(self) -> CompiledStateGraph:
        """The compiled graph (compiled once per process)."""
        return _compiled(self.id)

    def build_context(
        self,
        settings: Settings,
        domain: str | None,
        *,
        local: LocalModels | None = None,
        retriever_for: Callable[[str], RetrieverLike | None] | None = None,
        gate: ModelQueue | None = None,
        adapter_run: str = "",
    ) -> PipelineContext:
        """What the graph needs for one question: its model (starting the local server if needed), the
        domain's retriever (from `retriever_for`) and few-shot examples; `gate` is shared by local generations;
        `adapter_run` picks a fine-tuning run's adapter instead of the domain's active one.
        """
        lora = model = None
        if self.uses_adapter:
            try:
                lora, model = fine_tuned_model(
                    settings, settings.endpoint(self.endpoint), domain, adapter_run, passages_first=self.passages_first
                )
            except NotFineTuned as why:
                return PipelineContext(chat=None, model="", unavailable=str(why))
        adapter_mode, adapter_line = adapter_notice(settings, self.id, domain) if self.passages_first else (None, None)
        if self.uses_retrieval and not domain:
            raise LookupError("pick a domain: retrieval needs a document collection")
        endpoint = resolve_endpoint(settings, self.endpoint, local, lora, model=model)
        retriever = retriever_for(domain) if self.uses_retrieval and domain and retriever_for else None
        return PipelineContext(
            chat=make_chat_model(endpoint, settings),
            model=endpoint.model,
            usage_counter=endpoint.usage_counter,
            price_in_per_1k=endpoint.price_in_per_1k,
            price_out_per_1k=endpoint.price_out_per_1k,
            retriever=retriever,
            selection=settings.selection(),
            embed=getattr(getattr(retriever, "embedder", None), "embed_documents", None),
            few_shot=domain_qa(settings.corpora_dir, domain, "train") if domain and self.uses_few_shot else [],
            prompts_dir=settings.prompts_dir,
            gate=gate if endpoint.is_local else None,
            cpu_meter=local.cpu_seconds if endpoint.is_local and local is not None else None,
            notice="; ".join(n for n in (adapter_line, endpoint.notice) if n) or None,
            adapter_mode=adapter_mode,
        )


PIPELINES: dict[str, PipelineSpec] = {
    spec.id: spec
    for spec in (
        PipelineSpec("prompt", "Prompt", "Base model + engineered prompt (role, rules, few-shot); no documents.",
                     prompt.compile, endpoint="prompt", uses_few_shot=True),
        PipelineSpec("rag", "RAG", "Same base model, answering only from retrieved document chunks, cited [n].",
                     rag.compile, endpoint="rag", uses_retrieval=True),
        PipelineSpec("finetuned", "Fine-tuned", "Base model + LoRA adapter trained on the domain's Q&A; no documents.",
                     finetuned.compile, endpoint="finetuned", uses_adapter=True),
        PipelineSpec("finetuned_rag", "Fine-tuned + RAG",
                     "Same model, trained to read your documents, answering from retrieved chunks.",
                     finetuned_rag.compile, endpoint="finetuned", uses_retrieval=True, uses_adapter=True,
                     default=False, passages_first=True),
    )
}  # fmt: skip

DEFAULT_PIPELINES = [p.id for p in PIPELINES.values() if p.default]


def get_spec(pipeline_id: str) -> PipelineSpec:
    """A spec by id, or a KeyError listing the known ids."""
    try:
        return PIPELINES[pipeline_id]
    except KeyError:
        raise KeyError(f"unknown pipeline {pipeline_id!r}; expected one of {', '.join(PIPELINES)}") from None


@cache
def _compiled(pipeline_id: str) -> CompiledStateGraph:
    return PIPELINES[pipeline_id].build()
