"""Index variants: another chunking or embedding model of a domain is built beside the current one.

Against a real embedded Chroma (PersistentClient under tmp_path); the embedder is the hashed
bag-of-words fake, named like the configured model, so nothing is downloaded or loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from triptych.index import (
    CATALOG_SUFFIX,
    DomainIndex,
    IndexNotFoundError,
    VariantNotBuiltError,
    chroma_client,
    collection_name,
    list_indexes,
    open_index,
    variant_name,
)
from triptych.ingest import IngestProgress, delete_document, ensure_demo_indexes, ingest_uploads, kept_originals
from triptych.retrieval import retriever_for
from triptych.settings import Settings
from triptych.testing import HashEmbedder
from triptych.variants import (
    Variant,
    build_variant,
    delete_variant,
    domain_documents,
    list_variants,
    remove_document_everywhere,
)

LEAVE = (
    b"# Annual leave\n\nEmployees receive 28 days of paid annual leave per calendar year. Unused days may be "
    b"carried over until the end of March. Requests go through the HR portal at least two weeks ahead.\n\n"
    b"## Sick leave\n\nSick days are not counted as annual leave. A doctor's note is needed from day three.\n"
)
TRAVEL = b"# Travel\n\nRail journeys over four hours may be booked in first class by every employee.\n"
EXPENSES = b"Expenses: receipts are needed for every amount above 25 EUR; meals abroad have a daily cap.\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def settings(clean_env: Path) -> Settings:
    """Default chunking (160/24), folders under tmp_path, one demo corpus (hr_demo) with one document."""
    docs = clean_env / "corpora" / "hr_demo" / "docs"
    docs.mkdir(parents=True)
    (docs / "expenses.txt").write_bytes(EXPENSES)
    return Settings(_env_file=None, data_dir=clean_env / "data", chroma_path=clean_env / "indexes",  # type: ignore[call-arg]
                    corpora_dir=clean_env / "corpora")  # fmt: skip


def embedder(settings: Settings) -> HashEmbedder:
    return HashEmbedder(model_name=settings.embedding_model)


def rechunked(settings: Settings, size: int = 40, overlap: int = 8) -> Settings:
    return settings.model_copy(update={"chunk_size": size, "chunk_overlap": overlap})


def test_the_default_chunking_keeps_todays_name_and_others_get_their_own() -> None:
    base = collection_name("hr_handbook", "all-MiniLM-L6-v2")
    assert variant_name("hr_handbook", "all-MiniLM-L6-v2", 160, 24) == base
    assert variant_name("hr_handbook", "all-MiniLM-L6-v2", 300, 40) == base + ".c300-o40"
    assert variant_name("hr_handbook", "all-MiniLM-L6-v2", 160, 0) != base
    assert variant_name("hr_handbook", "sentence-transformers/all-MiniLM-L6-v2", 300, 40) == base + ".c300-o40"
    settings = Settings(_env_file=None, chunk_size=300, chunk_overlap=40)  # type: ignore[call-arg]
    variant = Variant.of(settings, "hr_handbook")
    assert variant.collection == base + ".c300-o40"
    assert variant.build_command() == (
        "triptych index build --domain hr_handbook --chunk-size 300 --chunk-overlap 40 "
        "--embedding-model all-MiniLM-L6-v2"
    )


def test_a_second_variant_is_built_beside_the_first_and_both_answer(settings: Settings) -> None:
    client = chroma_client(settings)
    ingest_uploads(settings, "hr", [("leave.md", LEAVE), ("travel.md", TRAVEL)], client=client,
                   embedder=embedder(settings))  # fmt: skip
    first = open_index(settings, "hr", client=client)
    first_chunks = sorted(first.chunks.get()["ids"])

    small = rechunked(settings)
    with pytest.raises(VariantNotBuiltError) as missing:
        retriever_for(small, "hr", client=client, embedder=embedder(small))
    assert "triptych index build --domain hr --chunk-size 40 --chunk-overlap 8" in str(missing.value)
    assert "Documents page" in str(missing.value) and "160/24" in str(missing.value)

    events: list[IngestProgress] = []
    report = build_variant(settings, Variant.of(small, "hr"), progress=events.append, client=client,
                           embedder=embedder(small))  # fmt: skip
    assert sorted(o.doc_id for o in report.stored) == ["leave.md", "travel.md"]
    assert [(e.done, e.total) for e in events] == [(1, 2), (2, 2)]

    second = open_index(small, "hr", client=client)
    assert second.name != first.name
    assert sorted(first.chunks.get()["ids"]) == first_chunks  # the first variant is untouched
    assert second.document("leave.md").chunk_size == 40
    assert second.count_chunks() > first.count_chunks()  # smaller chunks, more of them, from the same documents
    assert second.document_text("leave.md") == first.document_text("leave.md")
    question = "How many days of annual leave do employees get?"
    for chosen in (settings, small):
        top = retriever_for(chosen, "hr", client=client, embedder=embedder(chosen)).search(question)
        assert top and top[0].doc_id == "leave.md"
    short = retriever_for(small, "hr", client=client, embedder=embedder(small)).search(question)[0]
    assert short.end - short.start < 40 * 8  # a chunk of at most 40 tokens, read from the new variant

    infos = {(i.variant.chunk_size, i.variant.chunk_overlap): i for i in list_variants(small, "hr", client)}
    assert set(infos) == {(160, 24), (40, 8)}
    assert infos[(40, 8)].in_use and not infos[(160, 24)].in_use
    assert [infos[k].documents for k in ((160, 24), (40, 8))] == [2, 2]
    assert infos[(40, 8)].chunks == second.count_chunks() and infos[(40, 8)].approx_bytes > 0
    assert infos[(160, 24)].out_of_date == infos[(40, 8)].out_of_date == 0


def test_deleting_one_variant_leaves_the_other_answering_and_keeps_originals_it_needs(settings: Settings) -> None:
    client = chroma_client(settings)
    ingest_uploads(settings, "hr", [("leave.md", LEAVE)], client=client, embedder=embedder(settings))
    small = rechunked(settings)
    build_variant(settings, Variant.of(small, "hr"), client=client, embedder=embedder(small))
    originals = settings.data_dir / "originals" / "hr"

    assert delete_variant(settings, Variant.of(settings, "hr"), client)
    assert not delete_variant(settings, Variant.of(settings, "hr"), client)  # already gone
    with pytest.raises(VariantNotBuiltError, match="--chunk-size 160 --chunk-overlap 24"):
        open_index(settings, "hr", client=client)
    top = retriever_for(small, "hr", client=client, embedder=embedder(small)).search("annual leave days")
    assert top and top[0].doc_id == "leave.md"
    assert [p.name for p in originals.iterdir()] == [f"{sha(LEAVE)}.md"]  # the other variant still uses it

    assert delete_variant(settings, Variant.of(small, "hr"), client)
    assert list(originals.iterdir()) == []  # no variant left: its original went with the last one
    with pytest.raises(IndexNotFoundError, match="triptych ingest PATH --domain hr"):
        open_index(small, "hr", client=client)


def test_an_upload_into_one_variant_shows_the_other_out_of_date_and_an_update_adds_only_it(
    settings: Settings,
) -> None:
    client = chroma_client(settings)
    ingest_uploads(settings, "hr", [("leave.md", LEAVE)], client=client, embedder=embedder(settings))
    small = rechunked(settings)
    build_variant(settings, Variant.of(small, "hr"), client=client, embedder=embedder(small))
    ingest_uploads(small, "hr", [("travel.md", TRAVEL)], client=client, embedder=embedder(small))  # into 40/8 only

    infos = {i.variant.chunk_size: i for i in list_variants(settings, "hr", client)}
    assert (infos[160].out_of_date, infos[40].out_of_date) == (1, 0)
    assert sorted(domain_documents(settings, "hr", client)) == ["leave.md", "travel.md"]
    assert sorted(name for name, _ in kept_originals(settings, "hr", client=client)) == ["leave.md", "travel.md"]

    update = build_variant(settings, Variant.of(settings, "hr"), client=client, embedder=embedder(settings))
    assert {o.doc_id: o.status for o in update.outcomes} == {"leave.md": "unchanged", "travel.md": "added"}
    assert all(i.out_of_date == 0 for i in list_variants(settings, "hr", client))

    assert [v.chunk_size for v in remove_document_everywhere(settings, "hr", "travel.md", client)] == [40, 160]
    assert all(i.documents == 1 for i in list_variants(settings, "hr", client))
    assert delete_document(settings, "hr", "leave.md", client=client)  # the app's and CLI's delete: every variant
    assert all(i.documents == 0 for i in list_variants(settings, "hr", client))
    assert list((settings.data_dir / "originals" / "hr").iterdir()) == []


def test_a_demo_domain_is_rebuilt_from_its_corpus_folder_and_a_lost_original_is_refused_with_the_fix(
    settings: Settings,
) -> None:
    client = chroma_client(settings)
    ensure_demo_indexes(settings, client=client, embedder=embedder(settings))  # expenses.txt, from the corpus
    ingest_uploads(settings, "hr_demo", [("leave.md", LEAVE), ("travel.md", TRAVEL)], client=client,
                   embedder=embedder(settings))  # fmt: skip
    (settings.data_dir / "originals" / "hr_demo" / f"{sha(TRAVEL)}.md").unlink()  # lost (or never kept)

    small = rechunked(settings)
    report = build_variant(settings, Variant.of(small, "hr_demo"), client=client, embedder=embedder(small))
    assert {o.doc_id: o.status for o in report.outcomes} == {
        "leave.md": "added",
        "expenses.txt": "added",
        "travel.md": "refused",
    }
    assert "upload it again" in (report.refused[0].reason or "")
    assert sorted(r.doc_id for r in open_index(small, "hr_demo", client=client).documents()) == [
        "expenses.txt",
        "leave.md",
    ]


def test_chunking_a_variant_cannot_have_is_refused_before_anything_is_made(settings: Settings) -> None:
    client = chroma_client(settings)
    ingest_uploads(settings, "hr", [("leave.md", LEAVE)], client=client, embedder=embedder(settings))
    with pytest.raises(ValueError, match="chunk overlap \\(50\\) must be smaller than chunk size \\(40\\)"):
        build_variant(settings, Variant("hr", settings.embedding_model, 40, 50), client=client,
                      embedder=embedder(settings))  # fmt: skip
    assert [i.chunk_size for i in list_indexes(client)] == [160]


def make_legacy(index: DomainIndex) -> None:
    """Turn an index into what Triptych wrote before variants: today's name, no chunking in its metadata."""
    base = collection_name(index.domain, index.embedding_model)
    for collection, name in ((index.catalog, base + CATALOG_SUFFIX), (index.chunks, base)):
        meta = {k: v for k, v in (collection.metadata or {}).items() if k not in ("chunk_size", "chunk_overlap")}
        collection.modify(name=name, metadata=meta)


def test_an_index_built_before_variants_keeps_answering_without_a_rebuild(settings: Settings) -> None:
    client = chroma_client(settings)
    wide = rechunked(settings, 200, 30)  # someone had TRIPTYCH_CHUNK_SIZE=200, TRIPTYCH_CHUNK_OVERLAP=30
    ingest_uploads(wide, "old", [("leave.md", LEAVE)], client=client, embedder=embedder(wide))
    ingest_uploads(settings, "plain", [("travel.md", TRAVEL)], client=client, embedder=embedder(settings))
    old, plain = open_index(wide, "old", client=client), open_index(settings, "plain", client=client)
    old_ids, plain_ids = sorted(old.chunks.get()["ids"]), sorted(plain.chunks.get()["ids"])
    make_legacy(old)
    make_legacy(plain)
    assert {c.name for c in client.list_collections()} >= {collection_name("old", settings.embedding_model)}
    assert {(i.domain, i.chunk_size) for i in list_indexes(client)} == {("old", 200), ("plain", 160)}  # read

    calls = embedder(wide)
    again = open_index(wide, "old", client=client)  # same settings as before the upgrade
    assert again.name == variant_name("old", settings.embedding_model, 200, 30)  # moved to its variant's name
    assert sorted(again.chunks.get()["ids"]) == old_ids and again.count_documents() == 1
    top = retriever_for(wide, "old", client=client, embedder=calls).search("annual leave")
    assert top and top[0].doc_id == "leave.md"
    assert calls.calls == [("query", 1)]  # nothing was embedded again
    with pytest.raises(VariantNotBuiltError, match="built: 200/30"):
        open_index(settings, "old", client=client)

    same = open_index(settings, "plain", client=client)  # the default chunking keeps its name
    assert same.name == collection_name("plain", settings.embedding_model)
    assert sorted(same.chunks.get()["ids"]) == plain_ids
    assert same.chunks.metadata["chunk_size"] == 160  # recorded now


def test_the_rag_column_says_which_index_to_build_when_the_settings_ask_for_one_not_built(settings: Settings) -> None:
    from graphs.compare import Comparison

    client = chroma_client(settings)
    ingest_uploads(settings, "hr", [("leave.md", LEAVE)], client=client, embedder=embedder(settings))
    small = rechunked(settings).model_copy(update={"rag": settings.rag.model_copy(
        update={"model": "compatible/never-called", "base_url": "http://127.0.0.1:9/v1"})})  # fmt: skip
    runner = Comparison(small, retriever_for=lambda d: retriever_for(small, d, client=client, embedder=embedder(small)))
    result = runner.run("How many days of annual leave?", "hr", ["rag"])["rag"]
    assert result.error and "has no index with chunks of 40 tokens, overlap 8" in result.error
    assert "Documents page" in result.error and "triptych index build --domain hr --chunk-size 40" in result.error
