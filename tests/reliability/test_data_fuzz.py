"""Data fuzzing: hostile CSV files through the parser, validation and the whole retrain path.

Whatever the bytes, only ccml's typed errors may come out, with a readable message of bounded
size, and a failed retrain writes nothing to the model store. Cases whose damage makes the
outcome certain (a long row, a repeated header name, a blank column, ...) must also get that
outcome, naming the line or column.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ccml.core.errors import CcmlError
from ccml.core.settings import Settings
from ccml.core.types import Dataset
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.csv_text import read_csv_text
from ccml.storage.local import LocalDataSource, LocalModelStore
from tests.helpers import FAST_PARAMS, tree_digest
from tests.reliability.csv_strategies import SCHEMA, STRATEGIES, Case
from tests.reliability.figures import record, scale

MESSAGE_LIMIT = 4096
MIN_ROWS = 10  # below the default 50, so that many generated tables can pass validation
ORIGIN = "fuzz.csv"
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
_STATS: dict[str, Counter[str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _record_figures() -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds = round(time.perf_counter() - started, 1)
    for case, stats in sorted(_STATS.items()):
        record(
            "data_fuzz",
            case,
            cases=stats["cases"],
            failures=stats["failures"],
            successes=stats["successes"],
            source_errors=stats["DataSourceError"],
            validation_errors=stats["DataValidationError"],
            other_typed_errors=stats["cases"]
            - stats["successes"]
            - stats["failures"]
            - stats["DataSourceError"]
            - stats["DataValidationError"],
            max_message_chars=stats["max_message_chars"],
            module_seconds=seconds,
        )


def _check_message(error: CcmlError) -> str:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert len(message) <= MESSAGE_LIMIT, f"{len(message):,} characters: {message[:300]!r}..."
    assert "Traceback" not in message
    assert 'File "' not in message
    return message


def _parse_and_validate(data: bytes) -> pd.DataFrame:
    frame = read_csv_text(data, ORIGIN)
    data.decode("utf-8")  # the contract: only UTF-8 text parses
    assert frame.columns.is_unique
    validate(Dataset(frame, "0" * 64, {"backend": "test", "location": ORIGIN}, ORIGIN), SCHEMA, min_rows=MIN_ROWS)
    return frame


def _outcome(data: bytes) -> tuple[pd.DataFrame | None, CcmlError | None]:
    try:
        return _parse_and_validate(data), None
    except CcmlError as error:
        _check_message(error)
        return None, error


def _check(case: Case) -> tuple[str, int]:
    """Run one case and check it against the contract; return what came of it and its message size."""
    frame, error = _outcome(case.data)
    if case.error is not None:
        assert isinstance(error, case.error), f"expected {case.error.__name__}, got {error!r}"
    if case.forbidden is not None:
        assert not isinstance(error, case.forbidden), error
    for mention in case.mentions:
        assert mention in str(error), f"{mention!r} not in {error}"
    if case.same_as is not None:
        reference, reference_error = _outcome(case.same_as)
        assert type(error) is type(reference_error)
        if frame is not None and reference is not None:
            pd.testing.assert_frame_equal(frame, reference)
    return ("successes", 0) if error is None else (type(error).__name__, len(str(error)))


def _counted(kind: str, case: Case, run: Callable[[Case], tuple[str, int]]) -> None:
    stats = _STATS.setdefault(kind, Counter())
    stats["cases"] += 1
    try:
        outcome, message_chars = run(case)
    except BaseException:
        stats["failures"] += 1
        raise
    stats[outcome] += 1
    stats["max_message_chars"] = max(stats["max_message_chars"], message_chars)


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_hostile_csv_gives_a_table_or_a_typed_bounded_error(kind: str) -> None:
    @hypothesis_settings(max_examples=scale(40, 1000), deadline=None, suppress_health_check=_SLOW)
    @given(case=STRATEGIES[kind])
    def run(case: Case) -> None:
        _counted(kind, case, _check)

    run()


def _retrain(case: Case) -> tuple[str, int]:
    """The whole path: a file on disk, a local data source, a retrain into an empty store."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "data.csv"
        path.write_bytes(case.data)
        settings = Settings(home=root / "home", min_rows=MIN_ROWS, trainer_params=FAST_PARAMS["random_forest"])
        store = LocalModelStore(settings.models_root)
        workflow = RetrainWorkflow.from_settings(settings, store, RandomForestTrainer.from_settings(settings))
        try:
            workflow.run(LocalDataSource(path))
        except CcmlError as error:
            message = _check_message(error)
            assert tree_digest(settings.models_root) == {}, "a failed retrain wrote to the store"
            outcome = (type(error).__name__, len(message))
        else:
            assert [v.id for v in store.versions()], "a successful retrain saved no version"
            outcome = ("successes", 0)
        assert path.read_bytes() == case.data
    return outcome


@hypothesis_settings(max_examples=scale(10, 400), deadline=None, suppress_health_check=_SLOW)
@given(case=st.one_of(*STRATEGIES.values()))
def test_retrain_on_hostile_csv_raises_typed_errors_and_writes_nothing(case: Case) -> None:
    _counted("full_path", case, _retrain)
