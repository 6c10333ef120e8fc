"""The published schema says what the API does: time fields, bounds, the end-after-start rule,
``Allow`` on 405; and error messages tell a client nothing about the server's disk."""

from __future__ import annotations

import jsonschema
import pytest

from tests.api.conftest import Service

pytestmark = pytest.mark.parametrize("service", ["embedded"], indirect=True)


def _schema(service: Service) -> dict:
    return service.client.http.get("/openapi.json").json()


def _resolved(spec: dict, schema: dict) -> dict:
    """A component schema with every #/components/schemas/... reference it needs."""
    return {**schema, "components": spec["components"]}


def test_time_fields_are_number_or_clock_string(service: Service) -> None:
    spec = _schema(service)
    request = spec["components"]["schemas"]["ClipRequest"]
    validator = jsonschema.Draft202012Validator(_resolved(spec, request))
    for example in request["examples"]:  # the schema's own example is valid against it
        assert list(validator.iter_errors(example)) == []
    for field in ("start", "end"):
        kinds = {branch["type"] for branch in request["properties"][field]["anyOf"]}
        assert kinds == {"number", "string"}
    body = {"source": {"url": "http://x.test/v.mp4"}, "end": 95}
    accepted = ["00:01:05.5", "1:05", "65.5", 65.5, 0]
    refused = ["1e3", " 5", "5.", "1:75", "-1", "nan", True, -1]
    for value in accepted + refused:
        valid = not list(validator.iter_errors({**body, "start": value}))
        assert valid == (value in accepted), value
    assert "after" in request["properties"]["end"]["description"]
    assert "end" in request["description"] and "after" in request["description"]


def test_schema_examples_are_accepted_by_the_api(service: Service) -> None:
    spec = _schema(service)
    example = spec["components"]["schemas"]["ClipRequest"]["examples"][0]
    # Cancelled at once: it names a real site, and this machine does not go out.
    response = service.client.http.post("/api/jobs", json=example)
    assert response.status_code == 202, response.text
    service.client.http.delete(f"/api/jobs/{response.json()['id']}")


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "9223372036854775808"},
        {"offset": "-1"},
        {"limit": "0"},
        {"limit": "100000000000000000000"},
    ],
)
def test_numeric_query_parameters_are_bounded(service: Service, params: dict) -> None:
    response = service.client.http.get("/api/jobs", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    spec = _schema(service)
    for parameter in spec["paths"]["/api/jobs"]["get"]["parameters"]:
        if parameter["schema"].get("type") == "integer":
            assert "maximum" in parameter["schema"] and "minimum" in parameter["schema"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/jobs", "GET, POST"),
        ("PATCH", "/api/jobs/0123", "GET, DELETE"),
        ("GET", "/api/batches", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_405_names_every_allowed_method(
    service: Service, method: str, path: str, allow: str
) -> None:
    response = service.client.http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_upload_errors_name_no_server_path(service: Service) -> None:
    response = service.client.http.post(
        "/api/uploads", files={"file": ("notes.mp4", b"not a video at all\n" * 200)}
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    data_dir = str(service.settings.data_dir)
    assert data_dir not in message and "/uploads/" not in message and ".part" not in message
    assert "upload" in message
