"""Finding and loading plugins (`loading`), the component registry they fill (`registry`),
and naming the plugin a failure comes from (`blame`).

Internal: plugins use `ganlab.hookimpl`, `ganlab.Register` and the contracts in
`ganlab.contracts`.
"""
