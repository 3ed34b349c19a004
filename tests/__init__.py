"""ganlab's test suite (a package, so that `tests.conftest` is ours and not another `tests`)."""
