"""Sandbox tests: the attack suite and the backends (need Docker and/or bubblewrap)."""
