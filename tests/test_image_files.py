"""Image files that cannot be decoded raise errors naming the file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmark.datasets.images import file_images, load_rgb
from benchmark.errors import DataError, MissingData


def image_bytes(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_images_raise_data_error_naming_the_file(tmp_path, fmt, keep):
    good = tmp_path / f"good.{fmt.lower()}"
    good.write_bytes(image_bytes(fmt))
    bad = tmp_path / f"bad.{fmt.lower()}"
    data = image_bytes(fmt)
    bad.write_bytes(data[: int(len(data) * keep)])
    assert load_rgb(good).size == (32, 32)
    images = file_images([good, bad])
    assert images[0].mode == "RGB"
    with pytest.raises(DataError, match=rf"{bad}: truncated or unreadable image \(.*\); re-download or remove it"):
        images[1]
    with pytest.raises(ValueError):  # DataError is a ValueError for callers that catch those
        load_rgb(bad)


def test_non_image_and_missing_files_name_the_file(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(DataError, match=rf"{text}: truncated or unreadable"):
        load_rgb(text)
    with pytest.raises(MissingData, match=rf"{tmp_path / 'gone.png'}: image file not found"):
        load_rgb(tmp_path / "gone.png")
