"""Makes ``import app`` work when pytest runs from this directory."""
