"""The plan of a suite: each cell's status, its memory estimate, its probed time, and the jobs for an executor."""
