"""benchmarks/bench_hybrid.py builds each pipeline's messages with the graphs' own nodes and contexts:
a change to those (e.g. prompts read through the context) must not break the benchmark unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import bench_hybrid  # noqa: E402
from triptych.documents.chunking import Chunk  # noqa: E402
from triptych.qa import QARecord  # noqa: E402
from triptych.settings import Settings  # noqa: E402


class FakeEmbedder:
    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.array([[float(len(t) % 7), 1.0, float("week" in t)] for t in texts])


class FakeRetriever:
    """Finds the shutdown passage for the shutdown question, nothing for anything else."""

    embedder = FakeEmbedder()

    def search(self, question: str) -> list[Chunk]:
        if "shutdown" not in question:
            return []
        return [
            Chunk(
                doc_id="site.md",
                source="site.md",
                title="Site handbook",
                score=0.9,
                text="The canteen opens at 11:30. Coffee is free.",
            ),
            Chunk(
                doc_id="site.md",
                source="site.md",
                title="Site handbook",
                score=0.8,
                text="The Leipzig floor closes for summer shutdown in calendar weeks 32 and 33.",
            ),
        ]


def qa(question: str, answer: str) -> QARecord:
    return QARecord(id=question[:12], question=question, answer=answer, domain="hr_demo", split="train")


@pytest.fixture
def settings(clean_env: Path) -> Settings:
    return Settings(_env_file=None, data_dir=clean_env / "data")  # type: ignore[call-arg]


def test_each_pipeline_gets_the_messages_its_graph_builds(settings: Settings) -> None:
    train = [qa("How many days of leave?", "25 days."), qa("Who signs expenses?", "The line manager.")]
    test = [qa("When is the summer shutdown?", "weeks 32 and 33"), qa("Where do I park?", "garage B")]
    out = bench_hybrid.build_prompts(settings, "hr_demo", test, train, FakeRetriever())

    assert set(out) == set(bench_hybrid.PIPELINES)
    assert all(len(messages) == len(test) for messages in out.values())
    prompt_text = " ".join(m["content"] for m in out["prompt"][0])
    assert "The line manager." in prompt_text  # few-shot examples from the training questions
    for pipeline in ("rag", "hybrid_closed_book", "hybrid_with_passages"):
        text = " ".join(m["content"] for m in out[pipeline][0])
        assert "weeks 32 and 33" in text and "[" in text  # the numbered passages
        assert out[pipeline][1] is None  # nothing retrieved: the graph's fixed refusal, no model call
    # the with-passages adapter was trained without the worked example: it is not shown one either
    assert len(out["rag"][0]) == len(out["hybrid_closed_book"][0]) == 4  # system, example, its answer, question
    assert [m["role"] for m in out["hybrid_with_passages"][0]] == ["system", "user"]
