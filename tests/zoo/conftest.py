"""The zoo runs as its own CI step (`make zoo`): every test here is marked ``zoo``, which
`make test` leaves out, and the session ends with a table of what each dataset did."""

from __future__ import annotations

import pytest

from tests.zoo.report import ROWS, table


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/zoo/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.zoo)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ROWS:
        terminalreporter.write_sep("=", "zoo")
        terminalreporter.write_line(table())
