"""Loading pipeline.py: its stages in definition order, or one error naming the file and line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conveyor.dsl.loader import load_pipeline
from conveyor.errors import ConfigError

PIPELINE = """\
from conveyor.dsl import stage
from helpers import NEEDS


@stage(needs=NEEDS)
async def zeta(ctx):
    return {"a": "1"}


def make(name):
    @stage(name=name)
    async def made(ctx):
        return None

    return made


alpha = make("alpha")
"""


def write(directory: Path, text: str, name: str = "pipeline.py") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_stages_come_in_definition_order_and_may_import_their_neighbours(tmp_path: Path) -> None:
    write(tmp_path, "NEEDS = ['test']\n", "helpers.py")
    path = write(tmp_path, PIPELINE)

    stages = load_pipeline(path)

    assert [s.name for s in stages] == ["zeta", "alpha"]
    assert stages[0].needs == ("test",)
    assert (stages[0].file, stages[0].line) == (path, 5)
    # the directory was on sys.path only while importing
    assert str(tmp_path) not in sys.path


def test_an_unchanged_file_is_not_imported_again_a_changed_one_is(tmp_path: Path) -> None:
    counter = tmp_path / "imports.txt"
    text = (
        "from conveyor.dsl import stage\n"
        f"with open({str(counter)!r}, 'a') as f:\n"
        "    f.write('x')\n"
        "@stage\nasync def {name}(ctx): pass\n"
    )
    path = write(tmp_path, text.replace("{name}", "one"))

    first = load_pipeline(path)
    again = load_pipeline(path)
    write(tmp_path, text.replace("{name}", "two-two").replace("two-two", "two_two"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    changed = load_pipeline(path)

    assert first is again
    assert [s.name for s in changed] == ["two-two"]
    assert counter.read_text() == "xx"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("from conveyor.dsl import stage\n@stage\nasync def lint(ctx)\n    pass\n", 3, None),
        ("import os\nimport no_such_module_here\n", 2, None),
        (
            "from conveyor.dsl import stage\n\n\n@stage(needs='build')\nasync def lint(ctx): ...\n",
            4,
            "@stage lint: needs='build' is a string; write needs=['build']",
        ),
        ("def f():\n    raise RuntimeError('boom')\n\nf()\n", 2, "RuntimeError: boom"),
        ("import sys\nsys.exit(2)\n", 2, "SystemExit: 2"),
    ],
    ids=["syntax", "import", "declaration", "runtime", "exit"],
)
def test_a_file_that_does_not_load_names_its_line(
    tmp_path: Path, text: str, line: int, problem: str | None
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as raised:
        load_pipeline(path)

    assert str(raised.value.path) == f"{path}:{line}"
    if problem is not None:
        assert raised.value.problem == problem
    assert "nothing has run" in (raised.value.hint or "")
    assert str(tmp_path) not in sys.path
    # a module that failed to load is not left behind
    assert all(getattr(m, "__file__", None) != str(path) for m in list(sys.modules.values()))


def test_the_errors_say_what_to_do(tmp_path: Path) -> None:
    syntax = write(tmp_path, "async def lint(ctx)\n    pass\n", "syntax.py")
    missing = write(tmp_path, "import no_such_module_here\n", "missing.py")

    with pytest.raises(ConfigError) as bad_syntax:
        load_pipeline(syntax)
    with pytest.raises(ConfigError) as bad_import:
        load_pipeline(missing)

    assert bad_syntax.value.problem == "SyntaxError: expected ':'"
    assert bad_import.value.problem == (
        "ModuleNotFoundError: No module named 'no_such_module_here'"
    )
    assert bad_import.value.hint is not None
    assert bad_import.value.hint.startswith("install 'no_such_module_here' where conveyor runs")


def test_a_file_without_stages_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "X = 1\n")

    with pytest.raises(ConfigError) as raised:
        load_pipeline(path)

    assert raised.value.path == path
    assert raised.value.problem == "declares no stage"


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_pipeline(tmp_path / "absent.py")

    assert raised.value.problem == "cannot be read: No such file or directory"
