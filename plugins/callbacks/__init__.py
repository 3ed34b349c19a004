"""Built-in callbacks: the tutorial's console lines, sample grids, loss figures."""
