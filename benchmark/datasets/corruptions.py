"""Seeded corruptions of single samples at five severities: images (ImageNet-C's digital and noise families) and
texts (character typos, word dropout, case noise).

Parameters, images: Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019), the tables in ``imagenet_c/corruptions.py`` of github.com/hendrycks/robustness:
Gaussian noise std (on [0, 1] pixels), contrast factor, JPEG quality and pixelation factor are scale-free and
used as published; the Gaussian blur sigma was published in pixels of 224 px images and is scaled here to the
image's shorter side (sigma * side / 224), so a corruption looks alike at any resolution (CIFAR-10-C's sigmas
for 32 px images, 0.4-1.0, give nearly the same fractions of the side).

Texts: the operations of Belinkov & Bisk, "Synthetic and Natural Noise Both Break Neural Machine Translation"
(ICLR 2018): adjacent swap, deletion, insertion, and substitution by a QWERTY neighbour. The severity sets the
fraction of words (characters, for case noise) touched: 0.1, 0.2, 0.3, 0.4, 0.5 (our choice: linear, as
ImageNet-C's levels roughly are).

Determinism and monotonicity: the random draws of a sample depend on (seed, kind, position) only, never on the
severity (common random numbers), so a higher severity scales the same noise or touches a superset of the same
words: distortion grows with severity sample by sample, not just on average.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

SEVERITIES = (1, 2, 3, 4, 5)
#: Part of every corrupted split's digest (so of the dataset fingerprint and the feature-cache key): bump it
#: whenever any corruption's output changes.
VERSION = 2

# ImageNet-C (hendrycks/robustness, imagenet_c/corruptions.py), severity 1..5
NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
BLUR_SIGMA_AT_224 = (1.0, 2.0, 3.0, 4.0, 6.0)
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
JPEG_QUALITY = (25, 18, 15, 10, 7)
PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)
# texts: fraction of words (characters for case noise) touched
TEXT_RATE = (0.1, 0.2, 0.3, 0.4, 0.5)

QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _as_float(image: Image.Image) -> tuple[np.ndarray, str]:
    mode = image.mode if image.mode in ("L", "RGB") else "RGB"
    return np.asarray(image.convert(mode), dtype=np.float64) / 255.0, mode


def _to_image(x: np.ndarray, mode: str) -> Image.Image:
    return Image.fromarray((np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8), mode)


def gaussian_noise(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    x, mode = _as_float(image)
    return _to_image(x + NOISE_STD[severity - 1] * rng.standard_normal(x.shape), mode)


def gaussian_blur(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    """ImageNet-C's call, skimage's ``gaussian``, is scipy's ``gaussian_filter`` with ``mode="nearest"`` and
    ``truncate=4``: the same here (scipy comes with scikit-learn), per channel."""
    from scipy.ndimage import gaussian_filter

    x, mode = _as_float(image)
    sigma = BLUR_SIGMA_AT_224[severity - 1] * min(image.size) / 224.0
    sigmas = (sigma, sigma) if x.ndim == 2 else (sigma, sigma, 0.0)
    return _to_image(gaussian_filter(x, sigmas, mode="nearest", truncate=4.0), mode)


def contrast(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    x, mode = _as_float(image)
    means = x.mean(axis=(0, 1), keepdims=True)
    return _to_image((x - means) * CONTRAST_FACTOR[severity - 1] + means, mode)


def jpeg(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    mode = image.mode if image.mode in ("L", "RGB") else "RGB"
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, "JPEG", quality=JPEG_QUALITY[severity - 1])
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert(mode)


def pixelate(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    mode = image.mode if image.mode in ("L", "RGB") else "RGB"
    w, h = image.size
    c = PIXELATE_FACTOR[severity - 1]
    # ImageNet-C shrinks with a box filter and enlarges with one too, which equals nearest at its (near-)integer
    # ratios on 224 px; at the uneven ratios of small images a box enlargement blends blocks and the distortion
    # stopped growing with severity (MNIST: mean PSNR 16.9 dB at severity 1, 18.1 at 2). Nearest enlargement
    # keeps real blocks, and round() gives 8 px images 5, 4, 3, 2, 2 px instead of 4, 4, 3, 2, 2.
    small = image.convert(mode).resize((max(1, round(w * c)), max(1, round(h * c))), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.NEAREST)


def _neighbours() -> dict[str, str]:
    out: dict[str, str] = {}
    for r, row in enumerate(QWERTY_ROWS):
        for i, ch in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            near += [QWERTY_ROWS[rr][j] for rr in (r - 1, r + 1) if 0 <= rr < len(QWERTY_ROWS)
                     for j in (i - 1, i, i + 1) if 0 <= j < len(QWERTY_ROWS[rr])]
            out[ch] = "".join(near)
    return out


NEIGHBOURS = _neighbours()
_TOKENS = re.compile(r"(\s+)")


def _typo(word: str, op: int, at_u: float, pick_u: float) -> str:
    """One of Belinkov & Bisk's edits at a drawn position: swap two adjacent characters (op 0), delete one (1),
    insert a keyboard neighbour (2) or substitute one (3); ``at_u`` and ``pick_u`` in [0, 1) pick the position
    and the neighbour."""
    at = int(at_u * (len(word) - 1))
    near = NEIGHBOURS.get(word[at].lower(), "etaoin")  # a non-letter gets a common letter
    pick = near[int(pick_u * len(near))]
    pick = pick.upper() if word[at].isupper() else pick
    if op == 0:
        return word[:at] + word[at + 1] + word[at] + word[at + 2:]
    if op == 1:
        return word[:at] + word[at + 1:]
    if op == 2:
        return word[:at] + pick + word[at:]
    return word[:at] + pick + word[at + 1:]


def char_typo(text: str, severity: int, rng: np.random.Generator) -> str:
    """Words of two or more characters get one typo each with probability :data:`TEXT_RATE`; which word gets
    which edit is drawn once per word, the same at every severity."""
    parts = _TOKENS.split(text)
    chosen, ops, at_u, pick_u = rng.random(len(parts)), rng.integers(4, size=len(parts)), *rng.random((2, len(parts)))
    rate = TEXT_RATE[severity - 1]
    return "".join(_typo(p, int(ops[i]), at_u[i], pick_u[i]) if len(p) > 1 and not p.isspace() and chosen[i] < rate
                   else p for i, p in enumerate(parts))


def word_dropout(text: str, severity: int, rng: np.random.Generator) -> str:
    """Each word is dropped with probability :data:`TEXT_RATE`; the word drawn last is always kept."""
    words = text.split()
    if not words:
        return text
    draws = rng.random(len(words))
    rate = TEXT_RATE[severity - 1]
    kept = [w for w, u in zip(words, draws, strict=True) if u >= rate]
    return " ".join(kept) if kept else words[int(draws.argmax())]


def case_noise(text: str, severity: int, rng: np.random.Generator) -> str:
    """Each letter flips case with probability :data:`TEXT_RATE`."""
    draws = rng.random(len(text))
    rate = TEXT_RATE[severity - 1]
    return "".join(c.swapcase() if u < rate and c.isalpha() else c for c, u in zip(text, draws, strict=True))


CORRUPTION_KINDS: dict[str, dict[str, Callable[..., object]]] = {
    "image": {"gaussian_noise": gaussian_noise, "gaussian_blur": gaussian_blur, "contrast": contrast, "jpeg": jpeg,
              "pixelate": pixelate},
    "text": {"char_typo": char_typo, "word_dropout": word_dropout, "case_noise": case_noise},
}

#: What each kind's severity sets, and its five values (recorded in the dataset's info).
PARAMETERS: dict[str, tuple[str, tuple[float, ...]]] = {
    "gaussian_noise": ("noise std on [0, 1] pixels (ImageNet-C)", NOISE_STD),
    "gaussian_blur": ("sigma in pixels of a 224 px side, scaled to the image (ImageNet-C)", BLUR_SIGMA_AT_224),
    "contrast": ("contrast factor around the mean (ImageNet-C)", CONTRAST_FACTOR),
    "jpeg": ("JPEG quality (ImageNet-C)", JPEG_QUALITY),
    "pixelate": ("downscale factor: box down, nearest up (ImageNet-C's factors)", PIXELATE_FACTOR),
    "char_typo": ("fraction of words with one typo", TEXT_RATE),
    "word_dropout": ("fraction of words dropped", TEXT_RATE),
    "case_noise": ("fraction of letters with flipped case", TEXT_RATE),
}


class Corruption:
    """Corruption ``kind`` at ``severity`` (1-5) drawn from ``seed``: ``corruption(sample, position)`` where
    ``position`` is the sample's index in its split. A class, so corrupted splits pickle (DataLoader workers)."""

    def __init__(self, modality: str, kind: str, severity: int, seed: int) -> None:
        self.fn = CORRUPTION_KINDS[modality][kind]
        self.kind, self.severity, self.seed = kind, int(severity), int(seed)
        self.tag = f"corrupt({modality},{kind},severity={self.severity},seed={self.seed},v{VERSION})"
        self._kind_key = zlib.crc32(kind.encode())

    def rng(self, position: int) -> np.random.Generator:
        """The draws of one sample: from (seed, kind, position), the same at every severity."""
        return np.random.default_rng([self.seed, self._kind_key, int(position)])

    def __call__(self, sample: object, position: int) -> object:
        return self.fn(sample, self.severity, self.rng(position))
