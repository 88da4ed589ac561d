"""What the API and its client agree on beyond the JSON bodies: the headers c2d adds to HTTP.

Both sides import these names from here, so neither imports the other.
"""

from __future__ import annotations

ARCHIVE_HEADER = "X-C2D-Archive-Bytes"
"""Declares the size of a submission's ``image_archive`` part. The server caps a request
without it at the bundle cap, so only a request that declares an archive may be that large."""

SHA256_HEADER = "X-C2D-SHA256"
"""The hex sha256 of a downloaded blob (a bundle or an artifact), for the client to check."""

LOG_TRUNCATED_HEADER = "X-C2D-Log-Truncated"
"""``1`` when a job's log was cut at its cap (c2d's note of the cut is in the text)."""

LOG_LIVE_HEADER = "X-C2D-Log-Live"
"""``1`` when the log sent is the running job's live log so far, not the kept one."""

LOG_NEXT_HEADER = "X-C2D-Log-Next"
"""The byte offset to ask a live log from next (``?offset=``), so a poller gets each byte once."""

EVENT_JOB = "job"
"""Event-stream event: the job as the reader may see it (first, then on every state change)."""

EVENT_LOG = "log"
"""Event-stream event: ``{"text", "next"}``, the next piece of the log from byte ``next``."""

EVENT_LOGS_HIDDEN = "logs-hidden"
"""Event-stream event: ``{"reason"}``, the reader may not read this job's log (yet)."""

EVENT_END = "end"
"""Event-stream event: ``{"state"}``, the job ended; the server closes the stream."""
