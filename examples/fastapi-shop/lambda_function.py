"""AWS Lambda entry point: ``Handler: lambda_function.handler`` in template.yaml.

Deploy this folder with ``sam build && sam deploy --guided``. One function serves the
HTTP API routes, the ``orders`` queue and the ``restock`` schedule.
"""

from __future__ import annotations

from fastapi_shop.app import app

import polyserve_aws

handler = polyserve_aws.handler(app)
