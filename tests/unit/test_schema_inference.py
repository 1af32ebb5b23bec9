"""``ccml schema infer``: a drafted schema always accepts the table it was drafted from."""

from __future__ import annotations

import string
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ccml.core.errors import SchemaError
from ccml.core.schema import FeatureSchema
from ccml.models.training.schema_inference import AmbiguousTargetError, api_name, infer_schema, widened_range
from ccml.models.training.schema_toml import render_schema
from ccml.models.training.validation import validate
from tests.helpers import csv_bytes, dataset_from_frame

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ENGAGEMENT = DATA / "course-engagement" / "online_course_engagement_data.csv"
KDD = DATA / "kddcup2015" / "kdd2015_per_enrollment_features.csv"

_CELL_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_.,%<>'\"", max_size=8)


def _column(rows: int) -> st.SearchStrategy[list[object]]:
    """One column of ``rows`` cells of a random kind, blanks included."""
    blank = st.none()
    kinds = [
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        st.integers(-1000, 1000),
        st.integers(0, 3),
        st.sampled_from(["true", "false", "yes", "no", "1", "0", "TRUE"]),
        st.sampled_from(["Arts", "Science", "Health"]),
        st.sampled_from(["0-35", "35-55", "55<=", "10-20%"]),
        _CELL_TEXT,
        st.just("same"),
    ]
    return st.sampled_from(kinds).flatmap(
        lambda kind: st.lists(st.one_of(kind, blank) if rows > 3 else kind, min_size=rows, max_size=rows)
    )


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, str]:
    rows = draw(st.integers(4, 40))
    width = draw(st.integers(1, 6))
    positive, negative = draw(st.sampled_from([("1", "0"), ("yes", "no"), ("Pass", "Fail"), ("2", "7")]))
    labels = draw(st.lists(st.sampled_from([positive, negative]), min_size=rows, max_size=rows))
    columns = {f"c{i}" if i % 3 else f"Col{i}Id": draw(_column(rows)) for i in range(width)}
    frame = pd.DataFrame({**columns, "outcome": labels})
    return frame, "outcome"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_any_table_validates_against_the_schema_inferred_from_it(drawn: tuple[pd.DataFrame, str]) -> None:
    frame, target = drawn
    dataset = dataset_from_frame(frame)
    unique = dataset.frame.drop_duplicates()
    counts = unique[target].value_counts()
    assume(len(counts) == 2 and counts.min() >= 2)  # validation's own rule for any target
    try:
        draft = infer_schema(dataset.frame, target=target)
    except SchemaError as exc:
        assume("no column can be a feature" not in str(exc))
        raise
    text = render_schema(draft, source="generated.csv")  # loads back as the same schema, or raises
    table = validate(dataset, FeatureSchema.from_toml(text), min_rows=2)
    assert table.rows == len(unique)
    assert set(table.columns_ignored) == set()  # every column is a feature, an id, or the target


@given(st.floats(-1e9, 1e9, allow_nan=False), st.floats(1e-6, 1e9))
def test_widened_range_holds_the_data_and_stays_non_negative_for_non_negative_data(low: float, span: float) -> None:
    high = low + span
    assume(high > low)
    lower, upper = widened_range(low, high, integer=False)
    assert lower <= low
    assert upper >= high
    if low >= 0:
        assert lower >= 0


def test_api_names_are_snake_case_and_unique() -> None:
    taken: set[str] = set()
    assert api_name("QuizScores", taken) == "quiz_scores"
    assert api_name("quiz scores", taken) == "quiz_scores_2"
    assert api_name("2ndTry", taken) == "f_2nd_try"
    assert api_name("HTTPStatus", taken) == "http_status"


def test_types_ids_constants_and_ordinal_bands_are_recognised() -> None:
    frame = pd.DataFrame(
        {
            "StudentID": [f"s{i}" for i in range(8)],
            "age_band": ["0-35", "35-55", "55<=", "0-35", "35-55", "0-35", "55<=", "0-35"],
            "region": ["North", "South", "North", "East", "North", "South", "North", "East"],
            "clicks": ["3", "10", "0", "7", "", "2", "5", "9"],
            "score": ["50.5", "61", "77.25", "80", "90", "42", "58", "66"],
            "disabled": ["Y", "N", "N", "N", "Y", "N", "N", "N"],
            "has_phone": ["yes", "no", "yes", "yes", "no", "yes", "no", "yes"],
            "term": ["2024J"] * 8,
            "final_result": ["Pass", "Withdrawn", "Fail", "Distinction", "Pass", "Withdrawn", "Pass", "Fail"],
        }
    ).astype(object)
    draft = infer_schema(frame, target="final_result")
    schema = draft.schema
    kinds = {f.column: f.type for f in schema.features}
    assert kinds == {
        "age_band": "ordinal",
        "region": "categorical",
        "clicks": "integer",
        "score": "numeric",
        "disabled": "categorical",  # Y/N are not tokens validation reads as booleans
        "has_phone": "boolean",
    }
    assert schema.id_columns == ["StudentID", "term"]
    assert schema.feature("age_band").categories == ["0-35", "35-55", "55<="]
    assert schema.feature("region").categories == ["North", "East", "South"]  # most frequent first, ties by name
    assert schema.target.completed_value == ["Pass", "Fail", "Distinction"]  # all but Withdrawn
    low, high = schema.feature("score").bounds
    assert low <= 42
    assert high >= 90
    assert low >= 0
    text = render_schema(draft, source="students.csv")
    assert "# counts: North 4, East 2, South 2" in text
    assert "guessed ordinal" in text


def test_two_binary_columns_without_a_telling_name_are_ambiguous() -> None:
    frame = pd.DataFrame({"a": ["0", "1"] * 5, "b": ["x", "y", "y", "x", "x"] * 2, "n": list(map(str, range(10)))})
    with pytest.raises(AmbiguousTargetError, match="a, b; pass --target") as raised:
        infer_schema(frame.astype(object))
    assert raised.value.candidates == ["a", "b"]


def test_a_named_target_that_is_no_column_is_refused_with_the_columns() -> None:
    frame = pd.DataFrame({"a": ["0", "1"], "b": ["1", "2"]}).astype(object)
    with pytest.raises(SchemaError, match="--target 'label' is not a column of the file; columns: a, b"):
        infer_schema(frame, target="label")


@pytest.mark.parametrize("path", [ENGAGEMENT, KDD], ids=["engagement", "kddcup2015"])
def test_the_draft_of_a_real_table_validates_it_and_finds_its_target_and_ids(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"real dataset not available: {path} (see ../shared/data/README.md)")
    dataset = dataset_from_frame(pd.read_csv(path, dtype=str, keep_default_na=False), origin=path.name)
    draft = infer_schema(dataset.frame, name=path.stem)
    schema = FeatureSchema.from_toml(render_schema(draft, source=path.name))
    table = validate(dataset, schema)
    assert table.rows > 1000
    if path == ENGAGEMENT:
        assert schema.target.column == "CourseCompletion"
        assert schema.id_columns == ["UserID"]
        assert len(schema.features) == 7
    else:
        assert schema.target.column == "label"
        assert schema.id_columns == ["enrollment_id", "span_days", "n_rows"]  # the id, then two constants
        assert schema.feature("course_file").type == "categorical"


def test_csv_bytes_round_trip_keeps_the_header() -> None:
    # The property test writes frames with pandas and reads them as ccml does; a header cell
    # must come back as written for the target name to be found.
    frame = pd.DataFrame({"Col0Id": ["1"], "outcome": ["yes"]})
    assert csv_bytes(frame).splitlines()[0] == b"Col0Id,outcome"
