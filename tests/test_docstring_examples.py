"""The runnable examples in the public modules' docstrings still run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["fivefold.groups", "fivefold.groups.fields", "fivefold.testing.equivariance", "fivefold.testing.tolerance",
           "fivefold.grids", "fivefold.grids.conv", "fivefold.spheres.grid", "fivefold.spheres.fields",
           "fivefold.train.loop", "fivefold.groups.so2", "fivefold.meshes"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
