"""A run imports the later stages' modules while the first stages wait on their tools.

The modules come from the real example's pipeline; the import runs in a fresh
interpreter, so that what it loads is seen in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import delivery_pipeline, stage_modules

SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "conveyor.toml"


def test_the_example_lists_each_stage_module_once_in_run_order(tmp_path: Path) -> None:
    config = load_config(HELLO, env={})
    pipeline = delivery_pipeline(DeliveryContext(config, NoEngine(), SHA, tmp_path))

    modules = stage_modules(pipeline, pipeline.order)

    assert sorted(modules) == [
        "conveyor.stages.build",
        "conveyor.stages.container",  # lint and integration, [stages.<name>]
        "conveyor.stages.manifest",  # manifest and policy
        "conveyor.stages.publish",
        "conveyor.stages.scan",
        "conveyor.stages.smoke",
        "conveyor.stages.test",
    ]
    # in the order the stages run: build, then publish, then manifest
    order = [modules.index(f"conveyor.stages.{m}") for m in ("build", "publish", "manifest")]
    assert order == sorted(order)
    assert stage_modules(pipeline, ["smoke", "scan", "smoke"]) == [
        "conveyor.stages.smoke",
        "conveyor.stages.scan",
    ]


def test_import_ahead_loads_the_modules_and_leaves_a_broken_one_to_its_stage() -> None:
    code = (
        "import json, sys, anyio\n"
        "from conveyor.stages.delivery import import_ahead\n"
        "before = 'httpx' in sys.modules\n"
        "anyio.run(import_ahead, ['conveyor.stages.no_such_stage', 'conveyor.stages.smoke'])\n"
        "print(json.dumps([before, 'conveyor.stages.smoke' in sys.modules,"
        " 'httpx' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(done.stdout) == [False, True, True]
    assert done.stderr == ""


def test_import_ahead_waits_its_delay_first_and_a_run_ended_before_imports_nothing() -> None:
    code = (
        "import json, sys, time, anyio\n"
        "from conveyor.stages.delivery import import_ahead\n"
        "async def run(delay, within):\n"
        "    with anyio.move_on_after(within):\n"
        "        await import_ahead(['conveyor.stages.smoke'], delay=delay)\n"
        "    return 'conveyor.stages.smoke' in sys.modules\n"
        "ended_early = anyio.run(run, 5.0, 0.2)\n"
        "started = time.monotonic()\n"
        "after_delay = anyio.run(run, 0.2, 30.0)\n"
        "print(json.dumps([ended_early, after_delay, time.monotonic() - started >= 0.2]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(done.stdout) == [False, True, True]
    assert done.stderr == ""
