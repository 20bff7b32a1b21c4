"""Documents page: another chunking is built beside the index in use, in the background, and unused ones deleted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import PAGES, app_env  # noqa: F401 - the throw-away folders fixture
from tests.unit.test_ingest_jobs import GatedEmbedder
from triptych.testing import HashEmbedder

LEAVE = (
    b"# Annual leave\n\nEmployees receive 28 days of paid annual leave per calendar year. Unused days may be "
    b"carried over until the end of March. Requests go through the HR portal at least two weeks ahead.\n"
)


def texts(elements) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.value.replace("\\", "") for e in elements]  # as read, without markdown escapes


def variants_table(at: AppTest):  # type: ignore[no-untyped-def]
    return next(d.value for d in at.dataframe if "chunk size" in d.value.columns)


def finish(at: AppTest, job_id: str) -> None:
    from triptych.ui.ingest_jobs import ingest_jobs

    job = ingest_jobs().wait(job_id, timeout=60)
    assert job is not None and job.status == "done", job and job.error
    deadline = time.monotonic() + 10
    at.run()
    while "docs_build_job" in at.session_state and time.monotonic() < deadline:
        at.run()
    assert not at.exception, at.exception


def test_build_another_chunking_in_the_background_then_delete_the_unused_one(
    app_env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import triptych.variants
    from triptych.index import chroma_client
    from triptych.ingest import ingest_uploads
    from triptych.retrieval import retriever_for
    from triptych.settings import load_settings
    from triptych.ui import resources

    before = load_settings()  # the default chunking, 160/24
    ingest_uploads(before, "hr_demo", [("leave.md", LEAVE)], embedder=HashEmbedder(model_name=before.embedding_model))
    monkeypatch.setenv("TRIPTYCH_CHUNK_SIZE", "40")  # the settings now ask for another chunking
    monkeypatch.setenv("TRIPTYCH_CHUNK_OVERLAP", "8")
    resources.app_settings.clear()
    embedder = GatedEmbedder(before.embedding_model)  # a slow model: nothing is embedded until the gate opens
    monkeypatch.setattr(triptych.variants, "LazyEmbedder", lambda name, batch_size: embedder)

    at = AppTest.from_file(str(PAGES / "documents_page.py"), default_timeout=60).run()
    at.selectbox(key="docs_domain").select("hr_demo").run()
    assert not at.exception, at.exception
    assert any("have no index for hr_demo yet" in w and "--chunk-size 40" in w for w in texts(at.warning))
    assert list(variants_table(at)["chunk size"]) == [160]

    at.button(key="docs_build_current").click().run()
    assert not at.exception, at.exception
    progress = [p.proto.text.replace("\\", "") for p in at.get("progress")]
    assert progress == ["Building 40/8 tokens · all-MiniLM-L6-v2 for hr_demo: starting (the embedding model loads "
                        "with the first document)…"]  # fmt: skip
    assert at.button(key="docs_build_current").disabled  # one build of it at a time
    old = retriever_for(
        before, "hr_demo", client=chroma_client(before), embedder=HashEmbedder(model_name=before.embedding_model)
    )
    assert old.search("annual leave")[0].doc_id == "leave.md"  # the index in use before keeps answering meanwhile

    embedder.gate.set()
    finish(at, at.session_state["docs_build_job"])
    assert any("40/8 tokens · all-MiniLM-L6-v2: hr_demo: 1 stored" in s for s in texts(at.success)), texts(at.success)
    table = variants_table(at)
    assert list(zip(table["chunk size"], table["in use"], table["documents"], strict=True)) == [
        (40, "✓", 1),
        (160, "", 1),
    ]
    assert not any("have no index" in w for w in texts(at.warning))
    listed = next(d.value for d in at.dataframe if "document" in d.value.columns)
    assert list(listed["document"]) == ["leave.md"]  # the documents of the index now in use

    pick = at.selectbox(key="docs_variant_pick")
    in_use = next(o for o in pick.options if "(in use)" in o)
    pick.select(in_use).run()
    assert at.button(key="docs_variant_delete").disabled  # the index in use: not without a confirmation
    unused = next(o for o in at.selectbox(key="docs_variant_pick").options if o.startswith("160/24"))
    at.selectbox(key="docs_variant_pick").select(unused).run()
    assert not at.button(key="docs_variant_delete").disabled
    at.button(key="docs_variant_delete").click().run()
    assert not at.exception, at.exception
    assert list(variants_table(at)["chunk size"]) == [40]
    now = load_settings()
    new = retriever_for(
        now, "hr_demo", client=chroma_client(now), embedder=HashEmbedder(model_name=now.embedding_model)
    )
    assert new.search("annual leave")[0].doc_id == "leave.md"  # the one in use still answers

    at.number_input(key="docs_variant_size").set_value(64).run()
    at.number_input(key="docs_variant_overlap").set_value(70).run()
    assert any("must be smaller than chunk size" in e for e in texts(at.error))
    assert at.button(key="docs_variant_build").disabled
    at.number_input(key="docs_variant_overlap").set_value(16).run()
    at.button(key="docs_variant_build").click().run()
    finish(at, at.session_state["docs_build_job"])
    assert list(variants_table(at)["chunk size"]) == [40, 64]
