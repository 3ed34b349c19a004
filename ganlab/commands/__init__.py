"""The `ganlab` command line: one module per command, over the engine and the Python API.

`cli` holds the group and the entry point; `common` what every command shares (``--debug``,
one error message and its exit code, ``--set`` and ``-p``).
"""
