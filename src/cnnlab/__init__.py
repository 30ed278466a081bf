"""cnnlab: convolutional neural networks from the convolution formula to a served classifier.

The public API, shaped like Keras and fastai::

    import cnnlab
    cnnlab.summary("tutorial_cnn")                        # the layer table
    run = cnnlab.fit("tutorial_cnn", "mnist", epochs=1)   # a trained Run
    run.evaluate(); run.predict("my_digit.png"); run.plot_curves()
    run = cnnlab.load("runs/tutorial_cnn-mnist")          # the same object, from disk

``import cnnlab`` is cheap: torch-backed parts are loaded on first use, so the NumPy-only
:mod:`cnnlab.ops` never pulls in torch.
"""

from __future__ import annotations

from cnnlab._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_LAZY = {
    "Run": "cnnlab.run",
    "load": "cnnlab.run",
    "fit": "cnnlab.engine.loop",
    "Callback": "cnnlab.engine.callbacks",
    "TrainConfig": "cnnlab.config",
    "CnnlabError": "cnnlab.errors",
    "create_model": "cnnlab.models",
    "list_models": "cnnlab.models",
    "register_model": "cnnlab.models",
    "load_dataset": "cnnlab.data",
    "load_image_folder": "cnnlab.data",
}

__all__ = ["__version__", "summary", *_LAZY]


def summary(model, input_size=None, depth: int = 3, **model_options):
    """The layer table of a model: output shapes, parameters, mult-adds, receptive field.

    Shown as an HTML table in Jupyter and as text in a terminal.

    Args:
        model: a registered model name, an ``nn.Module`` or a :class:`cnnlab.Run`.
        input_size: the image side (int), ``(H, W)`` or ``(C, H, W)``; default: what the
            model was built for. For a model name it also builds the model for that size.
        depth: how many levels of nested modules to list.
        **model_options: ``create_model`` arguments when ``model`` is a name
            (``in_channels=3``, ``num_classes=5``, ``dropout=0.1``...).

    >>> summary("tutorial_cnn").total_params
    93322
    >>> summary("tutorial_cnn", in_channels=3, input_size=32).input_size
    (3, 32, 32)
    """
    from cnnlab.models import create_model
    from cnnlab.models.summary import summary as layer_table

    if hasattr(model, "input_shape") and hasattr(model, "summary"):  # a Run
        if input_size is None and not model_options:
            return model.summary(depth=depth)
        input_size = input_size or model.input_shape
        model = model.model
    shape = (
        None
        if input_size is None
        else (input_size,)
        if isinstance(input_size, int)
        else tuple(input_size)
    )
    if isinstance(model, str):
        if shape is not None and len(shape) == 3:
            model_options.setdefault("in_channels", shape[0])
        if shape is not None:
            model_options["input_size"] = shape[-1] if len(shape) == 1 else tuple(shape[-2:])
        model = create_model(model, **model_options)
        shape = None
    elif model_options:
        raise TypeError(f"model options {sorted(model_options)} only apply to a model name")
    args = getattr(model, "cnnlab_args", None) or {}
    channels = int(args.get("in_channels", 1))
    size = args.get("input_size", 28) if shape is None or len(shape) == 3 else shape
    if shape is not None and len(shape) == 3:
        channels, size = shape[0], shape[1:]
    h, w = (size, size) if isinstance(size, int) else (size * 2 if len(size) == 1 else size)
    return layer_table(model, input_size=(int(channels), int(h), int(w)), depth=depth)


__getattr__, __dir__ = lazy_exports("cnnlab", _LAZY, globals())
