"""AWS Lambda entry points: short compositions of ccml's components."""
