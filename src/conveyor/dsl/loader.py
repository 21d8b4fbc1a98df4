"""Loading ``pipeline.py``: its ``@stage`` functions, or one error naming the file and line.

The file is imported from its path under a module name of its own, with its
directory on ``sys.path`` only while it is imported (so it can import its
neighbours).  A syntax error, a failing import or a wrong ``@stage`` is a
:class:`~conveyor.errors.ConfigError` naming ``file:line``: nothing has run.
A file already loaded and unchanged is not imported again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from conveyor.dsl.declare import DeclarationError, PythonStage, collecting
from conveyor.errors import ConfigError

_loaded: dict[tuple[Path, int, int], tuple[PythonStage, ...]] = {}


def load_pipeline(path: Path) -> tuple[PythonStage, ...]:
    """The stages ``path`` declares, in definition order.

    Raises:
        ConfigError: the file cannot be read or imported (``file:line`` and
            the error), a ``@stage`` is wrong, or it declares no stage.
    """
    path = path.resolve()
    try:
        stat = path.stat()
    except OSError as error:
        raise ConfigError(
            path, None, f"cannot be read: {error.strerror or error}", hint="check run.pipeline"
        ) from None
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _loaded:
        _loaded[key] = _import(path)
    return _loaded[key]


def _import(path: Path) -> tuple[PythonStage, ...]:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"conveyor_pipeline_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(path, None, "is not a Python file", hint="name a .py file")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.parent)
    sys.path.insert(0, directory)
    sys.modules[name] = module  # dataclasses and typing look their module up there
    try:
        with collecting() as stages:
            spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        where = f"{error.filename or path}:{error.lineno or 0}"
        raise ConfigError(where, None, f"SyntaxError: {error.msg}", hint=_HINT) from None
    except DeclarationError as error:
        sys.modules.pop(name, None)
        raise ConfigError(_line(path, error), None, str(error), hint=_HINT) from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 - any failure of the user's import
        sys.modules.pop(name, None)
        raise ConfigError(
            _line(path, error), None, f"{type(error).__name__}: {error}", hint=_hint(error)
        ) from None
    finally:
        if directory in sys.path:
            sys.path.remove(directory)
    if not stages:
        raise ConfigError(
            path,
            None,
            "declares no stage",
            hint="decorate async functions with @stage (from conveyor.dsl import stage), "
            "or drop run.pipeline",
        )
    return tuple(stages)


_HINT = "fix the file named by run.pipeline; nothing has run"


def _hint(error: BaseException) -> str:
    if isinstance(error, ModuleNotFoundError):
        return (
            f"install {error.name!r} where conveyor runs (its virtualenv, or the Dagger "
            "module's dependencies); nothing has run"
        )
    return _HINT


def _line(path: Path, error: BaseException) -> str:
    """``file:line`` of the deepest frame in ``path`` (the pipeline's own line)."""
    import traceback  # noqa: PLC0415 - only a pipeline that fails to load needs it

    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    return f"{path}:{frames[-1].lineno}" if frames else str(path)
