"""Settings read from the environment: the API budget share."""

from __future__ import annotations

import pytest

from sfsync.config import Settings
from sfsync.errors import FatalError


@pytest.mark.parametrize(
    ("percent", "share"), [(None, 0.9), ("90", 0.9), ("1", 0.01), ("75", 0.75), ("100", 1.0)]
)
def test_the_api_budget_share_is_a_percent_of_the_daily_limit(
    monkeypatch: pytest.MonkeyPatch, percent: str | None, share: float
) -> None:
    monkeypatch.setenv("STATE_TABLE", "state")
    if percent is None:
        monkeypatch.delenv("API_BUDGET_PERCENT", raising=False)
    else:
        monkeypatch.setenv("API_BUDGET_PERCENT", percent)
    assert Settings.from_env().api_budget_share == share


@pytest.mark.parametrize("percent", ["0", "101", "-5", "0.9", "ninety"])
def test_an_api_budget_share_out_of_range_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, percent: str
) -> None:
    monkeypatch.setenv("STATE_TABLE", "state")
    monkeypatch.setenv("API_BUDGET_PERCENT", percent)
    with pytest.raises(FatalError, match="API_BUDGET_PERCENT"):
        Settings.from_env()
