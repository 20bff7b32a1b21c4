"""Hosted fine-tuning on OpenAI: upload the training file, create a job, poll it, record the `ft:` model.

The resulting model id becomes the domain's hosted fine-tuned model in the registry; the fine-tuned
column uses it when TRIPTYCH_FINETUNED__MODEL is an `openai/...` model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from openai import OpenAI

from triptych import runstore
from triptych.finetune import registry
from triptych.finetune.dataset import validate_training_file
from triptych.finetune.runs import TRAINING_FILE, training_set_for
from triptych.settings import OPENAI_BASE_URL, OPENAI_KEY_ENV, EndpointConfig, Settings

FINISHED = ("succeeded", "failed", "cancelled")


class HostedJobError(RuntimeError):
    """The hosted job failed or did not finish; the message gives the job id and the reason."""


def openai_client(settings: Settings, **kwargs: Any) -> OpenAI:
    """A client for api.openai.com with the key of the fine-tuned endpoint (default OPENAI_API_KEY)."""
    cfg = settings.finetuned
    hosted = EndpointConfig(
        model=f"openai/{settings.finetune_openai_model}",
        api_key_env=(cfg.api_key_env if cfg.provider.name == "openai" else None) or OPENAI_KEY_ENV,
    )
    key = hosted.api_key("hosted fine-tuning on OpenAI")
    return OpenAI(base_url=OPENAI_BASE_URL, api_key=key, timeout=settings.request_timeout_s, **kwargs)


def run_openai_job(
    settings: Settings,
    domain: str,
    client: OpenAI,
    *,
    epochs: int | None = None,
    seed: int | None = None,
    activate: bool = True,
    timeout_s: float = 6 * 3600,
    on_status: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Upload the domain's training set, start a supervised job, wait for it; returns the run's run.json."""
    say = on_status or (lambda _msg: None)
    run_id = runstore.new_run_id(domain, settings.runs_dir, claim=True)
    ts = training_set_for(settings, domain)
    path = ts.write(settings.runs_dir / run_id / TRAINING_FILE)
    validate_training_file(path)
    model = settings.finetune_openai_model
    info: dict[str, Any] = {
        "run_id": run_id,
        "domain": domain,
        "kind": "openai",
        "status": "uploading",
        "base_model": {"openai": model},
        "training_set": {"file": TRAINING_FILE, "examples": len(ts.examples)},
    }
    registry.write_run(settings, run_id, info)
    with path.open("rb") as fh:
        uploaded = client.files.create(file=(TRAINING_FILE, fh), purpose="fine-tune")
    say(f"uploaded {TRAINING_FILE} as {uploaded.id}")
    hyper = {"n_epochs": epochs or settings.finetune_epochs}
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=uploaded.id,
        suffix=re.sub(r"[^a-z0-9-]", "-", domain.lower())[:18],
        seed=seed if seed is not None else settings.finetune_seed,
        method={"type": "supervised", "supervised": {"hyperparameters": hyper}},
    )
    info.update(status=job.status, job_id=job.id, file_id=uploaded.id)
    registry.write_run(settings, run_id, info)
    say(f"job {job.id}: {job.status}")
    deadline = time.monotonic() + timeout_s
    while job.status not in FINISHED:
        if time.monotonic() > deadline:
            raise HostedJobError(f"job {job.id} still {job.status} after {timeout_s:.0f} s; run.json has its id")
        sleep(settings.finetune_poll_s)
        job = client.fine_tuning.jobs.retrieve(job.id)
        say(f"job {job.id}: {job.status}")
    info.update(status=job.status, hosted_model=job.fine_tuned_model, trained_tokens=job.trained_tokens)
    registry.write_run(settings, run_id, info)
    if job.status != "succeeded" or not job.fine_tuned_model:
        reason = job.error.message if job.error is not None and job.error.message else job.status
        raise HostedJobError(f"job {job.id} {job.status}: {reason}")
    if activate:
        registry.activate(settings, domain, run_id)
    return info
