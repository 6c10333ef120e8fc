"""Python client for the HTTP API, for notebooks and scripts.

    >>> from clipmaker.client import Client
    >>> with Client("http://127.0.0.1:8000") as cm:
    ...     job = cm.submit(url="https://example.com/talk.mp4", start=65.5, end=95, subtitles="srt")
    ...     result = cm.wait_result(job.id)
    ...     print(result.video.url)

Responses come back as the same typed models the server uses; an error response raises
``ApiError`` with the server's ``code`` and ``message``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from tqdm.auto import tqdm

from clipmaker.api.schemas import BatchPublic, JobList, JobResult, UploadPublic
from clipmaker.jobs.models import JobPublic


class ApiError(Exception):
    """An error answer from the server: ``status``, ``code`` (to branch on), ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class JobFailed(Exception):
    def __init__(self, job: JobPublic) -> None:
        error = job.error
        detail = f"{error.code}: {error.message}" if error else job.status
        super().__init__(f"job {job.id} ended {job.status}: {detail}")
        self.job = job


def clip_request(
    *,
    url: str | None = None,
    upload_id: str | None = None,
    start: float | str,
    end: float | str,
    accuracy: str = "frame",
    subtitles: str = "none",
    language: str | None = None,
    webhook: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON body of one job, as POST /api/jobs and POST /api/batches take it.

    ``webhook``: ``{"url": ..., "secret": "whsec_..."}`` to have the job POSTed there, signed,
    once it ends.
    """
    source = {"url": url} if url is not None else {"upload_id": upload_id}
    body: dict[str, Any] = {
        "source": source,
        "start": start,
        "end": end,
        "accuracy": accuracy,
        "subtitles": subtitles,
        "language": language,
    }
    if webhook is not None:
        body["webhook"] = webhook
    return body


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data`` of each Server-Sent Event in a stream of lines (comments skipped)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


class Client:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        timeout: float = 60.0,
        api_key: str | None = None,
        retry_budget_s: float = 120.0,
    ):
        """``api_key``: from ``clipmaker keys create``; sent as ``Authorization: Bearer``.
        ``retry_budget_s``: how long one call waits out 429s (and 503s on reads), following
        their Retry-After, before it raises ``ApiError``."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)
        self.retry_budget_s = retry_budget_s

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.is_error:
            self._raise_for(response)
        return response.json()

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        try:
            error = response.json()["error"]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(response.status_code, "http_error", response.text[:500]) from None
        raise ApiError(response.status_code, code, message)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, waited out and retried while the server says "not now": 429 (a
        refused request did nothing, so any method may be sent again) and, for reads, 503.
        Gives up after ``retry_budget_s`` and returns the refusal."""
        give_up = time.monotonic() + self.retry_budget_s
        while True:
            response = self.http.request(method, path, **kwargs)
            retryable = response.status_code == 429 or (
                response.status_code == 503 and method in ("GET", "HEAD")
            )
            try:
                wait_s = float(response.headers.get("retry-after", "1"))
            except ValueError:
                wait_s = 1.0
            if not retryable or time.monotonic() + wait_s > give_up:
                return response
            time.sleep(max(wait_s, 0.1))
            for part in (kwargs.get("files") or {}).values():  # send an upload from its start
                handle = part[1] if isinstance(part, tuple) else part
                if hasattr(handle, "seek"):
                    handle.seek(0)

    # --- jobs -------------------------------------------------------------------------------
    def submit(self, *, idempotency_key: str | None = None, **request: Any) -> JobPublic:
        """Submit one job; keyword arguments as in ``clip_request``."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = clip_request(**request)
        return JobPublic.model_validate(self._call("POST", "/api/jobs", json=body, headers=headers))

    def job(self, job_id: str) -> JobPublic:
        return JobPublic.model_validate(self._call("GET", f"/api/jobs/{job_id}"))

    def jobs(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> JobList:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return JobList.model_validate(self._call("GET", "/api/jobs", params=params))

    def result(self, job_id: str) -> JobResult:
        return JobResult.model_validate(self._call("GET", f"/api/jobs/{job_id}/result"))

    def cancel(self, job_id: str) -> JobPublic:
        return JobPublic.model_validate(self._call("DELETE", f"/api/jobs/{job_id}"))

    def events(self, job_id: str, *, read_timeout: float = 60.0) -> Iterator[dict[str, Any]]:
        """The job's live events (GET /api/jobs/{id}/events): its current state first, then
        each change of status, stage or progress; the iterator ends after the final status
        (or when the connection drops: call again to resume from the current state)."""
        timeout = httpx.Timeout(self.http.timeout.connect, read=read_timeout)
        path = f"/api/jobs/{job_id}/events"
        with self.http.stream("GET", path, timeout=timeout) as response:
            if response.is_error:
                response.read()
                self._raise_for(response)
            for data in sse_data(response.iter_lines()):
                yield json.loads(data)

    def wait(
        self, job_id: str, *, timeout: float = 900, progress: bool = True
    ) -> JobPublic:
        """Wait for the job to finish, following its live events (no polling), with a
        progress bar showing its stage. A dropped stream is reopened until ``timeout``."""
        deadline = time.monotonic() + timeout
        bar_format = "{desc} {percentage:3.0f}%|{bar}| {elapsed}"
        with tqdm(total=100, disable=not progress, bar_format=bar_format) as bar:
            while True:
                read_timeout = max(min(deadline - time.monotonic(), 60.0), 0.1)
                try:
                    for event in self.events(job_id, read_timeout=read_timeout):
                        bar.n = round(event["progress"] * 100)
                        stage = event.get("stage") or event["status"]
                        bar.set_description_str(f"job {job_id[:8]} {stage:<12}")
                        if event.get("final"):
                            return self.job(job_id)
                        if time.monotonic() > deadline:
                            break
                except (httpx.TransportError, json.JSONDecodeError):
                    pass  # the stream broke: open it again (it starts with the current state)
                if time.monotonic() > deadline:
                    job = self.job(job_id)
                    if job.status.finished:
                        return job
                    raise TimeoutError(f"job {job_id} still {job.status} after {timeout:g} s")
                time.sleep(0.2)  # do not spin against a server that keeps closing at once

    def wait_result(self, job_id: str, **wait: Any) -> JobResult:
        """Wait for the job and return its signed URLs; raises JobFailed if it did not succeed."""
        job = self.wait(job_id, **wait)
        if job.status != "succeeded":
            raise JobFailed(job)
        return self.result(job_id)

    # --- uploads ----------------------------------------------------------------------------
    def upload(self, path: str | Path) -> UploadPublic:
        path = Path(path)
        with path.open("rb") as file:
            files = {"file": (path.name, file, "application/octet-stream")}
            return UploadPublic.model_validate(self._call("POST", "/api/uploads", files=files))

    # --- batches ----------------------------------------------------------------------------
    def submit_batch(self, requests: Sequence[dict[str, Any]]) -> BatchPublic:
        """Submit many jobs (bodies from ``clip_request``); bad items are reported per item."""
        return BatchPublic.model_validate(
            self._call("POST", "/api/batches", json={"jobs": list(requests)})
        )

    def batch(self, batch_id: str) -> BatchPublic:
        return BatchPublic.model_validate(self._call("GET", f"/api/batches/{batch_id}"))

    def wait_batch(
        self, batch_id: str, *, timeout: float = 3600, poll_s: float = 1.0, progress: bool = True
    ) -> BatchPublic:
        """Poll until every accepted job of the batch has finished; the bar counts jobs."""
        deadline = time.monotonic() + timeout
        batch = self.batch(batch_id)
        with tqdm(
            total=batch.size, desc=f"batch {batch_id[:8]}", unit="job", disable=not progress
        ) as bar:
            while True:
                finished = sum(
                    1 for item in batch.items if item.status is None or item.status.finished
                )
                bar.update(finished - bar.n)
                if batch.done:
                    return batch
                if time.monotonic() > deadline:
                    raise TimeoutError(f"batch {batch_id} unfinished after {timeout:g} s")
                time.sleep(poll_s)
                batch = self.batch(batch_id)

    # --- files ------------------------------------------------------------------------------
    def download(self, url: str, dest: str | Path) -> Path:
        """Fetch a signed URL (local or S3) to a file."""
        dest = Path(dest)
        with httpx.stream("GET", url, timeout=60, follow_redirects=True) as response:
            response.raise_for_status()
            with dest.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return dest

    def fetch_text(self, url: str) -> str:
        response = httpx.get(url, timeout=60, follow_redirects=True)
        response.raise_for_status()
        return response.text
