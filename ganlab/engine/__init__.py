"""The engine: a run's state (`run`), the step and the loop (`loop`), putting a run
together (`assemble`) and taking it back up (`restore`), its life from start to end
(`lifecycle`), and what the step runs on: precision, processes, seeds, devices, schedules.

Internal: plugins see a run through `ganlab.RunView`.
"""
