"""What a run leaves for its operator to watch: OpenTelemetry traces of runs, turns, model calls and tools."""
