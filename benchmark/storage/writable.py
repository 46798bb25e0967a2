"""Output places checked before any work: a results folder, a cache folder or an output file that cannot be
written fails at start, in one line naming the flag, instead of as an ``OSError`` traceback after the work."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmark.errors import OptionError


def check_folder(path: Path | str, flag: str) -> None:
    """``path`` is (or can be made as) a folder this process can create files in; OptionError naming ``flag``
    otherwise. Nothing is left behind (a missing folder is not created)."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"{flag} {path}: is a file, not a folder; name a folder")
    _probe(folder, path, flag)


def check_file(path: Path | str, flag: str) -> None:
    """An output file ``path`` can be written: not a folder, and its folder is writable (or can be made)."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise OptionError(f"{flag} {path}: is a folder; name a file")
    _probe(file.parent, path, flag)


def check_outputs(results: str | Path | None = None, cache_dir: Path | None = None, use_cache: bool = True,
                   out_folder: str | Path | None = None, out_file: str | Path | None = None) -> None:
    """Every place a command will write, checked before any work (one line naming the flag)."""
    from benchmark.storage.paths import default_cache_dir

    if results is not None:
        check_folder(results, "--results")
    if use_cache:
        check_folder(cache_dir if cache_dir is not None else default_cache_dir(), "--cache-dir")
    if out_folder is not None:
        check_folder(out_folder, "--out")
    if out_file is not None:
        check_file(out_file, "--out")


def _probe(folder: Path, given: Path | str, flag: str) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"{flag} {given}: {existing} is a file, so no folder can be made under it")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OptionError(f"{flag} {given}: cannot write in {existing} ({reason}); choose a writable place") from None
