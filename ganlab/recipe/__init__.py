"""Recipes: the pydantic models, reading YAML with `base:` inheritance, ``--set`` overrides,
resolving components against the registry, validation messages and `ganlab recipe diff`.

Internal: plugins and notebooks use what `ganlab` exports.
"""
