"""The report's series styles: one colour, marker and dash per condition or model, shared by the PNG/SVG figures
(Matplotlib) and the HTML page, so a condition looks the same in both.

Colours are the Okabe–Ito palette without its yellow (too faint on white): seven colours that stay apart under the
common colour-vision deficiencies. Colour is never the only cue: the marker changes with every series and the dash
with every seventh, so two series never share all three.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

#: Okabe & Ito (2008), "Color Universal Design", without yellow (#F0E442)
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")

#: marker names as the page draws them, with Matplotlib's code for each
MARKERS = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D", "triangle-down": "v", "plus": "P",
           "cross": "X", "star": "*"}

#: dash names with their SVG ``stroke-dasharray`` and Matplotlib linestyle
DASHES = {"solid": (None, "-"), "dashed": ("6 3", (0, (6, 3))), "dotted": ("1.5 2.5", (0, (1.5, 2.5))),
          "dashdot": ("6 2 1.5 2", (0, (6, 2, 1.5, 2)))}


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn: ``colour`` (hex), ``marker`` and ``dash`` (keys of :data:`MARKERS`, :data:`DASHES`)."""

    colour: str
    marker: str
    dash: str

    @property
    def mpl_marker(self) -> str:
        return MARKERS[self.marker]

    @property
    def mpl_linestyle(self):
        return DASHES[self.dash][1]

    def as_dict(self) -> dict:
        return asdict(self)


def style_at(index: int) -> SeriesStyle:
    """The style of the ``index``-th series (0-based)."""
    markers, dashes = list(MARKERS), list(DASHES)
    return SeriesStyle(colour=OKABE_ITO[index % len(OKABE_ITO)], marker=markers[index % len(markers)],
                       dash=dashes[(index // len(OKABE_ITO)) % len(dashes)])


def styles_for(names: Iterable[str]) -> dict[str, SeriesStyle]:
    """One style per name, in the given order (a matrix's conditions, a run's models)."""
    return {name: style_at(i) for i, name in enumerate(names)}
