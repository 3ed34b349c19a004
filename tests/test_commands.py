"""Plugins add their own commands and options (`ganlab_register_commands`), as an installed
package does: the example of docs/plugins.md, packaged and installed with pip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT


def ganlab(*args: str, site: Path) -> subprocess.CompletedProcess[str]:
    # The site first; the rest of PYTHONPATH kept (a checkout run from its own folder).
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, "-m", "ganlab", *args], env=env, capture_output=True, text=True
    )


def install(tmp: Path, name: str, module: str) -> Path:
    """A one-module distribution with a `ganlab` entry point, installed by pip (no network,
    no build isolation) into its own folder, returned for PYTHONPATH."""
    source = tmp / name
    source.mkdir()
    (source / f"{name}.py").write_text(module)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name.replace("_", "-")}"
            version = "0.1.0"

            [project.entry-points.ganlab]
            {name} = "{name}"

            [tool.setuptools]
            py-modules = ["{name}"]
            """
        )
    )
    site = tmp / f"{name}-site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*pip, "--no-build-isolation", "--target", str(site), str(source)], check=True)
    return site


def docs_example() -> str:
    """The `ganlab_register_commands` example of docs/plugins.md."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n# hello_command\.py\n(.*?)```", text, re.S)
    assert found, "docs/plugins.md lost its hello_command.py example"
    return found.group(1)


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("hello"), "hello_command", docs_example())


def test_an_installed_plugin_adds_a_command(hello: Path) -> None:
    result = ganlab("hello", "world", site=hello)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello, world\n"
    listing = ganlab("--help", site=hello)
    assert re.search(r"^  hello\s+Say hello", listing.stdout, re.M), listing.stdout
    # The built-in commands and the wandb plugin's option are all still there.
    run_help = ganlab("run", "--help", site=hello)
    assert "--wandb [offline|online|disabled]" in run_help.stdout


def test_without_the_plugin_there_is_no_such_command(tmp_path: Path) -> None:
    result = ganlab("hello", "world", site=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("ganlab: error: No such command 'hello'.")


def test_a_plugin_that_fails_to_add_its_command_is_named(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        import ganlab

        @ganlab.hookimpl
        def ganlab_register_commands(cli):
            cli.commands["runn"].params.append(None)
        """
    )
    site = install(tmp_path, "broken_command", source)
    result = ganlab("plugins", site=site)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "ganlab: error: plugin 'broken_command (entry point of broken-command)' failed in "
        "ganlab_register_commands: KeyError: 'runn' at "
    )
    assert "broken_command.py:6" in result.stderr and "Traceback" not in result.stderr
