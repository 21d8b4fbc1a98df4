"""The registry's HTTP API: whether a tag exists, what it holds, who may ask.

:mod:`~conveyor.registry.answer` classifies answers (pure);
:mod:`~conveyor.registry.client` speaks HTTP with httpx.  Both engines'
callers use it where a registry must be asked directly: the Podman engine's
existence check and its read-back after a push.
"""

DEFAULT_TIMEOUT = 30.0
"""Seconds a connect, a read or a write may take before the registry counts as unreachable.

Here, not in the client: the engines name it without importing httpx.
"""
