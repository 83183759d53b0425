"""Alerts: a log line always, and a JSON POST to a webhook when one is configured.

The body holds ``kind``, ``message`` and ``details`` for a program, and ``text`` (the kind and
the message in one line) for a chat: Slack's and Microsoft Teams' incoming webhooks post a
body's ``text`` as the message, so one URL of either works as it is.

The POST runs in a background thread with a timeout per attempt and a few retries with
growing pauses, so a slow or dead endpoint never holds up the loop. A failure is logged,
never raised and never silent.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)


def alert(
    kind: str, message: str, details: dict[str, Any], *, url: str | None, attempts: int, timeout: float
) -> threading.Thread | None:
    """Log the alert and, with ``url``, POST it in the background; returns the sending thread."""
    logger.warning("%s: %s", kind, message)
    if not url:
        return None
    text = f"driftloop {kind}: {message}"
    body = json.dumps({"text": text, "kind": kind, "message": message, "details": details}, default=str).encode()
    sender = threading.Thread(target=_post, args=(url, body, attempts, timeout), name="driftloop-alert", daemon=True)
    sender.start()
    return sender


def _post(url: str, body: bytes, attempts: int, timeout: float) -> None:
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return
                problem = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problem = str(exc)
        logger.warning("alert webhook %s, attempt %d of %d failed: %s", url, attempt, attempts, problem)
        if attempt < attempts:
            time.sleep(0.5 * 2 ** (attempt - 1))
    logger.error("alert webhook %s gave up after %d attempts; the alert is in the log above", url, attempts)
