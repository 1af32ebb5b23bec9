"""AWS Lambda entry points: short compositions of ccml's components.

A composition root: may import anything in ``ccml`` except ``ccml.api`` (the other composition).
"""
