"""Test support shared by polyserve's own test suites: the core's and every adapter's.

An adapter's tests import what they share with the others from here, never from the
root ``tests`` directory, so that each adapter's suite runs with only the core, the
adapter and this package installed (``nox -s adapter``). Modules:

* ``servers``: real servers (Redis, DynamoDB Local, dynalite, Azurite, the gcloud
  emulators, moto) started by session fixtures on free loopback ports; a pytest plugin.
* ``store_contract``: the checks every idempotency store passes.
* ``lambda_runtime``: a Lambda Runtime API server running AWS's runtime client.
* ``azure_queue_host``: the Functions host's queue trigger, against a real Storage Queue.
* ``recorder``: an app whose handlers record what they were given.
* ``codecs``: what each adapter's property-test codecs implement.
* ``strategies``: the Hypothesis strategies for polyserve's typed events.
* ``tokens``: unsigned JWTs, as identity headers carry them.

Nothing is imported here: each module is imported by name.
"""
