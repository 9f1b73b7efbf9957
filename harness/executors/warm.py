"""What a worker process imports before its first cell, with the libraries' notices silenced first.

Local workers (harness.executors.pool) fork from a server process that imports this once, so each
worker starts with torch, transformers and peft already imported (7 CPU seconds each otherwise);
where processes cannot fork, each worker imports it as its first task.
"""

from harness.base.noise import quiet

quiet()

import harness.run.cell  # noqa: E402,F401 - the import is the point
