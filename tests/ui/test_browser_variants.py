"""The real app in headless Chromium: the Documents page builds the chunking the settings ask for, then
deletes the unused one. Real embedding model, real Chroma, real Streamlit server.

Skipped (with the reason) outside CI when Chromium or Playwright is missing; with CI=true it fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ui.test_browser_e2e import OUTPUT, _playwright
from triptych.browser_harness import AppStartError, chromium, running_app, select

BUILD_S = 300  # loading the embedding model in the app and embedding one document, on shared cores

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(BUILD_S + 240)]

LEAVE = (
    "# Annual leave\n\nEvery employee receives 28 vacation days per calendar year. Unused days may be carried "
    "over until the end of March; requests go through the HR portal two weeks ahead.\n\n"
    "## Parental leave\n\nParents get 16 weeks of paid parental leave, to be taken within two years of the birth.\n"
)


def test_build_the_chunking_in_use_then_delete_the_old_one(tmp_path: Path) -> None:
    api = _playwright()
    expect = api.expect
    from triptych.ingest import ingest_uploads
    from triptych.settings import Settings

    indexes, data, corpora = tmp_path / "indexes", tmp_path / "data", tmp_path / "corpora"
    corpora.mkdir()  # no demo corpora: nothing to build on first start
    before = Settings(_env_file=None, chroma_path=indexes, data_dir=data, corpora_dir=corpora)  # type: ignore[call-arg]
    assert ingest_uploads(before, "e2e_var", [("leave.md", LEAVE.encode())]).stored  # 160/24, the real model
    env = {"TRIPTYCH_AUTOTRAIN": "false", "TRIPTYCH_CORPORA_DIR": str(corpora),
           "TRIPTYCH_CHUNK_SIZE": "48", "TRIPTYCH_CHUNK_OVERLAP": "8"}  # fmt: skip
    try:
        with running_app(tmp_path, chroma_path=indexes, data_dir=data, extra_env=env) as app:
            with api.sync_playwright() as pw:
                browser = chromium(pw, tmp_path / "chromium-profile")
                try:
                    page = browser.new_page()
                    page.goto(f"{app.url}/documents_page", wait_until="domcontentloaded")
                    expect(page.get_by_role("heading", name="Documents")).to_be_visible(timeout=60_000)
                    select(page, "Domain", "e2e_var")
                    expect(page.get_by_text(re.compile(r"have no index for e2e_var yet"))).to_be_visible(timeout=30_000)
                    page.get_by_role("button", name="Build this index").click()
                    done = page.get_by_text(re.compile(r"48/8 tokens · all-MiniLM-L6-v2: e2e_var: 1 stored"))
                    expect(done).to_be_visible(timeout=BUILD_S * 1000)
                    expect(page.get_by_text(re.compile(r"have no index for e2e_var yet"))).to_have_count(0)
                    expect(page.get_by_text(re.compile(r"1 document\(s\), \d+ chunks"))).to_be_visible()
                    expect(page.get_by_text("Build another index")).to_be_visible(timeout=30_000)
                    page.screenshot(path=str(OUTPUT / "browser_variants_built.png"), full_page=True)

                    select(page, "Index", "160/24 tokens · all-MiniLM-L6-v2")
                    page.get_by_role("button", name="Delete index").click()
                    # (its toast, "Deleted the index 160/24...", may be gone before a loaded machine looks)
                    # the one left is the one in use: picked now, and deleting it needs the confirmation
                    in_use = page.get_by_role("combobox", name="Index")
                    expect(in_use).to_have_value("48/8 tokens · all-MiniLM-L6-v2 (in use)", timeout=30_000)
                    expect(page.get_by_text("It is in use: delete it anyway")).to_be_visible()
                    expect(page.get_by_role("button", name="Delete index")).to_be_disabled()
                    shot = OUTPUT / "browser_variants_deleted.png"
                    page.screenshot(path=str(shot), full_page=True)
                    print(f"\nscreenshots: {OUTPUT}/browser_variants_*.png")
                except Exception:
                    page.screenshot(path=str(OUTPUT / "browser_variants_failed.png"), full_page=True)
                    print(f"\n--- streamlit log (tail) ---\n{app.log_tail()}")
                    raise
                finally:
                    browser.close()
    except AppStartError as exc:
        pytest.fail(str(exc))
    after = Settings(_env_file=None, chroma_path=indexes, data_dir=data, corpora_dir=corpora)  # type: ignore[call-arg]
    from triptych.variants import list_variants

    infos = list_variants(after, "e2e_var")
    assert [(i.variant.chunk_size, i.variant.chunk_overlap, i.documents) for i in infos] == [(48, 8, 1)]
