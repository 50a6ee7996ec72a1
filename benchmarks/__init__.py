"""Benchmarks of polyserve on AWS Lambda: ``./dev bench`` (``nox -s bench``) runs them all.

``python -m benchmarks.run --help`` lists the options; ``docs/performance.md`` says what
is measured and how.
"""
