"""The engine: a run's state (`run`), the step and the loop (`step`, `loop`), putting a run
together (`assemble`, from its `components` and `networks`), continuing a stopped one
(`resume`) and rebuilding one from a checkpoint (`restore`), its start (`lifecycle`), end
(`outcome`) and signals (`signals`), and what the step runs on: precision, processes, seeds,
devices, schedules.

Internal: plugins see a run through `ganlab.RunView`.
"""
