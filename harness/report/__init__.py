"""Reports: pure functions of the store (and the suite that names the cells)."""
