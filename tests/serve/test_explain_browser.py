"""End to end: `cnnlab explain RUN` in a real uvicorn process, driven by Debian's Chromium.

For tutorial_cnn, model_a, speednet (MNIST) and a 3-channel image-folder model: draw (or pick a
test image) and read the label; count the layer rows against the model summary; click a unit of
the last conv layer and measure the receptive-field box; check that the displayed sum of
products plus bias equals the unit's value for a first-layer and a deeper unit; check that the
effective receptive field drawn on the page is zero outside the box.

Needs /usr/bin/chromium and the Playwright Python package (never downloads a browser). Set
CNNLAB_SCREENSHOT_DIR (e.g. docs/img) to also write the explain-*.png screenshots there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import _browser
import _explain_runs as _runs
import pytest
from _browser import DIGITS

from cnnlab.models.summary import summary
from cnnlab.run import load

SEEN_PX = 224  # explain.js: the input is drawn this many CSS pixels wide
MODELS = ["tutorial_cnn", "model_a", "speednet", "colour"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with _browser.chromium(profile, {"width": 1280, "height": 900}) as ctx:
        yield ctx


def run_for(name: str, trained_run: Path, base: Path, data: Path) -> Path:
    if name == "tutorial_cnn":
        return trained_run
    if name == "colour":
        return _runs.colour_run(base)
    return _runs.mnist_run(name, base, data)


@pytest.fixture(scope="module", params=MODELS)
def served(request, trained_run, tmp_path_factory, shared_data, context):
    """`cnnlab explain RUN --no-browser` on a free port, and a browser tab on its page."""
    name = request.param
    run = run_for(name, trained_run, tmp_path_factory.getbasetemp(), shared_data)
    log = tmp_path_factory.mktemp("explain-server") / "server.log"
    with _browser.running_server(["explain", str(run), "--no-browser"], log) as url:
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{url}/explain")
        tab.wait_for_selector("body[data-ready=true]")
        yield name, run, tab, errors
        tab.close()


def settled(page) -> None:
    page.wait_for_selector("body[data-pending=no]")
    assert page.get_attribute("body", "data-state") == "done", page.inner_text("#status")


def leaves(run: Path):
    """(name, output shape, receptive field) of every leaf layer, from the model summary."""
    loaded = load(run)
    modules = dict(loaded.model.named_modules())
    rows = summary(loaded.model, loaded.input_shape, depth=99).rows
    return [r for r in rows if not list(modules[r.name].children())], loaded.input_shape


def click_unit(page, layer: str, channel: int, row: int, col: int, hw) -> None:
    canvas = page.locator(
        f"[data-testid=feature-map][data-layer='{layer}'][data-channel='{channel}']"
    )
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    h, w = hw
    canvas.click(
        position={"x": (col + 0.5) * box["width"] / w, "y": (row + 0.5) * box["height"] / h}
    )
    page.wait_for_selector(f"#unit-panel[data-unit='{layer}:{channel},{row},{col}']")


def screenshot(page, name: str, tmp_path: Path) -> None:
    shot = tmp_path / f"explain-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("CNNLAB_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)


def test_input_gives_the_label(served, tmp_path, mnist_pngs):
    name, run, page, errors = served
    if name == "tutorial_cnn":
        screenshot(page, "before", tmp_path)
    if name == "colour":  # no digits here: pick each test image in turn
        samples = page.get_by_test_id("sample")
        assert samples.count() == 2  # one per class: blue, red
        for i in range(samples.count()):
            samples.nth(i).click()
            settled(page)
            want = samples.nth(i).get_attribute("title").split("(")[1].rstrip(")")
            assert page.get_by_test_id("predicted-label").inner_text() == want
    else:
        page.click("#clear")
        _browser.draw(page, DIGITS["7"], "[data-testid=draw-canvas]")
        settled(page)  # no button: the strokes alone updated the page
        assert page.get_by_test_id("predicted-label").inner_text() == "7"
        if name == "tutorial_cnn":
            screenshot(page, "after", tmp_path)
            png, label = mnist_pngs[1]  # a photo upload goes the same way (a 2, not a 7)
            page.set_input_files(
                "#upload", files=[{"name": "digit.png", "mimeType": "image/png", "buffer": png}]
            )
            settled(page)
            assert page.get_by_test_id("predicted-label").inner_text() == str(label)
    assert not errors


def test_one_row_per_layer_with_every_channel(served):
    _, run, page, _ = served
    rows, _ = leaves(run)
    shown = page.get_by_test_id("layer-row")
    assert [shown.nth(i).get_attribute("data-layer") for i in range(shown.count())] == [
        r.name for r in rows
    ]
    for r in rows:
        maps = page.locator(f"[data-testid=feature-map][data-layer='{r.name}']")
        assert maps.count() == (r.output_shape[0] if len(r.output_shape) == 3 else 1), r.name
        text = page.locator(f"[data-testid=layer-row][data-layer='{r.name}']").inner_text()
        assert f"({', '.join(map(str, r.output_shape))})" in text
        (rh, rw), jump = r.receptive_field, r.jump  # the summary's RF column, in its words
        assert (f"RF {rh}×{rw}, jump {jump[0]}" if jump else f"RF {rh}×{rw} (all)") in text


def test_kernels_on_demand(served):
    _, run, page, _ = served
    rows, _ = leaves(run)
    first = next(r for r in rows if r.kind == "Conv2d")
    row = page.locator(f"[data-testid=layer-row][data-layer='{first.name}']")
    assert row.get_by_test_id("kernel").count() == 0
    row.get_by_role("button", name="show kernels").click()
    row.get_by_test_id("kernel").first.wait_for()
    assert row.get_by_test_id("kernel").count() == first.output_shape[0]
    row.get_by_role("button", name="hide kernels").click()
    assert row.get_by_test_id("kernel").count() == 0


def test_unit_receptive_field_and_arithmetic(served, tmp_path):
    name, run, page, errors = served
    rows, (_, h, w) = leaves(run)
    convs = [r for r in rows if r.kind == "Conv2d"]
    first, last = convs[0], convs[-1]
    # a first-layer unit: the displayed sum of products + bias is the unit's value
    click_unit(
        page,
        first.name,
        1,
        first.output_shape[1] // 2,
        first.output_shape[2] // 3,
        first.output_shape[1:],
    )
    arithmetic = page.get_by_test_id("conv-arithmetic")
    assert float(arithmetic.get_attribute("data-sum")) == pytest.approx(
        float(arithmetic.get_attribute("data-value")), abs=1e-4
    )
    # the centre unit of the last conv layer: box size = the summary's receptive field
    c, lh, lw = last.output_shape
    click_unit(page, last.name, c - 1, lh // 2, lw // 2, (lh, lw))
    arithmetic = page.get_by_test_id("conv-arithmetic")
    assert float(arithmetic.get_attribute("data-sum")) == pytest.approx(
        float(arithmetic.get_attribute("data-value")), abs=1e-4
    )
    rf_box = page.get_by_test_id("rf-box")
    assert (
        int(rf_box.get_attribute("data-rows")),
        int(rf_box.get_attribute("data-cols")),
    ) == tuple(last.receptive_field)
    rf_box.scroll_into_view_if_needed()
    size = rf_box.bounding_box()
    px = SEEN_PX / max(h, w)
    assert size["height"] == pytest.approx(last.receptive_field[0] * px, abs=1.5)
    assert size["width"] == pytest.approx(last.receptive_field[1] * px, abs=1.5)
    # the effective RF (drawn black where the gradient is zero) is zero outside the box
    top, bottom, left, right = (int(v) for v in rf_box.get_attribute("data-box").split(","))
    inside, outside = page.evaluate(
        """([t, b, l, r]) => {
          const c = document.getElementById('erf');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let inside = 0, outside = 0;
          for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
            const v = d[4 * (y * c.width + x)] + d[4 * (y * c.width + x) + 1];
            if (y >= t && y <= b && x >= l && x <= r) inside = Math.max(inside, v);
            else outside = Math.max(outside, v);
          }
          return [inside, outside];
        }""",
        [top, bottom, left, right],
    )
    assert inside > 0 and outside == 0
    if name == "tutorial_cnn":
        screenshot(page, "unit", tmp_path)
    # a logit: a dense unit, clicked in its strip of cells (unit 1 is the second cell)
    logits = rows[-1]
    strip = page.locator(f"[data-testid=feature-map][data-layer='{logits.name}']")
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    cells = int(strip.get_attribute("width"))
    strip.click(position={"x": 1.5 * box["width"] / cells, "y": box["height"] / 2})
    page.wait_for_selector(f"#unit-panel[data-unit='{logits.name}:1']")
    dense = page.get_by_test_id("dense-arithmetic")
    assert float(dense.get_attribute("data-sum")) == pytest.approx(
        float(dense.get_attribute("data-value")), abs=1e-4
    )
    assert not errors
