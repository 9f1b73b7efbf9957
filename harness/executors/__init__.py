"""Executors run the cells of a plan and hand each record to the store: local (this process) for now."""
