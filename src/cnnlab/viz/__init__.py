"""Pictures of what a CNN computes: each a function returning a matplotlib Figure.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` (Jupyter shows it inline; no
pyplot state, no backend switch); the arrays drawn come from the matching data function
(``conv_steps``, ``feature_maps``, ``receptive_field``, ``saliency``...), and :func:`save_figure`
writes the PNG atomically. Submodules are imported on first use, so ``import cnnlab.viz`` stays
cheap.

>>> from cnnlab import viz
>>> fig = viz.plot_conv_modes()                 # notebook 000's 2D example
>>> viz.save_figure(fig, "conv.png")            # doctest: +SKIP
"""

from __future__ import annotations

from cnnlab._lazy import lazy_exports

# public name -> submodule that defines it (no name may equal a submodule's name: importing
# the submodule would set the package attribute to the module and hide the function)
_EXPORTS = {
    "save_figure": "_grid",
    "figure_png_bytes": "_grid",
    "activation_curves": "activations",
    "plot_activations": "activations",
    "conv_steps": "conv",
    "plot_conv_modes": "conv",
    "plot_conv_steps": "conv",
    "NOTEBOOK_X": "conv",
    "NOTEBOOK_W": "conv",
    "filter_images": "filters",
    "plot_filter_grid": "filters",
    "plot_learned_filters": "filters",
    "learned_filters": "filters",
    "pool_images": "pooling",
    "plot_pooling": "pooling",
    "feature_maps": "features",
    "plot_feature_maps": "features",
    "receptive_field": "receptive",
    "layer_geometry": "receptive",
    "plot_receptive_field": "receptive",
    "plot_saliency": "saliency",
    "shift_probabilities": "invariance",
    "shift_image": "invariance",
    "plot_invariance": "invariance",
    "plot_samples": "samples",
    "sample_images": "samples",
    "plot_curves": "training",
    "plot_confusion": "training",
    "plot_top_losses": "training",
    "top_losses": "training",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(
    "cnnlab.viz", {k: f"cnnlab.viz.{m}" for k, m in _EXPORTS.items()}, globals()
)
