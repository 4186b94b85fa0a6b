"""The model-call runtime: model specs, the provider clients, the managed client (retries, abort, usage) and the usage ledger."""
