"""``python -m ganlab`` is the ``ganlab`` command (what ``torchrun -m ganlab`` starts)."""

from ganlab.commands.cli import main

main()
