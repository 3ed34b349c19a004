"""Finding and loading plugins, and filling the registry from them.

Discovery order: the built-ins (`ganlab_plugins`), installed distributions that declare an
entry point in the ``ganlab`` group, then the modules or ``.py`` files the user names with
``-p/--plugin`` or in the recipe's ``plugins:`` list. Each CLI call builds a fresh plugin
manager, so nothing leaks from one run (or test) to the next.

The same code reached twice (a file plugin that is also installed, with the same source) is
loaded once. ``-p no:NAME`` (or ``no:NAME`` in a recipe's ``plugins:``) leaves out the
installed plugin NAME (entry point or distribution name) or the plugin file or module NAME,
to pick one of two plugins that register the same component.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click
import pluggy
from pluggy import HookImpl

from ganlab import hookspecs
from ganlab.errors import GanlabError, PluginError, did_you_mean
from ganlab.plugin_manager.blame import code_home, failure
from ganlab.plugin_manager.registry import KINDS, Registry

if TYPE_CHECKING:  # contracts import torch, which `ganlab --help` must not load
    from ganlab.contracts import Observer

ENTRY_POINT_GROUP = "ganlab"
#: Every hook a plugin can implement (docs/plugins.md has a section for each).
HOOK_NAMES = tuple(name for name in dir(hookspecs) if name.startswith("ganlab_"))


def is_plugin_file(spec: str) -> bool:
    """Whether a plugin spec names a ``.py`` file rather than an importable module."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


@dataclass
class Plugins:
    """A plugin manager with every plugin loaded, and the registry those plugins filled."""

    pm: pluggy.PluginManager
    registry: Registry
    #: where every loaded plugin came from (for run.json): its name, its kind ("built-in",
    #: "entry point", "module" or "file"), its distribution and version when installed, its
    #: file (and that file's sha256 for a plugin given as a file)
    sources: list[dict[str, Any]] = field(default_factory=list)

    def hook_implementations(self) -> Iterator[tuple[str, HookImpl]]:
        """(hook name, implementation) of every hook every registered plugin implements."""
        for hook_name in HOOK_NAMES:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                yield hook_name, impl

    def add_commands(self, cli: click.Group, done: set[str] | None = None) -> None:
        """Let every plugin add its commands and options to the ``ganlab`` group, one plugin
        at a time, so that a failure names its plugin.

        ``done`` names the plugins whose commands the group already has (from an earlier
        call with other plugins loaded): they are skipped, and the others added to it.
        """
        done = set() if done is None else done
        for impl in self.pm.hook.ganlab_register_commands.get_hookimpls():
            if impl.plugin_name in done:
                continue
            done.add(impl.plugin_name)
            kwargs = {"cli": cli} if "cli" in impl.argnames else {}
            subject, home = f"plugin {impl.plugin_name!r}", code_home(impl.function)
            with plugin_code(subject, "in ganlab_register_commands", home):
                impl.function(**kwargs)

    def register_for_run(self, obj: Observer, name: str) -> None:
        """Register a callback or logger instance so its event hooks fire for this run."""
        _register(self.pm, obj, name)
        _check_hook_names(self.pm)


def load_plugins(specs: Iterable[str] = ()) -> Plugins:
    """Load the built-ins, the installed plugins and ``specs``, then fill a registry.

    ``specs`` are module names (``my_pkg.gan_plugin``) or paths to ``.py`` files (relative
    to the current directory; `load_recipe` has already made the recipe's own absolute).
    """
    import ganlab_plugins  # the built-ins, written against the same API as any plugin

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    # `-p no:NAME` (or `no:NAME` in a recipe's plugins:) leaves a plugin out, as pytest's does.
    dropped = {spec.removeprefix("no:") for spec in specs if spec.startswith("no:")}
    specs = [spec for spec in specs if not spec.startswith("no:")]
    seen = _SameCode()
    sources = _add_built_ins(pm, ganlab_plugins.MODULES, dropped)
    sources += _add_installed(pm, dropped, seen)

    for spec in specs:
        home = Path(spec).expanduser().resolve() if is_plugin_file(spec) else None
        if spec in dropped or (home is not None and {str(home), home.name, home.stem} & dropped):
            continue
        with plugin_code(f"plugin {spec!r}", "while it loads", home):
            module = _import_spec(spec)
        if seen.again(module, spec):
            continue
        _register(pm, module, spec)
        sources.append(_source_of(spec, module))

    _check_hook_names(pm)
    return Plugins(pm, _fill_registry(pm), sources)


def load_command_plugins() -> Plugins:
    """Only the plugins that can add commands to ``ganlab``, with an empty registry: the
    built-in modules of ``ganlab_plugins.COMMAND_MODULES`` and the installed plugins.

    Enough to list every command (``ganlab --help``) without importing the built-in models,
    and with them torch; an installed plugin's own imports are its own cost.
    """
    import ganlab_plugins

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    sources = _add_built_ins(pm, ganlab_plugins.COMMAND_MODULES, set())
    sources += _add_installed(pm, set(), _SameCode())
    _check_hook_names(pm)
    return Plugins(pm, Registry(), sources)


def _add_built_ins(
    pm: pluggy.PluginManager, modules: Iterable[str], dropped: set[str]
) -> list[dict[str, Any]]:
    """Register the built-in plugin ``modules`` (of ``ganlab_plugins``) but the ``dropped``."""
    sources: list[dict[str, Any]] = []
    version = importlib.metadata.version("ganlab")
    for module_name in modules:
        if f"ganlab_plugins.{module_name}" in dropped:
            continue
        module = importlib.import_module(f"ganlab_plugins.{module_name}")
        _register(pm, module, f"ganlab_plugins.{module_name}")
        sources.append(
            {
                "name": module.__name__,
                "kind": "built-in",
                "distribution": "ganlab",
                "version": version,
            }
        )
    return sources


def _add_installed(
    pm: pluggy.PluginManager, dropped: set[str], seen: _SameCode
) -> list[dict[str, Any]]:
    """Register the installed plugins (the ``ganlab`` entry points) but the ``dropped``."""
    sources: list[dict[str, Any]] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        name = f"{ep.name} (entry point of {dist})"
        if dropped & {ep.name, dist, ep.value}:
            continue
        try:
            with plugin_code(f"plugin {name}", "while it loads", None):
                plugin = ep.load()
        except PluginError:
            raise
        except Exception as exc:
            raise GanlabError(
                f"Plugin {name} failed to import: {type(exc).__name__}: {exc}. "
                f"Fix or uninstall the distribution {dist!r} (`pip uninstall {dist}`)."
            ) from exc
        if seen.again(plugin, name):
            continue
        _register(pm, plugin, name)
        sources.append(
            {
                "name": ep.name,
                "kind": "entry point",
                "module": ep.value,
                "distribution": dist,
                "version": ep.dist.version if ep.dist is not None else None,
            }
        )
    return sources


class _SameCode:
    """Plugins already loaded, by their code: a module whose source file holds the same bytes
    as one loaded before (a file plugin that is also installed as a package, named by an old
    recipe) is the same plugin seen twice, registered once, not a clash."""

    def __init__(self) -> None:
        self.loaded: dict[str, str] = {}  # sha256 of a plugin's source -> the name it came by

    def again(self, plugin: object, name: str) -> bool:
        """Whether ``plugin`` (a module, or any object from an entry point) is the same code
        as one loaded before; if not, remember it under ``name``."""
        file = getattr(plugin, "__file__", None)
        if not isinstance(plugin, ModuleType) or not file:
            return False
        try:
            digest = hashlib.sha256(Path(file).read_bytes()).hexdigest()
        except OSError:
            return False
        if digest in self.loaded:
            return True
        self.loaded[digest] = name
        return False


def _source_of(spec: str, module: ModuleType) -> dict[str, Any]:
    """Where a plugin named with ``-p`` or in a recipe came from."""
    file = getattr(module, "__file__", None)
    if is_plugin_file(spec):
        digest = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else None
        return {"name": spec, "kind": "file", "file": file, "sha256": digest}
    top = module.__name__.split(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    dist = dists[0] if dists else None
    return {
        "name": spec,
        "kind": "module",
        "file": file,
        "distribution": dist,
        "version": importlib.metadata.version(dist) if dist else None,
    }


def _import_spec(spec: str) -> ModuleType:
    """Import a plugin given as a module name or as a path to a ``.py`` file."""
    if is_plugin_file(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise GanlabError(
                f"Plugin file {spec!r} not found (looked in {path.resolve().parent}). "
                "In a recipe, give a path relative to the recipe's folder; with -p, one "
                "relative to the current directory."
            )
        # A unique module name per file, so two files called plugin.py do not collide.
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        module_name = f"ganlab_file_plugin_{path.stem}_{digest}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[module_name]  # half a module must not be found next time
            if not isinstance(exc, Exception):
                raise  # SystemExit and the like: `plugin_code` names the plugin
            raise GanlabError(
                f"Plugin {spec!r} failed to import: {type(exc).__name__}: {exc}. "
                "Fix the file (run with --debug for the traceback)."
            ) from exc
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise GanlabError(
                f"Plugin module {spec!r} not found. Install the package that provides it, "
                "or give the path to a .py file."
            ) from exc
        raise GanlabError(f"Plugin {spec!r} failed to import: {exc}.") from exc
    except Exception as exc:
        raise GanlabError(
            f"Plugin {spec!r} failed to import: {type(exc).__name__}: {exc}. "
            "Run with --debug for the traceback."
        ) from exc


@contextlib.contextmanager
def plugin_code(subject: str, action: str, home: Path | None) -> Iterator[None]:
    """Run a plugin's own code (its import, its registration hooks): what it raises becomes
    one `PluginError` that names it (`ganlab.plugin_manager.blame.failure`), a `GanlabError` (the
    plugin
    saying what the user did wrong) and Ctrl-C aside.

    That includes what is not an ``Exception``: a plugin that calls ``sys.exit(3)`` while it
    loads must not end ganlab with its own exit code and no word.
    """
    try:
        yield
    except (GanlabError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise failure(subject, action, exc, home) from exc


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    if pm.is_registered(plugin):
        return  # the same plugin reached twice (recipe and -p, module and entry point)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise GanlabError(f"Plugin {name!r} has an invalid hook: {exc}") from exc


def _check_hook_names(pm: pluggy.PluginManager) -> None:
    """Fail on a hook implementation that matches no hook, naming the plugin and hook.

    This is pluggy's ``check_pending()`` with a did-you-mean added to its message.
    """
    known = HOOK_NAMES
    for hook_name in dir(pm.hook):
        if hook_name.startswith("_"):
            continue
        if hook_name in known:
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if impl.kwargnames:  # pluggy would silently never pass these
                    raise GanlabError(
                        f"Plugin {impl.plugin_name!r}: {hook_name} gives default values to "
                        f"{', '.join(impl.kwargnames)}; hook arguments must have no defaults."
                    )
            continue
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            raise GanlabError(
                f"Plugin {impl.plugin_name!r} implements {hook_name!r}, which is not a ganlab "
                f"hook.{did_you_mean(hook_name, known)} See docs/plugins.md for the hooks."
            )


def _fill_registry(pm: pluggy.PluginManager) -> Registry:
    """Call each plugin's registration hooks one by one, so we know who registered what."""
    registry = Registry()
    for kind in KINDS:
        caller = getattr(pm.hook, f"ganlab_register_{kind}")
        # get_hookimpls() lists in registration order: built-ins first.
        for impl in caller.get_hookimpls():
            register = registry.register_callback(kind, impl.plugin_name)
            kwargs = {"register": register} if "register" in impl.argnames else {}
            subject, home = f"plugin {impl.plugin_name!r}", code_home(impl.function)
            with plugin_code(subject, f"in ganlab_register_{kind}", home):
                impl.function(**kwargs)
    return registry
