"""cnnlab: convolutional neural networks from the convolution formula to a served classifier.

``import cnnlab`` is cheap: torch-backed parts (``fit``, ``summary``, ``create_model``...) are
loaded on first use, so the NumPy-only :mod:`cnnlab.ops` never pulls in torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_LAZY = {
    "create_model": "cnnlab.models",
    "list_models": "cnnlab.models",
    "register_model": "cnnlab.models",
    "summary": "cnnlab.models.summary",
    "fit": "cnnlab.engine",
    "evaluate": "cnnlab.engine",
    "load_dataset": "cnnlab.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
