import pytest

import cnnlab.viz as viz


def test_every_public_name_resolves():
    import cnnlab.viz.saliency  # noqa: F401  (a submodule import must not hide any export)

    for name in viz.__all__:
        assert callable(getattr(viz, name)) or name.startswith("NOTEBOOK_")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        viz.nope  # noqa: B018
