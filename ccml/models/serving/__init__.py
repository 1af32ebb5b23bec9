"""Serving: records -> float rows (``encoding``), the fitted feature step as data
(``input_plan``), the predictors (``onnx``, ``sklearn``), the champion watcher (hot reload)
and the request record models.

May import ``ccml.core``, NumPy, pydantic and ONNX Runtime; never ``ccml.models.training``,
scikit-learn or pandas (import-linter checks it), so the API starts without the training stack.
"""
