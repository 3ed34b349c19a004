"""The `ganlab` command line: one module per command, thin over the Python API and the engine.

`cli` holds the group, its table of built-in commands and the entry point; `group` the lazy
group (a command's module is imported when it is used, so ``ganlab --help`` imports no
torch) and the one way every error ends; `common` what every command shares (``--debug``,
``--set`` and ``-p``). Nothing outside this package imports it but ``ganlab`` itself, which
hands `common`'s helpers on to plugins' own commands.
"""
