"""Convolution math in pure NumPy/SciPy: convolution, pooling, filters, activations, losses.

Nothing here imports torch; ``torch`` appears only in the tests, as the reference.

>>> from cnnlab.ops import conv1d, output_size
>>> conv1d([1, 3, 2, 4, 5, 6, 1, 3], [1, 0, 3, 1, 2], padding=2).tolist()
[5, 14, 16, 26, 24, 34, 19, 22]
>>> output_size(10, 5, p=2, s=1)
10
"""

from cnnlab.ops.activations import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy,
    cross_entropy_with_logits,
    log_softmax,
    mse,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from cnnlab.ops.backend import choose_method
from cnnlab.ops.clahe import clahe
from cnnlab.ops.conv import conv1d, conv2d, correlate1d, correlate2d
from cnnlab.ops.filters import (
    KERNELS,
    apply_kernel,
    gaussian_kernel,
    list_kernels,
    parse_kernel,
    parse_matrix,
    scale_for_display,
    to_gray,
)
from cnnlab.ops.nchw import conv2d_nchw
from cnnlab.ops.pool import (
    avg_pool2d,
    depth_pool,
    global_avg_pool2d,
    global_max_pool2d,
    max_pool2d,
)
from cnnlab.ops.shapes import (
    effective_kernel_size,
    output_size,
    pool_output_size,
    resolve_padding,
    same_padding,
)

__all__ = [
    "KERNELS",
    "apply_kernel",
    "avg_pool2d",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "categorical_cross_entropy",
    "choose_method",
    "clahe",
    "conv1d",
    "conv2d",
    "conv2d_nchw",
    "correlate1d",
    "correlate2d",
    "cross_entropy_with_logits",
    "depth_pool",
    "effective_kernel_size",
    "gaussian_kernel",
    "global_avg_pool2d",
    "global_max_pool2d",
    "list_kernels",
    "log_softmax",
    "max_pool2d",
    "mse",
    "output_size",
    "pool_output_size",
    "parse_kernel",
    "parse_matrix",
    "relu",
    "resolve_padding",
    "same_padding",
    "scale_for_display",
    "sigmoid",
    "softmax",
    "tanh",
    "to_gray",
]
