"""Object helpers whose output clients parse: uids and timestamps."""

from __future__ import annotations

import datetime as dt
import uuid

from minikube_py.meta.objects import format_time, new_uid, parse_time


def test_uids_are_random_rfc4122_version_4() -> None:
    uids = [new_uid() for _ in range(1000)]
    assert len(set(uids)) == len(uids)
    for text in uids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case 8-4-4-4-12, as Go's uuid prints it
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_times_are_rfc3339_seconds_in_utc() -> None:
    moments = [0, 59.999, 1_700_000_000.5, 1_700_000_001, 4_102_444_800 - 0.25]
    for moment in moments * 2:  # the second round is answered from the cache
        expected = dt.datetime.fromtimestamp(int(moment), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert format_time(moment) == expected
        assert parse_time(format_time(moment)) == int(moment)
    assert format_time(1_700_000_000.9) == "2023-11-14T22:13:20Z"
