"""Core: settings, contracts, registry, errors, logging and the feature schema.

Nothing in ``ccml.core`` imports from the rest of ``ccml``; every other package builds on it.
"""
