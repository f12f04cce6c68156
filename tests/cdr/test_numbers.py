from __future__ import annotations

import pytest

from pbxgate.cdr.numbers import InternalRule
from pbxgate.errors import ConfigError


@pytest.mark.parametrize(
    ("number", "internal"),
    [
        ("113", True),
        ("1", True),
        ("1130", False),
        ("84991111111", False),
        ("", False),
        ("anonymous", False),
    ],
)
def test_default_rule_is_the_articles(number: str, internal: bool) -> None:
    assert InternalRule().is_internal(number) is internal


def test_pattern_replaces_digit_count() -> None:
    rule = InternalRule(pattern=r"2\d{3}")
    assert rule.is_internal("2001")
    assert not rule.is_internal("113")
    assert rule.is_external("113")
    assert not rule.sql_pushdown


def test_bad_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="internal_pattern"):
        InternalRule(pattern="(")
