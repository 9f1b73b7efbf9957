"""The results store: one SQLite database, its schema and its migrations."""
