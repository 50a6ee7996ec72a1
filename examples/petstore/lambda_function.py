"""AWS Lambda entry point: ``Handler: lambda_function.handler`` in template.yaml.

Deploy this folder with ``sam build && sam deploy --guided``. One function serves the
HTTP API routes, the ``adoptions`` queue and the ``nightly-report`` schedule.
"""

from __future__ import annotations

from petstore.app import app

import polyserve_aws

handler = polyserve_aws.handler(app)
