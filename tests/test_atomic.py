"""Run files on a real full disk and a real read-only one: whole or not at all."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.atomic import append_whole, write_atomically
from tmpfs import PAGE, fill, tmpfs


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB filesystem of its own."""
    with tmpfs(tmp_path / "disk") as path:
        yield path


def test_a_write_replaces_the_file_and_leaves_no_temporary(disk: Path) -> None:
    target = disk / "summary.json"
    target.write_text('{"old": true}\n')

    write_atomically(target, '{"new": true}\n')

    assert json.loads(target.read_text()) == {"new": True}
    assert sorted(p.name for p in disk.iterdir()) == ["summary.json"]
    assert target.stat().st_mode & 0o777 == 0o644
    write_atomically(disk / "new.json", "{}\n")
    assert (disk / "new.json").stat().st_mode & 0o777 == 0o644


def test_a_write_on_a_full_disk_keeps_the_old_file_and_no_temporary(disk: Path) -> None:
    target = disk / "summary.json"
    target.write_text('{"old": true}\n')
    filler = fill(disk)

    with pytest.raises(OSError, match="No space left") as raised:
        write_atomically(target, json.dumps({"stages": ["x" * 100] * 100}))

    assert raised.value.errno == errno.ENOSPC
    assert target.read_text() == '{"old": true}\n'  # not 0 bytes, not half
    assert sorted(p.name for p in disk.iterdir()) == [filler.name, "summary.json"]


def test_a_new_file_on_a_full_disk_is_not_created_empty(disk: Path) -> None:
    fill(disk)

    with pytest.raises(OSError, match="No space left"):
        write_atomically(disk / "summary.json", "{}\n")

    assert not (disk / "summary.json").exists()


def test_an_append_that_does_not_fit_leaves_no_torn_line(disk: Path) -> None:
    spans = disk / "spans.jsonl"
    append_whole(spans, '{"span": 1}\n')
    fill(disk, leave=PAGE)  # the file's first page is allocated; one more page is free
    line = json.dumps({"span": 2, "pad": "x" * (2 * PAGE)}) + "\n"

    with pytest.raises(OSError, match="No space left"):
        append_whole(spans, line)

    assert spans.read_text() == '{"span": 1}\n'
    append_whole(spans, '{"span": 3}\n')  # what fits is still written
    assert spans.read_text() == '{"span": 1}\n{"span": 3}\n'


def test_a_read_only_directory_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", read_only=True) as directory:
        with pytest.raises(OSError, match="Read-only file system"):
            write_atomically(directory / "summary.json", "{}\n")
        with pytest.raises(OSError, match="Read-only file system"):
            append_whole(directory / "spans.jsonl", "{}\n")
        assert list(directory.iterdir()) == []
