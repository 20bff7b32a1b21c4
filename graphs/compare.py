"""Run the selected pipelines at once on one question: stream their tokens, time them, isolate failures.

Each pipeline's spec builds its own context (graphs/registry.py); this module only runs them.
Generations that run on the embedded model share its cores, so they wait in the process-wide queue
of the local models (triptych/llm/queue.py: every session, comparison and eval question shares it;
TRIPTYCH_LOCAL_CONCURRENCY at a time) and report 'queued' while they wait; remote endpoints run
freely. Progress and tokens arrive through LangGraph's "custom" stream; every run carries a config
naming its pipeline, domain, question and evaluation run (for LangSmith traces). One pipeline's
error or timeout becomes that pipeline's result; the others finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import openai
from langchain_core.runnables import RunnableConfig

from graphs.context import PipelineContext, RetrieverLike
from graphs.registry import DEFAULT_PIPELINES, PipelineSpec, get_spec
from graphs.result import PipelineResult
from triptych.bridge import run_relaying
from triptych.index import IndexStoreError
from triptych.llm.queue import ModelQueue
from triptych.llm.server import LocalModels, ModelServerError
from triptych.settings import ConfigError, Settings

if TYPE_CHECKING:
    from triptych.setups import Setup

log = logging.getLogger(__name__)

EventKind = Literal["queued", "started", "token", "done"]
# The settings that decide which retriever answers (one is kept per domain and combination).
RETRIEVAL_FIELDS = ("embedding_model", "chunk_size", "chunk_overlap", "top_k", "min_score", "hybrid", "focus_chunks")
MAX_SETUP_RUNNERS = 32  # runners kept for other setups (`Comparison.under`), oldest dropped first


@dataclass(frozen=True)
class Event:
    """Something that happened in one pipeline: queued, started, a token, or done (with its result)."""

    pipeline: str
    kind: EventKind
    text: str = ""
    result: PipelineResult | None = None


Prepare = Callable[[PipelineSpec, "str | None", ModelQueue], PipelineContext]


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
    if isinstance(exc, ConfigError | ModelServerError | LookupError | IndexStoreError):
        return str(exc).strip("'\"")
    return f"{type(exc).__name__}: {exc}"


class Comparison:
    """Runs pipelines side by side. Create once per process; `stream()`/`run()` per question.

    `prepare(spec, domain, gate)` replaces how a pipeline's context is built (tests hand in fakes);
    `retriever_for(domain)` how a domain's retriever is. Under a `setup` (triptych/setups.py) the
    pipelines run with its settings, prompt texts, few-shot count and adapter; `under(setup)` gives a
    runner for another setup that shares this one's models, queue and retrievers.
    """

    def __init__(
        self,
        settings: Settings,
        local: LocalModels | None = None,
        *,
        prepare: Prepare | None = None,
        retriever_for: Callable[[str], RetrieverLike | None] | None = None,
        setup: Setup | None = None,
    ) -> None:
        self.base_settings = settings
        self.setup = setup
        self.settings = setup.apply(settings) if setup is not None else settings
        self.local = local
        self._custom = (prepare, retriever_for)
        self._prepare = prepare or self.prepare
        self._retriever_for = retriever_for or self._default_retriever
        # Retrievers by domain and retrieval settings, shared with the runners of other setups (`under`).
        self._retrievers: dict[tuple[str, tuple[Any, ...]], RetrieverLike | None] = {}
        self._setups: dict[str, Comparison] = {}
        # One queue for the local models in the whole process: theirs when this runner has them.
        self.queue = local.queue if local is not None else ModelQueue(settings.local_concurrency)

    def _default_retriever(self, domain: str) -> RetrieverLike | None:
        from triptych.retrieval import retriever_for

        return retriever_for(self.settings, domain)

    def retriever(self, domain: str) -> RetrieverLike | None:
        """The domain's retriever (built once per retrieval settings: the embedder and Chroma client are reused)."""
        key = (domain, tuple(getattr(self.settings, f) for f in RETRIEVAL_FIELDS))
        if key not in self._retrievers:
            self._retrievers[key] = self._retriever_for(domain)
        return self._retrievers[key]

    def under(self, setup: Setup) -> Comparison:
        """A runner for `setup` (kept per content hash) sharing this one's models, queue and retrievers."""
        if self.setup is not None and setup.hash == self.setup.hash:
            return self
        runner = self._setups.get(setup.hash)
        if runner is None:
            prepare, retriever_for = self._custom
            runner = Comparison(self.base_settings, self.local, prepare=prepare, retriever_for=retriever_for,
                                setup=setup)  # fmt: skip
            runner.queue, runner._retrievers, runner._setups = self.queue, self._retrievers, self._setups
            while len(self._setups) >= MAX_SETUP_RUNNERS:
                self._setups.pop(next(iter(self._setups)))
            self._setups[setup.hash] = runner
        return runner

    def seen_in_training(self, spec: PipelineSpec, domain: str, question: str) -> bool | None:
        """Whether the adapter answering for `spec` was trained on this question (normalised text match)."""
        from triptych.evaluate.training_overlap import adapter_run_id, question_key, training_questions

        try:
            picked = self.setup.finetuned.adapter if self.setup is not None else ""
            run = picked or adapter_run_id(self.settings, spec.id, domain)
            trained = training_questions(self.settings, run) if run else None
        except (OSError, ValueError) as exc:  # an unreadable training file: say nothing rather than fail the answer
            log.warning("cannot tell whether %s trained on the question: %s", spec.id, exc)
            return None
        return None if trained is None else question_key(question) in trained

    def forget_retriever(self, domain: str) -> None:
        """Drop a domain's cached retrievers after its documents change (its keyword index is built once)."""
        for key in [k for k in self._retrievers if k[0] == domain]:
            self._retrievers.pop(key, None)

    def prepare(self, spec: PipelineSpec, domain: str | None, gate: ModelQueue) -> PipelineContext:
        """The spec's own context, with this runner's local models, cached retrievers and gate."""
        adapter = self.setup.finetuned.adapter if self.setup is not None else ""
        return spec.build_context(self.settings, domain, local=self.local, retriever_for=self.retriever, gate=gate,
                                  adapter_run=adapter)  # fmt: skip

    def apply_setup(self, ctx: PipelineContext) -> PipelineContext:
        """The setup's prompt texts and few-shot count on a pipeline's context (whoever built it)."""
        if self.setup is not None:
            ctx.prompts = self.setup.prompt_texts()
            ctx.few_shot_limit = self.setup.prompt.few_shot
        return ctx

    async def stream(
        self, question: str, domain: str | None = None, pipelines: Sequence[str] | None = None,
        eval_run: str | None = None,
    ) -> AsyncIterator[Event]:  # fmt: skip
        """Start every pipeline now; yield their events as they happen, each ending with 'done'."""
        specs = [get_spec(p) for p in (pipelines or DEFAULT_PIPELINES)]
        events: asyncio.Queue[Event] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._run_one(spec, question, domain, self.queue, events.put_nowait, eval_run))
            for spec in specs
        ]
        try:
            while True:
                event = await events.get()
                yield event
                if event.kind == "done" and all(t.done() for t in tasks) and events.empty():
                    return
        finally:
            for task in tasks:
                task.cancel()

    async def _run_one(
        self, spec: PipelineSpec, question: str, domain: str | None, gate: ModelQueue,
        send: Callable[[Event], None], eval_run: str | None,
    ) -> None:  # fmt: skip
        started = time.perf_counter()
        timeout = self.settings.pipeline_timeout_s
        setup: list[float] = []

        async def body() -> dict[str, Any]:
            ctx = self.apply_setup(await asyncio.to_thread(self._prepare, spec, domain, gate))
            setup.append(ctx.started_at - started)  # the context's clock starts once it is built
            state: dict[str, Any] = {}
            inputs = {"question": question, "domain": domain}
            config = run_config(spec, question, domain, eval_run)
            async for mode, part in spec.graph().astream(inputs, config, context=ctx, stream_mode=["custom", "values"]):
                if mode == "custom":
                    send(Event(spec.id, part["kind"], part.get("text", "")))
                else:
                    state = part
            return state

        try:
            state = await asyncio.wait_for(body(), timeout)
            result = PipelineResult.from_state(spec.id, spec.label, state, setup_s=setup[0])
            if spec.uses_adapter and domain and result.answer:
                result.seen_in_training = await asyncio.to_thread(self.seen_in_training, spec, domain, question)
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
        send(Event(spec.id, "done", result=result))

    async def arun(
        self, question: str, domain: str | None = None, pipelines: Sequence[str] | None = None,
        on_event: Callable[[Event], None] | None = None, eval_run: str | None = None,
    ) -> dict[str, PipelineResult]:  # fmt: skip
        """Run to the end; the results by pipeline id, in the order asked."""
        order = list(pipelines or DEFAULT_PIPELINES)
        results: dict[str, PipelineResult] = {}
        # aclosing: if this run is cancelled (a rerun, a closed tab, a new question) or `on_event` raises,
        # the pipelines' tasks are cancelled at once, which closes their streams and frees the local model.
        async with contextlib.aclosing(self.stream(question, domain, order, eval_run)) as events:
            async for event in events:
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


def run_config(spec: PipelineSpec, question: str, domain: str | None, eval_run: str | None) -> RunnableConfig:
    """The graph run's name, tags and metadata, as a LangSmith trace shows them."""
    tags = ["triptych", f"pipeline:{spec.id}"] + ([f"domain:{domain}"] if domain else [])
    tags += [f"eval:{eval_run}"] if eval_run else []
    metadata = {"pipeline": spec.id, "domain": domain, "question": question, "eval_run_id": eval_run}
    return RunnableConfig(run_name=f"triptych:{spec.id}", tags=tags, metadata=metadata)
