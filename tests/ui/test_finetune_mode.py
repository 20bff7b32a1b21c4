"""The Fine-tune page's "Training data" choice: a with-passages run trains the hybrid column's adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import PAGES, SCRIPTED_TRAINER, app_env  # noqa: F401 - the throw-away folders fixture
from triptych.finetune import registry
from triptych.settings import Settings


def test_training_with_passages_from_the_page_makes_the_hybrids_adapter(
    app_env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from triptych.ui import resources
    from triptych.ui.training_jobs import TrainingQueue

    settings = Settings(_env_file=None, data_dir=app_env / "data", corpora_dir=app_env / "corpora")  # type: ignore[call-arg]
    queue = TrainingQueue(settings, worker_args=SCRIPTED_TRAINER)
    monkeypatch.setattr(resources, "training_queue", lambda: queue)
    at = AppTest.from_file(str(PAGES / "finetune_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.radio(key="ft_mode").value == "closed-book"  # the default trains the Fine-tuned column
    at.radio(key="ft_mode").set_value("with-passages").run()
    at.button(key="ft_start").click().run()
    assert not at.exception, at.exception
    assert queue.wait(180)
    hybrid = registry.active_adapter(settings, "hr_demo", registry.WITH_PASSAGES)
    assert hybrid is not None and hybrid.mode == "with-passages"  # the worker ran with --mode with-passages
    assert registry.active_adapter(settings, "hr_demo") is None
    at = AppTest.from_file(str(PAGES / "finetune_page.py"), default_timeout=60).run()
    assert at.dataframe[0].value["with-passages adapter (hybrid)"].tolist() == [hybrid.run_id]
    assert at.dataframe[1].value["mode"].tolist() == ["with-passages"]
