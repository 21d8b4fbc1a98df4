"""Engines: the container operations stages need, behind one port."""
