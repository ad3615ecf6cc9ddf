"""The words codecbench's options take, as types.

A value is converted once, where it enters (the run specification's validators, the public API's functions), and
travels as one of these ``Literal`` types below, so mypy checks every use and a misspelt word cannot reach the work.
"""
from __future__ import annotations

from typing import Literal, TypeVar, get_args

from codecbench.errors import UsageError

#: A clip that cannot be coded: the run fails naming it, or it is skipped and listed.
OnError = Literal["raise", "skip"]
#: Where local parallel work runs (a dask cluster is named by its scheduler instead).
ParallelBackend = Literal["loky", "threading", "sequential"]
#: The dtype policies a run can use (``--precision``). Mixed bfloat16 computes in bfloat16 and keeps the weights,
#: batch normalisation and the output softmax in float32. "auto" (the default) is mixed_bfloat16 when Keras sees
#: an accelerator or the CPU computes bfloat16 natively (AVX-512 BF16, AMX, Arm BF16), float32 elsewhere and on a
#: generated dataset (its results must not depend on the machine): on the demo, bf16 gives the float32 accuracies
#: (99.7-100 % identical predictions, every accuracy inside the float32 interval; ``codecbench bench precision``),
#: but a CPU without bf16 instructions trains 4-10x slower with it and infers no faster
#: (:func:`codecbench.store.devices.choose_precision`).
Precision = Literal["auto", "float32", "mixed_bfloat16"]

ON_ERROR: tuple[OnError, ...] = get_args(OnError)
PARALLEL_BACKENDS: tuple[ParallelBackend, ...] = get_args(ParallelBackend)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

Word = TypeVar("Word", bound=str)


def one_of(value, words: tuple[Word, ...], where: str) -> Word:
    """``value`` as one of ``words``, or a :class:`~codecbench.errors.UsageError` naming ``where`` and the words."""
    text = str(value).strip()
    for word in words:
        if word == text:
            return word
    raise UsageError(f"{where}: expected one of {', '.join(words)}; got {value!r}")
