"""Imported published numbers in the markdown board too (the page has had them in their own section): a
``Published numbers (imported)`` table after the measured ones, never inside them, with where each came from."""

from __future__ import annotations

from collections.abc import Sequence

from benchmark.leaderboards.published import source_frame, split_frame
from benchmark.leaderboards.tables import md_escape
from benchmark.results.record import Record

NO_RESULTS = "(no results)"


def published_markdown(published: Sequence[Record], measured: Sequence[Record] = ()) -> str:
    """The section for ``published`` records ("" when there are none); a published MTEB number whose cell is
    among ``measured`` shows the measured value and the difference beside it."""
    from benchmark.leaderboards.grid import github_table
    from benchmark.leaderboards.site import PUBLISHED_NOTE, published_table

    if not published:
        return ""
    table = published_table(split_frame(source_frame(published))[1], [*published, *measured])
    if table.empty:
        return ""
    rows = [[md_escape(str(v)) for v in row] for row in table.itertuples(index=False)]
    return f"### Published numbers (imported)\n\n{github_table(list(table.columns), rows)}\n\n{PUBLISHED_NOTE}\n"


def with_published(markdown: str, published: Sequence[Record], measured: Sequence[Record] = ()) -> str:
    """The measured board's markdown followed by the published section; a board with only published numbers
    no longer says "(no results)"."""
    section = published_markdown(published, measured)
    if not section:
        return markdown
    if markdown.strip() == NO_RESULTS:
        return section
    return markdown.rstrip("\n") + "\n\n" + section
