"""Sweeps: search spaces, the trials a suite runs, and the setting they choose."""
