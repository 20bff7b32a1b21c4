"""The demo corpora's gold QA stays consistent with the documents (every extractive answer is in its doc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from triptych.ingest import demo_domains
from triptych.qa import domain_qa

REPO = Path(__file__).resolve().parents[2]


def test_corpus_checker_passes() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_corpus_qa.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_each_demo_domain_has_train_and_test_questions() -> None:
    domains = list(demo_domains(REPO / "corpora"))
    assert len(domains) >= 3
    for domain in domains:
        train, test = domain_qa(REPO / "corpora", domain, "train"), domain_qa(REPO / "corpora", domain, "test")
        assert len(train) + len(test) >= 40, domain
        assert test and train
        assert not {r.id for r in train} & {r.id for r in test}
        assert any(not r.answerable for r in test), f"{domain}: no unanswerable test question"
