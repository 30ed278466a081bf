"""The training engine: fit, evaluate, infer, checkpoints and run folders.

>>> from cnnlab.engine import fit, evaluate, infer, load_model  # doctest: +SKIP
"""

from cnnlab.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from cnnlab.engine.evaluate import EvalResult, evaluate, infer
from cnnlab.engine.loop import FitResult, fit

__all__ = [
    "EvalResult",
    "FitResult",
    "evaluate",
    "fit",
    "infer",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
