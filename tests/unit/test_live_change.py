"""Change a fact, live: one document's chunks replaced, the others untouched, Undo puts the original back.

Runs on a real embedded Chroma (a PersistentClient in tmp_path) with hashed embeddings standing in
for the sentence-transformers model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import chromadb
import pytest

from graphs.result import PipelineResult
from triptych.finetune import registry
from triptych.index import DomainIndex, chroma_settings, open_index
from triptych.ingest import ensure_demo_indexes, ingest_uploads, kept_originals
from triptych.live_change import (
    SCRIPT_FILE,
    ChangeError,
    FactChange,
    active_change,
    apply_change,
    changed_documents,
    read_races,
    retrain_estimate,
    run_race,
    scripted_change,
    undo_change,
)
from triptych.qa import domain_qa
from triptych.settings import Settings
from triptych.testing import HashEmbedder

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "hr_demo"
LEAVE = (
    "# Annual leave\n\nFull-time staff accrue 2.25 days of paid leave per month. Unused days may be carried "
    "over up to five days.\n\n## Summer shutdown\n\nThe Leipzig production floor observes a summer shutdown in "
    "calendar weeks 32 and 33. Production staff take 8 leave days during the shutdown.\n"
)
TRAVEL = "Travel policy\n\nTrain trips under four hours are booked in second class. Flights need approval.\n"
SHUTDOWN = FactChange(
    doc_id="leave.md",
    old_text="in calendar weeks 32 and 33.",
    new_text="in calendar weeks 30 and 31.",
    question="In which calendar weeks is the summer shutdown?",
    old_answer="weeks 32 and 33",
    new_answer="weeks 30 and 31",
)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """A demo corpus of two documents, indexed into a real embedded Chroma under tmp_path."""
    docs = tmp_path / "corpora" / DOMAIN / "docs"
    docs.mkdir(parents=True)
    (docs / "leave.md").write_text(LEAVE, encoding="utf-8")
    (docs / "travel.txt").write_text(TRAVEL, encoding="utf-8")
    (docs / "cars.pdf").write_bytes(b"%PDF-1.4 not really")  # refused at ingestion; never editable anyway
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        corpora_dir=tmp_path / "corpora",
        data_dir=tmp_path / "data",
        chroma_path=tmp_path / "indexes",
        chunk_size=40,
        chunk_overlap=5,
    )
    client = chromadb.PersistentClient(path=str(tmp_path / "indexes"), settings=chroma_settings())
    embedder = HashEmbedder(model_name=settings.embedding_model)
    ensure_demo_indexes(settings, client=client, embedder=embedder)
    index = open_index(settings, DOMAIN, client=client)  # the chunking the settings use
    return {"settings": settings, "client": client, "embedder": embedder, "index": index, "docs": docs}


def chunks_of(index: DomainIndex, doc_id: str) -> dict[str, str]:
    """The stored chunks of one document (every version), id -> text."""
    got = index.chunks.get(where={"doc_id": doc_id}, include=["documents"])
    return dict(zip(got["ids"], got["documents"] or [], strict=True))


def test_a_change_replaces_only_that_documents_chunks_and_undo_restores_them(world: dict[str, Any]) -> None:
    settings, client, embedder, index = world["settings"], world["client"], world["embedder"], world["index"]
    leave_before, travel_before = chunks_of(index, "leave.md"), chunks_of(index, "travel.txt")
    assert len(leave_before) >= 2  # the document is more than one chunk: only some of them hold the fact

    active = apply_change(settings, DOMAIN, SHUTDOWN, client=client, embedder=embedder)

    leave_after = chunks_of(index, "leave.md")
    assert "weeks 30 and 31" in index.document_text("leave.md")
    assert "weeks 32 and 33" not in index.document_text("leave.md")
    assert not set(leave_after) & set(leave_before)  # every chunk of the old version is gone
    assert any("weeks 30 and 31" in t for t in leave_after.values())
    assert not any("weeks 32 and 33" in t for t in leave_after.values())
    assert chunks_of(index, "travel.txt") == travel_before  # the other document was not touched
    assert [e for e in embedder.calls if e[0] == "documents"][-1] == ("documents", len(leave_after))  # only it
    hits = index.query(embedder.embed_query("summer shutdown calendar weeks"), 1)
    assert "weeks 30 and 31" in hits[0][0].text
    assert (world["docs"] / "leave.md").read_text(encoding="utf-8") == LEAVE  # the corpus file is the original
    assert active.status == "applied" and active.reindex_s is not None and active.reindex_s > 0
    assert active.chunks_after == len(leave_after)

    undone = undo_change(settings, DOMAIN, client=client, embedder=embedder)

    assert index.document_text("leave.md") == LEAVE
    assert chunks_of(index, "leave.md") == leave_before  # the same version, so the same chunk ids and texts
    assert chunks_of(index, "travel.txt") == travel_before
    assert undone.doc_id == "leave.md" and undone.chunks == len(leave_before)
    assert active_change(settings, DOMAIN) is None
    assert not list((settings.data_dir / "live_changes" / DOMAIN).iterdir())  # its kept bytes are cleaned up


def test_a_restart_keeps_the_change_and_undo_still_works(world: dict[str, Any], tmp_path: Path) -> None:
    settings, embedder = world["settings"], world["embedder"]
    apply_change(settings, DOMAIN, SHUTDOWN, client=world["client"], embedder=embedder)

    # A restart: a new client on the same folder, and the demo indexes brought up to date as at every start.
    client = chromadb.PersistentClient(path=str(tmp_path / "indexes"), settings=chroma_settings())
    reports = ensure_demo_indexes(settings, client=client, embedder=embedder)
    assert {o.doc_id: o.status for o in reports[DOMAIN].outcomes}["leave.md"] == "unchanged"
    index = open_index(settings, DOMAIN, client=client)  # the chunking the settings use
    assert "weeks 30 and 31" in index.document_text("leave.md")
    assert active_change(settings, DOMAIN) is not None

    undo_change(settings, DOMAIN, client=client, embedder=embedder)
    assert index.document_text("leave.md") == LEAVE
    reports = ensure_demo_indexes(settings, client=client, embedder=embedder)
    assert {o.doc_id: o.status for o in reports[DOMAIN].outcomes}["leave.md"] == "unchanged"


def test_a_retrain_reads_the_changed_document(world: dict[str, Any]) -> None:
    settings = world["settings"]
    files = [("leave.md", LEAVE.encode()), ("travel.txt", TRAVEL.encode())]
    apply_change(settings, DOMAIN, SHUTDOWN, client=world["client"], embedder=world["embedder"])
    changed = dict(changed_documents(settings, DOMAIN, files))
    assert b"weeks 30 and 31" in changed["leave.md"] and changed["travel.txt"] == TRAVEL.encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (FactChange("leave.md", "weeks 40 and 41", "weeks 1 and 2", "When?"), "does not occur in leave.md"),
        (FactChange("leave.md", "days", "weeks", "When?"), "occurs 4 times in leave.md"),
        (FactChange("nowhere.md", "a", "b", "When?"), "no document 'nowhere.md'"),
        (FactChange("leave.md", "weeks 32", "weeks 32", "When?"), "the same as the old one"),
        (FactChange("leave.md", "weeks 32", "weeks 30", " "), "needs question"),
    ],
)
def test_a_change_that_cannot_be_made_says_why_and_changes_nothing(
    world: dict[str, Any], change: FactChange, message: str
) -> None:
    settings, index = world["settings"], world["index"]
    before = chunks_of(index, "leave.md")
    with pytest.raises(ChangeError, match=message):
        apply_change(settings, DOMAIN, change, client=world["client"], embedder=world["embedder"])
    assert chunks_of(index, "leave.md") == before
    assert active_change(settings, DOMAIN) is None


def test_only_text_documents_can_be_edited(world: dict[str, Any], tmp_path: Path) -> None:
    from triptych.live_change import changed_bytes

    with pytest.raises(ChangeError, match="cars.pdf is not a text document"):
        changed_bytes("cars.pdf", b"%PDF weeks 32", "weeks 32", "weeks 30")


def test_one_change_at_a_time_and_undo_needs_one(world: dict[str, Any]) -> None:
    settings, client, embedder = world["settings"], world["client"], world["embedder"]
    with pytest.raises(ChangeError, match="no changed fact to undo"):
        undo_change(settings, DOMAIN, client=client, embedder=embedder)
    apply_change(settings, DOMAIN, SHUTDOWN, client=client, embedder=embedder)
    other = FactChange("travel.txt", "second class", "first class", "Which class?")
    with pytest.raises(ChangeError, match="already has a changed fact: undo it first"):
        apply_change(settings, DOMAIN, other, client=client, embedder=embedder)


def test_an_uploaded_document_keeps_its_original_through_change_and_undo(world: dict[str, Any]) -> None:
    settings, client, embedder = world["settings"], world["client"], world["embedder"]
    upload = b"# Parking\n\nStaff park in garage B on level 2.\n"
    ingest_uploads(settings, DOMAIN, [("parking.md", upload)], client=client, embedder=embedder)
    change = FactChange("parking.md", "garage B on level 2", "garage C on level 4", "Where do staff park?")

    apply_change(settings, DOMAIN, change, client=client, embedder=embedder)
    assert dict(kept_originals(settings, DOMAIN, client=client))["parking.md"] == upload.replace(
        b"garage B on level 2", b"garage C on level 4"
    )  # what a retrain on the domain's documents reads

    undo_change(settings, DOMAIN, client=client, embedder=embedder)
    assert dict(kept_originals(settings, DOMAIN, client=client))["parking.md"] == upload
    text = world["index"].document_text("parking.md")
    assert "garage B on level 2" in text and "garage C" not in text


class IndexAsker:
    """Answers like the three columns would on this index: RAG quotes the best chunk's shutdown sentence,
    the fine-tuned column says what it learned once, the prompt column does not know."""

    def __init__(self, index: DomainIndex, embedder: HashEmbedder) -> None:
        self.index, self.embedder = index, embedder
        self.calls: list[str] = []

    def run(self, question: str, domain: str | None = None, pipelines: Any = None) -> dict[str, PipelineResult]:
        self.calls.append(f"run {question}")
        chunk = self.index.query(self.embedder.embed_query(question), 1)[0][0]
        sentence = next(s for s in chunk.text.split(". ") if "calendar weeks" in s)
        return {
            "prompt": PipelineResult("prompt", "Prompt", answer="I do not know.", total_s=0.5),
            "rag": PipelineResult("rag", "RAG", answer=sentence, total_s=1.25, ttft_s=0.3),
            "finetuned": PipelineResult("finetuned", "Fine-tuned", answer="In weeks 32 and 33.", total_s=0.4),
        }

    def forget_retriever(self, domain: str) -> None:
        self.calls.append(f"forget {domain}")


def test_a_race_asks_before_and_after_and_is_recorded(world: dict[str, Any]) -> None:
    settings, client, embedder, index = world["settings"], world["client"], world["embedder"], world["index"]
    asker = IndexAsker(index, embedder)
    steps: list[str] = []

    race = run_race(settings, asker, DOMAIN, SHUTDOWN, ["prompt", "rag", "finetuned"], on_step=steps.append,
                    client=client, embedder=embedder)  # fmt: skip

    assert asker.calls == [f"run {SHUTDOWN.question}", f"forget {DOMAIN}", f"run {SHUTDOWN.question}"]
    assert len(steps) == 3 and "re-indexed in" in steps[2]
    rag, ft = race["columns"]["rag"], race["columns"]["finetuned"]
    assert rag["before"]["states_old"] and not rag["before"]["states_new"]
    assert rag["after"]["states_new"] and not rag["after"]["states_old"]
    assert ft["after"]["states_old"] and not ft["after"]["states_new"]
    assert race["columns"]["prompt"]["after"]["states_new"] is False
    assert race["rag_new_fact_s"] == pytest.approx(race["reindex_s"] + 1.25, abs=1e-3)
    assert race["retrain"] is None  # no adapter trained for this domain
    assert read_races(settings, DOMAIN) == [race]
    assert read_races(settings, "another_domain") == []
    line = (settings.data_dir / "live_changes" / "races.jsonl").read_text(encoding="utf-8")
    assert json.loads(line)["question"] == SHUTDOWN.question


def test_the_retrain_estimate_comes_from_the_adapters_own_run(world: dict[str, Any]) -> None:
    settings = world["settings"]
    assert retrain_estimate(settings, DOMAIN) is None
    run_id = "20261130-120000-hr_demo"
    (settings.runs_dir / run_id).mkdir(parents=True)
    (settings.runs_dir / run_id / registry.ADAPTER_FILE).write_bytes(b"gguf")
    registry.write_run(settings, run_id, {"run_id": run_id, "domain": DOMAIN, "kind": "local", "status": "done",
                                          "wall_s": 310.4, "training": {"steps": 96, "total_steps": 96,
                                                                        "s_per_step": 2.15}})  # fmt: skip
    registry.activate(settings, DOMAIN, run_id)

    estimate = retrain_estimate(settings, DOMAIN)

    assert estimate is not None and estimate.run_id == run_id
    assert estimate.train_s == pytest.approx(206.4)  # 2.15 s/step x 96 steps
    assert "2.15 s/step × 96 steps = 206 s" in estimate.describe()
    assert "310 s for the whole run" in estimate.describe()


@pytest.mark.parametrize("domain", ["hr_handbook", "support_kb", "compliance_policies"])
def test_each_demo_corpus_ships_a_scripted_change_that_applies(domain: str) -> None:
    """The one-click change: its sentence is in its document once, and its old answer is the question's gold."""
    from triptych.live_change import changed_bytes

    change = scripted_change(REPO / "corpora", domain)
    assert change is not None, f"add corpora/{domain}/{SCRIPT_FILE}"
    data = (REPO / "corpora" / domain / "docs" / change.doc_id).read_bytes()
    assert change.new_text.encode() in changed_bytes(change.doc_id, data, change.old_text, change.new_text)
    assert change.old_answer in change.old_text and change.new_answer in change.new_text
    gold = next(r for r in domain_qa(REPO / "corpora", domain, "test") if r.question == change.question)
    assert change.old_answer in gold.gold_answers
