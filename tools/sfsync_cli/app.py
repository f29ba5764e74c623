"""``sfsync``: status, errors, retry, pause, resume, sync-now, resync, history and doctor.

sfsync --stack my-sfsync status          a deployed stack, found by name (CloudFormation outputs)
sfsync --local errors --csv errors.csv   the local stack (make demo), by .sfsync-local.json
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from .backends import CommandError, LambdaOperator, LocalOperator, Operator

app = typer.Typer(
    name="sfsync",
    help="Operate an sfsync stack: see its status and sync errors, pause, resume, sync now, resync.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Context:
    def __init__(self, operator: Operator | None, as_json: bool, console: Console) -> None:
        self._operator = operator
        self.as_json = as_json
        self.console = console
        self.settings: dict[str, Any] = {}

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            operator = self._operator or _operator(**self.settings)
            answer = operator.call(event)
        except CommandError as exc:
            Console(stderr=True).print(f"[bold red]error[/]: {exc.message}", highlight=False)
            raise typer.Exit(1) from None
        if self.as_json:
            self.console.print_json(json.dumps(answer, default=str))
        return answer


def _operator(stack: str | None, local: bool, local_file: Path | None, region: str | None) -> Operator:
    if local or local_file:
        return LocalOperator.from_file(local_file)
    if not stack:
        raise CommandError("NoStack", "say which stack: --stack NAME (a deployed stack) or --local")
    return LambdaOperator.for_stack(stack, region)


@app.callback()
def options(
    ctx: typer.Context,
    stack: Annotated[
        str | None, typer.Option(help="The deployed stack's name.", envvar="SFSYNC_STACK")
    ] = None,
    local: Annotated[bool, typer.Option(help="The local stack (make demo).")] = False,
    local_file: Annotated[
        Path | None, typer.Option(help="Where the local stack's address is (default: .sfsync-local.json).")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the stack.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    context = Context(None, as_json, Console(highlight=False))
    context.settings = {"stack": stack, "local": local, "local_file": local_file, "region": region}
    ctx.obj = context


def _ctx(ctx: typer.Context) -> Context:
    context: Context = ctx.obj
    return context


# -- commands ---------------------------------------------------------------------------------------
@app.command()
def status(ctx: typer.Context) -> None:
    """Per object: state, last cycle, counts, lag, push backlog, open errors; API use; first copies."""
    c = _ctx(ctx)
    answer = c.call({"command": "status"})
    if not c.as_json:
        show_status(c.console, answer)


@app.command()
def errors(
    ctx: typer.Context,
    sobject: Annotated[str | None, typer.Option("--object", help="Only this object's errors.")] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write every error as CSV to this file ('-': stdout).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
) -> None:
    """Open sync errors grouped by Salesforce's code, with its message (values redacted)."""
    c = _ctx(ctx)
    event: dict[str, Any] = {"command": "errors", "limit": limit}
    if sobject:
        event["object"] = sobject
    answer = c.call(event)
    if csv_file is not None:
        if str(csv_file) == "-":
            sys.stdout.write(answer["csv"])
            return
        csv_file.write_text(answer["csv"], encoding="utf-8")
        c.console.print(f"{answer['total']} error(s) written to {csv_file}")
    if not c.as_json:
        show_errors(c.console, answer)


@app.command()
def retry(
    ctx: typer.Context,
    sobject: Annotated[str | None, typer.Option("--object", help="Only this object's errors.")] = None,
) -> None:
    """Retry the refused records: updates go back in the push, refused creates are tried now."""
    c = _ctx(ctx)
    answer = c.call({"command": "retry", **({"object": sobject} if sobject else {})})
    if not c.as_json:
        c.console.print(
            f"{answer.get('queued', 0)} person(s) back in the push; {answer.get('created', 0)} created now"
        )


@app.command()
def pause(ctx: typer.Context) -> None:
    """Pause the sync: the running cycle finishes, no next one starts."""
    c = _ctx(ctx)
    c.call({"command": "pause"})
    if not c.as_json:
        c.console.print("paused: the chain stops at its next hand-over")


@app.command()
def resume(ctx: typer.Context) -> None:
    """Resume a paused sync, starting a cycle now."""
    c = _ctx(ctx)
    answer = c.call({"command": "resume"})
    if not c.as_json:
        dispatch = answer.get("dispatch") or {}
        c.console.print(f"resumed; cycle started: {dispatch.get('started')} ({dispatch.get('reason')})")


@app.command("sync-now")
def sync_now(ctx: typer.Context) -> None:
    """Start a cycle now (a no-op while one runs)."""
    c = _ctx(ctx)
    answer = c.call({"command": "sync_now"})
    if not c.as_json:
        c.console.print(f"cycle started: {answer.get('started')} ({answer.get('reason')})")


@app.command()
def resync(ctx: typer.Context, sobject: Annotated[str, typer.Argument(metavar="OBJECT")]) -> None:
    """Read every record of OBJECT again at the next cycle (its data stays; other objects untouched)."""
    c = _ctx(ctx)
    answer = c.call({"command": "resync", "object": sobject})
    if not c.as_json:
        c.console.print(
            f"{answer['object']}: the next cycle reads every record again "
            f"(watermark was {answer.get('previous_watermark')})"
        )


@app.command()
def history(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(metavar="PERSON", help="A marketing id or a Salesforce id.")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """A person's change log: field, old, new, source, the rule that decided, when."""
    c = _ctx(ctx)
    answer = c.call({"command": "history", "person": person, "limit": limit})
    if not c.as_json:
        show_history(c.console, answer)


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Preflight: the secret, login, API version, the sync user's access, the stack's resources."""
    c = _ctx(ctx)
    answer = c.call({"command": "doctor"})
    if not c.as_json:
        show_doctor(c.console, answer)
    if answer.get("problems"):
        raise typer.Exit(1)


# -- rendering --------------------------------------------------------------------------------------
def _ago(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=int(seconds)))


class EtaColumn(ProgressColumn):
    """The time left the operator function computed (copied so far / time taken)."""

    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta")
        return Text(f"ETA {_ago(eta)}" if eta is not None else "ETA -", style="progress.remaining")


def show_status(console: Console, answer: dict[str, Any]) -> None:
    last = answer.get("last_cycle") or {}
    api = answer.get("api") or {}
    share = f" ({api['share']:.1%})" if api.get("share") is not None else ""
    usage = f"{api['used']:,} of {api['limit']:,}{share}" if api.get("used") is not None else "unknown"
    console.print(
        f"sync {'[bold yellow]PAUSED[/]' if answer.get('paused') else '[bold green]running[/]'}; "
        f"last cycle {last.get('cycle_id', '-')} {last.get('status', '')}; "
        f"Salesforce API use today: {usage}" + (f" [dim]({api['note']})[/]" if api.get("note") else "")
    )
    table = Table(title="Objects", title_justify="left")
    for column, justify in (
        ("object", "left"),
        ("state", "left"),
        ("last cycle", "left"),
        ("created", "right"),
        ("updated", "right"),
        ("deleted", "right"),
        ("failed", "right"),
        ("pushed", "right"),
        ("lag", "right"),
        ("backlog", "right"),
        ("errors", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in answer.get("objects", []):
        counts = row.get("counts") or {}
        style = {"failed": "red", "first copy": "cyan", "not started": "dim"}.get(row["state"], "")
        table.add_row(
            row["object"],
            Text(row["state"], style=style),
            f"{row.get('last_cycle') or '-'} {row.get('last_result') or ''}".strip(),
            str(counts.get("created", 0)),
            str(counts.get("updated", 0)),
            str(counts.get("deleted", 0)),
            str(counts.get("failed", 0) + counts.get("push_failed", 0)),
            str(counts.get("pushed", 0)),
            _ago(row.get("lag_seconds")),
            "-" if row.get("push_backlog") is None else str(row["push_backlog"]),
            Text(str(row.get("open_errors", 0)), style="red" if row.get("open_errors") else ""),
        )
    console.print(table)
    for row in answer.get("objects", []):
        if row.get("error"):
            console.print(f"  [red]{row['object']}[/]: {row['error']}")
        for name, since in (row.get("dropped_fields") or {}).items():
            console.print(f"  [yellow]field dropped: {row['object']}.{name}[/] since {since}")
    copies = [r for r in answer.get("objects", []) if r.get("first_copy")]
    if copies:
        progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:,.0f} of {task.fields[expected]}"),
            EtaColumn(),
            console=console,
        )
        for row in copies:
            copy = row["first_copy"]
            expected = copy.get("expected")
            progress.add_task(
                f"first copy {row['object']}",
                total=max(expected, copy["copied"]) if expected is not None else None,
                completed=copy["copied"],
                expected=f"{expected:,}" if expected is not None else "?",
                eta=copy.get("eta_seconds"),
            )
        console.print(progress.get_renderable())


def show_errors(console: Console, answer: dict[str, Any]) -> None:
    if not answer.get("groups"):
        console.print("no open sync errors")
        return
    for group in answer["groups"]:
        table = Table(title=f"{group['code']} ({group['count']})", title_justify="left")
        for column in ("object", "person", "Salesforce id", "fields", "message", "at"):
            table.add_column(column, overflow="fold")
        for error in group["errors"]:
            table.add_row(
                error["object"],
                error["person_id"],
                error.get("sf_id") or "-",
                ", ".join(error.get("fields") or []),
                error.get("message") or "",
                error.get("at") or "",
            )
        console.print(table)


def show_history(console: Console, answer: dict[str, Any]) -> None:
    via = f" (asked as {answer['alias_of']}, merged or converted into it)" if answer.get("alias_of") else ""
    table = Table(title=f"Person {answer['person_id']}{via}", title_justify="left")
    for column in ("at", "field", "old", "new", "source", "rule"):
        table.add_column(column, overflow="fold")
    for row in answer.get("changes", []):
        table.add_row(
            str(row.get("at") or ""),
            str(row.get("field") or ""),
            _value(row.get("old")),
            _value(row.get("new")),
            str(row.get("source") or ""),
            str(row.get("rule") or "-"),
        )
    if not answer.get("changes"):
        console.print(f"person {answer['person_id']} has no recorded changes")
        return
    console.print(table)


def _value(value: Any) -> str:
    return "-" if value is None else json.dumps(value) if not isinstance(value, str) else value


def main() -> None:
    app()


if __name__ == "__main__":
    main()


def show_doctor(console: Console, answer: dict[str, Any]) -> None:
    problems = answer.get("problems") or []
    if not problems:
        console.print("[green]ready to sync:[/green] no problem found")
        return
    table = Table(title=f"{len(problems)} problem(s) found")
    for column in ("check", "subject", "problem", "fix"):
        table.add_column(column, overflow="fold")
    for p in problems:
        table.add_row(str(p.get("check")), str(p.get("subject")), str(p.get("problem")), str(p.get("fix")))
    console.print(table)
