"""The training engine: fit, evaluate, infer, callbacks and checkpoints.

Names are imported on first use (like :mod:`cnnlab.data` and :mod:`cnnlab.viz`), so importing
one part does not load the others.

>>> from cnnlab.engine import fit, infer, Callback  # doctest: +SKIP

``evaluate`` is not re-exported: its name is also its module's (``cnnlab.engine.evaluate``),
which a lazy package cannot tell apart; import it from there, or call ``run.evaluate()``.
"""

from __future__ import annotations

from cnnlab._lazy import lazy_exports

# public name -> defining module (imported lazily)
_LAZY = {
    "fit": "cnnlab.engine.loop",
    "TrainingInterrupted": "cnnlab.engine.loop",
    "EvalResult": "cnnlab.engine.evaluate",
    "infer": "cnnlab.engine.evaluate",
    "Callback": "cnnlab.engine.callbacks",
    "EarlyStopping": "cnnlab.engine.callbacks",
    "ModelCheckpoint": "cnnlab.engine.callbacks",
    "ProgressBar": "cnnlab.engine.callbacks",
    "load_checkpoint": "cnnlab.engine.checkpoint",
    "save_checkpoint": "cnnlab.engine.checkpoint",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("cnnlab.engine", _LAZY, globals())
