"""Smoke probes: poll a service until it serves the expected version."""
