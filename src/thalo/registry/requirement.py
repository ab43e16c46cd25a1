"""Semantic versions and the requirements that select them (``^1.2``, ``~0.3``, ``*``).

Cargo/npm semantics: ``^1.2.3`` allows changes that keep the left-most non-zero
component (``>=1.2.3, <2.0.0``; ``^0.3`` → ``<0.4.0``); ``~1.2`` allows patch
changes (``<1.3.0``); ``=1.2.3`` or a bare ``1.2.3`` is exact; comparison
operators may be joined with commas; ``*`` (or an empty string) allows anything
except pre-releases.
"""

from __future__ import annotations

__all__ = ["Requirement", "Version", "parse_version"]

import re
from dataclasses import dataclass
from functools import total_ordering

from thalo.errors import UsageError

_VERSION = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_PARTIAL = re.compile(r"^(\d+)(?:\.(\d+|\*|x))?(?:\.(\d+|\*|x))?(?:-([0-9A-Za-z.-]+))?$")
_CLAUSE = re.compile(r"^(\^|~|=|>=|<=|>|<)?\s*(.+)$")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A semantic version (semver 2.0.0); build metadata does not affect ordering."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after all of its pre-releases; numeric identifiers sort
        # before alphanumeric ones (semver §11).
        pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def parse_version(text: str) -> Version:
    """Parse ``1.2.3[-pre][+build]``; raise UsageError with the offending text otherwise."""
    match = _VERSION.match(text.strip())
    if match is None:
        raise UsageError(f"invalid version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.0.0")
    major, minor, patch, pre, build = match.groups()
    return Version(
        int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), build or ""
    )


@dataclass(frozen=True, slots=True)
class _Bound:
    op: str
    version: Version

    def allows(self, v: Version) -> bool:
        c = self.version
        return {
            ">=": v >= c,
            ">": v > c,
            "<": v < c,
            "<=": v <= c,
            "=": v == c,
        }[self.op]


@dataclass(frozen=True, slots=True)
class Requirement:
    """A set of versions, parsed from a requirement string."""

    text: str
    bounds: tuple[_Bound, ...]

    @classmethod
    def parse(cls, text: str) -> Requirement:
        """Parse ``^1.2``, ``~0.3.1``, ``1.2.3``, ``>=1.0, <2``, ``*``; UsageError if malformed."""
        stripped = text.strip()
        if stripped in ("", "*", "latest"):
            return cls(stripped or "*", ())
        bounds: list[_Bound] = []
        for clause in stripped.split(","):
            bounds.extend(_parse_clause(clause.strip(), text))
        return cls(stripped, tuple(bounds))

    def allows(self, version: Version) -> bool:
        """True when ``version`` satisfies every bound; pre-releases only if named exactly."""
        if version.prerelease and not any(b.version.prerelease for b in self.bounds):
            return False
        return all(b.allows(version) for b in self.bounds)

    def best(self, versions: list[Version]) -> Version | None:
        """The greatest allowed version, or None."""
        allowed = [v for v in versions if self.allows(v)]
        return max(allowed) if allowed else None

    def __str__(self) -> str:
        return self.text


def _parse_clause(clause: str, whole: str) -> list[_Bound]:
    match = _CLAUSE.match(clause)
    partial = _PARTIAL.match(match.group(2).strip()) if match else None
    if match is None or partial is None:
        raise UsageError(
            f"invalid version requirement {whole!r}: expected e.g. '^1.2', '~0.3', '1.2.3', "
            "'>=1.0, <2' or '*'"
        )
    op = match.group(1) or "^exact"
    major_s, minor_s, patch_s, pre = partial.groups()
    major = int(major_s)
    minor = int(minor_s) if minor_s and minor_s.isdigit() else None
    patch = int(patch_s) if patch_s and patch_s.isdigit() else None
    pre_t = tuple(pre.split(".")) if pre else ()
    low = Version(major, minor or 0, patch or 0, pre_t)

    if op == "^exact" and minor is not None and patch is not None:
        return [_Bound("=", low)]
    if op in ("^", "^exact"):
        if major > 0 or minor is None:
            high = Version(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = Version(0, minor + 1, 0)
        else:
            high = Version(0, 0, patch + 1)
        return [_Bound(">=", low), _Bound("<", high)]
    if op == "~":
        high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
        return [_Bound(">=", low), _Bound("<", high)]
    if op == "=":
        if minor is None or patch is None:
            high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
            return [_Bound(">=", low), _Bound("<", high)]
        return [_Bound("=", low)]
    return [_Bound(op, low)]
