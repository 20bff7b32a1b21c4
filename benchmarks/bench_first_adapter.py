"""From the app's first start (fresh data dir and indexes) to the first demo domain's fine-tuned column answering.

The app is started in process through Streamlit's AppTest (the first page load runs its start-up
hook: demo indexes, then the training queue), then the first queued domain's worker is followed
through its status file, and the fine-tuned column is asked a demo question as soon as its adapter
is active. The TRIPTYCH_FINETUNE_* settings of the environment apply (defaults otherwise). The rest
of the queue is cancelled at the end. Prints one JSON object.

    python benchmarks/bench_first_adapter.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-first-adapter-"))
    os.environ |= {
        "TRIPTYCH_DATA_DIR": str(work / "data"),
        "TRIPTYCH_CHROMA_PATH": str(work / "indexes"),
        "TRIPTYCH_CORPORA_DIR": str(REPO / "corpora"),
        "TRIPTYCH_AUTOTRAIN": "true",
        "HF_HUB_OFFLINE": "1",
    }
    from streamlit.testing.v1 import AppTest

    from triptych.finetune import registry
    from triptych.qa import domain_qa
    from triptych.ui import resources

    started = time.perf_counter()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=900).run()
    assert not at.exception, at.exception
    first_page_s = time.perf_counter() - started
    settings, queue = resources.app_settings(), resources.training_queue()
    domain = queue.current() or queue.pending()[0]
    phases: list[tuple[float, str]] = []
    answer = None
    try:
        while answer is None:
            job = queue.status(domain)
            if job is not None and job.status == "failed":
                raise RuntimeError(job.error)
            last = job.messages[-1] if job and job.messages else ""
            if job and job.status == "training" and job.total_steps and not any(p[1] == "training" for p in phases):
                phases.append((round(time.perf_counter() - started, 1), "training"))
            if last and (not phases or phases[-1][1] != last):
                phases.append((round(time.perf_counter() - started, 1), last))
            if registry.active_adapter(settings, domain) is not None:
                question = next(r.question for r in domain_qa(settings.corpora_dir, domain, "test") if r.answerable)
                result = resources.comparison().run(question, domain, ["finetuned"])["finetuned"]
                if result.error or result.notice:
                    raise RuntimeError(result.error or result.notice)
                answer = result
            else:
                time.sleep(1.0)
        answered_s = time.perf_counter() - started
        run = registry.read_run(settings, job.run_id) or {}  # type: ignore[union-attr]
    finally:
        queue.stop()
        queue.wait(120)
        resources.local_models().close()
    print(json.dumps({
        "domain": domain, "first_answer_s": round(answered_s, 1), "first_page_load_s": round(first_page_s, 1),
        "answer": answer.answer, "fine_tuned_ttft_s": round(answer.ttft_s, 2),
        "phases_s": phases, "run_wall_s": run.get("wall_s"), "training": {
            k: (run.get("training") or {}).get(k) for k in ("steps", "wall_s", "s_per_step", "tokens_per_s")},
        "eval_before_s": run.get("eval_before_s"), "eval_after_s": run.get("eval_after_s"),
        "accuracy_after": run.get("accuracy_after"),
        "config": {k: (run.get("config") or {}).get(k) for k in ("epochs", "rank", "lr", "batch_size", "max_steps")},
        "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
