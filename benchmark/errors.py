"""The user-facing errors: what ``repbench`` prints as one line (``repbench: error: ...``) and exits 2 for.

Everything a user or a plugin author can fix (a name, an option, a file, a missing package, a plugin that broke
its contract) raises a :class:`RepbenchError` subclass whose message names the thing at fault and what to do.
Any other exception is a bug, in repbench or in a plugin, and the CLI lets it show its traceback.

Each kind also derives from the built-in exception it refines (``OptionError`` is a ``ValueError``, ``MissingData``
a ``FileNotFoundError``, ...), so callers that catch the built-in keep working.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The one table of exit codes every repbench command (and module entry point) returns."""

    OK = 0
    FAILED = 1  # the command ran, but a cell or a throughput measurement failed: its record says why
    USAGE = 2  # bad input (a RepbenchError, printed as one line) or a malformed command line
    INTERRUPTED = 130  # Ctrl-C


class RepbenchError(Exception):
    """Base class of every error the CLI shows as one line."""


class UnknownNameError(RepbenchError, LookupError):
    """An unknown encoder, dataset, protocol or method name; the message suggests close matches."""


class OptionError(RepbenchError, ValueError):
    """A spec string, an option value or a command-line flag that cannot be used as given."""


class RecordError(RepbenchError, ValueError):
    """A results file that is not a valid repbench record; the message names the file and the field."""


class MissingData(RepbenchError, FileNotFoundError):
    """Data files or folders that are not where they should be; the message says how to get them."""


class DataError(RepbenchError, ValueError):
    """Data that is there but malformed: a truncated image, a bad table, labels outside the classes."""


class MissingDependency(RepbenchError, ImportError):
    """An optional package that is not installed; the message gives the pip command."""


class UnavailableWeights(RepbenchError, RuntimeError):
    """Pretrained weights that cannot be loaded (offline, unknown id); never replaced by random weights."""


class ContractError(RepbenchError, ValueError):
    """A plugin returned something that breaks its contract (wrong width, labels out of range, NaN features)."""


class WriteError(RepbenchError, OSError):
    """A file repbench must write cannot be (a read-only folder, a full disk); the message names the file."""
