"""Benchmarks of the backends, the task store and the conformance kit (``python -m benchmarks``).

See ``docs/performance.md`` for the latest numbers and what they mean.
"""
