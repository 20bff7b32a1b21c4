"""Retriever: top-k by cosine score, the minimum score always holds, hybrid fuses BM25 and vectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from triptych.index import IndexNotFoundError
from triptych.retrieval import (
    LexicalIndex,
    RetrievedChunk,
    Retriever,
    document_text,
    lexical_index,
    retriever_for,
    tokenize,
)
from triptych.settings import Settings
from triptych.testing import HashEmbedder, add_texts, ephemeral_client, temporary_index, unique_domain

DOCS = {
    "leave.md": "# Annual leave\n\nEmployees get 28 days of annual leave each calendar year.",
    "sick.md": "# Sick leave\n\nCall your manager before 9 am on the first day of sickness.",
    "travel.md": "# Travel\n\nTrain journeys over four hours may be booked in first class.",
    "laptops.md": "# Equipment\n\nLaptops are replaced every three years by the IT service desk.",
    "expenses.md": "# Expenses\n\nReceipts are required for every expense above 25 EUR.",
}


def test_top_k_sorted_by_score_with_threshold() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        add_texts(index, DOCS, embedder=embedder)
        everything = Retriever(index, embedder, top_k=5, min_score=-1.0, hybrid=False).search("annual leave days")
        assert len(everything) == 5
        assert everything[0].doc_id == "leave.md"
        scores = [c.score for c in everything]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(c, RetrievedChunk) and c.fused_score is None for c in everything)
        # a threshold between the best and the rest keeps only chunks at or above it
        cut = (scores[0] + scores[1]) / 2
        strict = Retriever(index, embedder, top_k=5, min_score=cut, hybrid=False).search("annual leave days")
        assert [c.doc_id for c in strict] == ["leave.md"]
        assert Retriever(index, embedder, top_k=5, min_score=0.99, hybrid=False).search("unrelated words") == []


def test_k_overrides_top_k_and_empty_query() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        add_texts(index, DOCS, embedder=embedder)
        retriever = Retriever(index, embedder, top_k=2, min_score=-1.0, hybrid=False)
        assert len(retriever.search("leave")) == 2
        assert len(retriever.search("leave", k=4)) == 4
        assert retriever.search("   ") == []
        assert retriever.search("leave", k=0) == []


def test_empty_index_returns_nothing() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        for hybrid in (False, True):
            assert Retriever(index, embedder, top_k=3, min_score=-1.0, hybrid=hybrid).search("leave") == []


def test_hybrid_fuses_rankings_and_keeps_cosine_scores() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        add_texts(index, DOCS, embedder=embedder)
        hybrid = Retriever(index, embedder, top_k=3, min_score=-1.0, hybrid=True).search("receipts expense EUR")
        assert hybrid[0].doc_id == "expenses.md"
        fused = [c.fused_score for c in hybrid]
        assert all(f is not None for f in fused) and fused == sorted(fused, reverse=True)  # type: ignore[type-var]
        vector = {
            c.chunk_id: c.score
            for c in Retriever(index, embedder, top_k=5, min_score=-1.0, hybrid=False).search("receipts expense EUR")
        }
        for chunk in hybrid:  # score is the same cosine similarity as in vector mode
            assert chunk.score == pytest.approx(vector[chunk.chunk_id], abs=1e-5)


class KeywordBlindEmbedder(HashEmbedder):
    """Puts every text containing 'zebra' orthogonal to every query: only BM25 can find it."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.eye(4, dtype=np.float32)[1 if "zebra" in t else 0] for t in texts]
        return np.stack(rows)

    def embed_query(self, text: str) -> np.ndarray:
        return np.eye(4, dtype=np.float32)[0]


def test_hybrid_threshold_applies_to_chunks_only_bm25_found() -> None:
    embedder = KeywordBlindEmbedder(model_name="keyword-blind")
    with temporary_index(embedder=embedder) as index:
        add_texts(index, {**DOCS, "zoo.md": "The zebra enclosure opens at noon."}, embedder=embedder)
        loose = Retriever(index, embedder, top_k=6, min_score=-1.0, hybrid=True).search("zebra")
        zoo = next(c for c in loose if c.doc_id == "zoo.md")
        assert zoo.score == pytest.approx(0.0, abs=1e-6)  # its real cosine, computed from the stored vector
        assert zoo is loose[0]  # BM25 rank 1 and vector rank 6: fusion puts it first
        strict = Retriever(index, embedder, top_k=6, min_score=0.5, hybrid=True).search("zebra")
        assert "zoo.md" not in {c.doc_id for c in strict}  # below the threshold: never returned
        assert all(c.score >= 0.5 for c in strict)


def test_lexical_index_is_rebuilt_when_documents_change() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        add_texts(index, DOCS, embedder=embedder)
        first = lexical_index(index)
        assert lexical_index(index) is first  # cached while nothing changes
        add_texts(index, {"parking.md": "Parking permits cost 30 EUR a month."}, embedder=embedder)
        second = lexical_index(index)
        assert second is not first
        assert second.search("parking permits", 1)[0][0].doc_id == "parking.md"


def test_tokenize_and_bm25() -> None:
    assert tokenize("What is the Notice-Period, in 2025?") == ["notic", "period", "2025"]  # stemmed
    assert LexicalIndex([]).search("anything", 3) == []


def test_bm25_matches_words_by_their_stem() -> None:
    # "digits" asks for "6-digit", "shutdowns" for "shutdown": without stemming BM25 sees no shared word
    assert tokenize("digits shutdowns policies") == tokenize("digit shutdown policy")
    chunks = [
        RetrievedChunk("a:0", "a.md", "a.md", "A", "The display shows a 6-digit pairing code."),
        RetrievedChunk("b:0", "b.md", "b.md", "B", "The canteen serves coffee all day."),
        RetrievedChunk("c:0", "c.md", "c.md", "C", "Parking permits are issued by facilities."),
    ]
    assert [c.doc_id for c, _ in LexicalIndex(chunks).search("How many digits?", 2)] == ["a.md"]


def test_retriever_for_uses_settings() -> None:
    settings = Settings(_env_file=None, top_k=2, min_score=0.1, hybrid=True, focus_chunks=1)  # type: ignore[call-arg]
    client = ephemeral_client()
    embedder = HashEmbedder(model_name=settings.embedding_model)
    domain = unique_domain()
    with pytest.raises(IndexNotFoundError, match=f"triptych ingest PATH --domain {domain}"):
        retriever_for(settings, domain, client=client, embedder=embedder)
    with temporary_index(client, embedder=embedder, domain=domain) as index:
        add_texts(index, DOCS, embedder=embedder)
        retriever = retriever_for(settings, domain, client=client, embedder=embedder)
        assert (retriever.top_k, retriever.min_score, retriever.hybrid, retriever.focus) == (2, 0.1, True, 1)
        top = retriever.search("laptops replaced every three years")
        assert top[0].doc_id == "laptops.md" and len(top) <= 2
        full = document_text(settings, domain, "laptops.md", client=client)
        assert full[top[0].start : top[0].end] == top[0].text


def test_the_retriever_is_a_langchain_retriever_of_documents() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        add_texts(index, DOCS, embedder=embedder)
        retriever = Retriever(index, embedder, top_k=3, min_score=-1.0, hybrid=True)
        documents = retriever.invoke("annual leave days")
        chunks = retriever.search("annual leave days")
        assert [d.page_content for d in documents] == [c.text for c in chunks]
        assert documents[0].metadata["doc_id"] == "leave.md"
        assert documents[0].metadata["score"] == pytest.approx(chunks[0].score)  # the cosine score
        assert [RetrievedChunk.from_document(d) for d in documents] == chunks
        assert len(retriever.invoke("annual leave days", k=1)) == 1


CONTRACTS = {
    "services.md": (
        "Services agreement between Idan Maimon and Intellisense Solutions.\n\n"
        "Idan Maimon serves Intellisense Solutions as chief executive.\n\n"
        "Intellisense Solutions pays Idan Maimon a monthly fee.\n\n"
        "Jurisdiction. This contract is subject to the laws of New York."
    ),
    **{
        f"{state.lower()}.md": (
            f"Supply agreement between {buyer} and {seller}.\n\n"
            f"{seller} delivers parts to {buyer} every month.\n\n"
            f"Governing law. {state} law governs."
        )
        for state, buyer, seller in [
            ("Texas", "Acme", "Borel"),
            ("Ohio", "Cyrus", "Dalton"),
            ("Utah", "Evers", "Fulton"),
            ("Iowa", "Garner", "Hollis"),
        ]
    },
}
NAMED_QUESTION = (
    "Which state's law governs the interpretation of the agreement between Idan Maimon and Intellisense Solutions?"
)
CLAUSE = "laws of New York"


def _contracts(index, embedder) -> None:  # noqa: ANN001
    add_texts(index, CONTRACTS, embedder=embedder, chunk_size=80, chunk_overlap=0)


def test_focus_gives_places_to_the_named_documents_own_clause() -> None:
    """A question naming its contract gets that contract's clause, not only other contracts' clauses."""
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        _contracts(index, embedder)
        plain = Retriever(index, embedder, top_k=4, min_score=-1.0, hybrid=True).search(NAMED_QUESTION)
        focused = Retriever(index, embedder, top_k=4, min_score=-1.0, hybrid=True, focus=1).search(NAMED_QUESTION)
        assert plain[0].doc_id == "services.md"  # the names find the document...
        # ...whose chunks that bear the names, and other contracts, crowd out its clause
        assert not any(CLAUSE in c.text for c in plain)
        assert len(focused) == 4 and focused[:3] == plain[:3]  # the first k - focus places stay as ranked
        assert CLAUSE in focused[3].text and focused[3].doc_id == "services.md"
        query = embedder.embed_query(NAMED_QUESTION)
        assert focused[3].score == pytest.approx(float(np.dot(embedder.embed_query(focused[3].text), query)), abs=1e-5)
        two = Retriever(index, embedder, top_k=4, min_score=-1.0, hybrid=True, focus=2).search(NAMED_QUESTION)
        assert two[:2] == plain[:2] and any(CLAUSE in c.text for c in two[2:])
        assert len({c.chunk_id for c in two}) == 4  # no chunk twice


def test_focus_keeps_the_best_chunk_and_the_threshold() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        _contracts(index, embedder)
        plain = Retriever(index, embedder, top_k=3, min_score=-1.0, hybrid=False).search(NAMED_QUESTION)
        everything = Retriever(index, embedder, top_k=3, min_score=-1.0, hybrid=False, focus=10).search(NAMED_QUESTION)
        assert everything[0] == plain[0] and len(everything) == 3  # focus never takes the first place
        for hybrid in (False, True):
            strict = Retriever(index, embedder, top_k=4, min_score=0.2, hybrid=hybrid, focus=2).search(NAMED_QUESTION)
            assert strict and all(c.score >= 0.2 for c in strict)
        with pytest.raises(ValueError, match="focus"):
            Retriever(index, embedder, top_k=3, min_score=0.0, hybrid=True, focus=-1)
