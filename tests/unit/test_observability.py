"""The metric names are defined once (observability.Metric), and every one of them is emitted."""

from __future__ import annotations

import re
from pathlib import Path

from image_cleanup.observability import Metric

CODE = Path(__file__).resolve().parents[2] / "functions" / "cleanup"


def test_every_declared_metric_is_emitted_somewhere() -> None:
    # Given the function's code outside the module that declares the names
    sources = "\n".join(
        path.read_text(encoding="utf-8") for path in CODE.rglob("*.py") if path.name != "observability.py"
    )
    # When the Metric members it uses are collected
    used = set(re.findall(r"\bMetric\.([A-Z_]+)\b", sources))
    # Then every declared metric is emitted (no dead name for an alarm to watch), and nothing else is
    assert used == {metric.name for metric in Metric}


def test_no_metric_is_emitted_by_a_string_literal() -> None:
    # Given the function's code
    sources = "\n".join(path.read_text(encoding="utf-8") for path in CODE.rglob("*.py"))
    # When metric calls are searched for a literal name
    literal = re.findall(r"\b(?:count|milliseconds|byte_count|count_by_error)\(\s*[\"']", sources)
    # Then there is none: a misspelt name cannot be written
    assert literal == []
