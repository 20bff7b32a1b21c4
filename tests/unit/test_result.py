"""The one result type: every answer field of a pipeline's state reaches it, and it survives JSON."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import get_type_hints

from graphs.result import PipelineResult
from graphs.state import PipelineState, QuestionInput
from triptych.documents.chunking import Chunk

STATE_ONLY = {"context"}  # the passages as the prompt held them; the prompt itself is in `messages`


def test_every_answer_field_of_the_state_is_a_result_field() -> None:
    answer_fields = set(get_type_hints(PipelineState)) - set(get_type_hints(QuestionInput)) - STATE_ONLY
    assert answer_fields <= {f.name for f in fields(PipelineResult)}


def test_a_result_is_rebuilt_from_its_json() -> None:
    source = Chunk("c1", "leave.md", "leave.md", "Leave", "25 days", 0, 7, 0.8, page=2, section="Leave", n=1)
    result = PipelineResult.from_state(
        "rag", "RAG", {"question": "q", "answer": "25 days [1]", "sources": [source], "ttft_s": None, "context": "x"}
    )
    assert result.ttft_s is None and result.sources == [source]
    assert PipelineResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
