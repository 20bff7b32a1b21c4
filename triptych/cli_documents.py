"""`triptych ingest` and `triptych index list/build/delete`: documents and indexes from the command line.

Registered on the main app in `triptych/cli.py`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from triptych.cli_common import cli_settings as _settings
from triptych.cli_common import fail as _fail
from triptych.settings import Settings

index_app = typer.Typer(
    help="List, build and delete document indexes (one per domain, embedding model and chunking).", no_args_is_help=True
)


def _where(settings: Settings) -> str:
    if settings.chroma_mode == "server":
        return f"the Chroma server at {settings.chroma_host}:{settings.chroma_port}"
    return str(settings.chroma_path)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (folders are read recursively)", exists=True)],
    domain: Annotated[str, typer.Option("--domain", "-d", help="The domain (index) to put them in, e.g. hr_handbook")],
) -> None:
    """Parse, chunk, embed and store documents in a domain's index, then print a summary."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from triptych.embeddings import EmbeddingModelError
    from triptych.index import IndexStoreError, check_domain
    from triptych.ingest import IngestProgress, ingest_paths

    settings = _settings()
    try:
        check_domain(domain)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"{domain}: reading files", total=None)

        def on_file(event: IngestProgress) -> None:
            bar.update(task, completed=event.done, total=event.total, description=f"{domain}: {event.source}")

        try:
            report = ingest_paths(settings, domain, paths, progress=on_file)
        except (IndexStoreError, EmbeddingModelError) as exc:
            raise _fail(str(exc)) from None
        bar.update(task, description=f"{domain}: done")
    counts = {s: sum(o.status == s for o in report.outcomes) for s in ("added", "replaced", "unchanged", "refused")}
    files = f"{len(report.outcomes)} file{'' if len(report.outcomes) == 1 else 's'}"
    typer.echo(f"{files}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    typer.echo(
        f"{report.chunks} chunks, {report.bytes / 1e6:.2f} MB in {report.seconds:.1f} s "
        f"(domain {domain}, embedding model {settings.embedding_model}, stored in {_where(settings)})"
    )
    for outcome in report.refused:
        typer.secho(f"refused {outcome.doc_id}: {outcome.reason}", fg=typer.colors.YELLOW)
    if report.refused:
        raise typer.Exit(1)


@index_app.command("list")
def index_list(
    domain: Annotated[str | None, typer.Option(help="List this domain's documents instead")] = None,
) -> None:
    """List the indexes (domain, documents, chunks, embedding model), or one domain's documents."""
    from rich.console import Console
    from rich.table import Table

    from triptych.index import DomainIndex, IndexStoreError, chroma_client, list_indexes, locks_dir, variant_name

    settings = _settings()
    try:
        client = chroma_client(settings)
        infos = list_indexes(client)
    except IndexStoreError as exc:
        raise _fail(str(exc)) from None
    console = Console(width=200)
    if domain is not None:
        infos = [i for i in infos if i.domain == domain]
        if not infos:
            raise _fail(f"no index for domain {domain!r} in {_where(settings)}; `triptych index list` lists them")
        table = Table("doc id", "title", "chunks", "pages", "ingested (UTC)", "embedding model", "chunking")
        for info in infos:
            index = DomainIndex(client, info.domain, info.embedding_model, create=False, lock_dir=locks_dir(settings),
                                chunk_size=info.chunk_size, chunk_overlap=info.chunk_overlap)  # fmt: skip
            for doc in index.documents():
                pages = str(doc.pages) if doc.pages else ""
                table.add_row(doc.doc_id, doc.title, str(doc.chunks), pages, doc.ingested_at, info.embedding_model,
                              f"{info.chunk_size}/{info.chunk_overlap}")  # fmt: skip
        console.print(table)
        return
    if not infos:
        typer.echo(f"no indexes in {_where(settings)}: build one with `triptych ingest PATH --domain NAME`")
        return
    table = Table("domain", "documents", "chunks", "embedding model", "chunk size/overlap", "collection")
    for info in infos:
        in_use = info.collection == variant_name(
            info.domain, settings.embedding_model, settings.chunk_size, settings.chunk_overlap
        )
        table.add_row(
            info.domain,
            str(info.documents),
            str(info.chunks),
            info.embedding_model + (" (current)" if in_use else ""),
            f"{info.chunk_size}/{info.chunk_overlap}",
            info.collection,
        )
    console.print(table)


@index_app.command("build")
def index_build(
    domain: Annotated[str, typer.Option("--domain", "-d", help="The domain whose documents to index again")],
    chunk_size: Annotated[
        int | None, typer.Option(help="Chunk length in tokens of the embedding model (default TRIPTYCH_CHUNK_SIZE)")
    ] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(help="Tokens shared by neighbouring chunks (default TRIPTYCH_CHUNK_OVERLAP)")
    ] = None,
    embedding_model: Annotated[
        str | None, typer.Option(help="sentence-transformers model (default TRIPTYCH_EMBEDDING_MODEL)")
    ] = None,
) -> None:
    """Build (or bring up to date) another index of a domain beside its others: same documents, other chunking/model.

    The documents are read again from their kept originals (uploads, `triptych ingest`) or the demo
    corpus folder; the domain's other indexes keep answering meanwhile.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from triptych.documents.chunking import ChunkSizeError
    from triptych.embeddings import EmbeddingModelError
    from triptych.index import IndexStoreError, check_domain, chroma_client
    from triptych.ingest import IngestProgress
    from triptych.variants import Variant, build_variant, variants_of

    settings = _settings()
    try:
        variant = Variant(
            check_domain(domain),
            embedding_model or settings.embedding_model,
            settings.chunk_size if chunk_size is None else chunk_size,
            settings.chunk_overlap if chunk_overlap is None else chunk_overlap,
        )
        client = chroma_client(settings)
        if not variants_of(client, domain):
            raise _fail(f"no index for domain {domain!r} in {_where(settings)}: ingest it first with "
                        f"`triptych ingest PATH --domain {domain}`")  # fmt: skip
    except (ValueError, IndexStoreError) as exc:
        raise _fail(str(exc)) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"{variant.label}: reading documents", total=None)

        def on_file(event: IngestProgress) -> None:
            bar.update(task, completed=event.done, total=event.total, description=f"{domain}: {event.source}")

        try:
            report = build_variant(settings, variant, progress=on_file, client=client)
        except (ValueError, ChunkSizeError, IndexStoreError, EmbeddingModelError) as exc:
            raise _fail(str(exc)) from None
    counts = {s: sum(o.status == s for o in report.outcomes) for s in ("added", "replaced", "unchanged", "refused")}
    typer.echo(f"{domain} ({variant.label}): " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    typer.echo(f"{report.chunks} chunks in {report.seconds:.1f} s, collection {variant.collection}")
    for outcome in report.refused:
        typer.secho(f"refused {outcome.doc_id}: {outcome.reason}", fg=typer.colors.YELLOW)
    if report.refused:
        raise typer.Exit(1)


@index_app.command("delete")
def index_delete(
    domain: Annotated[str, typer.Argument(help="The domain whose index to delete")],
    doc: Annotated[str | None, typer.Option("--doc", help="Delete only this document (its doc id)")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    chunk_size: Annotated[int | None, typer.Option(help="Delete only the index with this chunk size")] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(help="... and this overlap (default TRIPTYCH_CHUNK_OVERLAP)")
    ] = None,
    embedding_model: Annotated[
        str | None, typer.Option(help="... and this model (default TRIPTYCH_EMBEDDING_MODEL)")
    ] = None,
) -> None:
    """Delete a domain's indexes (every model and chunking), one of them (--chunk-size...), or one document."""
    from triptych.index import IndexStoreError, chroma_client, delete_domain, domain_lock, list_indexes, locks_dir
    from triptych.originals import originals_dir
    from triptych.variants import Variant, delete_variant, remove_document_everywhere

    settings = _settings()
    try:
        client = chroma_client(settings)
        infos = [i for i in list_indexes(client) if i.domain == domain]
    except IndexStoreError as exc:
        raise _fail(str(exc)) from None
    if not infos:
        raise _fail(f"no index for domain {domain!r} in {_where(settings)}; `triptych index list` lists them")
    if doc is None and (chunk_size, chunk_overlap, embedding_model) != (None, None, None):
        variant = Variant(
            domain,
            embedding_model or settings.embedding_model,
            settings.chunk_size if chunk_size is None else chunk_size,
            settings.chunk_overlap if chunk_overlap is None else chunk_overlap,
        )
        if not any(variant.same_as(Variant.from_info(i)) for i in infos):
            raise _fail(f"domain {domain!r} has no index {variant.label}; `triptych index list` lists them")
        if not yes and variant.same_as(Variant.of(settings, domain)):
            typer.confirm(f"{variant.label} is the index the current settings use for {domain}: delete it?",
                          abort=True)  # fmt: skip
        delete_variant(settings, variant, client)
        typer.echo(f"deleted {domain} {variant.label} ({variant.collection})")
        return
    if doc is None:
        if not yes:
            documents = sum(i.documents for i in infos)
            typer.confirm(f"delete every index of domain {domain!r} ({documents} documents)?", abort=True)
        with domain_lock(locks_dir(settings), domain):
            removed = delete_domain(client, domain)
            shutil.rmtree(originals_dir(settings, domain), ignore_errors=True)  # every index is gone: so are its files
        typer.echo(f"deleted domain {domain}: {', '.join(removed)}")
        return
    deleted = remove_document_everywhere(settings, domain, doc, client)
    if not deleted:
        raise _fail(f"no document {doc!r} in domain {domain!r}; `triptych index list --domain {domain}` lists them")
    typer.echo(f"deleted {doc} from {domain} ({'; '.join(v.label for v in deleted)})")
