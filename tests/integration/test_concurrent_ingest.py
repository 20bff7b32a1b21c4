"""Two processes ingesting into one domain lose nothing; a process killed mid-ingest is repaired by the next.

Real processes on a real embedded Chroma folder (the fast hash embedder stands in for the model).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import assert_consistent
from triptych.index import chroma_client, open_index
from triptych.ingest import ingest_paths
from triptych.settings import Settings
from triptych.testing import HashEmbedder

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

# One ingest in a process of its own. With a hook, the first catalog write (every chunk of the document
# is stored by then) pauses until a file appears, or the process kills itself before or after that write.
WORKER = r"""
import json, os, signal, sys, time
from pathlib import Path

cfg = json.loads(sys.argv[1])
import triptych.index as ix
from triptych.index import chroma_client
from triptych.ingest import ingest_paths
from triptych.settings import Settings
from triptych.testing import HashEmbedder


class Hooked:
    def __init__(self, collection):
        self._collection, self._fired = collection, False

    def upsert(self, **kwargs):
        first, self._fired = not self._fired, True
        if first and cfg["hook"] == "pause":
            Path(cfg["paused"]).touch()
            deadline = time.time() + 120
            while not Path(cfg["go"]).exists() and time.time() < deadline:
                time.sleep(0.05)
        if first and cfg["hook"] == "kill-before-catalog":
            os.kill(os.getpid(), signal.SIGKILL)
        self._collection.upsert(**kwargs)
        if first and cfg["hook"] == "kill-after-catalog":
            os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name):
        return getattr(self._collection, name)


if cfg.get("hook"):
    plain_init = ix.DomainIndex.__init__

    def hooked_init(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)
        self.catalog = Hooked(self.catalog)

    ix.DomainIndex.__init__ = hooked_init

settings = Settings(_env_file=None, chroma_path=cfg["chroma"], data_dir=cfg["data"])
client = chroma_client(settings)
if cfg.get("started"):
    Path(cfg["started"]).touch()
report = ingest_paths(settings, cfg["domain"], [Path(p) for p in cfg["paths"]], client=client,
                      embedder=HashEmbedder(model_name=settings.embedding_model))
print(json.dumps({o.doc_id: o.status for o in report.outcomes}))
"""


def start(tmp: Path, paths: list[Path], **cfg: object) -> subprocess.Popen[str]:
    args = {"chroma": str(tmp / "indexes"), "data": str(tmp / "data"), "domain": "shared", **cfg}
    args["paths"] = [str(p) for p in paths]
    return subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def write_docs(folder: Path, prefix: str, n: int) -> list[Path]:
    folder.mkdir(parents=True)
    for i in range(n):
        text = f"# {prefix} policy {i}\n\n" + f"The {prefix} rule number {i} says staff must file form {i}. " * 40
        (folder / f"{prefix}{i}.md").write_text(text)
    return sorted(folder.iterdir())


def settings_for(tmp: Path) -> Settings:
    return Settings(_env_file=None, chroma_path=tmp / "indexes", data_dir=tmp / "data")  # type: ignore[call-arg]


def test_two_processes_ingesting_into_one_domain_at_once_lose_nothing(tmp_path: Path) -> None:
    a_docs = write_docs(tmp_path / "a", "alpha", 3)
    b_docs = write_docs(tmp_path / "b", "beta", 3)
    # A stops with its first document's chunks written but not yet in the catalog ...
    a = start(tmp_path, a_docs, hook="pause", paused=str(tmp_path / "a-paused"), go=str(tmp_path / "go"))
    wait_for(tmp_path / "a-paused", a)
    # ... while B ingests (and, at the end of its batch, used to delete A's chunks as strays)
    b = start(tmp_path, b_docs, started=str(tmp_path / "b-started"))
    wait_for(tmp_path / "b-started", b)
    try:
        b.wait(timeout=5)  # B cannot store while A holds the domain's lock: it waits for A
    except subprocess.TimeoutExpired:
        pass
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=120) for p in (a, b)]
    assert [p.returncode for p in (a, b)] == [0, 0], outputs
    assert [set(json.loads(out.splitlines()[-1]).values()) for out, _ in outputs] == [{"added"}, {"added"}]

    settings = settings_for(tmp_path)
    index = open_index(settings, "shared", client=chroma_client(settings))
    assert [r.doc_id for r in index.documents()] == [p.name for p in a_docs + b_docs]
    assert all(r.chunks > 1 for r in index.documents())
    assert_consistent(index)
    again = ingest_paths(settings, "shared", [tmp_path / "a", tmp_path / "b"], client=chroma_client(settings),
                         embedder=HashEmbedder(model_name=settings.embedding_model))  # fmt: skip
    assert {o.status for o in again.outcomes} == {"unchanged"}


@pytest.mark.parametrize("hook", ["kill-before-catalog", "kill-after-catalog"])
def test_a_process_killed_mid_ingest_is_repaired_by_the_next_ingest(tmp_path: Path, hook: str) -> None:
    docs = write_docs(tmp_path / "docs", "leave", 2)
    settings = settings_for(tmp_path)
    embedder = HashEmbedder(model_name=settings.embedding_model)
    first = ingest_paths(settings, "shared", [tmp_path / "docs"], client=chroma_client(settings), embedder=embedder)
    assert [o.status for o in first.outcomes] == ["added", "added"]
    docs[0].write_text(docs[0].read_text().replace("staff must", "everyone must") + "A new closing paragraph.\n")

    killed = start(tmp_path, [tmp_path / "docs"], hook=hook)
    assert killed.wait(timeout=120) == -signal.SIGKILL, killed.communicate()
    index = open_index(settings, "shared", client=chroma_client(settings))
    # left over: the new version's chunks (killed before the catalog) or the old one's (after)
    assert index.count_chunks() > sum(r.chunks for r in index.documents())

    report = ingest_paths(settings, "shared", [tmp_path / "docs"], client=chroma_client(settings), embedder=embedder)
    expected = "replaced" if hook == "kill-before-catalog" else "unchanged"  # after: the catalog has the new one
    assert [o.status for o in report.outcomes] == [expected, "unchanged"]
    assert_consistent(index)
    assert "everyone must" in index.document_text(docs[0].name)
    texts = [c.text for c in index.all_chunks() if c.doc_id == docs[0].name]
    assert "A new closing paragraph." in texts[-1] and not any("staff must" in t for t in texts)
