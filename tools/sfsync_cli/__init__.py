"""The ``sfsync`` command-line tool: the operator's commands against a deployed stack or the local one.

It holds no sync logic: every command is an event for the stack's operator function
(``functions/operator``, ``sfsync.services.operator``), which it invokes and whose answer it shows
with Rich. Typer and Rich live here, outside the Lambda layer.
"""
