"""The `rag` command line. Errors are mapped here once: one line on stderr, a typed exit code."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from rag import __version__
from rag.cli.common import answer_settings, settings_of
from rag.cli.config import config_app
from rag.cli.eval import eval_app
from rag.cli.models import models_app
from rag.cli.summarize import summarize_cmd
from rag.config import Settings, load_settings
from rag.errors import ConfigError, RagError
from rag.models import fetch
from rag.types import Answer, Filter

if TYPE_CHECKING:
    from rag.retrieval.store import UpdateReport


class _ErrorMappingGroup(TyperGroup):
    """Maps every RagError to one line on stderr and its exit code, for all subcommands.

    An OSError that no stage turned into a RagError (a folder without write access, a disk
    failing mid-read) is still one line naming the file, exit code 74 (EX_IOERR), not a traceback.
    Ctrl-C is exit 130.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RagError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=exc.exit_code) from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped into `head`: click ends quietly
                raise
            typer.echo(f"error: {exc.strerror or exc}: {exc.filename or '?'}", err=True)
            raise typer.Exit(code=74) from exc
        except KeyboardInterrupt as exc:  # as a shell reports Ctrl-C (click's own "Aborted!" was exit 1)
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from exc


app = typer.Typer(
    cls=_ErrorMappingGroup,
    help="Local question answering over news articles, with cited sources.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(config_app, name="config")
app.command("summarize")(summarize_cmd)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"rag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    models_dir: Annotated[Path | None, typer.Option(help="Model files folder (env RAG_MODELS_DIR).")] = None,
    index_dir: Annotated[Path | None, typer.Option(help="Index folder (env RAG_INDEX_DIR).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (env RAG_THREADS).")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    flags = {"models_dir": models_dir, "index_dir": index_dir, "threads": threads}
    ctx.meta["rag.flags"] = {k: v for k, v in flags.items() if v is not None}
    ctx.obj = load_settings(**flags)


# ----------------------------------------------------------------------------- index & search

# The filter options of `search` and `ask`.
DocOption = Annotated[
    list[str] | None,
    typer.Option("--doc", help="Only this document id (repeatable); `rag index --stats` lists them."),
]
SinceOption = Annotated[str | None, typer.Option(help="Only articles published on or after this date (YYYY-MM-DD).")]
UntilOption = Annotated[str | None, typer.Option(help="Only articles published on or before this date (YYYY-MM-DD).")]


def _where(docs: list[str] | None, since: str | None, until: str | None) -> Filter | None:
    from rag.retrieval.filters import make_filter

    return make_filter(docs, since, until)


def _byline(title: str, author: str | None, published: str | None) -> str:
    """ "Title — Author, 2025-01-28": the article as a citation names it (only what the file states)."""
    meta = ", ".join(v for v in (author, published) if v)
    short = title if len(title) <= 70 else title[:69].rsplit(" ", 1)[0] + "…"  # cut at a word, and say so
    return f"{short} — {meta}" if meta else short


@app.command("index")
def index_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: the corpus folder).")] = None,
    prune: Annotated[
        bool,
        typer.Option(help="Remove indexed documents no longer among PATHS (a file there but skipped keeps its own)."),
    ] = False,
    rebuild: Annotated[bool, typer.Option(help="Chunk and embed every document again; all stay.")] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Only print statistics of the current index.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Then re-index whenever files change (RAG_WATCH_DEBOUNCE_MS); Ctrl-C stops.")
    ] = False,
) -> None:
    """Add new documents, re-embed changed ones, remove deleted ones (--prune). Nothing changed: nothing done.

    Nothing to index among PATHS (every file skipped, or none found) is an error (exit 6) that leaves
    the index as it is, so a mistyped path with --prune or --rebuild never empties it; with --watch,
    folders without documents yet are watched for them."""
    from rag import wiring
    from rag.errors import DocumentError, InputError
    from rag.ingest.load import SUPPORTED_SUFFIXES, is_pattern, load_documents, shown, still_there

    settings = settings_of(ctx)
    if stats:
        # `--stats --rebuild` printed the statistics and rebuilt nothing, without a word
        ignored = [
            flag
            for flag, given in (("PATHS", paths), ("--prune", prune), ("--rebuild", rebuild), ("--watch", watch))
            if given
        ]
        if ignored:
            raise InputError(f"--stats only prints statistics, {', '.join(ignored)} would do nothing; drop --stats")
        _print_stats(settings)
        return
    roots = wiring.corpus_paths(settings, paths)
    patterns = [str(root) for root in roots if is_pattern(root)]
    if watch and patterns:  # a pattern is read once (as the shell would expand it); a watch needs real paths
        raise InputError(f"--watch needs folders or files, not patterns ({', '.join(patterns)}): give the folder")
    docs, skipped = load_documents(roots, progress=True)
    for path, reason in skipped:
        typer.echo(f"skipped {shown(path)}: {reason}", err=True)
    embedder = wiring.embedder(settings) if watch else None  # loaded once for every re-index
    indexed = False
    if docs:
        report = wiring.index_documents(
            settings,
            docs,
            keep=still_there(skipped),  # a file being saved is no deleted file: --prune keeps its document
            prune=prune,
            rebuild=rebuild,
            replace_same_name=prune,
            progress=True,
            loaded_embedder=embedder,
        )
        _echo_report(settings, report)
        indexed = len(report.skipped) < len(docs)
    if not indexed:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        why = "every file was skipped (see above)" if skipped or docs else f"no {kinds} file there"
        where = ", ".join(map(str, roots))
        if not (watch and all(root.is_dir() for root in roots)):
            raise DocumentError(f"nothing to index in {where}: {why}; the index is unchanged")
        typer.echo(f"nothing to index yet in {where}: {why}")
    if not watch or embedder is None:
        return
    typer.echo(f"watching {', '.join(map(str, roots))} (Ctrl-C to stop)")
    try:
        for run in wiring.reindex_on_change(settings, roots, loaded_embedder=embedder, prune=prune, progress=True):
            typer.echo(f"{time.strftime('%H:%M:%S')} {run.changes.describe()}")
            for path, reason in run.skipped:
                typer.echo(f"skipped {shown(path)}: {reason}", err=True)
            if run.error is not None:
                typer.echo(f"error: {run.error}; still watching", err=True)
            elif run.report is not None:
                _echo_report(settings, run.report)
    except KeyboardInterrupt:
        typer.echo("stopped watching")


def _echo_report(settings: Settings, report: UpdateReport) -> None:
    from rag.ingest.load import shown

    for path, reason in report.skipped:
        typer.echo(f"skipped {shown(path)}: {reason}", err=True)
    if report.held:
        names = ", ".join(shown(d) for d in report.held[:5]) + (" …" if len(report.held) > 5 else "")
        typer.echo(
            f"kept {len(report.held)} indexed documents whose files are there but were skipped: {names}", err=True
        )
    if report.nothing_to_do and report.version is None:
        if report.unchanged or not report.skipped:  # every document skipped: the caller says so
            typer.echo(f"nothing to do: {len(report.unchanged)} documents unchanged, {report.chunks} chunks")
        return
    rate = report.embedded_chunks / report.seconds if report.seconds else 0.0
    moved = f" ({len(report.moved)} moved)" if report.moved else ""  # read from another file now: path recorded
    typer.echo(
        f"indexed: {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
        f"{len(report.unchanged)} unchanged{moved}; {report.chunks} chunks ({report.embedded_chunks} embedded) "
        f"in {report.seconds:.1f} s ({rate:.1f} chunks/s) -> {settings.index_dir / str(report.version)}"
    )


def _print_stats(settings: Settings) -> None:
    from rag import wiring

    index = wiring.open_index(settings)
    counts = index.manifest["counts"]
    langs: dict[str, int] = {}
    for lang in index.langs.values():
        langs[lang] = langs.get(lang, 0) + 1
    size = fetch.folder_size(index.path)
    typer.echo(f"index      {index.path}")
    typer.echo(f"built      {index.manifest['built_at']}  (format {index.manifest['format_version']})")
    typer.echo(f"embedding  {index.manifest['embedding']['model']}  dim {index.manifest['embedding']['dimension']}")
    typer.echo(f"documents  {counts['documents']}  languages {langs}")
    typer.echo(f"chunks     {counts['chunks']}  tokens {counts['tokens']}")
    typer.echo(f"size       {size / 1e6:.2f} MB on disk")
    for doc_id, info in index.manifest["documents"].items():
        typer.echo(f"  {doc_id}  {info['chunks']:3d} chunks  {info['tokens']:5d} tokens  {info['title'][:60]}")


@app.command("search")
def search_cmd(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="A question in German or English.")],
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=50, help="Passages to show.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Stable machine-readable output.")] = False,
    dense: Annotated[bool, typer.Option(help="Use the dense side.")] = True,
    keyword: Annotated[bool, typer.Option(help="Use the keyword side.")] = True,
    doc: DocOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Show the ranked passages for a question: article, span, score of each side, fused rank.

    --doc, --since and --until search only those articles (k passages when they hold k)."""
    from rag import wiring
    from rag.answer.pipeline import checked_question
    from rag.errors import IndexStateError, InputError
    from rag.serialize import hit_to_dict

    question = checked_question(question)  # the same check, message and stripping as `rag ask` and the HTTP API
    if not (dense or keyword):
        raise InputError("--no-dense and --no-keyword leave nothing to search with; drop one of them")
    where = _where(doc, since, until)
    settings = settings_of(ctx).model_copy(update={"dense": dense, "keyword": keyword})
    retriever = wiring.open_retriever(settings)
    if not retriever.index.documents:
        raise IndexStateError(
            f"the index in {settings.index_dir} holds no documents (all were removed); add some with `rag index PATHS`"
        )
    hits = retriever.search(question, k, where=where)
    if as_json:
        out = {"question": question, "hits": [hit_to_dict(h) for h in hits], "timings": retriever.last_timings}
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for h in hits:
        dense_part = f"dense #{h.dense_rank} {h.dense_score:.3f}" if h.dense_rank else "dense -"
        kw_part = f"bm25 #{h.keyword_rank} {h.keyword_score:.2f}" if h.keyword_rank else "bm25 -"
        typer.echo(
            f"[{h.rank}] {h.chunk.doc_id} {h.chunk.start}-{h.chunk.end}  rrf {h.score:.4f}  {dense_part}  {kw_part}"
        )
        typer.echo("    " + _byline(h.chunk.title, h.chunk.author, h.chunk.published))
        if h.duplicates:
            typer.echo("    also in: " + ", ".join(f"{d.doc_id} {d.start}-{d.end}" for d in h.duplicates))
        typer.echo("    " + h.chunk.text[:300].replace("\n", " ") + ("…" if len(h.chunk.text) > 300 else ""))


# ----------------------------------------------------------------------------- ask & chat


def _print_sources(answer: Answer) -> None:
    """The cited sources, then the passages only a conflict note names (marked so), so every [n] shown resolves."""
    from rag.ground.citations import conflict_sources

    for c, note_only in [(c, False) for c in answer.citations] + [(c, True) for c in conflict_sources(answer)]:
        marked = ", only in the note below" if note_only else ""
        head = f"[{c.number}] {_byline(c.title, c.author, c.published)} ({c.doc_id}, chars {c.start}-{c.end}{marked})"
        typer.echo(f"  {head}")
        if c.url:
            typer.echo(f"      {c.url}")
        quote = "\n       ".join(line for line in c.quote.splitlines() if line.strip())  # indented, no blank lines
        typer.echo(f"      \u201e{quote}\u201c")
    for conflict in answer.conflicts:
        typer.echo(f"  ! the articles disagree: {conflict}")
    if answer.unsupported:
        typer.echo("  left out, no cited passage states it:", err=True)
        for claim in answer.unsupported:
            typer.echo(f"      - {claim}", err=True)


def _emit(piece: str) -> None:
    """A checked sentence as it is released ("" between them: nothing to print)."""
    if piece:
        typer.echo(piece, nl=False)


def _show(answer: Answer) -> None:
    """After the streamed (checked) answer: sources, what was left out, and timing."""
    typer.echo("")
    _print_sources(answer)
    t = answer.timings
    judged = f", P(answerable) {answer.answerable_p:.2f}" if answer.answerable_p is not None else ""
    speed = f", {answer.tokens_per_second:.1f} tok/s" if answer.completion_tokens else ""  # none: nothing generated
    typer.echo(
        f"  ({'refused, ' if answer.refused else ''}first sentence {t.get('first_shown', 0):.1f} s, "
        f"total {t.get('total', 0):.1f} s{speed}{judged})",
        err=True,
    )


@app.command("ask")
def ask_cmd(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="A question in German or English.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the Answer object as JSON.")] = False,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=20, help="Passages given to the model.")] = None,
    model: Annotated[str | None, typer.Option(help="Answer model, e.g. qwen2.5-coder-0.5b.")] = None,
    lang: Annotated[str | None, typer.Option(help="Answer language (de|en); default: the question's.")] = None,
    doc: DocOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Answer a question from the articles, streaming, then list the cited sources.

    --doc, --since and --until answer from those articles only."""
    from rag import wiring
    from rag.answer.pipeline import checked_question
    from rag.retrieval.filters import matching_documents
    from rag.serialize import answer_to_dict

    checked_question(question)  # an empty or pasted-article question fails before the models load
    where = _where(doc, since, until)  # and a bad date
    settings = answer_settings(ctx, model, k, lang)
    index = None
    if where is not None:  # an unknown --doc or dates no article has, before the models load
        index = wiring.open_index(settings)
        matching_documents(index.documents, where)
    answerer = wiring.answerer(settings, index=index, defer_model=True)  # a refusal before it writes never loads it
    if where is not None:
        answerer.retriever.rows_for(where)  # and a filter that allows nothing before the first token
    if as_json:
        result = answerer(question, lang=lang, where=where)
        typer.echo(json.dumps(answer_to_dict(result), ensure_ascii=False, indent=2))
        return
    _show(answerer(question, lang=lang, where=where, on_token=_emit))


@app.command("chat")
def chat_cmd(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Answer model.")] = None,
    lang: Annotated[str | None, typer.Option(help="Answer language (de|en); default: each question's.")] = None,
) -> None:
    """Interactive questions with history; follow-ups are rewritten to stand alone (shown). An empty line,
    /quit or Ctrl-D ends; an error (a question too long, a generation server that is down) ends only its turn."""
    from rag import wiring
    from rag.errors import RagError

    answerer = wiring.answerer(answer_settings(ctx, model, None, lang))
    history: list[dict[str, str]] = []
    typer.echo("Ask about the articles (German or English). Empty line, /quit or Ctrl-D to quit.")
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            typer.echo()  # the prompt's line ends
            break
        if not question or question.lower() in ("/quit", "/exit"):
            break

        def show_rewrite(standalone: str) -> None:
            typer.echo(f"  (understood as: {standalone})")

        try:
            result = answerer(question, lang=lang, history=history, on_token=_emit, on_rewrite=show_rewrite)
        except RagError as exc:  # the session and its history go on; the next question may work
            typer.echo(f"error: {exc}", err=True)
            continue
        _show(result)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": result.text}]


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (env RAG_HOST).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (env RAG_PORT).")] = None,
) -> None:
    """Run the HTTP service (API, OpenAI-compatible chat, web page at /)."""
    import uvicorn

    from rag.serve.app import create_app
    from rag.serve.logs import configure_logging

    settings = settings_of(ctx)
    host, port = host or settings.host, port or settings.port
    if not settings.api_key and not _is_loopback(host):
        typer.echo(
            f"warning: listening on {host} without RAG_API_KEY: anyone who reaches this port can ask, "
            "upload and delete documents; set RAG_API_KEY (SECURITY.md)",
            err=True,
        )
    listening = _listen(host, port)  # a port in use is named before "serving on" is said
    typer.echo(f"serving on http://{host}:{port}/  (models load in the background; /health turns 200 when ready)")
    configure_logging(settings)
    # Our own line per request (rag.serve.logs) replaces uvicorn's access log.
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listening])


def _listen(host: str, port: int) -> Any:
    """A socket bound to ``host:port`` and listening; a ConfigError naming the port when it cannot be had."""
    import socket

    try:
        family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)  # not the "(while attempting to bind ...)" suffix
        raise ConfigError(
            f"cannot listen on {host}:{port} ({why}); another program may use the port: choose another with --port "
            "or RAG_PORT"
        ) from None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@app.command("smoke")
def smoke_cmd(ctx: typer.Context) -> None:
    """Check that the real models work: embed a German sentence and its translation, search the index."""
    from rag import wiring

    settings = settings_of(ctx)
    embedder = wiring.embedder(settings)
    de, en = "DeepSeek trainierte R1 mit 2.048 GPUs.", "DeepSeek trained R1 with 2,048 GPUs."
    vectors = embedder.embed([de, en], "document")
    typer.echo(
        f"embedding  {settings.embedding_model}: dim {vectors.shape[1]}, "
        f"cos(de, en) = {float(vectors[0] @ vectors[1]):.3f}"
    )
    retriever = wiring.open_retriever(settings, embedder)
    top = retriever.search("Wie viele GPUs nutzte DeepSeek?", 1)
    if top:
        typer.echo(f"search     top passage: {top[0].chunk.doc_id}: {top[0].chunk.text[:120]}…")


def main() -> None:
    app()
