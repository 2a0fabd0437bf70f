"""Geometry-aware rewards for texkit (one entry point per reward)."""
