"""The public API (cnnlab.fit / load / summary and the Run object), as a notebook uses it."""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

import cnnlab
from cnnlab.errors import CnnlabError, ConfigError, DataError

MAX_REPR = 1024  # characters: every object a user meets prints in a few lines


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> cnnlab.Run:
    runs = tmp_path_factory.mktemp("runs")
    return cnnlab.fit(
        "tutorial_cnn", "digits", epochs=3, batch_size=32, lr=0.003, threads=1, verbose=0,
        runs_dir=str(runs),
    )  # fmt: skip


def test_fit_returns_a_run_that_reloads_the_same(digits_run):
    run = digits_run
    assert isinstance(run, cnnlab.Run) and run.format == "checkpoint"
    assert run.input_shape == (1, 28, 28) and run.classes == tuple("0123456789")
    assert len(run.history) == 3 and run.history[-1]["val_accuracy"] > 0.5
    assert run.steps == len(run.history) * run.history[0]["step"]
    again = cnnlab.load(run.run_dir)
    assert again.history == run.history and again.metrics == run.metrics
    assert again.config == run.config and again.split == run.split
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(again.logits(x), run.logits(x), atol=1e-5)


def test_every_object_has_a_short_repr(digits_run):
    ev = digits_run.evaluate()
    pred = digits_run.predict(np.zeros((28, 28)))
    for obj in (digits_run, digits_run.history, ev, pred, cnnlab.load(digits_run.run_dir)):
        assert len(repr(obj)) <= MAX_REPR, type(obj)
    assert "tutorial_cnn on digits" in repr(digits_run)
    assert repr(ev).startswith("EvalResult(accuracy=")
    for obj in (digits_run, digits_run.history, ev):
        assert obj._repr_html_().startswith(("<table>", "<p>"))


def test_evaluate_is_a_reference_accuracy(digits_run):
    ev = digits_run.evaluate()
    test = cnnlab.load_dataset("digits", "test")
    with torch.inference_mode():
        logits = digits_run.model(digits_run.normalizer(test.images))
    assert ev.accuracy == pytest.approx((logits.argmax(1) == test.labels).float().mean().item())
    assert ev.confusion.sum() == len(test.labels) and ev.dataset == "digits test"
    assert sum(m["support"] for m in ev.per_class.values()) == len(test.labels)
    idx, losses = ev.top_losses(4)
    assert list(losses) == sorted(losses, reverse=True) and len(idx) == 4


def test_plots_are_figures_and_touch_no_global_state(digits_run):
    backend = matplotlib.get_backend()
    import matplotlib.pyplot as plt

    figures_before = plt.get_fignums()
    run = digits_run
    image = cnnlab.load_dataset("digits", "test").images[0, 0].numpy()
    for fig in (
        run.plot_curves(),
        run.plot_confusion(),
        run.plot_top_losses(9),
        run.plot_filters(),
        run.plot_feature_maps(image),
        run.plot_receptive_field(image),
        run.plot_saliency(image),
    ):
        assert isinstance(fig, Figure)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")  # each draws without pyplot
        assert buf.getvalue()[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figures_before


def _digit_png(path: Path, ink_on_white: bool = True) -> Path:
    img = Image.new("L", (80, 80), 255 if ink_on_white else 0)
    ImageDraw.Draw(img).line((40, 8, 40, 72), fill=0 if ink_on_white else 255, width=8)
    img.save(path)
    return path


def test_predict_takes_every_kind_of_image(digits_run, tmp_path):
    run = digits_run
    png = _digit_png(tmp_path / "one.png")
    one = run.predict(png)
    assert one.class_name in run.classes and 0 < one.probability <= 1
    same = [
        run.predict(str(png)),
        run.predict(Image.open(png)),
        run.predict(png.read_bytes()),
        run.predict(np.asarray(Image.open(png))),  # uint8 (H, W) photo-sized array
    ]
    assert all(p.probs == pytest.approx(one.probs, abs=1e-6) for p in same)
    prepared = run.prepare(png)  # (1, 28, 28): used as it is when given back
    for ready in (prepared, prepared[0], torch.from_numpy(prepared), prepared[None]):
        got = run.predict(ready)
        got = got[0] if isinstance(got, list) else got
        assert got.probs == pytest.approx(one.probs, abs=1e-6)
    _digit_png(tmp_path / "two.png", ink_on_white=False)
    assert len(run.predict(tmp_path)) == 2 and len(run.predict([png, png])) == 2
    with pytest.raises(CnnlabError, match="shape"):
        run.predict(np.zeros((2, 5, 5, 5)))


def test_fit_takes_a_module_a_config_and_a_recipe(tmp_path):
    model = cnnlab.create_model("mlp", hidden=[32])
    run = cnnlab.fit(model, "digits", max_steps=3, verbose=0, runs_dir=str(tmp_path))
    assert run.model is model and run.steps == 3 and run.model_args["name"] == "mlp"
    config = cnnlab.TrainConfig(model="mlp", dataset="digits", max_steps=2, runs_dir=str(tmp_path))
    assert cnnlab.fit(config, verbose=0).steps == 2
    fast = cnnlab.fit(recipe="fast", dataset="digits", max_steps=2, runs_dir=str(tmp_path),
                      verbose=0)  # fmt: skip
    assert fast.name == "speednet" and fast.config.recipe == "fast"
    other = cnnlab.fit("tutorial_cnn", "digits", recipe="fast", max_steps=1, verbose=0,
                       runs_dir=str(tmp_path))  # fmt: skip
    assert other.name == "tutorial_cnn" and other.config.whiten  # the recipe, another model
    with pytest.raises(ConfigError, match="num_classes"):
        cnnlab.fit(cnnlab.create_model("mlp", num_classes=3), "digits", verbose=0,
                   runs_dir=str(tmp_path))  # fmt: skip


def test_progress_without_a_terminal_is_one_line_per_evaluation(tmp_path, capsys):
    cnnlab.fit("mlp", "digits", epochs=2, runs_dir=str(tmp_path))  # verbose=1, not a tty
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "val_accuracy" in lines[-1]
    assert "\r" not in out.out + out.err
    cnnlab.fit("mlp", "digits", epochs=1, runs_dir=str(tmp_path), verbose=0)
    assert capsys.readouterr().out == ""


def test_summary_takes_a_name_a_model_or_a_run(digits_run):
    by_name = cnnlab.summary("tutorial_cnn")
    assert by_name.total_params == sum(p.numel() for p in digits_run.model.parameters())
    assert cnnlab.summary(digits_run).total_params == by_name.total_params
    rgb = cnnlab.summary("tutorial_cnn", in_channels=3, input_size=32)
    assert rgb.input_size[0] == 3 and rgb.total_params > by_name.total_params


def test_registering_again_is_harmless():
    from cnnlab.models.registry import _REGISTRY

    def cell():  # what re-running a notebook cell does: the same function defined again
        @cnnlab.register_model("api_test_net")
        def api_test_net(in_channels, num_classes, input_size, *, width=4):
            """A test net."""
            return cnnlab.create_model("mlp", in_channels, num_classes, input_size)

        return api_test_net

    try:
        cell()
        cell()
        assert "api_test_net" in cnnlab.list_models()
        with pytest.raises(CnnlabError, match="already registered"):

            @cnnlab.register_model("api_test_net")
            def another(in_channels, num_classes, input_size): ...

    finally:
        _REGISTRY.pop("api_test_net", None)


def _shapes_folder(root: Path, classes=("circle", "square", "triangle"), n: int = 12) -> Path:
    """Colour pictures of shapes, one sub-folder per class, as a user's own data would be."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = Image.new("RGB", (48, 40), tuple(int(v) for v in rng.integers(150, 256, 3)))
            draw = ImageDraw.Draw(img)
            colour = tuple(int(v) for v in rng.integers(0, 120, 3))
            x, y, s = (int(v) for v in rng.integers(4, 14, 3))
            box = (x, y, x + 18 + s, y + 18 + s)
            if name == "circle":
                draw.ellipse(box, fill=colour)
            elif name == "square":
                draw.rectangle(box, fill=colour)
            else:
                draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])],
                             fill=colour)  # fmt: skip
            img.save(root / name / f"{i}.png")
    return root


def test_colour_folder_trains_at_its_size_and_exports(tmp_path):
    folder = _shapes_folder(tmp_path / "shapes")
    run = cnnlab.fit(
        "tutorial_cnn", str(folder), image_size=32, color_mode="rgb", epochs=2, batch_size=8,
        val_fraction=0.25, verbose=0, runs_dir=str(tmp_path / "runs"),
    )  # fmt: skip
    assert run.input_shape == (3, 32, 32) and run.classes == ("circle", "square", "triangle")
    assert run.model_args["in_channels"] == 3 and run.model_args["input_size"] == 32
    assert run.prepare(folder / "circle" / "0.png").shape == (3, 32, 32)
    ev = run.evaluate()
    assert len(ev.labels) == len(run.split["val"]) and "validation split" in ev.dataset
    loaded = cnnlab.load(run.run_dir)
    assert loaded.input_shape == (3, 32, 32)
    result = run.export(tmp_path / "shapes.onnx", check_images=8)
    onnx_run = cnnlab.load(result.path)
    assert onnx_run.input_shape == (3, 32, 32)
    png = folder / "square" / "3.png"
    assert onnx_run.predict(png).probs == pytest.approx(run.predict(png).probs, abs=1e-4)


def test_folders_with_fewer_than_two_classes_or_an_empty_class_are_refused(tmp_path):
    one = _shapes_folder(tmp_path / "one", classes=("circle",), n=2)
    with pytest.raises(DataError, match=r"only one class folder \(circle\)"):
        cnnlab.fit("mlp", str(one), runs_dir=str(tmp_path), verbose=0)
    two = _shapes_folder(tmp_path / "two", classes=("a", "b"), n=2)
    (two / "empty").mkdir()
    with pytest.raises(DataError, match="empty: class folder has no image files"):
        cnnlab.load_image_folder(two)


@pytest.mark.parametrize("name", cnnlab.list_models())
@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
def test_export_round_trip_of_every_registered_model(name, fmt, tmp_path):
    pytest.importorskip("onnxruntime")
    from cnnlab.data import Normalizer

    torch.manual_seed(0)
    model = cnnlab.create_model(name).eval()
    run = cnnlab.Run(model, tuple("0123456789"), (1, 28, 28), Normalizer("half"), dataset="digits")
    suffix = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}[fmt]
    result = run.export(tmp_path / f"{name}{suffix}", check_images=8)
    assert result.max_abs_diff < 1e-4
    if fmt == "torchscript":
        with pytest.raises(CnnlabError, match="holds code"):
            cnnlab.load(result.path)
    back = cnnlab.load(result.path, trust_code=fmt == "torchscript")
    assert back.format == fmt and back.name == name and back.input_shape == run.input_shape
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(back.logits(x), run.logits(x), atol=1e-4)


# The public API's >>> examples run here (the ones that need a trained run say +SKIP).
PUBLIC_MODULES = [
    "cnnlab",
    "cnnlab.run",
    "cnnlab.predict",
    "cnnlab.export",
    "cnnlab.config",
    "cnnlab.models.registry",
    "cnnlab.engine.callbacks",
    "cnnlab.engine.loop",
    "cnnlab.engine.tta",
    "cnnlab.viz",
    "cnnlab.viz.training",
    "cnnlab.viz.conv",
    "cnnlab.viz.activations",
    "cnnlab.data",
]


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_docstring_examples_run(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, raise_on_error=False)
    assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} examples failed"


@pytest.mark.parametrize("fmt", ["checkpoint", "safetensors", "onnx"])
def test_flip_tta_is_kept_by_every_saved_form(fmt, tmp_path):
    """config.tta: validation, evaluate and predict average each image with its mirror."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    from cnnlab.engine.evaluate import infer

    run = cnnlab.fit("fastnet", "digits", tta=True, max_steps=6, threads=1, verbose=0,
                     runs_dir=str(tmp_path))  # fmt: skip
    assert run.tta and run.config.tta
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    batch = run.normalizer(torch.from_numpy(x))
    plain, mirrored = infer(run.model, batch), infer(run.model, batch.flip(-1))
    expected = ((plain + mirrored) / 2).numpy()
    assert np.abs(plain.numpy() - expected).max() > 1e-4  # the mirror changes the scores
    np.testing.assert_allclose(run.logits(x), expected, atol=1e-5)
    if fmt == "checkpoint":
        back = cnnlab.load(run.run_dir)
    else:
        back = cnnlab.load(run.export(tmp_path / f"m.{fmt}", check_images=4).path)
    assert back.tta
    np.testing.assert_allclose(back.logits(x), expected, atol=1e-4)
    if fmt != "onnx":  # the explainer page gives predict's probabilities, maps of the image
        from cnnlab.serve.explain import Explainer

        acts = Explainer.from_run(back).activations(x[0])
        probs = np.exp(expected[0] - expected[0].max())
        np.testing.assert_allclose(acts.probs, probs / probs.sum(), atol=1e-5)
        plain_maps = Explainer(back.model, back.normalizer, back.input_shape, back.classes)
        for name, out in plain_maps.activations(x[0]).outputs.items():
            np.testing.assert_array_equal(acts.outputs[name], out)
    test = cnnlab.load_dataset("digits", "test")
    with torch.inference_mode():
        t = run.normalizer(test.images)
        avg = run.model(t) + run.model(t.flip(-1))
    assert back.evaluate().accuracy == pytest.approx(
        (avg.argmax(1) == test.labels).float().mean().item()
    )
