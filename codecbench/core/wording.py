"""How counts read in messages: ``counted(1, "model")`` is "1 model", ``counted(16935, "clip")`` "16,935 clips"."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, the noun in the plural unless ``n`` is one, ``n`` with thousands separators.

    Parameters
    ----------
    n : int
        The count.
    noun : str
        The singular noun.
    plural : str, optional
        The plural when it is not ``noun + "s"``.
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
