"""Recording a demo pack with the real embedded model: one question, every streamed token timed."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.compare import Comparison
from triptych.demo_pack import DemoPack, read_pack, write_pack
from triptych.demo_record import preset_questions, record_comparison
from triptych.llm.server import LocalModels
from triptych.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "hr_handbook"


def test_one_question_is_recorded_from_the_real_model_with_its_token_times(
    tmp_path: Path, local_models: LocalModels
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", corpora_dir=REPO / "corpora", max_tokens=48)  # type: ignore[call-arg]
    question = preset_questions(settings, DOMAIN)[0]
    comp = record_comparison(Comparison(settings, local_models), question, DOMAIN, ["prompt"])

    result = comp.results["prompt"]
    assert result.error is None and result.answer, result
    tokens = comp.tokens("prompt")
    assert len(tokens) >= 3  # the model streamed, and each piece was kept with its own time
    assert "".join(t.text for t in tokens).strip() == result.answer
    times = [t.t for t in tokens]
    assert times == sorted(times) and times[-1] > times[0]
    # the first recorded token is the one the pipeline timed (plus its setup), not a poll later
    assert result.ttft_s is not None and result.total_s is not None
    first_due = (result.setup_s or 0.0) + result.ttft_s
    assert first_due - 0.01 <= times[0] <= first_due + 0.5
    assert comp.gold_answers == question.gold_answers and comp.gold_answers

    pack = DemoPack.made_with(settings, [comp], DOMAIN)
    back = read_pack(write_pack(pack, tmp_path / "real.json"))
    assert back == pack
    assert back.models == {"prompt": [result.model]} and result.model
    assert back.settings["prompt"]["model"] == "local" and back.settings["max_tokens"] == 48
    print(f"\nrecorded {len(tokens)} tokens over {times[-1] - times[0]:.2f} s; ttft {result.ttft_s:.2f} s")
