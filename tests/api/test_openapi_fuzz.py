"""The published OpenAPI schema tells the truth: schemathesis generates requests from it (valid
ones and invalid ones, bounded examples per operation) against the running service and checks
every answer: no server error, every status and body as documented, invalid input refused,
``Allow`` on 405s."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Service

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    return str(found) if found.exists() else shutil.which("schemathesis") or "schemathesis"


@pytest.mark.parametrize("service", ["embedded"], indirect=True)
def test_schemathesis_finds_no_server_errors_or_schema_violations(
    service: Service, tmp_path: Path
) -> None:
    base = service.base_url
    run = subprocess.run(
        [
            _schemathesis(),
            "run",
            f"{base}/openapi.json",
            "--url",
            base,
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--seed",
            "7",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    print(run.stdout[-6000:])
    try:
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    finally:
        # Jobs it managed to queue would keep the shared service's workers busy: cancel them.
        http = service.client.http
        queued = http.get("/api/jobs", params={"status": "queued", "limit": 500}).json()
        for item in queued.get("items", []):
            http.delete(f"/api/jobs/{item['id']}")
