"""The OpenAPI document in the repository is the one the code generates, and covers every route."""

from __future__ import annotations

import json

from sfsync.api.routes import app
from tools.openapi import DOCUMENT, generated


def test_the_repository_copy_is_what_the_code_generates() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == generated(), (
        "openapi.json has drifted from sfsync.api.routes: run `make openapi` and commit it"
    )


def test_every_route_is_in_the_document_with_its_problems() -> None:
    paths = json.loads(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    routes = [(r.method.lower(), r.openapi_path) for r in app._static_routes + app._dynamic_routes]
    assert len(routes) >= 24
    for method, path in routes:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not in openapi.json"
        if path != "/openapi.json":
            answers = paths[path][method]["responses"]
            assert "application/problem+json" in answers["400"]["content"], f"{method} {path}: no 400 problem"


def test_every_write_takes_an_idempotency_key() -> None:
    paths = json.loads(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in ("post", "patch", "delete") and path != "/people/search":
                headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
                assert "idempotency-key" in headers, f"{method.upper()} {path} takes no Idempotency-Key"
