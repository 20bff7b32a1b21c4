"""`triptych ingest` and `triptych index list/delete`: documents and indexes from the command line.

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

index_app = typer.Typer(help="List and delete document indexes.", no_args_is_help=True)


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

    from triptych.index import DomainIndex, IndexStoreError, chroma_client, list_indexes

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
        table = Table("doc id", "title", "chunks", "pages", "ingested (UTC)", "embedding model")
        for info in infos:
            for doc in DomainIndex(client, info.domain, info.embedding_model, create=False).documents():
                pages = str(doc.pages) if doc.pages else ""
                table.add_row(doc.doc_id, doc.title, str(doc.chunks), pages, doc.ingested_at, info.embedding_model)
        console.print(table)
        return
    if not infos:
        typer.echo(f"no indexes in {_where(settings)}: build one with `triptych ingest PATH --domain NAME`")
        return
    table = Table("domain", "documents", "chunks", "embedding model", "collection")
    for info in infos:
        current = " (current)" if info.embedding_model == settings.embedding_model else ""
        table.add_row(
            info.domain,
            str(info.documents),
            str(info.chunks),
            info.embedding_model + current,
            info.collection,
        )
    console.print(table)


@index_app.command("delete")
def index_delete(
    domain: Annotated[str, typer.Argument(help="The domain whose index to delete")],
    doc: Annotated[str | None, typer.Option("--doc", help="Delete only this document (its doc id)")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete a domain's indexes (for every embedding model), or one document from them."""
    from triptych.index import (
        DomainIndex,
        IndexStoreError,
        chroma_client,
        delete_domain,
        domain_lock,
        list_indexes,
        locks_dir,
    )
    from triptych.ingest import remove_document
    from triptych.originals import originals_dir

    settings = _settings()
    try:
        client = chroma_client(settings)
        infos = [i for i in list_indexes(client) if i.domain == domain]
    except IndexStoreError as exc:
        raise _fail(str(exc)) from None
    if not infos:
        raise _fail(f"no index for domain {domain!r} in {_where(settings)}; `triptych index list` lists them")
    if doc is None:
        if not yes:
            documents = sum(i.documents for i in infos)
            typer.confirm(f"delete every index of domain {domain!r} ({documents} documents)?", abort=True)
        with domain_lock(locks_dir(settings), domain):
            removed = delete_domain(client, domain)
            shutil.rmtree(originals_dir(settings, domain), ignore_errors=True)  # every index is gone: so are its files
        typer.echo(f"deleted domain {domain}: {', '.join(removed)}")
        return
    kept, locks = originals_dir(settings, domain), locks_dir(settings)
    deleted = [
        i.embedding_model
        for i in infos
        if remove_document(DomainIndex(client, domain, i.embedding_model, create=False, lock_dir=locks), doc, kept)
    ]
    if not deleted:
        raise _fail(f"no document {doc!r} in domain {domain!r}; `triptych index list --domain {domain}` lists them")
    typer.echo(f"deleted {doc} from {domain} ({', '.join(deleted)})")
