"""The uploads of one deploy, run concurrently, stopped at the first failure or Ctrl-C."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mwaa_deploy.bucket.s3_bucket import UPLOAD_THREADS

if TYPE_CHECKING:
    from mwaa_deploy.bucket.buckets import Bucket, Stored

# After a failure, how long uploads already in flight may take to finish; after Ctrl-C,
# the same, shorter. An upload still running then is left to the process's end.
IN_FLIGHT_GRACE_SECONDS = 3.0
INTERRUPTED_GRACE_SECONDS = 1.0


class Uploads:
    """The uploads of one deploy, run concurrently on worker threads.

    A failure or Ctrl-C starts no new upload and gives those in flight a short grace to
    finish. The workers are daemon threads: one stuck in a stalled request cannot keep
    the process from ending once the deploy has stopped waiting for it.
    """

    def __init__(
        self,
        bucket: Bucket,
        uploads: dict[str, bytes],
        uploaded: dict[str, Stored],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.bucket = bucket
        self.total = len(uploads)
        self.uploaded = uploaded  # each done key's ETag and version, added as it is done
        self.progress = progress
        self.failure: Exception | None = None
        self.waiting: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        for item in uploads.items():
            self.waiting.put(item)
        # (key, what was stored, error) of each upload done or failed; None from each
        # worker that ends.
        self.finished: queue.SimpleQueue[tuple[str, Stored | None, Exception | None] | None] = (
            queue.SimpleQueue()
        )
        self.stop = threading.Event()
        self.running = min(UPLOAD_THREADS, self.total)

    def run(self) -> Exception | None:
        """Upload everything, or stop at the first failure and return it."""
        for _ in range(self.running):
            threading.Thread(target=self._work, daemon=True).start()
        try:
            self._receive(float("inf"))
        except KeyboardInterrupt:
            self.stop.set()
            self._receive(time.monotonic() + INTERRUPTED_GRACE_SECONDS)
            raise
        return self.failure

    def _work(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    key, body = self.waiting.get_nowait()
                except queue.Empty:
                    return
                try:
                    self.finished.put((key, self.bucket.put(key, body), None))
                except Exception as error:  # noqa: BLE001 - reported as the deploy's failure
                    self.finished.put((key, None, error))
        finally:
            self.finished.put(None)  # this worker is done

    def _receive(self, until: float) -> None:
        """Take the workers' news until they have all ended or `until` (monotonic) passes."""
        while self.running and time.monotonic() < until:
            try:
                message = self.finished.get(timeout=min(0.5, max(until - time.monotonic(), 0.01)))
            except queue.Empty:
                continue
            if message is None:
                self.running -= 1
                continue
            key, stored, error = message
            if stored is not None:
                self.uploaded[key] = stored
                if self.progress:
                    self.progress(len(self.uploaded), self.total)
            elif self.failure is None:
                self.failure = error
                self.stop.set()
                until = min(until, time.monotonic() + IN_FLIGHT_GRACE_SECONDS)
