"""Training: validation, the schema-built feature pipeline, trainers, evaluation, the promotion
gate, the retraining workflow (and its event-driven form), export for the serving backend, and
the synthetic data generator.

May import ``ccml.core``, ``ccml.models.serving`` (export checks parity with the serving
runtime), scikit-learn, pandas and the ONNX converters; never ``ccml.api``, ``ccml.storage``
or ``handlers`` (stores and sources arrive built, through the registry).
"""
