"""In-process: the ``/predict`` endpoint's own work for one record, with and without ``?explain=true``.

``PredictEndpoint.content`` is what the pure-ASGI route runs per request between reading the body
and sending the answer: validate the record, predict (ONNX), and for an explained request walk every
tree of the explainer and pick the top factors, then write the JSON. The two kinds of call alternate
in blocks, so machine noise hits both alike. HTTP's own cost is the http section's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import Plan, Report

SECTION = "in_process"
BLOCK = 50
BUDGET_US = 2000.0


def run(report: Report, plan: Plan, home: Path, alternate: Any) -> dict[str, Any]:
    """Time both calls (``alternate`` is the in-process section's block-alternating timer)."""
    from ccml.api.bodies import BodyModels
    from ccml.api.metrics import ApiMetrics
    from ccml.api.predict import PredictEndpoint
    from ccml.core.components import build_model_store
    from ccml.core.settings import Settings
    from ccml.models.serving.explanations import ExplainerSlot
    from ccml.models.serving.onnx import OnnxPredictor
    from ccml.models.serving.watcher import ChampionWatcher

    settings = Settings(home=home)
    schema = settings.feature_schema()
    watcher = ChampionWatcher(build_model_store(settings), OnnxPredictor, schema)
    if watcher.check().version is None:
        raise RuntimeError("no champion to explain")
    endpoint = PredictEndpoint(
        watcher, ApiMetrics(), BodyModels(schema, settings.max_batch).record, ExplainerSlot(settings.explain_top)
    )
    body = json.dumps(schema.example_record()).encode()
    plain: dict[str, Any] = {"query_string": b""}
    explained: dict[str, Any] = {"query_string": b"explain=true"}
    answer = json.loads(endpoint.content(body, "application/json", explained))
    if abs(answer["explanation"]["score"] - answer["probability"]) > 1e-5:
        raise RuntimeError(f"the explanation does not add up to the probability: {answer}")
    for scope in (plain, explained):
        for _ in range(30):
            endpoint.content(body, "application/json", scope)
    timings = alternate(
        {
            "plain": lambda: endpoint.content(body, "application/json", plain),
            "explained": lambda: endpoint.content(body, "application/json", explained),
        },
        plan.one_row_calls,
        BLOCK,
    )
    calls = f"{plan.one_row_calls:,} calls each in alternating blocks of {BLOCK}"
    what = f"PredictEndpoint.content, one record (JSON body -> JSON answer), {calls}"
    plain_us = timings["plain"]["median_us"]
    report.add(SECTION, "predict_endpoint_median_us", f"/predict endpoint median, {what}", plain_us, "µs")
    explained_us = timings["explained"]["median_us"]
    report.add(
        SECTION,
        "explained_predict_endpoint_median_us",
        f"/predict?explain=true endpoint median ({settings.explain_top} factors), {what}",
        explained_us,
        "µs",
        compared_to="of the plain endpoint's median",
        ratio=explained_us / plain_us,
        target=f"<= {BUDGET_US:g} µs",
        met=explained_us <= BUDGET_US,
    )
    report.add(
        SECTION,
        "explained_predict_endpoint_p99_us",
        "/predict?explain=true endpoint p99 (as above)",
        timings["explained"]["p99_us"],
        "µs",
    )
    return {"timings": timings, "factors": settings.explain_top, "example": answer["explanation"]}
