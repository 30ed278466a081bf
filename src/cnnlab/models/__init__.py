"""Model registry and the notebook architectures.

>>> from cnnlab.models import create_model, list_models
>>> create_model("tutorial_cnn", num_classes=10)(__import__("torch").zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])

Importing this package registers every family below. The summary lives in
``cnnlab.models.summary`` (imported on demand).
"""

from __future__ import annotations

# Importing the family modules registers their models.
from cnnlab.models import fashion, fastnet, lenet, mlp, notebook002, speed, tutorial  # noqa: F401
from cnnlab.models.layers import CnnlabModel
from cnnlab.models.registry import create_model, list_models, model_description, register_model

__all__ = ["CnnlabModel", "create_model", "list_models", "model_description", "register_model"]
