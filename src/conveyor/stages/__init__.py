"""The six delivery stages, each a small async function over the engine port.

Stages know nothing of Dagger or Podman: they receive a :class:`DeliveryContext`
(configuration, engine, source SHA, where to put artifacts) and the outputs of
the stages before them, and return their own outputs as strings.
"""
