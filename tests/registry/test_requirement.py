from __future__ import annotations

import pytest

from thalo.errors import UsageError
from thalo.registry.requirement import Requirement, parse_version

VERSIONS = [
    parse_version(v)
    for v in ["0.1.0", "0.3.0", "0.3.7", "0.4.0", "1.2.0", "1.2.9", "1.3.0", "2.0.0", "2.1.0-rc.1"]
]


@pytest.mark.parametrize(
    ("req", "best"),
    [
        ("*", "2.0.0"),
        ("", "2.0.0"),
        ("^1.2", "1.3.0"),
        ("^1.2.5", "1.3.0"),
        ("~1.2", "1.2.9"),
        ("~0.3", "0.3.7"),
        ("^0.3", "0.3.7"),
        ("^0.3.1", "0.3.7"),
        ("1.2.0", "1.2.0"),
        ("=1.2", "1.2.9"),
        ("1", "1.3.0"),
        (">=1.0, <2", "1.3.0"),
        ("<0.3", "0.1.0"),
        ("^3", None),
        ("2.1.0-rc.1", "2.1.0-rc.1"),
    ],
)
def test_best(req: str, best: str | None) -> None:
    found = Requirement.parse(req).best(VERSIONS)
    assert (None if found is None else str(found)) == best


def test_ordering_follows_semver() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "10.0.0",
    ]
    versions = [parse_version(v) for v in ordered]
    assert sorted(reversed(versions)) == versions
    assert parse_version("1.0.0+build.5") == parse_version("1.0.0")


@pytest.mark.parametrize("bad", ["1.2", "01.2.3", "v1.2.3", "1.2.3.4", "abc"])
def test_invalid_version(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid version"):
        parse_version(bad)


@pytest.mark.parametrize("bad", ["^x", ">=", "~a.b", "1.2.3.4"])
def test_invalid_requirement(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid version requirement"):
        Requirement.parse(bad)
