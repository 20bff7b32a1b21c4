"""Run the selected pipelines at once on one question: stream their tokens, time them, isolate failures.

Each pipeline gets its own context (endpoint, retriever, few-shot examples). Generations that run
on the embedded model share its cores, so they pass a gate (TRIPTYCH_LOCAL_CONCURRENCY at a time)
and report 'queued' while they wait; remote endpoints run freely. One pipeline's error or timeout
becomes that pipeline's result; the others finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import openai

from graphs.context import PipelineContext, RetrieverLike
from graphs.registry import DEFAULT_PIPELINES, PipelineSpec, get_spec
from graphs.result import PipelineResult
from triptych.bridge import run_relaying
from triptych.finetune import registry as finetuned_models
from triptych.llm.factory import make_chat_model, resolve_endpoint
from triptych.llm.server import LocalModels, ModelServerError
from triptych.qa import domain_qa
from triptych.settings import ConfigError, Settings

EventKind = Literal["queued", "started", "token", "done"]


@dataclass(frozen=True)
class Event:
    """Something that happened in one pipeline: queued, started, a token, or done (with its result)."""

    pipeline: str
    kind: EventKind
    text: str = ""
    result: PipelineResult | None = None


Prepare = Callable[[PipelineSpec, "str | None", asyncio.Semaphore], PipelineContext]


def describe_error(exc: BaseException) -> str:
    """A short message for a pipeline's column that says what failed and what to do."""
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    if isinstance(exc, openai.AuthenticationError):
        return "the endpoint refused the API key (401): check the variable named by API_KEY_ENV"
    if isinstance(exc, openai.NotFoundError):
        return f"the endpoint does not know this model (404): {exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "the endpoint did not answer in time (TRIPTYCH_REQUEST_TIMEOUT_S)"
    if isinstance(exc, openai.APIConnectionError):
        url = getattr(getattr(exc, "request", None), "url", None)
        where = f" at {url.scheme}://{url.host}:{url.port}" if url is not None else ""
        return f"cannot reach the model endpoint{where}: is it running?"
    if isinstance(exc, openai.APIStatusError):
        return f"the endpoint answered {exc.status_code}: {exc.message}"
    if isinstance(exc, ConfigError | ModelServerError | LookupError):
        return str(exc).strip("'\"")
    return f"{type(exc).__name__}: {exc}"


class Comparison:
    """Runs pipelines side by side. Create once per process; `stream()`/`run()` per question."""

    def __init__(
        self,
        settings: Settings,
        local: LocalModels | None = None,
        *,
        prepare: Prepare | None = None,
        retriever_for: Callable[[str], RetrieverLike | None] | None = None,
    ) -> None:
        self.settings = settings
        self.local = local
        self._prepare = prepare or self.prepare
        self._retriever_for = retriever_for or self._default_retriever
        self._retrievers: dict[str, RetrieverLike | None] = {}

    def _default_retriever(self, domain: str) -> RetrieverLike | None:
        from triptych.retrieval import retriever_for

        return retriever_for(self.settings, domain)

    def retriever(self, domain: str) -> RetrieverLike | None:
        """The domain's retriever (built once: the embedder and Chroma client are reused)."""
        if domain not in self._retrievers:
            self._retrievers[domain] = self._retriever_for(domain)
        return self._retrievers[domain]

    def forget_retriever(self, domain: str) -> None:
        """Drop a domain's cached retriever after its documents change (its keyword index is built once)."""
        self._retrievers.pop(domain, None)

    def prepare(self, spec: PipelineSpec, domain: str | None, gate: asyncio.Semaphore) -> PipelineContext:
        """Resolve the pipeline's endpoint (starting the local server if needed), retriever and shots."""
        s = self.settings
        cfg = s.endpoint(spec.endpoint)
        lora = None
        if spec.uses_adapter and cfg.is_local:
            if not domain:
                return PipelineContext(
                    chat=None, model="", unavailable="pick a domain: adapters are trained per domain"
                )
            adapter = finetuned_models.active_adapter(s, domain)
            if adapter is None:
                return PipelineContext(
                    chat=None,
                    model="",
                    unavailable=f"not fine-tuned yet: run `triptych finetune --domain {domain}`",
                )
            lora = (adapter.alias, adapter.gguf_path)
        if spec.uses_retrieval and not domain:
            raise LookupError("pick a domain: retrieval needs a document collection")
        endpoint = resolve_endpoint(s, spec.endpoint, self.local, lora)
        if (
            spec.uses_adapter
            and cfg.provider.name == "openai"
            and domain
            and (ft := finetuned_models.hosted_model(s, domain))
        ):
            endpoint = replace(endpoint, model=ft)  # the domain's hosted fine-tuned model (`ft:...`)
        return PipelineContext(
            chat=make_chat_model(endpoint, s),
            model=endpoint.model,
            usage_counter=endpoint.usage_counter,
            price_in_per_1k=endpoint.price_in_per_1k,
            price_out_per_1k=endpoint.price_out_per_1k,
            retriever=(retriever := self.retriever(domain) if spec.uses_retrieval and domain else None),
            selection=s.selection(),
            embed=getattr(getattr(retriever, "embedder", None), "embed_documents", None),
            few_shot=domain_qa(s.corpora_dir, domain, "train") if domain and spec.id == "prompt" else [],
            prompts_dir=s.prompts_dir,
            gate=gate if endpoint.is_local else None,
        )

    async def stream(
        self, question: str, domain: str | None = None, pipelines: Sequence[str] | None = None
    ) -> AsyncIterator[Event]:
        """Start every pipeline now; yield their events as they happen, each ending with 'done'."""
        specs = [get_spec(p) for p in (pipelines or DEFAULT_PIPELINES)]
        queue: asyncio.Queue[Event] = asyncio.Queue()
        gate = asyncio.Semaphore(self.settings.local_concurrency)
        tasks = [asyncio.create_task(self._run_one(spec, question, domain, gate, queue)) for spec in specs]
        try:
            while True:
                event = await queue.get()
                yield event
                if event.kind == "done" and all(t.done() for t in tasks) and queue.empty():
                    return
        finally:
            for task in tasks:
                task.cancel()

    async def _run_one(
        self, spec: PipelineSpec, question: str, domain: str | None, gate: asyncio.Semaphore,
        queue: asyncio.Queue[Event],
    ) -> None:  # fmt: skip
        started = time.perf_counter()
        timeout = self.settings.pipeline_timeout_s
        setup: list[float] = []

        def emit(kind: str, text: str) -> None:
            queue.put_nowait(Event(spec.id, kind, text))  # type: ignore[arg-type]

        async def body() -> dict[str, Any]:
            ctx = await asyncio.to_thread(self._prepare, spec, domain, gate)
            ctx.started_at, ctx.emit = time.perf_counter(), emit
            setup.append(ctx.started_at - started)
            return await spec.graph().ainvoke({"question": question, "domain": domain}, context=ctx)

        try:
            state = await asyncio.wait_for(body(), timeout)
            result = PipelineResult.from_state(spec.id, spec.label, state, setup_s=setup[0])
        except TimeoutError:
            result = PipelineResult(
                spec.id,
                spec.label,
                error=f"timed out after {timeout:g} s (TRIPTYCH_PIPELINE_TIMEOUT_S)",
                total_s=time.perf_counter() - started,
            )
        except Exception as exc:  # noqa: BLE001 - one pipeline's failure must not stop the others
            result = PipelineResult(spec.id, spec.label, error=describe_error(exc),
                                    total_s=time.perf_counter() - started)  # fmt: skip
        queue.put_nowait(Event(spec.id, "done", result=result))

    async def arun(
        self, question: str, domain: str | None = None, pipelines: Sequence[str] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> dict[str, PipelineResult]:  # fmt: skip
        """Run to the end; the results by pipeline id, in the order asked."""
        order = list(pipelines or DEFAULT_PIPELINES)
        results: dict[str, PipelineResult] = {}
        async for event in self.stream(question, domain, order):
            if on_event is not None:
                on_event(event)
            if event.kind == "done" and event.result is not None:
                results[event.pipeline] = event.result
        return {p: results[p] for p in order}

    def run(
        self, question: str, domain: str | None = None, pipelines: Sequence[str] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> dict[str, PipelineResult]:  # fmt: skip
        """`arun` for synchronous callers (CLI, Streamlit); `on_event` is called in the caller's thread."""
        return run_relaying(lambda report: self.arun(question, domain, pipelines, on_event=report), on_event)
