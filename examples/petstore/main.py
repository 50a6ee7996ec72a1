"""Google Cloud Functions entry points: ``main.py`` is where functions-framework looks.

Deploy this folder once per trigger (see ``docs/providers/gcp.md``)::

    gcloud functions deploy petstore-http --gen2 --runtime=python312 --region=REGION \\
        --source=. --entry-point=handle_http --trigger-http
    gcloud functions deploy petstore-adoptions --gen2 --runtime=python312 --region=REGION \\
        --source=. --entry-point=handle_event --trigger-topic=adoptions --retry
    gcloud functions deploy petstore-nightly --gen2 --runtime=python312 --region=REGION \\
        --source=. --entry-point=handle_event --trigger-topic=nightly-report

and point a Cloud Scheduler job (``0 3 * * *``) at the ``nightly-report`` topic.
Locally: ``functions-framework --target=handle_http --source=main.py``.
"""

from __future__ import annotations

from petstore.app import app

import polyserve_gcp

handle_http = polyserve_gcp.http(app)
handle_event = polyserve_gcp.cloudevent(app)
