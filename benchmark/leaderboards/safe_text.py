"""Text from records made safe for every output format, beyond each format's own escaping.

* :func:`visible`: control characters (NUL and the rest of C0/C1, DEL) and the bidirectional controls that
  reorder what a reader sees (U+202E RIGHT-TO-LEFT OVERRIDE and its kin) become U+FFFD, so no label can cut a
  file short, break XML (a NUL makes an SVG invalid) or show other text than it holds. Tab and line breaks stay
  (each format handles those).
* :func:`csv_cell` / :func:`csv_safe` / :func:`csv_text`: a string cell that a spreadsheet would run as a formula (it starts with
  ``= + - @``, a tab or a carriage return) gets a leading ``'`` (the OWASP advice), is made visible, and its
  carriage returns become line feeds (which the CSV writer quotes).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_HIDDEN = [c for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)] if chr(c) not in "\t\n\r"] + _BIDI
_VISIBLE = str.maketrans({c: "\ufffd" for c in _HIDDEN})
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def visible(text: str) -> str:
    """``text`` with control and bidirectional-override characters replaced by U+FFFD."""
    return text.translate(_VISIBLE)


def csv_cell(value: Any) -> Any:
    """A CSV cell value: strings made visible and quoted against formula injection; anything else unchanged."""
    if not isinstance(value, str):
        return value
    quoted = "'" + value if value.startswith(FORMULA_STARTS) else value
    # a bare CR is no line terminator to pandas' writer, so it would go out unquoted and split the row
    return visible(quoted.replace("\r\n", "\n").replace("\r", "\n"))


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose string cells and column names went through :func:`csv_cell`."""
    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            # element by element into an object column: Series.map would re-infer the dtype and turn a column of
            # integers with gaps into floats (3371008 -> "3371008.0")
            out[col] = pd.Series([csv_cell(v) for v in out[col]], index=out.index, dtype=object)
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text (no index), through :func:`csv_safe`."""
    return str(csv_safe(frame).to_csv(index=False))
