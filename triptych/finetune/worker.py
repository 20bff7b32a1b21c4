"""A local fine-tuning run in a process of its own, at low priority, reporting to a JSON status file.

    python -m triptych.finetune.worker --domain hr_handbook --settings S.json [--resume RUN_ID]

The app starts one worker at a time (triptych/ui/training_jobs.py) and polls its status file,
`runs/jobs/<domain>.json` (step, total, loss, eta, status, messages, error; written atomically).
Creating `runs/jobs/<domain>.cancel` (or SIGTERM) stops the run at the next step with a checkpoint,
resumable with `--resume <run_id>`. The worker lowers its own priority (SCHED_IDLE where Linux
allows it, else nice 19) and sizes torch's threads (TRIPTYCH_FINETUNE_THREADS), so that a question
asked while it trains still gets the cores first. The adapter is activated as soon as it is trained;
the run's accuracy before and after (as `triptych finetune` scores it) is measured afterwards, while
the column already answers.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from triptych import runstore
from triptych.settings import Settings

JOBS_DIR = "jobs"
ACTIVE = ("queued", "starting", "training")  # statuses of a job that is not over
MAX_MESSAGES = 20
EXIT_BUSY = 3  # another process is training this domain

Trainer = Callable[..., dict[str, Any]]  # run_local's signature


@dataclass
class JobStatus:
    """What a status file holds: one domain's latest training job, as its worker (or queue) last wrote it."""

    domain: str
    status: str = "queued"  # queued | starting | training | done | cancelled | failed
    pid: int = 0  # the process that owns the job now: the queue while queued, then the worker
    run_id: str | None = None
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    messages: list[str] = field(default_factory=list)
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        """Queued or training, by a process that is still alive (a crashed owner leaves no live job)."""
        return self.status in ACTIVE and pid_alive(self.pid)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        """A status read back from its file (unknown keys ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def describe(self) -> str:
        """One line for the fine-tuned column and the Fine-tune page."""
        if self.status == "training" and self.total_steps:
            left = f", {format_eta(self.eta_s)}" if self.eta_s is not None else ""
            return f"training its adapter: step {self.step}/{self.total_steps}{left}"
        if self.status in ("starting", "training"):
            return "training its adapter: " + (self.messages[-1] if self.messages else "starting")
        if self.status == "queued":
            return "its adapter is queued for training"
        if self.status == "failed":
            return f"its training failed: {self.error}"
        return self.status


def format_eta(seconds: float | None) -> str:
    """'about 2 min left', 'under a minute left'."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "under a minute left"
    return f"about {round(seconds / 60)} min left"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def jobs_dir(settings: Settings) -> Path:
    """Where status, cancel and lock files of training jobs live."""
    return settings.runs_dir / JOBS_DIR


def status_path(settings: Settings, domain: str) -> Path:
    """A domain's job status file."""
    return jobs_dir(settings) / f"{domain}.json"


def cancel_path(settings: Settings, domain: str) -> Path:
    """The flag file that asks a domain's worker to stop."""
    return jobs_dir(settings) / f"{domain}.cancel"


def lock_path(settings: Settings, domain: str) -> Path:
    """Held by the worker that trains the domain, so two processes never train it at once."""
    return jobs_dir(settings) / f"{domain}.lock"


def read_status(settings: Settings, domain: str) -> JobStatus | None:
    """The domain's latest job status, or None when it never had one (or the file is unreadable)."""
    path = status_path(settings, domain)
    try:
        return JobStatus.from_dict(runstore.read_json(path))
    except (OSError, ValueError, TypeError):
        return None


def write_status(settings: Settings, status: JobStatus) -> None:
    """Replace the domain's status file atomically."""
    status.updated = time.time()
    status.messages = status.messages[-MAX_MESSAGES:]
    runstore.write_json(status_path(settings, status.domain), asdict(status))


def request_cancel(settings: Settings, domain: str) -> None:
    """Ask the domain's worker to stop at its next step (it keeps a resumable checkpoint)."""
    path = cancel_path(settings, domain)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def lower_priority(threads: int) -> str:
    """Leave the cores to answering: SCHED_IDLE (else nice 19) and `threads` torch threads; says what it did."""
    how = "nice 19"
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
        how = "SCHED_IDLE"
    except (AttributeError, OSError):
        os.nice(19 - os.nice(0))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    return f"{how}, {threads} thread{'s' * (threads != 1)}"


def worker_threads(settings: Settings) -> int:
    """Torch threads of a training worker: TRIPTYCH_FINETUNE_THREADS, or every core (0)."""
    return settings.finetune_threads or os.cpu_count() or 1


def run_job(
    settings: Settings,
    domain: str,
    *,
    resume: str | None = None,
    overrides: dict[str, Any] | None = None,
    trainer: Trainer | None = None,
    cache_root: Path | None = None,
    evaluate: bool = True,
    mode: str = "closed-book",
) -> int:
    """Train `domain` in this process, keeping its status file current; the exit code for the worker.

    `mode` with-passages trains the hybrid column's adapter (triptych.finetune.with_passages).

    `trainer` defaults to `triptych.finetune.runs.run_local` (tests pass a fake with its signature).
    """
    from triptych.finetune import registry

    lock = FileLock(str(lock_path(settings, domain)))
    lock_path(settings, domain).parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"{domain} is being trained by another process", file=sys.stderr)
        return EXIT_BUSY
    try:
        cancel_path(settings, domain).unlink(missing_ok=True)
        run_id = resume or runstore.new_run_id(domain, settings.runs_dir, claim=True)
        job = JobStatus(domain, status="starting", pid=os.getpid(), run_id=run_id)
        job.messages.append(f"worker started ({lower_priority(worker_threads(settings))})")
        write_status(settings, job)
        cancel = _watch_for_cancel(settings, job)
        corpus = registry.corpus_sha256(settings, domain)
        score_later = evaluate and trainer is None  # run_local: activate first, score while the column answers
        extra: dict[str, Any] = {"cache_root": cache_root} if cache_root is not None else {}
        if score_later or not evaluate:
            extra["evaluate"] = False
        if mode != "closed-book":
            extra["mode"] = mode
        try:
            info = _train(settings, domain, job, run_id, overrides or {}, trainer, cancel, extra)
        except Exception as exc:  # noqa: BLE001 - the status file carries it to the app
            traceback.print_exc()
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            write_status(settings, job)
            return 1
        if info.get("status") == "done":
            registry.record_corpus(settings, run_id, corpus)
        job.status = str(info.get("status", "done"))
        if job.status == "cancelled":
            job.messages.append(f"cancelled: resumable with {info.get('resume') or f'--resume {run_id}'}")
        write_status(settings, job)
        if job.status == "done" and score_later:
            _score_active_run(settings, job, info, cache_root)
        return 0
    finally:
        cancel_path(settings, domain).unlink(missing_ok=True)
        lock.release()


def _train(
    settings: Settings,
    domain: str,
    job: JobStatus,
    run_id: str,
    overrides: dict[str, Any],
    trainer: Trainer | None,
    cancel: threading.Event,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Call the trainer with callbacks that write progress to the status file (at most twice a second)."""
    from triptych.finetune.train import Progress, TrainConfig

    if trainer is None:
        from triptych.finetune.runs import run_local as trainer
    last_write = 0.0

    def on_progress(p: Progress) -> None:
        nonlocal last_write
        job.status, job.step, job.total_steps = "training", p.step, p.total_steps
        job.loss, job.eta_s = round(p.loss, 4), round(p.eta_s, 1)
        if time.monotonic() - last_write >= 0.5 or p.step == p.total_steps:
            write_status(settings, job)
            last_write = time.monotonic()

    def on_status(message: str) -> None:
        job.messages.append(str(message))
        write_status(settings, job)

    config = TrainConfig.from_settings(settings, extra.get("mode", "closed-book"), **overrides)
    return trainer(
        settings, domain, config, run_id=run_id, on_progress=on_progress, on_status=on_status, cancel=cancel, **extra
    )


def _score_active_run(settings: Settings, job: JobStatus, info: dict[str, Any], cache_root: Path | None) -> None:
    """Score the base model and the trained adapter on the run's question sets, into run.json.

    The same measurement as `run_local(evaluate=True)` (accuracy_before/after, eval_before/after_s),
    made after activation. A failure here leaves the run done and active, without scores.
    """
    from peft import PeftModel

    from triptych.finetune import registry
    from triptych.finetune.base_model import cached_base_dir, load_base, pick_device
    from triptych.finetune.evaluate import evaluate_sets
    from triptych.finetune.runs import PEFT_DIR, TRAINING_FILE, eval_sets, training_set_for

    run_dir = settings.runs_dir / job.run_id  # type: ignore[operator]
    try:
        ts = training_set_for(settings, job.domain, reuse=run_dir / TRAINING_FILE, mode=info.get("mode", "closed-book"))
        sets = eval_sets(ts)
        job.messages.append(f"the adapter answers; scoring it and the base model on {sum(map(len, sets.values()))} "
                            "questions")  # fmt: skip
        write_status(settings, job)
        base = info["base_model"]
        base_dir = cached_base_dir(Path(base["path"]), cache_root or settings.data_dir, base["sha256"])
        model, tokenizer = load_base(base_dir, pick_device())
        scores: dict[str, Any] = {}
        for when in ("before", "after"):
            if when == "after":
                model = PeftModel.from_pretrained(model, run_dir / PEFT_DIR)
            started = time.perf_counter()
            scores[f"accuracy_{when}"] = evaluate_sets(model, tokenizer, ts.system, sets)
            scores[f"eval_{when}_s"] = round(time.perf_counter() - started, 1)
        with registry.locked(settings):
            registry.write_run(settings, job.run_id, (registry.read_run(settings, job.run_id) or info) | scores)  # type: ignore[arg-type]
        job.messages.append("scored: accuracy before and after is on the run")
    except Exception as exc:  # noqa: BLE001 - the adapter is trained and active; only its scores are missing
        traceback.print_exc()
        job.messages.append(f"scoring failed ({type(exc).__name__}: {exc}); the adapter is active")
    write_status(settings, job)


def _watch_for_cancel(settings: Settings, job: JobStatus) -> threading.Event:
    """An event set by SIGTERM or by the domain's cancel flag file (checked twice a second).

    The training loop stops at its next step with a checkpoint. Before the first step (loading,
    scoring the base model) there is nothing to keep, so a cancel then ends the worker at once.
    """
    cancel = threading.Event()
    flag = cancel_path(settings, job.domain)

    def stop() -> None:
        cancel.set()
        if job.status == "done":  # trained and active: only the scoring is dropped
            os._exit(0)
        if job.status != "training":
            job.status = "cancelled"
            job.messages.append("cancelled before training started")
            write_status(settings, job)
            os._exit(0)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop())

    def watch() -> None:
        while not cancel.is_set():
            if flag.exists():
                stop()
            time.sleep(0.5)

    threading.Thread(target=watch, name=f"cancel-watch-{job.domain}", daemon=True).start()
    return cancel


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the app that started it dies (it then checkpoints and exits)."""
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def load_trainer(spec: str) -> Trainer:
    """`module:function` -> the function."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> int:
    """The worker's command line (started by the app's training queue)."""
    parser = argparse.ArgumentParser(prog="python -m triptych.finetune.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--domain", required=True)
    parser.add_argument("--settings", type=Path, help="JSON of the app's Settings (default: environment and .env)")
    parser.add_argument("--resume", help="continue this unfinished run from its checkpoint")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--cache-root", type=Path, help="where the converted base model is cached (default: data dir)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip scoring before and after training")
    parser.add_argument("--trainer", help="module:function to train with (default: triptych's LoRA run)")
    parser.add_argument(
        "--mode",
        default="closed-book",
        choices=("closed-book", "with-passages"),
        help="with-passages: retrieved passages in each example (the hybrid column's adapter)",
    )
    args = parser.parse_args(argv)
    _die_with_parent()
    if args.settings:
        settings = Settings(_env_file=None, **json.loads(args.settings.read_text(encoding="utf-8")))  # type: ignore[call-arg]
    else:
        from triptych.settings import load_settings

        settings = load_settings()
    overrides = {"max_steps": args.max_steps, "epochs": args.epochs}
    return run_job(
        settings,
        args.domain,
        resume=args.resume,
        overrides=overrides,
        trainer=load_trainer(args.trainer) if args.trainer else None,
        cache_root=args.cache_root,
        evaluate=not args.no_evaluate,
        mode=args.mode,
    )


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
