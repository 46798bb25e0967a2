"""FLOPs of one forward pass, counted by ``torch.utils.flop_counter.FlopCounterMode``.

The counter applies shape formulas to the operators that ran: 2 FLOPs per multiply-add for matrix products
(``mm``, ``addmm``, ``bmm``, ...), convolutions and the fused attention kernels; every other operator
(element-wise ops, normalisation, pooling, softmax) counts zero unless it decomposes into counted ones. The
CPU flash-attention kernel, which torch's registry lacks, is counted with torch's own attention formula.
:func:`count_flops` also lists those zero-counted operators that do arithmetic (``flops_uncounted``), by
recording what reached the counter without a formula; view, copy and allocation ops are left out of the list.
When the installed torch does not allow that, the list is the string ``"unknown"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

#: Operators that move or allocate data but do no arithmetic (names without a trailing "_"): never listed.
NO_ARITHMETIC = frozenset({
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "squeeze", "unsqueeze", "flatten",
    "clone", "copy", "_to_copy", "to", "contiguous", "detach", "alias", "slice", "select", "index_select",
    "cat", "stack", "split", "split_with_sizes", "chunk", "unbind", "narrow", "as_strided", "empty", "empty_like",
    "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "fill", "zero", "new_empty",
    "new_zeros", "new_ones", "arange", "embedding", "lift_fresh", "_reshape_alias", "unfold", "index", "gather",
    "masked_fill", "where", "lt", "gt", "le", "ge", "eq", "ne", "logical_not", "_local_scalar_dense", "item",
    "sym_size", "repeat", "roll", "pad", "constant_pad_nd", "set", "resize", "rand", "randn", "randint",
    "bernoulli", "native_dropout", "dropout", "_assert_tensor_metadata", "scalar_tensor", "lift_fresh_copy",
})


@dataclass(frozen=True)
class FlopCount:
    """Total FLOPs of the call, FLOPs by counted operator, and the operators that ran uncounted."""

    total: int
    by_op: dict[str, int]
    uncounted: list[str] | str  # operator names, or "unknown" when they cannot be detected


def _op_name(packet: Any) -> str:
    """``aten.addmm`` for the overload packet ``torch.ops.aten.addmm``."""
    return str(packet).removeprefix("torch.ops.")


def _extra_formulas() -> dict[Any, Any]:
    """Formulas for attention kernels torch's registry misses (the CPU flash kernel), where this torch has them."""
    from torch.utils import flop_counter

    count = getattr(flop_counter, "sdpa_flop_count", None)
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if count is None or op is None or op in flop_counter.flop_registry:
        return {}

    def cpu_sdpa(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
                 **kwargs: Any) -> int:
        return int(count(query_shape, key_shape, value_shape))

    return {op: cpu_sdpa}


class _RecordingCounter(FlopCounterMode):
    """A FlopCounterMode that also remembers the operators it had no formula for."""

    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=_extra_formulas())
        self.uncounted: set[str] = set()

    def _count_flops(self, func_packet: Any, out: Any, args: Any, kwargs: Any) -> Any:
        if func_packet not in self.flop_registry:
            self.uncounted.add(_op_name(func_packet))
        return super()._count_flops(func_packet, out, args, kwargs)


def _can_record() -> bool:
    """Whether this torch's FlopCounterMode routes every operator through ``_count_flops`` (2.4 and later)."""
    return callable(getattr(FlopCounterMode, "_count_flops", None))


def _arithmetic(names: set[str]) -> list[str]:
    return sorted(n for n in names if n.split(".")[-1].rstrip("_") not in NO_ARITHMETIC)


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FlopCount:
    """Run ``fn(*args, **kwargs)`` once under inference mode and count its FLOPs (2 per multiply-add)."""
    recording = _can_record()
    counter: FlopCounterMode = (_RecordingCounter() if recording
                                else FlopCounterMode(display=False, custom_mapping=_extra_formulas()))
    with torch.inference_mode(), counter:
        fn(*args, **kwargs)
    by_op = {_op_name(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    uncounted: list[str] | str = "unknown"
    if isinstance(counter, _RecordingCounter):
        uncounted = _arithmetic(counter.uncounted)
    return FlopCount(int(counter.get_total_flops()), by_op, uncounted)
