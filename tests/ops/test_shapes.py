"""Output-size and padding arithmetic: notebook values, TensorFlow's SAME rule, errors."""

from __future__ import annotations

import math

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.ops.shapes import output_size, resolve_padding, same_padding


def test_notebook_000_output_size():
    # n=10, m=5, p=2, s=1 -> floor((10 + 4 - 5) / 1) + 1 = 10
    assert output_size(10, 5, p=2, s=1) == 10


@pytest.mark.parametrize(
    ("n", "m", "p", "s", "d", "expected"),
    [
        (28, 3, 0, 1, 1, 26),  # notebook 000 first conv layer
        (26, 2, 0, 2, 1, 13),  # 2x2 max pool
        (5, 3, 1, 2, 1, 3),  # notebook 000's 2-D figure: X 3x3... padded 5x5 / stride 2
        (10, 3, 0, 1, 2, 6),  # dilation 2 spans 5
        (7, 3, (1, 0), 1, 1, 6),  # asymmetric padding
    ],
)
def test_output_size_formula(n, m, p, s, d, expected):
    assert output_size(n, m, p, s, d) == expected


def test_same_padding_gives_ceil():
    for n in range(1, 12):
        for m in range(1, 6):
            for s in range(1, 4):
                before, after = same_padding(n, m, s)
                assert output_size(n, m, (before, after), s) == math.ceil(n / s)
                assert after - before in (0, 1)  # TensorFlow: the odd zero goes bottom/right


def test_same_padding_flip_matches_scipy_convention():
    assert same_padding(7, 4, 1, flip=True) == (2, 1)
    assert same_padding(7, 4, 2, flip=True) == same_padding(7, 4, 2)  # stride > 1: TF rule


def test_resolve_padding_modes():
    assert resolve_padding(8, 5, "valid") == (0, 0)
    assert resolve_padding(8, 5, "full") == (4, 4)
    assert resolve_padding(8, 5, "same") == (2, 2)
    assert resolve_padding(8, 5, 3) == (3, 3)
    assert resolve_padding(8, 5, (1, 2)) == (1, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: output_size(5, 3, 0, 0), "stride=0 must be >= 1 for input of length 5"),
        (lambda: output_size(5, 3, 0, -2), "stride=-2"),
        (lambda: output_size(3, 5), "kernel of size 5 is larger than the padded input of length 3"),
        (lambda: output_size(5, 3, 0, 1, 3), "dilation 3 makes it span 7"),
        (lambda: output_size(5, 3, -1), "padding=-1"),
        (lambda: output_size(5, 3, 0, 1.5), "stride=1.5 is not an integer"),
        (lambda: output_size(0, 3), "n=0"),
        (lambda: resolve_padding(5, 3, "middle"), "padding='middle'"),
        (lambda: resolve_padding(5, 3, (1, 2, 3)), "(1, 2, 3)"),
    ],
)
def test_errors_repeat_values(call, message):
    with pytest.raises(CnnlabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
