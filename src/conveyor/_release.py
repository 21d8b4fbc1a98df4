"""The commit this distribution was built from, for ``conveyor init`` to pin callers by.

Empty in a checkout. The release workflow (.github/workflows/release.yml)
writes the tagged commit here before it builds the sdist and the wheel, so a
released CLI writes ``uses: …@<commit> # vX.Y.Z``: a tag can be moved, a
commit cannot.
"""

from __future__ import annotations

COMMIT = ""
