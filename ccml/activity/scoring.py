"""The at-risk list: every enrollment of every running course, ranked by risk at the course's current day.

A course at day ``d`` is scored with the model of the latest horizon at or before ``d`` (the
earliest one while the course is younger than every horizon): that model was trained on tables
as of a day no later than the information at hand. Rank 1 is the enrollment most at risk in its
course; ties keep the entity order, so equal inputs give equal lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from ccml.core.activity import COURSE_COLUMN, ActivitySchema
from ccml.core.contracts import Predictor
from ccml.core.errors import ModelNotFoundError

HORIZON_ALIAS: Final = re.compile(r"^day-(\d{1,3})$")
# Factors per enrollment in the list's ``top_factors`` column.
TOP_FACTORS: Final = 3
# Feature rows and a count -> each row's top factors as one line of text (see HorizonModel).
FactorsText = Callable[[pd.DataFrame, int], list[str]]


def horizon_alias(day: int) -> str:
    """The store alias of horizon ``day``'s champion: ``day-14``."""
    return f"day-{day}"


def horizon_of(alias: str) -> int | None:
    """The horizon an alias names (``day-14`` -> 14), or None for another alias."""
    match = HORIZON_ALIAS.match(alias)
    return int(match.group(1)) if match else None


def pick_horizon(day: int, horizons: list[int]) -> int:
    """The latest horizon at or before ``day``, else the earliest one."""
    if not horizons:
        raise ModelNotFoundError("no horizon model in the store: train one with ccml train --logs ... --day D")
    earlier = [h for h in horizons if h <= day]
    return max(earlier) if earlier else min(horizons)


@dataclass(frozen=True)
class HorizonModel:
    """A horizon's model: the day it was trained for, a predictor of it, and (when the version has
    an explainer) what writes each row's top factors (the composition builds it from serving code)."""

    horizon: int
    predictor: Predictor
    factors: FactorsText | None = None


def rank_at_risk(schema: ActivitySchema, table: pd.DataFrame, models: Mapping[int, HorizonModel]) -> pd.DataFrame:
    """The ranked list: ids, course, day, horizon, model version, completion probability, risk rank and the
    ``TOP_FACTORS`` largest factors of each prediction (empty for a version without explanations)."""
    horizons = sorted(models)
    features = schema.feature_schema().feature_names
    parts = []
    for day, rows in table.groupby("day", sort=True):
        model = models[pick_horizon(int(str(day)), horizons)]
        inputs = rows[features].reset_index(drop=True)
        probability = model.predictor.predict_proba(inputs)
        factors = model.factors(inputs, TOP_FACTORS) if model.factors else [""] * len(inputs)
        parts.append(
            pd.DataFrame(
                {
                    schema.entity: rows[schema.entity].to_numpy(),
                    COURSE_COLUMN: rows[COURSE_COLUMN].to_numpy(),
                    "day": rows["day"].to_numpy(),
                    "horizon": model.horizon,
                    "model_version": model.predictor.version,
                    "completion_probability": np.round(probability, 6),
                    "top_factors": factors,
                }
            )
        )
    columns = [
        *(schema.entity, COURSE_COLUMN, "day", "horizon", "model_version", "completion_probability"),
        *("risk_rank", "top_factors"),
    ]
    if not parts:
        return pd.DataFrame(columns=columns)
    ranked = pd.concat(parts, ignore_index=True).sort_values(
        [COURSE_COLUMN, "completion_probability", schema.entity], kind="stable"
    )
    ranked["risk_rank"] = ranked.groupby(COURSE_COLUMN).cumcount() + 1
    return ranked[columns].reset_index(drop=True)
