"""Models, in two packages that show the two flows: ``training`` (validation, features,
trainers, evaluation, the promotion gate, the retraining workflow, export for serving) and
``serving`` (record encoding, the input plan, predictors, the champion watcher, request
records). ``training`` may import ``serving`` (export parity); ``serving`` never imports
``training``, scikit-learn or pandas."""
