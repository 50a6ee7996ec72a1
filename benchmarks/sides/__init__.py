"""The implementations compared: polyserve, hand-written handlers, and AWS Lambda Powertools.

Each module has ``handlers()``: the Lambda handler for each workload it implements,
by workload name (see ``benchmarks.workloads``).
"""
