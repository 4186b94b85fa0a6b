"""Benchmarks that print figures (speed, memory, cost); targets live here, never in timed tests."""
