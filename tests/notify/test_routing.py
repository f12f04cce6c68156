from zoneinfo import ZoneInfo

import pytest

from pbxgate.errors import ConfigError
from pbxgate.notify.routing import Router
from pbxgate.notify.settings import RouteSettings

from .helpers import make_event

MSK = ZoneInfo("Europe/Moscow")
RCPTS = {"vk": ["1", "2"], "telegram": ["-100"], "email": ["a@example.org"]}
# 2023-11-15 01:13:21 Moscow, a Wednesday
NIGHT = 1700000001.0
# 2023-11-15 12:00:00 Moscow
NOON = 1700038800.0


def router(*routes: RouteSettings) -> Router:
    return Router.from_settings({f"r{i}": r for i, r in enumerate(routes)}, RCPTS, MSK)


def test_no_routes_means_everyone() -> None:
    assert router().targets(make_event(1)) == [
        ("vk", "1"),
        ("vk", "2"),
        ("telegram", "-100"),
        ("email", "a@example.org"),
    ]


def test_did_and_caller_patterns() -> None:
    r = router(
        RouteSettings(channels=["vk"], did="7495.*"),
        RouteSettings(channels=["email"], caller=r"\+7916.*", recipients=["boss@example.org"]),
    )
    assert r.targets(make_event(1)) == [("vk", "1"), ("vk", "2"), ("email", "boss@example.org")]
    assert r.targets(make_event(1, did="78120000000", caller_number="+70000000000")) == []


def test_time_of_day_in_the_pbx_zone_and_wrapping_midnight() -> None:
    r = router(
        RouteSettings(channels=["vk"], hours="09:00-18:00"),
        RouteSettings(channels=["telegram"], hours="22:00-06:00"),
    )
    assert r.targets(make_event(1, occurred_at=NOON)) == [("vk", "1"), ("vk", "2")]
    assert r.targets(make_event(1, occurred_at=NIGHT)) == [("telegram", "-100")]


def test_weekdays_and_kinds() -> None:
    r = router(RouteSettings(channels=["vk"], weekdays=["Wed"], kinds=["missed"]))
    assert r.targets(make_event(1, occurred_at=NOON)) == []
    assert r.targets(make_event(1, kind="missed", occurred_at=NOON)) == [("vk", "1"), ("vk", "2")]
    assert r.targets(make_event(1, kind="missed", occurred_at=NOON + 86400)) == []


def test_overlapping_routes_do_not_duplicate() -> None:
    r = router(RouteSettings(channels=["vk"]), RouteSettings(channels=["vk"], recipients=["2"]))
    assert r.targets(make_event(1)) == [("vk", "1"), ("vk", "2")]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (RouteSettings(channels=[]), "needs channels"),
        (RouteSettings(channels=["webhook"]), "not enabled"),
        (RouteSettings(channels=["vk"], did="("), "did is not a valid regular"),
        (RouteSettings(channels=["vk"], hours="9-late"), "09:00-18:00"),
        (RouteSettings(channels=["vk"], weekdays=["someday"]), "mon, tue"),
        (RouteSettings(channels=["vk"], kinds=["hangup"]), "unknown kind"),
    ],
)
def test_bad_routes_are_config_errors(route: RouteSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        router(route)


def test_routes_from_toml_and_environment_keep_file_order() -> None:
    from pbxgate.config import Settings
    from pbxgate.notify.settings import NotifySettings

    raw = {
        "notify": {
            "routes": {
                "day": {"channels": ["vk"], "hours": "09:00-18:00"},
                "night": {"channels": ["telegram"], "hours": "18:00-09:00"},
            }
        }
    }
    ns = Settings(raw, environ={"PBXGATE_NOTIFY_ROUTES_NIGHT_HOURS": "20:00-08:00"}).get(
        NotifySettings
    )
    assert list(ns.routes) == ["day", "night"]
    assert ns.routes["night"].hours == "20:00-08:00"
    r = Router.from_settings(ns.routes, RCPTS, MSK)
    assert r.targets(make_event(1, occurred_at=NIGHT)) == [("telegram", "-100")]
