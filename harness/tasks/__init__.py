"""What a task is: its type (classification, tokens, QA, seq2seq: how rows become model inputs and predictions) and its data (sources, splits, generated tasks, the data fingerprint)."""
