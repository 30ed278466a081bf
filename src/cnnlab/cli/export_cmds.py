"""``cnnlab export``: ONNX / TorchScript / safetensors + manifest, with a round-trip check."""

from __future__ import annotations

import argparse
import json

from cnnlab.errors import CnnlabError

_RUNTIME = {
    "onnx": "ONNX Runtime",
    "torchscript": "torch.jit.load",
    "safetensors": "model rebuilt from the manifest",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model (onnx, torchscript, safetensors) and check the round trip",
        description=(
            "Export a run folder or checkpoint, load the file back with the runtime that will use "
            "it and compare its logits with PyTorch on real test images; fails (exit 2, nothing "
            "written) when the max abs difference is not below 1e-4."
        ),
    )
    p.add_argument("run", metavar="RUN", help="run folder or .pt checkpoint")
    p.add_argument(
        "--format", dest="fmt", choices=("onnx", "torchscript", "safetensors"), default="onnx"
    )
    p.add_argument("--out", metavar="PATH", help="output file (default: RUN/export/<model>.<ext>)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint of RUN")
    p.add_argument("--check-images", type=int, default=256, metavar="N",
                   help="test images compared in the round trip (default 256)")  # fmt: skip
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset's test files are")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from cnnlab.export import export_model

    if args.opset < 7:
        raise CnnlabError(f"--opset {args.opset} is too old; use 17 or later")
    result = export_model(
        args.run,
        args.fmt,
        args.out,
        which=args.which,
        check_images=args.check_images,
        data_dir=args.data_dir,
        opset=args.opset,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    for path in result.files:
        print(f"wrote {path}")
    if result.format == "onnx":
        d = result.details
        print(
            f"ONNX opset {d['opset']} ({d['exporter']} exporter), input {d['input']!r} "
            f"(batch, C, H, W) with a dynamic batch axis, output {d['output']!r}"
        )
    print(
        f"round trip: {_RUNTIME[result.format]} vs PyTorch on {result.images} test images: "
        f"max abs diff {result.max_abs_diff:.2e} (limit 1e-04), "
        f"top-1 agreement {100 * result.top1_agreement:.2f}%"
    )
    return 0
