"""Evaluation on a Ray cluster: the same batch, its questions solved by worker nodes.

- `pool.SolverPool` connects to (or starts) a cluster and keeps one `solver.Solver` actor per worker node. Each
  question-attempt is one task on one of them; a task whose worker is lost goes to another.
- `limits.ProviderLimiter` is one actor that every model call of every worker asks for a slot of its provider,
  so a per-provider cap holds for the cluster (rate limits are per key, not per machine).
- The driver (`submit.py run --ray`, `submit.py sweep --ray`) stays the only writer of its run dirs: workers
  return records, the driver appends and fsyncs them, and resume works as without Ray.
- `sweep` lays out several teams x attempts as one run dir each, solved together.
"""
