"""Tests of the delivery stages."""
