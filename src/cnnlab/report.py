"""``cnnlab report RUN``: one self-contained HTML page about a trained run.

The page holds the run's config, the model summary (with receptive field and jump), learning
curves, the test confusion matrix and per-class scores, the test images with the highest loss,
the first-layer kernels, and for one sample image its feature maps, receptive field and
saliency. Every picture is a PNG embedded as base64, so the file can be mailed or opened
offline. A section that cannot be drawn (say the dataset is not on this machine) says why
instead of failing the whole report.
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_write_text

log = logging.getLogger(__name__)

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222;
       padding: 0 1em; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.missing { color: #a33; font-style: italic; } .meta { color: #666; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure_png(fig) -> bytes:
    from cnnlab.viz._grid import figure_png_bytes

    return figure_png_bytes(fig)


def _config_section(run) -> str:
    config = run.config.to_dict() if run.config is not None else {}
    rows = [[k, v] for k, v in sorted(config.items()) if v not in (None, {}, "")]
    return _table(["setting", "value"], rows) if rows else "<p class=missing>no config stored</p>"


def _summary_section(run) -> str:
    from cnnlab.models.summary import summary

    s = summary(run.model, run.input_shape)
    pair = lambda p: "" if p is None else f"{p[0]}x{p[1]}"  # noqa: E731
    rows = [
        [
            r.name,
            r.kind,
            "x".join(map(str, r.output_shape)),
            f"{r.params:,}",
            pair(r.receptive_field),
            pair(r.jump),
        ]
        for r in s.rows
    ]
    totals = (
        f"<p>{s.total_params:,} parameters ({s.trainable_params:,} trainable), "
        f"{s.total_mult_adds:,} mult-adds per image</p>"
    )
    header = ["layer", "kind", "output", "params", "receptive field", "jump"]
    return _table(header, rows) + totals


def _evaluation_sections(run, data_dir, limit) -> tuple[str, str]:
    res = run.evaluate(data_dir=data_dir, limit=limit)
    per_class = [
        [name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
        for name, m in res.per_class.items()
    ]
    confusion = (
        f"<p>test accuracy <b>{res.accuracy:.2%}</b>, loss {res.loss:.4f} "
        f"on {len(res.labels):,} images</p>"
        + _img(_figure_png(run.plot_confusion(res)), "confusion matrix")
        + _table(["class", "precision", "recall", "F1", "support"], per_class)
    )
    worst = _img(_figure_png(run.plot_top_losses(16, res)), "highest-loss images")
    return confusion, worst


def _section(title: str, build: Callable[[], str]) -> str:
    try:
        body = build()
    except CnnlabError as exc:  # one missing part should not cost the whole page
        log.warning("report section %r skipped: %s", title, exc)
        body = f"<p class=missing>not available: {html.escape(str(exc))}</p>"
    return f"<h2>{html.escape(title)}</h2>\n{body}\n"


def build_report(
    run,
    *,
    image: str | None = None,
    which: str = "best",
    data_dir=None,
    limit_test: int | None = None,
) -> str:
    """The report's HTML text (see :func:`write_report`)."""
    from cnnlab.run import as_run

    r = as_run(run, which)
    image = image or "test:0"
    ddir = r.data_dir(data_dir)
    evaluation: dict[str, str] = {}

    def evaluated(key: str) -> str:
        if not evaluation:
            evaluation["confusion"], evaluation["worst"] = _evaluation_sections(r, ddir, limit_test)
        return evaluation[key]

    parts = [
        _section("Config", lambda: _config_section(r)),
        _section("Model summary", lambda: _summary_section(r)),
        _section("Learning curves", lambda: _img(_figure_png(r.plot_curves()), "curves")),
        _section("Confusion matrix (test split)", lambda: evaluated("confusion")),
        _section("Highest-loss test images", lambda: evaluated("worst")),
        _section("First-layer kernels", lambda: _img(_figure_png(r.plot_filters()), "kernels")),
        _section(
            f"Feature maps of {image}",
            lambda: _img(
                _figure_png(r.plot_feature_maps(image, max_channels=6, data_dir=ddir)), "features"
            ),
        ),
        _section(
            f"Receptive field on {image}",
            lambda: _img(_figure_png(r.plot_receptive_field(image, data_dir=ddir)), "rf"),
        ),
        _section(
            f"Saliency and Grad-CAM of {image}",
            lambda: _img(_figure_png(r.plot_saliency(image, data_dir=ddir)), "saliency"),
        ),
    ]
    where = html.escape(str(r.path or run))
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>cnnlab report: {html.escape(r.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(r.name)} on {html.escape(r.dataset or '?')}</h1>"
        f"<p class=meta>checkpoint {where}</p>\n" + "".join(parts) + "</body></html>\n"
    )


def write_report(
    run,
    *,
    image: str | None = None,
    out: str | Path = "report.html",
    which: str = "best",
    data_dir=None,
    limit_test: int | None = None,
) -> Path:
    """Write the self-contained HTML report of ``run`` to ``out`` (atomically).

    ``limit_test`` evaluates on the first N test images only (a quick look at a big test set).

    >>> write_report("runs/tutorial_cnn-mnist/version_0", out="report.html")  # doctest: +SKIP
    PosixPath('report.html')
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise CnnlabError(f"report must be an .html file, got {str(out)!r}")
    text = build_report(run, image=image, which=which, data_dir=data_dir, limit_test=limit_test)

    return atomic_write_text(out, text)
