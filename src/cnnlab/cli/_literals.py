"""Let sub-commands take negative number literals (``-1,2;3,-4``) as option values.

argparse reads any argument that starts with ``-`` as an option unless it matches its
"negative number" pattern, which knows ``-1`` and ``-0.5`` but not ``-1,-1,-1;-1,8,-1``.
"""

from __future__ import annotations

import argparse
import re

# a vector or matrix literal that starts with a minus sign: digits, '.', ',', ';', 'e', signs
NEGATIVE_LITERAL = re.compile(r"^-[\d.][\d.,;eE+\- ]*$")


def allow_negative_literals(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser`` read ``-1,2`` or ``"-1,-1;-1,8"`` as values, not as unknown options."""
    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = NEGATIVE_LITERAL
    return parser
