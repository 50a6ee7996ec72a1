"""Google Cloud Functions entry points: ``main.py`` is where functions-framework looks.

Deploy this folder once per trigger (see ``docs/providers/gcp.md``)::

    gcloud functions deploy fastapi-shop-http --gen2 --runtime=python312 --region=REGION \\
        --source=. --entry-point=handle_http --trigger-http
    gcloud functions deploy fastapi-shop-orders --gen2 --runtime=python312 --region=REGION \\
        --source=. --entry-point=handle_event --trigger-topic=orders --retry
    gcloud functions deploy fastapi-shop-nightly --gen2 --runtime=python312 --region=REGION \\
        --source=. --entry-point=handle_event --trigger-topic=restock

and point a Cloud Scheduler job (``0 3 * * *``) at the ``restock`` topic.
Locally: ``functions-framework --target=handle_http --source=main.py``.
"""

from __future__ import annotations

from fastapi_shop.app import app

import polyserve_gcp

handle_http = polyserve_gcp.http(app)
handle_event = polyserve_gcp.cloudevent(app)
