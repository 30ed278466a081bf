"""The model registry: one name per architecture, like timm's ``@register_model``.

A builder is a function ``builder(in_channels, num_classes, input_size, *, kw=default, ...)``
returning a :class:`~cnnlab.models.layers.CnnlabModel`. Its keyword-only parameters are the
model's tunable options; the first docstring line is its one-line description.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.layers import check_int, to_hw

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    description: str
    options: dict[str, object]  # keyword-only option -> default


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Register a model builder under ``name`` (a decorator).

    Registering the same function again (a notebook cell run twice: same module and qualified
    name) replaces the entry silently. A *different* function under a taken name is an error,
    so a new model cannot shadow a built-in one by accident.

    >>> @register_model("tiny_demo")
    ... def tiny_demo(in_channels, num_classes, input_size, *, width=4):
    ...     '''A demo.'''
    ...     ...
    >>> "tiny_demo" in list_models()
    True
    >>> tiny_demo = register_model("tiny_demo")(tiny_demo)  # the cell run again: harmless
    >>> _ = _REGISTRY.pop("tiny_demo")
    """

    def decorator(builder: Builder) -> Builder:
        old = _REGISTRY.get(name)
        if old is not None and _qualified(old.builder) != _qualified(builder):
            raise CnnlabError(
                f"model {name!r} is already registered to {_qualified(old.builder)}; "
                f"choose another name for {_qualified(builder)}"
            )
        sig = inspect.signature(builder)
        options = {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelEntry(name, builder, doc[0] if doc else "", options)
        return builder

    return decorator


def _qualified(func: Builder) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def list_models() -> list[str]:
    """Names of all registered models, sorted.

    >>> "tutorial_cnn" in list_models()
    True
    """
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names raise listing the valid ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise CnnlabError(
            f"unknown model {name!r}; choose one of: {', '.join(list_models())}"
        ) from None


def model_description(name: str) -> str:
    """One-line description of a registered model."""
    return get_entry(name).description


def _plain(value: object) -> object:
    """Tuples -> lists so cnnlab_args survive YAML, JSON and weights_only checkpoints."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def create_model(
    name: str,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | tuple[int, int] = 28,
    **kwargs: object,
) -> nn.Module:
    """Build a registered model; ``model.cnnlab_args`` rebuilds it.

    Args:
        name: a name from :func:`list_models`.
        in_channels: image channels (1 for MNIST, 3 for RGB).
        num_classes: number of logits the model returns.
        input_size: image side (int) or ``(height, width)``; flatten sizes follow from it.
        **kwargs: the model's own options (see ``cnnlab models``); unknown ones are an error.

    Returns:
        The model (train mode) with ``cnnlab_args`` holding every option, defaults included,
        so a checkpoint rebuilds the same network even if a default changes later.

    >>> m = create_model("tutorial_cnn")
    >>> sum(p.numel() for p in m.parameters())
    93322
    >>> create_model(**m.cnnlab_args).cnnlab_args == m.cnnlab_args
    True
    """
    entry = get_entry(name)
    check_int("in_channels", in_channels)
    check_int("num_classes", num_classes)
    h, w = to_hw(input_size)
    unknown = sorted(set(kwargs) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise CnnlabError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid options: {valid}"
        )
    options = {**entry.options, **kwargs}
    size: int | list[int] = h if h == w else [h, w]
    model = entry.builder(in_channels, num_classes, (h, w), **options)
    model.cnnlab_args = {
        "name": name,
        "in_channels": in_channels,
        "num_classes": num_classes,
        "input_size": size,
        **{k: _plain(v) for k, v in options.items()},
    }
    return model
