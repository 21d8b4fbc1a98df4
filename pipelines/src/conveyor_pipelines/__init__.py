"""Conveyor: a GitOps delivery pipeline as Dagger functions.

test, build, scan, smoke, publish and manifest, each with what it needs;
``ci`` runs the whole DAG and ``promote`` moves a published image on.
"""

from conveyor_pipelines.main import Conveyor

__all__ = ["Conveyor"]
