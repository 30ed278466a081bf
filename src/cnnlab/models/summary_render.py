"""Text and HTML rendering of a :class:`~cnnlab.models.summary.Summary`.

``render_text`` is the torchinfo-style table ``cnnlab summary`` prints and ``render_html`` the
table a notebook shows; both end with the totals, a legend and, when some input border reaches
no output, a note naming it (:func:`unseen_note`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnlab.models.summary import Pair, Summary, SummaryRow


def _fmt_pair(value: Pair | None, sep: str = "x", square_as_one: bool = True) -> str:
    if value is None:
        return "-"
    if square_as_one and value[0] == value[1]:
        return str(value[0])
    return f"{value[0]}{sep}{value[1]}"


def _fmt_range(cover: tuple[Pair, Pair] | None) -> str:
    """``((0, 25), (0, 25))`` -> ``0-25``; rows and columns differ -> ``0-25 x 0-27``."""
    if cover is None:
        return "-"
    rows, cols = (f"{lo}-{hi}" for lo, hi in cover)
    return rows if rows == cols else f"{rows} x {cols}"


HEADER = ["Layer (type)", "Output shape", "Param #", "Kernel", "Stride", "Mult-adds", "RF"]
HEADER += ["Jump", "Covers"]


def _cells(row: SummaryRow) -> list[str]:
    rf = _fmt_pair(row.receptive_field)
    if row.receptive_field is not None and row.jump is None:
        rf = f"{rf} (all)"
    return [
        "  " * (row.depth - 1) + f"{row.name} ({row.kind})",
        str(row.output_shape),
        f"{row.params:,}" if row.params else "-",
        _fmt_pair(row.kernel_size, square_as_one=False),
        _fmt_pair(row.stride),
        f"{row.mult_adds:,}" if row.mult_adds else "-",
        rf,
        _fmt_pair(row.jump),
        _fmt_range(row.coverage),
    ]


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _plural(word: str, spans: list[str]) -> str:
    return word if len(spans) == 1 and "-" not in spans[0] else f"{word}s"


def unseen_note(s: Summary) -> str | None:
    """One sentence naming the input border no output depends on, or None when all is seen.

    >>> from cnnlab.models import create_model
    >>> from cnnlab.models.summary import summary
    >>> print(unseen_note(summary(create_model("tutorial_cnn"))))
    Never seen: input rows 26-27 and columns 26-27 of 28x28; the output does not depend on them.
    """
    h, w = s.input_size[1:]
    if s.coverage is None:
        return None
    (r0, r1), (c0, c1) = s.coverage
    parts = []
    rows = [_span(lo, hi) for lo, hi in ((0, r0 - 1), (r1 + 1, h - 1)) if lo <= hi]
    cols = [_span(lo, hi) for lo, hi in ((0, c0 - 1), (c1 + 1, w - 1)) if lo <= hi]
    if rows:
        parts.append(f"input {_plural('row', rows)} {' and '.join(rows)}")
    if cols:
        parts.append(
            f"{'input ' if not rows else ''}{_plural('column', cols)} {' and '.join(cols)}"
        )
    if not parts:
        return None
    return f"Never seen: {' and '.join(parts)} of {h}x{w}; the output does not depend on them."


_WHY_UNSEEN = "(a stride or floor pooling left them without a window: see where Covers shrinks)"
_LEGEND = [
    "Shapes are (C, H, W) per sample. RF: input pixels one unit sees;",
    "Jump: input pixels between neighbouring units (stride product);",
    "Covers: first-last input row (x column) that reaches the layer at all;",
    "(all): one unit combines every position, so it sees everything covered.",
]


def _totals(s: Summary) -> list[str]:
    nontrain = s.total_params - s.trainable_params
    return [
        f"Total params: {s.total_params:,}",
        f"Trainable params: {s.trainable_params:,}",
        f"Non-trainable params: {nontrain:,}",
        f"Total mult-adds (M): {s.total_mult_adds / 1e6:.2f}",
        f"Params size (MB): {s.param_bytes / 1e6:.2f}",
    ]


def render_text(s: Summary) -> str:
    table = [HEADER] + [_cells(r) for r in s.rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    right = {2, 5}  # numbers align right

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = sum(widths) + 2 * (len(widths) - 1)
    c, h, w = s.input_size
    note = unseen_note(s)
    lines = [
        f"Model: {s.model_name}    input (C, H, W) = ({c}, {h}, {w})",
        "=" * rule,
        line(HEADER),
        "-" * rule,
        *(line(cells) for cells in table[1:]),
        "=" * rule,
        *_totals(s),
        "-" * rule,
        *_LEGEND,
        *([note, _WHY_UNSEEN] if note else []),
    ]
    return "\n".join(lines)


def render_html(s: Summary) -> str:
    """The same table for Jupyter: one HTML table, totals and notes underneath."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
    body = []
    for row in s.rows:
        cells = _cells(row)
        cells[0] = "&nbsp;&nbsp;" * (row.depth - 1) + esc(cells[0].strip())
        tds = [
            f"<td{' class=r' if i in (2, 5) else ''}>{c if i == 0 else esc(c)}</td>"
            for i, c in enumerate(cells)
        ]
        body.append(f"<tr>{''.join(tds)}</tr>")
    c, h, w = s.input_size
    note = unseen_note(s)
    notes = "<br>".join(esc(t) for t in [*_totals(s), *_LEGEND])
    warn = f"<p><b>{esc(note)}</b><br>{esc(_WHY_UNSEEN)}</p>" if note else ""
    return (
        f"<p><b>{esc(s.model_name)}</b>, input (C, H, W) = ({c}, {h}, {w})</p>"
        "<style>.cnnlab-summary td{text-align:left}.cnnlab-summary td.r{text-align:right}</style>"
        f"<table class=cnnlab-summary><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
        f"<p>{notes}</p>{warn}"
    )
