"""``cnnlab models`` (the registry) and ``cnnlab summary MODEL`` (a torchinfo-style table)."""

from __future__ import annotations

import argparse
import json

from cnnlab.errors import CnnlabError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the registered models with a description and parameter count",
        description="List every registered model name with a one-line description and its "
        "parameter count for a 1x28x28 input and 10 classes.",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_models)

    p = subparsers.add_parser(
        "summary",
        help="layer table: output shapes, parameters, mult-adds, receptive field, jump",
        description="Build MODEL for the given input and print one row per layer: output shape "
        "(C, H, W), parameters, kernel, stride, mult-adds (torchinfo's convention), receptive "
        "field and jump on the input; then totals.",
    )
    p.add_argument("model", help="a registered model name (see `cnnlab models`)")
    p.add_argument(
        "--input-size",
        default="1,28,28",
        type=parse_input_size,
        help="C,H,W of one input (default 1,28,28)",
    )
    p.add_argument("--num-classes", type=int, default=10, help="number of outputs (default 10)")
    p.add_argument("--depth", type=int, default=3, help="nesting depth to show (default 3)")
    p.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option, e.g. -o dropout=0.3 -o widths=[16,32,64] (YAML values)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_summary)


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"1,28,28"`` (or ``1x28x28``) -> ``(1, 28, 28)``; anything else is a one-line error."""
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(int(v) for v in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be three positive integers C,H,W (e.g. 1,28,28)"
        )
    return values  # type: ignore[return-value]


def parse_options(items: list[str]) -> dict[str, object]:
    """``["dropout=0.3", "widths=[16,32]"]`` -> ``{"dropout": 0.3, "widths": [16, 32]}``."""
    import yaml

    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CnnlabError(f"--option {item!r} must look like KEY=VALUE")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise CnnlabError(f"--option {item!r}: cannot parse value {value!r}") from None
    return options


def cmd_models(args: argparse.Namespace) -> int:
    from cnnlab.models import create_model, list_models, model_description

    rows = []
    for name in list_models():
        model = create_model(name)
        params = sum(p.numel() for p in model.parameters())
        rows.append({"name": name, "params": params, "description": model_description(name)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'model':<{width}}  {'params':>9}  description")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['params']:>9,}  {r['description']}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from cnnlab.models import create_model
    from cnnlab.models.summary import summary

    c, h, w = args.input_size
    model = create_model(
        args.model,
        in_channels=c,
        num_classes=args.num_classes,
        input_size=(h, w),
        **parse_options(args.option),
    )
    result = summary(model, (c, h, w), depth=args.depth)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.to_text())
    return 0
