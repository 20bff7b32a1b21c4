"""A stand-in for `triptych.finetune.runs.run_local` that the training worker can load (`--trainer`).

Kept in a module of its own, with light imports, because every worker process imports it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from triptych.finetune import registry
from triptych.settings import Settings


def scripted_trainer(settings: Settings, domain: str, config: Any, *, run_id: str, on_progress, on_status, cancel,
                     mode: str = "closed-book", **_: Any) -> dict[str, Any]:  # fmt: skip
    """run_local's contract, scripted: `config.max_steps` steps of `delay-<s>` (domain suffix) seconds each,
    a `checkpoint/state.json` when cancelled (resumed from), an adapter file activated when done;
    domain `broken` fails, `crash` kills its process, `stall` spends a minute before training.
    Records when it ran and at which priority.
    """
    from triptych.finetune.train import Progress

    if domain == "broken":
        raise ValueError("no QA for domain broken")
    if domain == "crash":
        os._exit(7)
    if domain.startswith("stall"):  # a long phase before training that does not look at `cancel` (loading, scoring)
        on_status("scoring the base model")
        time.sleep(60)
    run_dir = settings.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    state = run_dir / "checkpoint" / "state.json"
    start = json.loads(state.read_text())["step"] if state.is_file() else 0
    delay = float(domain.rpartition("-")[2]) if "-" in domain else 0.02
    on_status(f"training {domain}")
    info = {"run_id": run_id, "domain": domain, "mode": mode, "resumed_from": start, "priority": _priority(),
            "started": time.time()}  # fmt: skip
    step = start
    while step < config.max_steps:
        if cancel.is_set():
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"step": step}))
            registry.write_run(settings, run_id, info | {"status": "cancelled"})
            return info | {"status": "cancelled", "resume": f"--resume {run_id}"}
        time.sleep(delay)
        step += 1
        left = (config.max_steps - step) * delay
        on_progress(Progress(step, config.max_steps, 0.0, 2.0 / step, step * delay, left, 100.0))
    (run_dir / registry.ADAPTER_FILE).write_bytes(b"GGUF")
    registry.write_run(settings, run_id, info | {"status": "done", "ended": time.time()})
    registry.activate(settings, domain, run_id)
    return info | {"status": "done"}


def _priority() -> dict[str, Any]:
    import torch

    return {"policy": os.sched_getscheduler(0), "nice": os.nice(0), "threads": torch.get_num_threads()}
