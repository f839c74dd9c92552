"""Shipped weights (the `tiny` prior, the evaluator), in the package as `dreamer.assets` (see pyproject.toml).

Found through `dreamer.resources.shipped()`; this file only makes the folder a package.
"""
