"""The file the embedded servers load: the bundled Q4_1 model as a Q8_0 copy made once (real llama.cpp)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType, GGUFReader

from triptych.llm import server as server_mod
from triptych.llm.server import LocalModels, bundled_model_path, gguf_architecture, q8_copy
from triptych.settings import Settings


def weight_types(path: Path) -> set[str]:
    """Quantisation types of a GGUF's 2-D weight matrices."""
    return {GGMLQuantizationType(t.tensor_type).name for t in GGUFReader(str(path)).tensors if len(t.shape) == 2}


def test_the_bundled_model_is_served_from_a_q8_0_copy_made_once(tmp_path: Path) -> None:
    models = LocalModels(Settings(_env_file=None, data_dir=tmp_path))  # type: ignore[call-arg]
    served = models.served_model_path()
    assert served.parent == tmp_path / "models" and served.name == "SmolLM2-135M-Instruct.Q8_0.gguf"
    assert weight_types(bundled_model_path()) >= {"Q4_1"}
    assert weight_types(served) == {"Q8_0"}
    assert gguf_architecture(served) == gguf_architecture(bundled_model_path())
    assert models.model_path() == bundled_model_path()  # what fine-tuning trains on stays the shipped file
    assert models._spec("any", None, 0).model_path == served  # what a server process is started with
    made = served.stat().st_mtime_ns
    assert models.served_model_path() == served and served.stat().st_mtime_ns == made  # reused, not remade
    assert not [p for p in served.parent.iterdir() if p.name.endswith(".part")]


def test_a_copy_older_than_its_source_is_made_again(tmp_path: Path) -> None:
    source = bundled_model_path()
    copy = q8_copy(source, tmp_path)
    old = source.stat().st_mtime - 3600
    os.utime(copy, (old, old))
    assert q8_copy(source, tmp_path) == copy and copy.stat().st_mtime > old


def test_a_model_of_ones_own_or_q8_off_is_served_as_it_is(tmp_path: Path) -> None:
    own = tmp_path / "own.gguf"
    own.symlink_to(bundled_model_path())
    settings = Settings(_env_file=None, data_dir=tmp_path, local_model_path=own)  # type: ignore[call-arg]
    assert LocalModels(settings).served_model_path() == own
    off = Settings(_env_file=None, data_dir=tmp_path, local_q8=False)  # type: ignore[call-arg]
    assert LocalModels(off).served_model_path() == bundled_model_path()
    assert not (tmp_path / "models").exists()


def test_where_the_copy_cannot_be_written_the_shipped_file_is_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data folder should be")
    models = LocalModels(Settings(_env_file=None, data_dir=blocked))  # type: ignore[call-arg]
    assert models.served_model_path() == bundled_model_path()
    assert "serving SmolLM2-135M-Instruct.Q4_1.gguf as shipped" in caplog.text


def test_a_failed_conversion_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", lambda *a: 1)
    with pytest.raises(server_mod.ModelServerError, match="could not write a Q8_0 copy"):
        q8_copy(bundled_model_path(), tmp_path)
    assert list(tmp_path.iterdir()) == []
