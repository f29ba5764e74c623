"""Where the operator function is: a deployed stack (by its CloudFormation outputs) or the local one."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any, Protocol

LOCAL_FILE = ".sfsync-local.json"
OUTPUT = "OperatorFunctionName"


class CommandError(Exception):
    """The operator function refused the command (``kind``: its error class) or could not be reached."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class Operator(Protocol):
    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run one operator event; its answer, or CommandError."""
        ...


class LambdaOperator:
    """The deployed stack's operator function, invoked with boto3 (the caller's AWS credentials)."""

    def __init__(self, function_name: str, client: Any) -> None:
        self.function_name = function_name
        self.client = client

    @classmethod
    def for_stack(
        cls, stack: str, region: str | None = None, *, cloudformation: Any = None, lambda_client: Any = None
    ) -> LambdaOperator:
        """The operator function named by ``stack``'s ``OperatorFunctionName`` output."""
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        session = boto3.session.Session(region_name=region)
        try:
            cloudformation = cloudformation or session.client("cloudformation")
            stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        except (ClientError, BotoCoreError) as exc:
            raise CommandError("StackNotFound", f"cannot read stack {stack!r}: {exc}") from exc
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if OUTPUT not in outputs:
            raise CommandError(
                "StackNotFound", f"stack {stack!r} has no {OUTPUT} output: is it an sfsync stack, deployed?"
            )
        return cls(outputs[OUTPUT], lambda_client or session.client("lambda"))

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        except (ClientError, BotoCoreError) as exc:
            raise CommandError("InvokeFailed", str(exc)) from exc
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            error = payload if isinstance(payload, dict) else {}
            raise CommandError(str(error.get("errorType", "Error")), str(error.get("errorMessage", "")))
        return dict(payload)


class LocalOperator:
    """The local stack's operator function, through the endpoint the demo (or a test) serves
    (``sfsync_local.operator_endpoint``), whose address is in ``.sfsync-local.json``."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> LocalOperator:
        file = Path(path) if path else _find(LOCAL_FILE)
        if file is None or not file.is_file():
            raise CommandError(
                "NoLocalStack",
                f"no {LOCAL_FILE} here or above: start the local stack first "
                "(make demo writes it while it runs)",
            )
        try:
            url = json.loads(file.read_text(encoding="utf-8"))["url"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError("NoLocalStack", f"{file} does not name the local stack's endpoint") from exc
        return cls(str(url))

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 (an http URL on loopback, from our own file)
            self.url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
                body = json.loads(response.read())
        except OSError as exc:
            raise CommandError(
                "NoLocalStack", f"the local stack does not answer at {self.url}: {exc}"
            ) from exc
        if "error" in body:
            raise CommandError(str(body["error"]["type"]), str(body["error"]["message"]))
        return dict(body["payload"])


def _find(name: str) -> Path | None:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / name).is_file():
            return folder / name
    return None
