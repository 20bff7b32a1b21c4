"""Upload limits: size per file (also the server's own), files per batch, pages and parse time per file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from triptych.documents.loaders import load_document
from triptych.documents.validation import MIB, DocumentRejected, Limits, check_batch
from triptych.settings import Settings
from triptych.testing import make_pdf

REPO = Path(__file__).resolve().parents[2]


def _refusal(name: str, data: bytes, limits: Limits) -> str:
    with pytest.raises(DocumentRejected) as err:
        load_document(name, data, limits)
    return str(err.value)


def test_oversized_file_is_refused_naming_the_limit_and_the_setting() -> None:
    limits = Limits.from_settings(Settings(_env_file=None, max_upload_mb=1))  # type: ignore[call-arg]
    reason = _refusal("minutes.txt", b"Board minutes, item 4.\n" * (MIB // 20), limits)
    assert "1.1 MB, over the 1 MB limit" in reason and "TRIPTYCH_MAX_UPLOAD_MB" in reason


def test_a_pdf_of_thousands_of_pages_is_stopped_by_the_default_page_limit() -> None:
    limits = Limits.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    reason = _refusal("archive.pdf", make_pdf([f"Page {i}" for i in range(2000)]), limits)
    assert "2000 pages, over the 500-page limit" in reason and "TRIPTYCH_MAX_PDF_PAGES" in reason


def test_a_slow_pdf_is_stopped_by_the_parse_time_limit() -> None:
    # 100 pages take about 0.3 s to extract here: the 0.02 s limit stops it part way, naming where
    pages = [f"Section {i}. " + "Expense claims are paid within 14 days of approval. " * 10 for i in range(100)]
    limits = Limits(max_bytes=50 * MIB, max_pdf_pages=500, max_parse_s=0.02)
    reason = _refusal("slow.pdf", make_pdf(pages), limits)
    assert "parsing was stopped after" in reason and "over the 0.02 s limit per file" in reason
    assert "of 100" in reason and "TRIPTYCH_MAX_PARSE_S" in reason
    assert load_document("slow.pdf", make_pdf(pages[:3]), Limits(50 * MIB, 500, max_parse_s=60)).pages == 3


def test_a_huge_html_tree_is_stopped_by_the_parse_time_limit() -> None:
    page = b"<html><body>" + b"<div><span>Row</span></div>" * 100_000 + b"</body></html>"
    reason = _refusal("export.html", page, Limits(max_bytes=50 * MIB, max_pdf_pages=500, max_parse_s=0.05))
    assert "over the 0.05 s limit per file" in reason and "TRIPTYCH_MAX_PARSE_S" in reason


def test_files_per_batch_limit() -> None:
    check_batch(20, 20)
    with pytest.raises(DocumentRejected) as err:
        check_batch(21, 20)
    assert "21 files in one upload, over the limit of 20" in str(err.value)
    assert "TRIPTYCH_MAX_UPLOAD_FILES" in str(err.value)


@pytest.fixture
def app_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Throw-away data and index folders, no demo corpora; the settings cache and upload limit restored after."""
    from triptych.ui import resources

    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(clean_env / "corpora"))
    monkeypatch.setenv("TRIPTYCH_CHROMA_PATH", str(clean_env / "indexes"))
    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(clean_env / "data"))
    before = streamlit_config.get_option("server.maxUploadSize")
    resources.app_settings.clear()
    try:
        yield clean_env
    finally:
        streamlit_config.set_option("server.maxUploadSize", before)
        resources.app_settings.clear()


def test_the_server_upload_limit_follows_the_setting(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_MAX_UPLOAD_MB", "2.5")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert streamlit_config.get_option("server.maxUploadSize") == 3  # whole MB, rounded up


def test_config_toml_upload_limit_matches_the_default() -> None:
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == Settings(_env_file=None).max_upload_mb  # type: ignore[call-arg]


def test_documents_page_refuses_a_batch_over_the_file_limit(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_MAX_UPLOAD_FILES", "2")
    at = AppTest.from_file(str(REPO / "triptych" / "ui" / "documents_page.py"), default_timeout=60).run()
    at.selectbox(key="docs_domain").select("(new domain…)").run()
    at.text_input(key="docs_new_domain").input("limits_demo").run()
    files = [(f"note{i}.md", b"# Note\n\nTrain travel is booked in second class.\n", "text/markdown") for i in range(3)]
    at.file_uploader(key="docs_upload").set_value(files).run()
    assert not at.exception
    assert "3 files in one upload, over the limit of 2" in at.error[0].value
    assert "TRIPTYCH_MAX_UPLOAD_FILES" in at.error[0].value
    assert at.button(key="docs_ingest").disabled
    at.file_uploader(key="docs_upload").set_value(files[:2]).run()
    assert not at.error and not at.button(key="docs_ingest").disabled
