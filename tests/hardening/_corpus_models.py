"""The second half of the bad-input corpus (see ``_corpus.py``): model files and inputs from
strangers. Every file is generated here, from the trained test run or from nothing; no binary
is committed.

Classes: devices, pipes and folders where a file belongs (``special``); sizes read from the file
that would drive allocations (``size``); crafted weights-only payloads, safetensors headers,
manifests and ONNX metadata of the wrong type, length or nesting (``schema``); NaN and infinity
(``nan``); ONNX graphs that are code (``onnx``); images with nothing drawn (``blank``); and the
smaller ones (``small``).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from _corpus import Case, _png, digit, image_case, mutated_checkpoint
from PIL import Image

CKPT = r"model\.pt"


def _predict(model: str) -> list[str]:
    return ["predict", model, "in.png", "--csv", "out/p.csv"]


def _image(folder: Path) -> None:
    (folder / "in.png").write_bytes(_png(digit()))


# ----------------------------------------------------------------------------- special files


def special(name: str, make: Callable[[Path], None], argv: Callable[[Path, Path], list[str]]):
    """Put a device symlink / FIFO / huge sparse file at ``name``, then run ``argv``."""

    def build(folder: Path, run: Path) -> list[str]:
        _image(folder)
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        make(target)
        return argv(folder, run)

    return build


def link_to(device: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(device)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def unix_socket(path: Path) -> None:
    """A listening-capable socket file (closed at once: the file stays behind)."""
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))


def sparse(size: int) -> Callable[[Path], None]:
    """A file of ``size`` bytes that takes no disk space (a hole)."""

    def make(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)

    return make


def predict_image(name: str) -> Callable[[Path, Path], list[str]]:
    return lambda folder, run: ["predict", str(run), name, "--csv", "out/p.csv"]


def predict_model(name: str) -> Callable[[Path, Path], list[str]]:
    return lambda folder, run: _predict(name)


def folder_with(extra: Callable[[Path], None]):
    """imgs/a.png (a real digit) and imgs/b.png made by ``extra``: predict the folder."""

    def build(folder: Path, run: Path) -> list[str]:
        (folder / "imgs").mkdir()
        (folder / "imgs" / "a.png").write_bytes(_png(digit()))
        extra(folder / "imgs" / "b.png")
        return ["predict", str(run), "imgs", "--csv", "out/p.csv"]

    return build


def subfolder_named_png(path: Path) -> None:
    path.mkdir()
    (path / "inner.png").write_bytes(_png(digit()))


def fifo_config(folder: Path, run: Path) -> list[str]:
    os.mkfifo(folder / "run.yaml")
    return ["train", "--config", "run.yaml", "--dataset", "digits", "--runs-dir", "out"]


CHAR = "a character device, not a regular file"
PIPE = r"a named pipe \(FIFO\), not a regular file"
SPECIAL_CASES = [
    Case("special-image-dev-zero", "special", "an image that is a symlink to /dev/zero",
         special("input.png", link_to("/dev/zero"), predict_image("input.png")),
         f"image is {CHAR}: input\\.png", isolate=True),
    Case("special-image-dev-urandom", "special", "an image that is a symlink to /dev/urandom",
         special("input.jpg", link_to("/dev/urandom"), predict_image("input.jpg")),
         f"image is {CHAR}: input\\.jpg", isolate=True),
    Case("special-image-dev-null", "special", "an image that is a symlink to /dev/null",
         special("input.png", link_to("/dev/null"), predict_image("input.png")),
         f"image is {CHAR}: input\\.png", isolate=True),
    Case("special-image-socket", "special", "an image that is a Unix socket",
         special("input.png", unix_socket, predict_image("input.png")),
         r"image is a socket, not a regular file: input\.png", isolate=True),
    Case("special-image-fifo", "special", "an image that is a named pipe nobody writes to",
         special("input.png", fifo, predict_image("input.png")),
         f"image is {PIPE}: input\\.png", isolate=True),
    Case("special-image-huge", "special", "a 300 MB (sparse) file named .png",
         special("input.png", sparse(300 << 20), predict_image("input.png")),
         r"image too large: input\.png is 314,572,800 bytes \(limit 268,435,456\)",
         isolate=True),
    Case("special-folder-fifo", "special", "a folder given to predict holding a FIFO named .png",
         folder_with(fifo), f"image is {PIPE}: imgs/b\\.png", isolate=True),
    Case("special-folder-dev-zero", "special", "a folder holding a symlink to /dev/zero named "
         ".png", folder_with(link_to("/dev/zero")), f"image is {CHAR}: imgs/b\\.png",
         isolate=True),
    Case("special-folder-subfolder", "special", "a folder holding a sub-folder named b.png "
         "(valid: skipped, as training does)", folder_with(subfolder_named_png), None),
    Case("special-checkpoint-dev-zero", "special", "a .pt that is a symlink to /dev/zero",
         special("model.pt", link_to("/dev/zero"), predict_model("model.pt")),
         f"model file is {CHAR}: {CKPT}", isolate=True),
    Case("special-checkpoint-fifo-evaluate", "special", "evaluate a .pt that is a FIFO",
         special("model.pt", fifo, lambda f, r: ["evaluate", "model.pt", "--out", "out"]),
         f"model file is {PIPE}: {CKPT}", isolate=True),
    Case("special-checkpoint-huge", "special", "a 1.1 GB (sparse) .pt",
         special("model.pt", sparse(1_100 << 20), lambda f, r: ["evaluate", "model.pt"]),
         rf"model file too large: {CKPT} is 1,153,433,600 bytes \(limit 1,073,741,824\)",
         isolate=True),
    Case("special-safetensors-dev-urandom", "special", "a .safetensors linked to /dev/urandom",
         special("model.safetensors", link_to("/dev/urandom"),
                 predict_model("model.safetensors")),
         f"model file is {CHAR}: model\\.safetensors", isolate=True),
    Case("special-onnx-dev-zero", "special", "an .onnx that is a symlink to /dev/zero",
         special("model.onnx", link_to("/dev/zero"), predict_model("model.onnx")),
         f"model file is {CHAR}: model\\.onnx", isolate=True),
    Case("special-manifest-fifo", "special", "a manifest .json that is a FIFO",
         special("model.json", fifo, predict_model("model.json")),
         f"model file is {PIPE}: model\\.json", isolate=True),
    Case("special-config-fifo", "special", "a --config YAML that is a FIFO", fifo_config,
         f"config is {PIPE}: run\\.yaml", isolate=True),
]  # fmt: skip


# ----------------------------------------------------------------------------- payloads


def with_args(**change) -> Callable[[dict], dict]:
    def mutate(payload: dict) -> dict:
        payload["model_args"] = {**payload["model_args"], **change}
        return payload

    return mutate


def with_fields(**change) -> Callable[[dict], dict]:
    def mutate(payload: dict) -> dict:
        payload.update(change)
        return payload

    return mutate


class HugeBytearray:
    """Pickles as ``bytearray(10**11)``: 100 GB that the weights-only unpickler would build."""

    def __reduce__(self):
        return (bytearray, (10**11,))


def with_bytearray(payload: dict) -> dict:
    payload["metrics"] = {"val_accuracy": HugeBytearray()}
    return payload


def broadcast_view(payload: dict) -> dict:
    """A (10**6, 10**6) tensor over a 4-byte storage (stride 0): 4 TB if ever made dense."""
    import torch

    payload["model_state"]["fc3.weight"] = torch.zeros(1).expand(10**6, 10**6)
    return payload


def state_entry(key: str, value) -> Callable[[dict], dict]:
    def mutate(payload: dict) -> dict:
        payload["model_state"][key] = value() if callable(value) else value
        return payload

    return mutate


def fill_weights(value: float, key: str | None = None) -> Callable[[dict], dict]:
    def mutate(payload: dict) -> dict:
        for name, tensor in payload["model_state"].items():
            if key is None or name == key:
                tensor.fill_(value)
        return payload

    return mutate


def whole_payload(value) -> Callable[[Path, Path], list[str]]:
    def build(folder: Path, run: Path) -> list[str]:
        import torch

        torch.save(value, folder / "model.pt")
        _image(folder)
        return _predict("model.pt")

    return build


def zip_claiming_4gb(folder: Path, run: Path) -> list[str]:
    """The run's best.pt whose zip directory says one entry unpacks to 4 GB (a zip bomb's
    header: deflated data can expand that much)."""
    data = bytearray((run / "checkpoints" / "best.pt").read_bytes())
    at = data.find(b"PK\x01\x02")  # the first central-directory entry
    data[at + 24 : at + 28] = (0xFFFFFFF0).to_bytes(4, "little")  # its uncompressed size
    (folder / "model.pt").write_bytes(bytes(data))
    _image(folder)
    return _predict("model.pt")


def ten_thousand_classes(folder: Path, run: Path) -> list[str]:
    """A valid 10,000-class lenet5 checkpoint, evaluated on the 10-class digits test set."""
    import torch

    payload = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    payload["model_args"]["num_classes"] = 10_000
    payload["model_state"]["fc3.weight"] = torch.zeros(10_000, 84)
    payload["model_state"]["fc3.bias"] = torch.zeros(10_000)
    payload["classes"] = [f"c{i}" for i in range(10_000)]
    torch.save(payload, folder / "model.pt")
    return ["evaluate", "model.pt", "--dataset", "digits", "--out", "out"]


def torchscript(folder: Path, run: Path) -> list[str]:
    import torch

    from cnnlab.run import load as load_model

    traced = torch.jit.trace(load_model(run).model, torch.zeros(1, 1, 28, 28))
    traced.save(str(folder / "model.pt"))
    _image(folder)
    return _predict("model.pt")


def export_short_classes(folder: Path, run: Path) -> list[str]:
    import torch

    payload = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    payload["classes"] = ["zero", "one", "two"]
    torch.save(payload, folder / "model.pt")
    return ["export", "model.pt", "--format", "onnx", "--out", "out/m.onnx"]


def serve_payload(mutate: Callable[[dict], dict]) -> Callable[[Path, Path], list[str]]:
    def build(folder: Path, run: Path) -> list[str]:
        mutated_checkpoint(mutate)(folder, run)
        return ["serve", "model.pt", "--port", "0"]

    return build


def yaml_model_kwargs(folder: Path, run: Path) -> list[str]:
    (folder / "run.yaml").write_text("model: tutorial_cnn\nmodel_kwargs:\n  hidden: 1000000000\n")
    return ["train", "--config", "run.yaml", "--dataset", "digits", "--runs-dir", "out",
            "--epochs", "1", "--quiet"]  # fmt: skip


# ----------------------------------------------------------------------------- safetensors


def safetensors_file(meta_change: Callable[[dict], dict], tensors: Callable | None = None):
    """The run's best.safetensors with its metadata (name -> text) changed."""

    def build(folder: Path, run: Path) -> list[str]:
        from safetensors import safe_open
        from safetensors.torch import save_file

        with safe_open(str(run / "checkpoints" / "best.safetensors"), framework="pt") as f:
            meta = dict(f.metadata())
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open API
        if tensors is not None:
            state = tensors(state)
        save_file(state, str(folder / "model.safetensors"), metadata=meta_change(meta))
        _image(folder)
        return _predict("model.safetensors")

    return build


def meta(**change: str) -> Callable[[dict], dict]:
    return lambda m: {**m, **change}


def meta_args(**change) -> Callable[[dict], dict]:
    def mutate(m: dict) -> dict:
        return {**m, "model_args": json.dumps({**json.loads(m["model_args"]), **change})}

    return mutate


def nan_tensor(state: dict) -> dict:
    state["conv1.weight"] = state["conv1.weight"].clone().fill_(float("nan"))
    return state


DEEP = "[" * 5000 + "]" * 5000


# ----------------------------------------------------------------------------- manifests


def manifest_pair(change: Callable[[dict], dict], text: str | None = None):
    """model.safetensors (the run's weights) + model.json (a manifest), predict the .json."""

    def build(folder: Path, run: Path) -> list[str]:
        import torch
        from safetensors.torch import save_file

        payload = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
        save_file({k: v.contiguous() for k, v in payload["model_state"].items()},
                  str(folder / "model.safetensors"))  # fmt: skip
        manifest = {
            "model_args": payload["model_args"], "input_shape": payload["input_shape"],
            "normalizer": payload["normalizer"], "classes": payload["classes"],
            "dataset": payload["dataset"], "weights": "model.safetensors",
        }  # fmt: skip
        (folder / "model.json").write_text(text if text is not None else
                                           json.dumps(change(manifest)))  # fmt: skip
        _image(folder)
        return _predict("model.json")

    return build


def manifest_args(**change) -> Callable[[dict], dict]:
    def mutate(m: dict) -> dict:
        m["model_args"] = {**m["model_args"], **change}
        return m

    return mutate


# ----------------------------------------------------------------------------- ONNX


def onnx_file(graph: str = "dense", manifest: Callable[[dict], dict] | None = None,
              metadata: str | None = None, raw: bytes | None = None):  # fmt: skip
    """A hand-built ONNX file (no export needed) carrying the run's manifest as metadata.

    ``graph``: dense (Flatten + Gemm: a valid 10-class model), loop (a Loop of 2**62
    iterations), custom (an operator of a foreign domain), if (control flow), scalar (returns a
    single number), nan (a NaN weight), external (weights "stored" outside the folder), two
    (two outputs).
    """

    def build(folder: Path, run: Path) -> list[str]:
        import torch

        payload = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
        doc = {
            "model_args": payload["model_args"], "input_shape": payload["input_shape"],
            "normalizer": payload["normalizer"], "classes": payload["classes"],
            "dataset": payload["dataset"],
        }  # fmt: skip
        if manifest is not None:
            doc = manifest(doc)
        text = metadata if metadata is not None else json.dumps(doc)
        data = raw if raw is not None else _onnx_bytes(graph, text)
        (folder / "model.onnx").write_bytes(data)
        _image(folder)
        return _predict("model.onnx")

    return build


def _onnx_bytes(kind: str, manifest_text: str) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 28, 28])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weight = np.random.default_rng(0).normal(0, 0.01, (784, 10)).astype(np.float32)
    if kind == "nan":
        weight[3, 3] = np.nan
    bias = np.zeros(10, np.float32)
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")]
    nodes = [helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"])]  # fmt: skip
    outputs = [y]
    if kind == "loop":  # y = Gemm(x) + Loop(2**62 times: v = v)(zeros): a valid, endless graph
        body = helper.make_graph(
            [helper.make_node("Identity", ["cond"], ["cond_out"]),
             helper.make_node("Identity", ["v"], ["v_out"])], "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v", TensorProto.FLOAT, [10])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [10])],
        )  # fmt: skip
        inits += [numpy_helper.from_array(np.array(2**62, np.int64), "trips"),
                  numpy_helper.from_array(np.array(True), "go"),
                  numpy_helper.from_array(np.zeros(10, np.float32), "v0")]  # fmt: skip
        nodes[1].output[0] = "g"
        nodes += [helper.make_node("Loop", ["trips", "go", "v0"], ["v_end"], body=body),
                  helper.make_node("Add", ["g", "v_end"], ["y"])]  # fmt: skip
    elif kind == "custom":
        nodes.append(helper.make_node("Pwn", ["y"], ["z"], domain="com.example.evil"))
        outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)]
    elif kind == "if":
        branch = helper.make_graph(
            [helper.make_node("Identity", ["y"], ["out"])],
            "branch",
            [],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        )
        inits.append(numpy_helper.from_array(np.array(True), "go"))
        nodes.append(helper.make_node("If", ["go"], ["z"], then_branch=branch, else_branch=branch))
        outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)]
    elif kind == "scalar":
        nodes.append(helper.make_node("ReduceMean", ["y"], ["z"], keepdims=0))
        outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)]
    elif kind == "two":
        nodes.append(helper.make_node("Relu", ["y"], ["z"]))
        outputs = [y, helper.make_tensor_value_info("z", TensorProto.FLOAT, None)]
    elif kind == "external":
        inits[1] = TensorProto(name="b", data_type=TensorProto.FLOAT, dims=[10])
        inits[1].data_location = TensorProto.EXTERNAL
        for key, value in (("location", "../../../../etc/passwd"), ("offset", "0"),
                           ("length", "40")):  # fmt: skip
            entry = inits[1].external_data.add()
            entry.key, entry.value = key, value
    graph = helper.make_graph(nodes, "g", [x], outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.helper.set_model_props(model, {"cnnlab_manifest": manifest_text})
    return model.SerializeToString()


def _cmyk_uniform() -> bytes:
    buf = io.BytesIO()
    Image.new("CMYK", (60, 60), (10, 20, 30, 5)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _transparent() -> bytes:
    return _png(Image.new("RGBA", (56, 56), (0, 0, 0, 0)))


SIZE_CASES = [
    Case("size-num-classes-4m", "size", "a 1 MB .pt whose model_args ask for 4,000,000 classes",
         mutated_checkpoint(with_args(num_classes=4_000_000)),
         rf"{CKPT}: model_args\.num_classes=4000000 must be an integer in 1\.\.100,000",
         isolate=True),
    Case("size-input-size-1e9", "size", "model_args.input_size = 10**9",
         mutated_checkpoint(with_args(input_size=10**9)),
         rf"{CKPT}: model_args\.input_size=1000000000 must be one or two integers in 1\.\.4096",
         isolate=True),
    Case("size-in-channels-1e9", "size", "model_args.in_channels = 10**9",
         mutated_checkpoint(with_args(in_channels=10**9)),
         rf"{CKPT}: model_args\.in_channels=1000000000 must be an integer in 1\.\.64",
         isolate=True),
    Case("size-option-1e9", "size", "an extra integer option of 10**9 in model_args",
         mutated_checkpoint(with_args(width=10**9)),
         rf"{CKPT}: model_args\.width=1,000,000,000 is out of range \(\|value\| <= 1,000,000\)",
         isolate=True),
    Case("size-input-shape-1e9", "size", "input_shape [1, 10**9, 10**9]",
         mutated_checkpoint(with_fields(input_shape=[1, 10**9, 10**9])),
         rf"{CKPT}: input_shape=\[1, 1000000000, 1000000000\] must be \[channels 1\.\.64, height, "
         r"width 1\.\.4096\]", isolate=True),
    Case("size-bytearray", "size", "a pickle asking the weights-only unpickler for "
         "bytearray(10**11)", mutated_checkpoint(with_bytearray),
         rf"refusing to load {CKPT}: it contains pickled code/objects \(builtins\.bytearray\), "
         "not only tensors", isolate=True),
    Case("size-zip-claims-4gb", "size", "a .pt whose zip directory claims a 4 GB entry",
         zip_claiming_4gb, rf"cannot read checkpoint {CKPT}: it unpacks to [\d,]+ bytes "
         r"\(limit 1,073,741,824\)", isolate=True),
    Case("size-broadcast-view", "size", "a 10**6 x 10**6 weight stored as a stride-0 view of 4 "
         "bytes", mutated_checkpoint(broadcast_view),
         rf"{CKPT}: model_state\.fc3\.weight claims shape \(1000000, 1000000\) over 4 bytes of "
         "data", isolate=True),
    Case("size-safetensors-meta", "size", "safetensors metadata with num_classes = 10**9",
         safetensors_file(meta_args(num_classes=10**9)),
         r"model\.safetensors: model_args\.num_classes=1000000000 must be an integer in "
         r"1\.\.100,000", isolate=True),
    Case("size-manifest", "size", "a manifest with hidden = 10**9",
         manifest_pair(manifest_args(hidden=10**9)),
         r"model\.json: model_args\.hidden=1,000,000,000 is out of range \(\|value\| <= "
         r"1,000,000\)", isolate=True),
    Case("size-onnx-manifest", "size", "an ONNX manifest with num_classes = 10**9",
         onnx_file(manifest=manifest_args(num_classes=10**9)),
         r"model\.onnx: model_args\.num_classes=1000000000 must be an integer in 1\.\.100,000",
         isolate=True),
    Case("size-yaml-model-kwargs", "size", "a training config with model_kwargs hidden: 10**9",
         yaml_model_kwargs, r"tutorial_cnn: (its options describe a model of [\d,]+ numbers "
         r"\(limit 268,435,456\)|.*hidden.*)", isolate=True),
]  # fmt: skip

NOT_JSON = r"is not valid JSON \(.*\)"
SCHEMA_CASES = [
    Case("schema-state-list", "schema", "model_state is a list",
         mutated_checkpoint(with_fields(model_state=[1, 2])),
         rf"{CKPT}: model_state must be a mapping, got list"),
    Case("schema-state-string", "schema", "model_state is a string",
         mutated_checkpoint(with_fields(model_state="weights")),
         rf"{CKPT}: model_state must be a mapping, got str"),
    Case("schema-state-value", "schema", "a weight that is a string, not a tensor",
         mutated_checkpoint(state_entry("conv1.weight", "oops")),
         rf"{CKPT}: model_state\.conv1\.weight is a str, not a tensor"),
    Case("schema-state-key", "schema", "a weight under the key 7",
         mutated_checkpoint(state_entry(7, lambda: __import__("torch").zeros(1))),
         rf"{CKPT}: model_state has a non-text key 7"),
    Case("schema-args-string", "schema", "model_args is a string",
         mutated_checkpoint(with_fields(model_args="lenet5")),
         rf"{CKPT}: model_args must be a mapping, got str"),
    Case("schema-args-name-int", "schema", "model_args.name is a number",
         mutated_checkpoint(with_args(name=5)),
         rf"{CKPT}: model_args has no model name; cannot rebuild the model"),
    Case("schema-args-unknown-model", "schema", "model_args name an unknown model",
         mutated_checkpoint(with_args(name="resnet9000")),
         rf"{CKPT}: unknown model 'resnet9000'.*"),
    Case("schema-args-nested", "schema", "a model option holding a mapping",
         mutated_checkpoint(with_args(pool={"a": 1})),
         rf"{CKPT}: model_args\.pool has an unusable value .*"),
    Case("schema-args-type", "schema", "a model option of the wrong type (activation=5)",
         mutated_checkpoint(with_args(activation=5)), rf"{CKPT}: .*activation.*"),
    Case("schema-classes-short", "schema", "3 class names for 10 outputs",
         mutated_checkpoint(with_fields(classes=["a", "b", "c"])),
         rf"{CKPT}: classes lists 3 names but the model has 10 outputs"),
    Case("schema-classes-string", "schema", "classes is a string",
         mutated_checkpoint(with_fields(classes="0123456789")),
         rf"{CKPT}: classes must be a list of names, got str"),
    Case("schema-classes-dict", "schema", "a class name that is a mapping",
         mutated_checkpoint(with_fields(classes=[*"01234567", {"x": 1}, "9"])),
         rf"{CKPT}: classes\[8\] is a dict, not a name"),
    Case("schema-normalizer-string", "schema", "normalizer is a string",
         mutated_checkpoint(with_fields(normalizer="meanstd")),
         rf"{CKPT}: normalizer must be a mapping, got str"),
    Case("schema-normalizer-kind", "schema", "an unknown normalizer kind",
         mutated_checkpoint(with_fields(normalizer={"kind": "zscore"})),
         rf"{CKPT}: normalizer\.kind='zscore' is not one of unit, half, meanstd, pixel"),
    Case("schema-normalizer-std-zero", "schema", "a meanstd normalizer with std 0",
         mutated_checkpoint(with_fields(normalizer={"kind": "meanstd", "mean": [[[0.1]]],
                                                    "std": [[[0.0]]]})),  # fmt: skip
         rf"{CKPT}: normalizer mean/std differ in shape or std <= 0"),
    Case("schema-input-shape-string", "schema", "input_shape is a string",
         mutated_checkpoint(with_fields(input_shape="28x28")),
         rf"{CKPT}: input_shape='28x28' must be .*"),
    Case("schema-input-shape-mismatch", "schema", "input_shape [3, 28, 28] for a 1-channel "
         "model", mutated_checkpoint(with_fields(input_shape=[3, 28, 28])),
         rf"{CKPT}: input_shape \[3, 28, 28\] does not fit the model \(.*\)"),
    Case("schema-dataset-list", "schema", "dataset is a list",
         mutated_checkpoint(with_fields(dataset=["mnist"])),
         rf"{CKPT}: dataset must be short text, got \['mnist'\]"),
    Case("schema-payload-list", "schema", "a .pt holding a list, not a checkpoint",
         whole_payload([1, 2, 3]), rf"{CKPT} is not a cnnlab checkpoint \(no model_state\)"),
    Case("schema-serve", "schema", "cnnlab serve on a checkpoint whose classes is a string",
         serve_payload(with_fields(classes="0123456789")),
         rf"{CKPT}: classes must be a list of names, got str"),
    Case("schema-safetensors-not-json", "schema", "safetensors metadata that is not JSON",
         safetensors_file(meta(model_args="{not json")),
         rf"model\.safetensors: metadata 'model_args' {NOT_JSON}"),
    Case("schema-safetensors-deep", "schema", "safetensors metadata nested 5,000 deep",
         safetensors_file(meta(classes=DEEP)),
         r"model\.safetensors: metadata 'classes' is nested more than 32 levels deep"),
    Case("schema-safetensors-classes", "schema", "safetensors metadata: classes a number",
         safetensors_file(meta(classes="7")),
         r"model\.safetensors: classes must be a list of names, got int"),
    Case("schema-manifest-not-json", "schema", "a manifest that is not JSON",
         manifest_pair(lambda m: m, text="{'model_args': nope"), rf"model\.json: manifest "
         rf"{NOT_JSON}"),
    Case("schema-manifest-deep", "schema", "a manifest nested 5,000 deep",
         manifest_pair(lambda m: m, text=DEEP),
         r"model\.json: manifest is nested more than 32 levels deep"),
    Case("schema-manifest-normalizer", "schema", "a manifest whose normalizer is a list",
         manifest_pair(lambda m: {**m, "normalizer": [0.5]}),
         r"model\.json: normalizer must be a mapping, got list"),
    Case("schema-onnx-not-json", "schema", "ONNX metadata that is not JSON",
         onnx_file(metadata="{oops"), rf"model\.onnx: cnnlab metadata {NOT_JSON}"),
    Case("schema-onnx-deep", "schema", "ONNX metadata nested 5,000 deep",
         onnx_file(metadata=DEEP), r"model\.onnx: cnnlab metadata is nested more than 32 "
         r"levels deep"),
    Case("schema-onnx-scalar", "schema", "an ONNX graph that returns a single number",
         onnx_file("scalar"),
         r"model\.onnx: the model returned scores of shape \(\), expected \(1, 10\)"),
    Case("schema-onnx-two-outputs", "schema", "an ONNX graph with two outputs",
         onnx_file("two"), r"model\.onnx: the ONNX graph has 2 outputs, expected 1"),
    Case("schema-onnx-garbage", "schema", "random bytes named .onnx",
         onnx_file(raw=np.random.default_rng(4).bytes(3000)),
         r"cannot load ONNX model model\.onnx: not a valid ONNX file \(.*\)"),
    Case("schema-onnx-no-metadata", "schema", "an ONNX file without cnnlab metadata",
         onnx_file(metadata=""), r"model\.onnx: cnnlab metadata is not valid JSON \(.*\)"),
]  # fmt: skip

NAN = r"contains NaN or infinity \(a diverged or damaged model\)"
NAN_CASES = [
    Case("nan-all-weights", "nan", "a checkpoint whose weights are all NaN",
         mutated_checkpoint(fill_weights(float("nan"))), rf"{CKPT}: model_state\.\S+ {NAN}"),
    Case("nan-one-bias", "nan", "one bias of +infinity",
         mutated_checkpoint(fill_weights(float("inf"), "fc3.bias")),
         rf"{CKPT}: model_state\.fc3\.bias {NAN}"),
    Case("nan-evaluate", "nan", "evaluate a checkpoint of NaN weights",
         lambda f, r: mutated_checkpoint(fill_weights(float("nan")))(f, r)[:1] and
         ["evaluate", "model.pt", "--out", "out"], rf"{CKPT}: model_state\.\S+ {NAN}"),
    Case("nan-huge-weights", "nan", "finite weights of 1e37 whose scores overflow to infinity",
         mutated_checkpoint(fill_weights(1e37)),
         rf"{CKPT}: the model returned NaN or infinite scores"),
    Case("nan-evaluate-overflow", "nan", "evaluate a model whose finite 1e37 weights overflow",
         lambda f, r: mutated_checkpoint(fill_weights(1e37))(f, r)[:1] and
         ["evaluate", "model.pt", "--out", "out", "--json"],
         rf"{CKPT}: the model returned NaN or infinite scores( on digits test)?"),
    Case("nan-normalizer", "nan", "a normalizer mean of NaN",
         mutated_checkpoint(with_fields(normalizer={"kind": "meanstd", "mean": [[[float("nan")]]],
                                                    "std": [[[1.0]]]})),  # fmt: skip
         rf"{CKPT}: normalizer\.mean must be a finite \(C, H, W\) array, got shape \(1, 1, 1\)"),
    Case("nan-safetensors", "nan", "a safetensors file with a NaN weight",
         safetensors_file(lambda m: m, nan_tensor),
         rf"model\.safetensors: model_state\.conv1\.weight {NAN}"),
    Case("nan-onnx", "nan", "an ONNX file with a NaN weight", onnx_file("nan"),
         r"model\.onnx: ONNX weight 'w' contains NaN or infinity \(a diverged or damaged "
         r"model\)"),
]  # fmt: skip

REFUSED_OP = r"refusing ONNX model model\.onnx: operator {} is not one cnnlab exports use .*"
ONNX_CASES = [
    Case("onnx-valid", "onnx", "a hand-built dense ONNX model with cnnlab metadata (valid)",
         onnx_file("dense"), None),
    Case("onnx-loop", "onnx", "a Loop node of 2**62 iterations (would run forever)",
         onnx_file("loop"), REFUSED_OP.format("Loop"), isolate=True),
    Case("onnx-if", "onnx", "control flow (If) around the output", onnx_file("if"),
         REFUSED_OP.format("If")),
    Case("onnx-custom-domain", "onnx", "an operator from a foreign domain",
         onnx_file("custom"), REFUSED_OP.format(re.escape("com.example.evil.Pwn"))),
    Case("onnx-external-data", "onnx", "a weight whose external data lies outside the folder",
         onnx_file("external"),
         r"refusing ONNX model model\.onnx: tensor 'b' points at external data "
         r"'\.\./\.\./\.\./\.\./etc/passwd' outside the model's folder"),
]  # fmt: skip

BLANK = "no digit found: the image is blank"
BLANK_CASES = [
    replace(c, kind="blank") for c in [
    image_case("blank-white", "a blank white PNG", ".png",
               lambda: _png(Image.new("L", (64, 64), 255)), rf"input\.png: {BLANK}", 422),
    image_case("blank-black", "a blank black PNG", ".png",
               lambda: _png(Image.new("L", (64, 64), 0)), rf"input\.png: {BLANK}", 422),
    image_case("blank-gray-noise", "a gray PNG with +-2 levels of noise", ".png",
               lambda: _png(Image.fromarray(np.random.default_rng(2).integers(
                   126, 131, (64, 64), dtype=np.uint8))), rf"input\.png: {BLANK}", 422),
    image_case("blank-transparent", "a fully transparent RGBA PNG", ".png", _transparent,
               rf"input\.png: {BLANK}", 422),
    image_case("blank-cmyk", "a uniform CMYK JPEG page", ".jpg", _cmyk_uniform,
               rf"input\.jpg: {BLANK}", 422),
    image_case("blank-colour", "one flat colour (RGB)", ".png",
               lambda: _png(Image.new("RGB", (40, 30), (200, 30, 90))), rf"input\.png: {BLANK}",
               422),
]]  # fmt: skip

SMALL_CASES = [
    Case("small-torchscript", "small", "a TorchScript archive given as a checkpoint",
         torchscript, rf"{CKPT} is a TorchScript archive, which holds code: load it with "
         r"trust_code=True if you made it, or use its checkpoint, \.onnx or \.safetensors"),
    Case("small-export-short-classes", "small", "export of a checkpoint with 3 class names for "
         "10 outputs", export_short_classes,
         rf"{CKPT}: classes lists 3 names but the model has 10 outputs"),
    Case("small-evaluate-10000-classes", "small", "evaluate a 10,000-class model on the "
         "10-class digits set", ten_thousand_classes,
         rf"{CKPT} has 10,000 outputs but digits test has 10 classes: evaluate it on the data "
         "set it was trained for"),
]  # fmt: skip
