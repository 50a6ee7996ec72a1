"""Portable outbound: send to queues and topics and store objects, the same way on every cloud.

```
orders = app.queue_out("orders")       # or Queue("orders")
orders.send({"id": 1}, attributes={"kind": "created"}, trace=context.trace)
```

Names resolve to targets and a backend as ``polyserve.outbound.backend`` describes.
"""

from __future__ import annotations

from polyserve.outbound.backend import configure, register
from polyserve.outbound.errors import (
    BatchPublishError,
    MessageTooLargeError,
    ObjectNotFoundError,
    PublishError,
    TransientPublishError,
)
from polyserve.outbound.memory import MemoryBackend
from polyserve.outbound.message import Failure, Message
from polyserve.outbound.resources import Bucket, Queue, Topic

__all__ = [
    "BatchPublishError",
    "Bucket",
    "Failure",
    "MemoryBackend",
    "Message",
    "MessageTooLargeError",
    "ObjectNotFoundError",
    "PublishError",
    "Queue",
    "Topic",
    "TransientPublishError",
    "configure",
    "register",
]
