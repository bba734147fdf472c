"""Filters on what retrieval may return: document ids and a publication-date range.

`make_filter` turns request fields or CLI options into a checked `rag.types.Filter`;
`matching_documents` says which indexed documents it allows. Both raise `InputError` (HTTP 400,
exit code 2) naming the filter: a bad date, ``since`` after ``until``, an unknown document id,
or a filter no indexed document matches. Retrieval then searches only those documents' chunks
(`Retriever.search(where=...)`), so ``k`` hits still come back when they hold ``k`` chunks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

from rag.errors import InputError
from rag.types import Document, Filter

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_DOCS = 1000  # document ids in one filter


def make_filter(docs: Iterable[str] | None = None, since: str | None = None, until: str | None = None) -> Filter | None:
    """A checked Filter, or None when nothing is restricted.

    >>> make_filter(["b.txt", "a.txt", "b.txt"], since="2025-01-01")
    Filter(docs=('b.txt', 'a.txt'), since='2025-01-01', until=None)
    >>> make_filter([], None, None) is None
    True
    """
    since, until = _date("since", since), _date("until", until)
    if since and until and since > until:
        raise InputError(f"since {since} is after until {until}: no date lies between them; swap them")
    ids = tuple(dict.fromkeys(docs or ()))
    if any(not d.strip() for d in ids):
        raise InputError("docs holds an empty document id; give file names such as 001_632e2609b1775729.txt")
    if len(ids) > MAX_DOCS:
        raise InputError(f"docs names {len(ids)} documents, at most {MAX_DOCS} are allowed in one filter")
    if not ids and since is None and until is None:
        return None
    return Filter(docs=ids, since=since, until=until)


def _date(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not _ISO_DATE.fullmatch(value):
        raise InputError(f"{name} {value[:40]!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-01-28")
    try:
        dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{name} {value!r} is not a valid date ({exc})") from exc
    return value


def allows(document: Document, where: Filter) -> bool:
    """Does ``where`` allow this document? A document without a date fails any date condition."""
    if where.docs and document.doc_id not in where.docs:
        return False
    if where.since is None and where.until is None:
        return True
    published = document.published
    if published is None:
        return False
    return (where.since is None or published >= where.since) and (where.until is None or published <= where.until)


def describe(where: Filter) -> str:
    """The filter as its fields are named in requests.

    >>> describe(Filter(docs=("a.txt",), since="2025-01-01"))
    "docs ['a.txt'], since 2025-01-01"
    """
    parts = [f"docs {list(where.docs)}"] if where.docs else []
    parts += [f"{name} {value}" for name, value in (("since", where.since), ("until", where.until)) if value]
    return ", ".join(parts)


def matching_documents(documents: Mapping[str, Document], where: Filter) -> list[str]:
    """Ids of the indexed documents ``where`` allows, sorted; InputError when it names an unknown id or allows none."""
    unknown = [d for d in where.docs if d not in documents]
    if unknown:
        shown = ", ".join(repr(d[:120]) for d in unknown[:5])
        raise InputError(
            f"docs: no indexed document {shown}; `rag index --stats` and GET /v1/documents list the document ids"
        )
    matching = sorted(d for d, doc in documents.items() if allows(doc, where))
    if not matching:
        dated = sorted(doc.published for doc in documents.values() if doc.published)
        known = (
            f"{len(dated)} of {len(documents)} documents have a date, from {dated[0]} to {dated[-1]}"
            if dated
            else "no indexed document states a publication date"
        )
        raise InputError(f"no indexed document matches the filter ({describe(where)}); {known}")
    return matching
