"""``check_version``: the decision a publish makes before anything is built or loaded."""

from __future__ import annotations

import pytest

from thalo.errors import VersionAlreadyPublished, VersionNotGreater
from thalo.registry import check_version

A, B = "a" * 64, "b" * 64
PUBLISHED = [("0.1.0", "1" * 64, A), ("0.2.0", "2" * 64, None)]


def test_a_new_greater_version_may_be_published() -> None:
    assert check_version("Counter", "0.3.0", PUBLISHED, source_digest=B) is None
    assert check_version("Counter", "0.1.0", []) is None


def test_the_same_bytes_or_the_same_source_again_is_a_no_op() -> None:
    assert check_version("Counter", "0.1.0", PUBLISHED, sha256="1" * 64) == "0.1.0"
    assert check_version("Counter", "0.1.0", PUBLISHED, sha256="9" * 64, source_digest=A) == "0.1.0"
    assert check_version("Counter", "0.1.0", PUBLISHED, source_digest=A) == "0.1.0"
    # Build metadata does not make another version (semver): 0.1.0+ci is 0.1.0.
    assert check_version("Counter", "0.1.0+ci.7", PUBLISHED, source_digest=A) == "0.1.0"


def test_other_source_under_a_published_version_is_refused_with_the_reason() -> None:
    with pytest.raises(VersionAlreadyPublished, match=r"0\.1\.0 is already published built from"):
        check_version("Counter", "0.1.0", PUBLISHED, source_digest=B)
    with pytest.raises(VersionAlreadyPublished, match=r"with other bytes \(sha256 111111111111"):
        check_version("Counter", "0.1.0", PUBLISHED, sha256="9" * 64)
    # 0.2.0 was published as a prebuilt component: its source is unknown.
    with pytest.raises(VersionAlreadyPublished, match="unrecorded source") as caught:
        check_version("Counter", "0.2.0", PUBLISHED, source_digest=B)
    assert (caught.value.exit_code, caught.value.http_status) == (2, 409)
    assert "greater version" in caught.value.message


def test_a_version_below_the_latest_is_refused() -> None:
    with pytest.raises(VersionNotGreater, match=r"latest published version 0\.2\.0"):
        check_version("Counter", "0.1.5", PUBLISHED, source_digest=A)
