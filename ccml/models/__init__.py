"""Models: validation, the schema-built feature pipeline, trainers, predictors, evaluation,
the promotion gate, the retraining workflow and the synthetic data generator."""
