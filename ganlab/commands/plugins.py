"""`ganlab plugins`: every component the plugins give, by kind, with its params."""

from __future__ import annotations

import types
import typing

import click
from pydantic import BaseModel

from ganlab.commands.common import plugin_option, user_command
from ganlab.plugin_manager.loading import load_plugins
from ganlab.plugin_manager.registry import KINDS


@click.command("plugins")
@plugin_option
@user_command
def plugins(plugin_specs: tuple[str, ...]) -> None:
    """List every component, the plugin that gave it, and its params."""
    registry = load_plugins(plugin_specs).registry
    for kind in KINDS:
        click.secho(kind, bold=True)
        components = registry.components(kind)
        if not components:
            click.echo("  (none)")
        for component in components:
            click.echo(f"  {component.name:<16} {component.description}  [{component.plugin}]")
            for line in _describe_params(component.params):
                click.echo(f"      {line}")


def _describe_params(model: type[BaseModel]) -> list[str]:
    lines = []
    for name, field in model.model_fields.items():
        shown = _type_name(field.annotation)
        default = (
            "required"
            if field.is_required()
            else f"= {field.get_default(call_default_factory=True)!r}"
        )
        doc = f"  # {field.description}" if field.description else ""
        lines.append(f"{name}: {shown} {default}{doc}")
    return lines


def _type_name(annotation: object) -> str:
    """``int``, ``str | None``, ``Literal[1, 3]``: a param's type as a reader writes it."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return "None" if annotation is type(None) else annotation.__name__
    return str(annotation).replace("typing.", "")
