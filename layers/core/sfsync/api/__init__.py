"""The marketing database's HTTP API (API Gateway HTTP API, payload 2.0; ``functions/api``).

``routes`` holds the routes (Powertools' ``APIGatewayHttpResolver`` with validated pydantic models,
which also generate the OpenAPI document), ``models`` the request and answer shapes, ``problems``
the RFC 9457 error answers and ``cursors`` the opaque page cursors.
"""
