"""What users write, typed: suite and task-card schemas, strict parsing and YAML reading, the registries names resolve in, consent to run named code, the suite's expansion into run specs."""
