"""Write the HTTP API's OpenAPI document (``sfsync.api.routes``) to openapi.json at the repository root.

``make openapi`` runs it; tests/template/test_openapi.py fails when the copy in the repository is
not what the code generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENT = REPO / "openapi.json"


def generated() -> str:
    """The document as the API serves it, pretty-printed with sorted keys (a stable diff)."""
    from sfsync.api.routes import openapi_json

    return json.dumps(json.loads(openapi_json()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    DOCUMENT.write_text(generated(), encoding="utf-8")
    print(f"wrote {DOCUMENT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
