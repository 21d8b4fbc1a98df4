"""Conveyor: a GitOps delivery pipeline as Dagger functions.

test, build, scan, smoke, publish and manifest, each with the stages it
needs; ``ci`` runs the whole DAG (the user's stages too) and returns its
reports; ``stage --name X`` runs any one stage with what it needs; ``promote`` moves
the exact image one environment runs to another (production: a pull request).
"""

from conveyor_pipelines.main import Conveyor

__all__ = ["Conveyor"]
