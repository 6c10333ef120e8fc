"""Every documented snippet is real code: the README's Python example and the notebooks run
here against the live service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.api.conftest import Service
from tests.support.http_server import MediaServer

ROOT = Path(__file__).resolve().parents[2]


def run_code(code: str, namespace: dict) -> dict:
    exec(compile(code, "<snippet>", "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def test_readme_python_snippet(service: Service, media_server: MediaServer) -> None:
    readme = (ROOT / "README.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert snippets, "the README should show the Python client"
    code = snippets[0].replace('"http://127.0.0.1:8000"', repr(service.base_url))
    namespace = run_code(code, {"SOURCE_URL": media_server.url("talk.mp4")})
    assert namespace["result"].video.duration == pytest.approx(7.0, abs=0.04)
    assert namespace["done"].counts == {"succeeded": 3}


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=str)
def test_notebook_runs(
    notebook: Path, service: Service, media_server: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPMAKER_URL", service.base_url)
    monkeypatch.setenv("SOURCE_URL", media_server.url("talk.mp4"))
    cells = json.loads(notebook.read_text())["cells"]
    namespace: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            run_code("".join(cell["source"]), namespace)
    rows = namespace["rows"]
    assert len(rows) == 4
    assert all(duration == pytest.approx(3.0, abs=0.04) for _, duration, _, _ in rows)
    assert "morning" in " ".join(text for _, _, _, text in rows).lower()
    namespace["cm"].close()
