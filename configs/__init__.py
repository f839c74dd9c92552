"""The preset YAML files, shipped in the package as `dreamer.configs` (see pyproject.toml).

Found through `dreamer.resources.configs_dir()`; this file only makes the folder a package.
"""
