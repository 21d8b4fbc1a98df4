"""The local run store: JSON lines per run, newest first, prefixes, damage."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.errors import RunStoreError
from conveyor.telemetry.store import RunStore, SpanEvent, SpanRecord
from tmpfs import PAGE, fill, tmpfs

SECOND = 1_000_000_000
T0 = 1_735_787_045 * SECOND  # 2025-01-02 03:04:05Z


def run_span(run_id: str, start: int, *, status: str = "success") -> SpanRecord:
    return SpanRecord(
        name="conveyor.run",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id=f"{abs(hash(run_id)) % 16**16:016x}",
        parent_id=None,
        start=start,
        end=start + 2 * SECOND,
        status="ok" if status == "success" else "error",
        attributes={"conveyor.run.id": run_id, "conveyor.status": status},
    )


scalars = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.one_of(scalars, st.tuples(scalars, scalars), st.none())
records = st.builds(
    SpanRecord,
    name=st.text(min_size=1, max_size=30),
    trace_id=st.text("0123456789abcdef", min_size=32, max_size=32),
    span_id=st.text("0123456789abcdef", min_size=16, max_size=16),
    parent_id=st.none() | st.text("0123456789abcdef", min_size=16, max_size=16),
    start=st.integers(min_value=0, max_value=2**63),
    end=st.integers(min_value=0, max_value=2**63),
    status=st.sampled_from(["unset", "ok", "error"]),
    status_message=st.text(max_size=30),
    attributes=st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=5),
    events=st.lists(
        st.builds(
            SpanEvent,
            name=st.text(max_size=10),
            time=st.integers(min_value=0, max_value=2**63),
            attributes=st.dictionaries(st.text(min_size=1, max_size=10), scalars, max_size=3),
        ),
        max_size=2,
    ).map(tuple),
)


@given(records)
def test_a_record_survives_a_json_line(record: SpanRecord) -> None:
    line = record.to_json()

    assert "\n" not in line
    assert SpanRecord.from_json(line) == record


def test_written_spans_load_back_in_order(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    child = SpanRecord("stage unit", "ab" * 16, "1" * 16, "2" * 16, T0, T0 + SECOND)
    root = run_span("run-a", T0)
    store.write("run-a", [child])
    store.write("run-a", [root])

    run = store.load("run-a")

    assert run.spans == (child, root)
    assert run.root == root
    assert run.status == "success"
    assert run.duration == 2 * SECOND
    assert (tmp_path / "runs" / "run-a" / "spans.jsonl").read_text().count("\n") == 2


def test_runs_are_listed_newest_first_and_latest_is_the_newest(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.write("middle", [run_span("middle", T0 + 60 * SECOND)])
    store.write("newest", [run_span("newest", T0 + 120 * SECOND)])
    store.write("oldest", [run_span("oldest", T0)])

    assert [r.run_id for r in store.runs()] == ["newest", "middle", "oldest"]
    assert store.latest().run_id == "newest"


def test_a_run_without_its_run_span_is_unfinished(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.write("crashed", [SpanRecord("stage a", "ab" * 16, "1" * 16, "2" * 16, T0, T0 + 5)])

    run = store.load("crashed")

    assert run.root is None
    assert run.status == "unfinished"
    assert run.started == T0


def test_a_run_is_found_by_a_unique_prefix(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.write("20250102T030405Z-abc123", [run_span("20250102T030405Z-abc123", T0)])
    store.write("20250103T000000Z-def456", [run_span("20250103T000000Z-def456", T0)])

    assert store.load("20250102").run_id == "20250102T030405Z-abc123"

    with pytest.raises(RunStoreError) as raised:
        store.load("2025")
    assert str(raised.value) == (
        f"{tmp_path}: 2 runs match '2025': 20250102T030405Z-abc123, 20250103T000000Z-def456\n"
        "  hint: give more characters of the run id"
    )

    with pytest.raises(RunStoreError) as raised:
        store.load("1999")
    assert str(raised.value) == (
        f"{tmp_path}: no run matches '1999'\n"
        "  hint: list the recorded runs with 'conveyor trace list'"
    )


def test_an_empty_store_has_no_latest_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "missing")

    assert store.runs() == []
    with pytest.raises(RunStoreError) as raised:
        store.latest()
    assert str(raised.value) == (
        f"{tmp_path / 'missing'}: no runs recorded yet\n"
        "  hint: run 'conveyor run' first, or point --dir at another run store"
    )


def test_a_last_line_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    root = run_span("cut", T0)
    store.write("cut", [root])
    with (tmp_path / "cut" / "spans.jsonl").open("a") as file:
        file.write('{"name":"stage b","trace_')

    assert store.load("cut").spans == (root,)


def test_a_damaged_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    path = tmp_path / "bad" / "spans.jsonl"
    path.parent.mkdir()
    good = run_span("bad", T0).to_json()
    path.write_text(f'{good}\n{{"name": 1}}\n{good}\n')

    with pytest.raises(RunStoreError) as raised:
        store.load("bad")

    assert str(raised.value) == (
        f"{path}: line 2 is not a span record (missing or malformed field 'trace_id')\n"
        "  hint: the file was edited or damaged; delete the run's directory"
    )


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ".hidden", ""])
def test_a_run_id_must_be_a_plain_directory_name(run_id: str, tmp_path: Path) -> None:
    with pytest.raises(RunStoreError) as raised:
        RunStore(tmp_path).write(run_id, [])

    assert str(raised.value) == (
        f"{tmp_path}: run id {run_id!r} is not a valid directory name\n"
        "  hint: use letters, digits, '.', '_' and '-' only"
    )
    assert list(tmp_path.iterdir()) == []


# --- faults on real filesystems (tests/tmpfs.py) -----------------------------------------


def test_a_read_only_store_is_refused_before_the_run(tmp_path: Path) -> None:
    with (
        tmpfs(tmp_path / "runs", read_only=True) as root,
        pytest.raises(RunStoreError) as raised,
    ):
        RunStore(root).prepare("20250102T030405Z-abc123")

    assert str(raised.value) == (
        f"{root}: cannot be written: Read-only file system\n"
        "  hint: make .conveyor/runs (next to conveyor.toml) writable, "
        "or run from a writable checkout"
    )


def test_a_full_store_keeps_every_line_it_holds_whole(tmp_path: Path) -> None:
    store_run = "20250102T030405Z-abc123"
    with tmpfs(tmp_path / "runs") as root:
        store = RunStore(root)
        store.prepare(store_run)
        store.write(store_run, [run_span("first", T0)])
        fill(root, leave=PAGE)
        big = SpanRecord("big", "0" * 32, "1" * 16, None, T0, T0, attributes={"x": "y" * 9000})
        with pytest.raises(OSError, match="No space left"):
            store.write(store_run, [big])
        lines = store.path(store_run).read_text().splitlines()

    assert [SpanRecord.from_json(line).name for line in lines] == ["conveyor.run"]
