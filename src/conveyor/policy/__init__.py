"""Image policy.

:mod:`.reference` parses references, :mod:`.rules` checks one reference,
:mod:`.manifests` renders a manifest tree and checks every image in it.
"""
