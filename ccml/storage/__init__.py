"""Storage backends: the storage primitive (``ObjectStore`` hooks) and data sources, local and S3.

May import ``ccml.core`` only (and boto3, lazily, in ``s3``); never ``ccml.models``, ``ccml.api``,
``ccml.cli`` or ``handlers``.
"""
