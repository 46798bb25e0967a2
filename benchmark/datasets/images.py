"""Shared readers for the image dataset plugins: lazy image sequences, IDX files, image folders, the data dir.

Big datasets keep their pixels compact (one numpy array, or files on disk) and decode a PIL image only when a
sample is indexed: :class:`LazyImages` is a ``Sequence`` that does exactly that, so ``Split.samples`` supports
``len()``, indexing, slicing and iteration without holding tens of thousands of PIL objects.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
from PIL import Image

from benchmark.errors import DataError, MissingData

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class LazyImages(Sequence[Image.Image]):
    """A sequence of images decoded on access: item ``i`` is ``decode(index[i])``.

    ``index`` (default ``range(length)``) selects and orders the underlying items; slicing and :meth:`take`
    return views over the same decoder, so subsets cost no decoding.
    """

    def __init__(self, decode: Callable[[int], Image.Image], length: int, index: np.ndarray | None = None) -> None:
        self._decode = decode
        self._index = np.arange(length, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> Image.Image: ...

    @overload
    def __getitem__(self, i: slice) -> LazyImages: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"image index {i} out of range for {len(self)} images")
        return self._decode(int(self._index[i]))

    def take(self, indices: Sequence[int] | np.ndarray) -> LazyImages:
        """A view of the items at ``indices`` (positions in this sequence)."""
        return LazyImages(self._decode, 0, self._index[np.asarray(indices, dtype=np.int64)])

    def digest(self) -> str | None:
        """A content digest of every item without decoding any, when the decoder can give one (else None)."""
        digest = getattr(self._decode, "digest", None)
        return digest(self._index) if digest is not None else None


def _hash_paths(paths: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        st = p.stat() if p.exists() else None
        h.update(f"{p}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()[:16]


class ArrayDecoder:
    """Item ``i`` of a uint8 pixel array as a PIL image (a class, not a lambda, so lazy splits pickle)."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = pixels

    def __call__(self, i: int) -> Image.Image:
        return Image.fromarray(self.pixels[i])

    def digest(self, index: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.pixels[index]).tobytes()).hexdigest()[:16]


class FileDecoder:
    """File ``i`` of a list of image paths, opened as RGB (:func:`load_rgb`: errors name the file)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)

    def __call__(self, i: int) -> Image.Image:
        return load_rgb(self.files[i])

    def digest(self, index: np.ndarray) -> str:
        return _hash_paths([self.files[i] for i in index])


class ItemDecoder:
    """The image of item ``i`` of a map-style dataset returning ``(image, label)`` (a torchvision dataset).

    An image that cannot be decoded raises :class:`~benchmark.errors.DataError` naming its file (when the
    dataset lists its files) or its item number.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __call__(self, i: int) -> Image.Image:
        try:
            return self.dataset[i][0]
        except (OSError, SyntaxError, EOFError, struct.error) as exc:
            if isinstance(exc, (DataError, MissingData)):
                raise
            files = _item_files(self.dataset)
            what = str(files[i]) if files is not None else f"item {i} of {type(self.dataset).__name__}"
            if isinstance(exc, FileNotFoundError):
                raise MissingData(f"{what}: image file not found; re-download the dataset") from exc
            raise DataError(f"{what}: truncated or unreadable image ({type(exc).__name__}: {exc}); re-download "
                            "or remove it") from exc

    def digest(self, index: np.ndarray) -> str | None:
        """Pixels held in memory (CIFAR, SVHN, STL-10) or the image files (path, size, mtime) of the rest."""
        data = getattr(self.dataset, "data", None)
        if isinstance(data, np.ndarray) and len(data) == len(self.dataset):
            return hashlib.sha256(np.ascontiguousarray(data[index]).tobytes()).hexdigest()[:16]
        files = _item_files(self.dataset)
        if files is not None:
            return _hash_paths([files[i] for i in index])
        return None


def _item_files(dataset: Any) -> Sequence[Any] | None:
    """The image file of each item of a torchvision dataset, when it lists them (one per item), else None."""
    files = getattr(dataset, "_image_files", None) or getattr(dataset, "_images", None)
    if files is None and hasattr(dataset, "samples"):
        files = [path for path, _ in dataset.samples]
    return files if files is not None and len(files) == len(dataset) else None


def array_images(pixels: np.ndarray) -> LazyImages:
    """(N, H, W) or (N, H, W, C) uint8 pixels -> a lazy sequence of PIL images (one decoded per access)."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise TypeError(f"array_images expects uint8 pixels, got {pixels.dtype}")
    return LazyImages(ArrayDecoder(pixels), len(pixels))


def file_images(files: Sequence[Path]) -> LazyImages:
    """Image files -> a lazy sequence of RGB PIL images (each file opened when indexed)."""
    return LazyImages(FileDecoder(files), len(files))


# --- IDX (the MNIST family's file format) ---------------------------------------------------------------------
_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip-compressed when the name ends in ``.gz``) into a numpy array.

    Header: two zero bytes, a dtype code, the number of dimensions, then each dimension as a big-endian int32
    (16 bytes before the pixels of an image file, 8 before the labels of a label file).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}); re-download it")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[raw[2]], offset=header)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape} but the file holds {data.size} values (truncated?); "
                        "re-download it")
    return data.reshape(shape)


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (plain first), else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


# --- image folders ---------------------------------------------------------------------------------------------
def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file fully (the file is closed afterwards) as RGB, like torchvision's default loader.

    A missing file raises :class:`~benchmark.errors.MissingData`, a truncated or undecodable one
    :class:`~benchmark.errors.DataError`; both name the file.
    """
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise MissingData(f"{path}: image file not found; re-download the dataset or remove the file from its "
                          "listing") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:  # what PIL raises for broken files
        raise DataError(f"{path}: truncated or unreadable image ({type(exc).__name__}: {exc}); re-download or "
                        "remove it") from exc


def list_class_folder(folder: Path) -> dict[str, list[Path]]:
    """``{class name: sorted image files}`` for a folder with one subfolder per class (hidden entries skipped)."""
    out: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f for f in sub.rglob("*")
            if f.is_file() and f.suffix.lower() in IMG_EXTENSIONS and not f.name.startswith(".")
        )
        out[sub.name] = files
    return out


def files_digest(files: Sequence[Path], base: Path) -> str:
    """A digest of relative paths, sizes and modification times: changes when any file is added, removed or
    rewritten, without reading the pixels."""
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
