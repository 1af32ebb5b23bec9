"""Core: the contracts and what they stand on: settings, registry, errors, logging, the feature
schema, artifacts and manifests, and the model store's semantics over its storage primitive.

May import only the standard library and third-party packages: nothing else from ``ccml``
(implementations are named by dotted paths in the registry). Every other package builds on it.
"""
