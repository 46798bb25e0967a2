"""``.npz`` files whose arrays can be memory-mapped: the feature cache's on-disk format.

An ``.npz`` written by ``np.savez`` is a zip of ``.npy`` members stored uncompressed, so a member's array lies in
the file as it would in memory and ``np.memmap`` can map it, provided its data starts at an offset aligned for its
dtype. ``np.savez`` leaves it where the zip headers end (190 bytes in for the first member: not even 4-aligned),
so :func:`write_npz` writes the same zip with a padding extra field in each member's local header that puts the
data at a multiple of :data:`ALIGN` bytes. Any npz reader (``np.load``) reads these files as before;
:func:`read_npz` maps their arrays instead of reading them (``mmap_mode="c"``: copy-on-write, so the arrays are
writable for torch and nothing is ever written back), and reads a member whole when it cannot be mapped (an
``np.savez`` file, a compressed member), saying so.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: Alignment of each member's array data in the file (numpy's own ``.npy`` header alignment).
ALIGN = 64
#: Bytes written per call when streaming an array into the zip (bounds the temporaries of a write).
WRITE_CHUNK = 16 * 2**20
_LOCAL_HEADER = 30  # fixed part of a zip local file header
_ZIP64_EXTRA = 20  # the zip64 extra field zipfile writes with force_zip64=True
_PAD_ID = 0xD935  # an extra-field id readers skip (Android's zipalign uses it for the same purpose)


def _npy_header(array: np.ndarray) -> bytes:
    """The ``.npy`` header of ``array`` (version 1.0, padded by numpy to a multiple of 64 bytes)."""
    import io

    buf = io.BytesIO()  # the header as numpy writes it, magic string included
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(array))
    return buf.getvalue()


def write_npz(fh: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (C-contiguous after conversion) to the open binary file ``fh`` as an ``.npz`` whose every
    array's data starts at a multiple of :data:`ALIGN` bytes. Arrays are streamed in chunks: no copy of them."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            array = np.ascontiguousarray(value)
            name = f"{key}.npy"
            header = _npy_header(array)
            start = fh.tell()
            fixed = start + _LOCAL_HEADER + len(name.encode()) + _ZIP64_EXTRA + len(header)
            pad = -(fixed + 4) % ALIGN  # the padding field has its own 4-byte (id, size) head
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.extra = struct.pack("<HH", _PAD_ID, pad) + b"\0" * pad
            with zf.open(info, "w", force_zip64=True) as out:
                out.write(header)
                flat = array.reshape(-1).view(np.uint8).data if array.size else memoryview(b"")
                for at in range(0, len(flat), WRITE_CHUNK):
                    out.write(flat[at:at + WRITE_CHUNK])


def _member_offset(fh: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where member ``info``'s content starts in the file (after its local header, whose extra field may differ
    from the central directory's)."""
    fh.seek(info.header_offset)
    head = fh.read(_LOCAL_HEADER)
    if len(head) != _LOCAL_HEADER or head[:4] != b"PK\x03\x04":
        raise ValueError(f"member {info.filename} has no local header where the zip directory says")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + _LOCAL_HEADER + name_len + extra_len


def read_npz(path: Path | str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of the npz at ``path``: an ``np.memmap`` (copy-on-write) for each member stored
    uncompressed with aligned, non-empty data; any other member read whole, as ``np.load`` would. Raises
    (KeyError, ValueError, zipfile.BadZipFile, OSError) for a file that is not such an npz."""
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        for key in names:
            info = zf.getinfo(f"{key}.npy")
            if info.compress_type == zipfile.ZIP_STORED:
                fh.seek(_member_offset(fh, info))
                version = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                    else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(fh)
                offset = fh.tell()
                if dtype.hasobject:
                    raise ValueError(f"member {info.filename} holds Python objects")
                if offset % max(1, dtype.alignment) == 0 and int(np.prod(shape)) > 0:
                    out[key] = np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape,
                                         order="F" if fortran else "C")
                    continue
            with zf.open(info) as member:
                out[key] = np.lib.format.read_array(member, allow_pickle=False)
    return out
