"""Synthetic activity logs shaped like KDD Cup 2015's: the project's default event data.

The generative model, for course ``c``, enrollment ``i`` and course day ``t`` (0-based):

1. Course ``c`` starts a week after course ``c - 1``, with an activity shift ``b_c ~ N(0, 0.3)``,
   an intensity ``m_c ~ LogNormal(0, 0.25)`` and a mix of event types: KDD's (access 38%, problem
   19%, ...) tilted by ``s_c ~ N(0, 0.7)`` to video (``s_c > 0``) or problems, jittered (Dirichlet).
2. Enrollment ``i`` has a latent engagement ``z_i ~ N(0, 1)``, its own mix (a Dirichlet draw
   around its course's, problems weighted by ``e^(0.3 z_i)``) and a join day: day 0 for 40%,
   else ``floor(Exp(days/5 * e^(-0.4 z_i)))`` (the engaged start sooner), capped to the window.
3. It drops out with probability ``sigmoid(a - 2.4 z_i)``, ``a`` solved so the share is
   ``dropout_rate``. A dropout stops after day ``S_i = join_i + ceil(1.3 days Beta(1.1, 1.8))``
   (half of them in the first half; one in ten only after the window, looking like a completer).
   It fades on the way (log-odds ``- f_i sqrt(p)``, log event rate half that, ``f_i ~ U(0.5, 3)``,
   ``p = (t - join_i) / (S_i - join_i)``), then looks in on ~5% of days. Completers stay to the end.
4. Daily activity log-odds are ``-1.5 + b_c + 1.2 z_i - 0.04 t`` minus the fade, ``+5`` on the
   join day (whoever shows up looks around once), ``+0.5`` on each course week's last day (a
   deadline), ``-3`` in a quiet spell (half the enrollments have one, of 2 + Poisson(3) days).
5. Whatever the log-odds: 8% of dropouts and 1% of completers never show up, and 12% of
   enrollments are active only in one to three bursts of one to three days (before any stop).
6. An active day has ``1 + NegBin(0.8, mean mu - 1)`` events, ``mu = 16 m_c e^(0.6 z_i)`` (faded),
   split over the types by a multinomial draw on the enrollment's mix (median ~14 per active day,
   mean ~29, KDD's 11 and 27), in one session from near the enrollment's hour (``N(15, 4)``), in
   shuffled order, ~45 s apart.

Engagement drives both label and activity, so the first week already predicts dropout (ROC AUC
~0.73 from per-type counts and active days of days 0-6; KDD's logs ~0.69); the stops make the
signal grow with the window (~0.90 from 30 days; KDD ~0.86). ~9% never show any event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import expit

EVENT_TYPES: Final = ("access", "discussion", "navigate", "page_close", "problem", "video", "wiki")
EVENT_COLUMNS: Final = tuple(f"event_{kind}" for kind in EVENT_TYPES)
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
_BASE_MIX: Final = np.array([0.38, 0.08, 0.11, 0.13, 0.19, 0.105, 0.007])
_PROBLEM: Final = EVENT_TYPES.index("problem")
_VIDEO: Final = EVENT_TYPES.index("video")
_COURSE_GAP_DAYS: Final = 7
_DAY_SECONDS: Final = 86_400
_MAX_DAILY_EVENTS: Final = 1_500  # KDD's busiest enrollment-day has 824; a day's session must fit in it

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class SyntheticLogs:
    """Generated logs; every event lies within its course's ``days``-day window.

    ``events``: ``enrollment_id, course_id, timestamp, event``, one row per event, by enrollment
    and time (as KDD's ``log_train.csv``), no two events of an enrollment at the same second.
    ``labels``: ``enrollment_id, label`` (1 = dropout). ``calendar``: ``course_id, start`` (ISO
    date). ``enrollments``: ``enrollment_id, course_id, student_id``, also for those without any event;
    ``events`` carry the ``student_id`` too (a student may take several courses).
    """

    events: pd.DataFrame
    labels: pd.DataFrame
    calendar: pd.DataFrame
    enrollments: pd.DataFrame
    days: int


def generate_logs(
    *,
    courses: int = 4,
    enrollments_per_course: int = 300,
    days: int = 30,
    seed: int = 0,
    start: date = date(2024, 1, 8),
    dropout_rate: float = 0.6,
) -> SyntheticLogs:
    """Generate the event logs of ``courses`` courses of ``days`` days; deterministic for a seed."""
    for name, value in (("courses", courses), ("enrollments_per_course", enrollments_per_course), ("days", days)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if not 0.001 <= dropout_rate <= 0.999:
        raise ValueError(f"dropout_rate must lie within [0.001, 0.999], got {dropout_rate}")
    rng = np.random.default_rng(seed)
    n = courses * enrollments_per_course
    course = np.repeat(np.arange(courses), enrollments_per_course)
    shift, intensity, course_mix = _courses(rng, courses)
    student = _students(np.random.default_rng([seed, 1]), courses, enrollments_per_course)
    # A student's enrollments share most of their engagement: folds that split a student leak.
    engagement = 0.8 * rng.standard_normal(int(student.max()) + 1)[student] + 0.6 * rng.standard_normal(n)
    intercept = float(brentq(lambda a: expit(a - 2.4 * engagement).mean() - dropout_rate, -40.0, 40.0))
    dropout = rng.random(n) < expit(intercept - 2.4 * engagement)
    late = np.floor(rng.exponential(days / 5 * np.exp(-0.4 * engagement)))
    join = np.where(rng.random(n) < 0.4, 0, np.minimum(late, days - 1)).astype(np.int64)
    stop = np.where(dropout, join + np.ceil(1.3 * days * rng.beta(1.1, 1.8, n)), np.inf)
    progress = (np.arange(days) - join[:, None]) / np.maximum(stop - join, 1.0)[:, None]
    fade = np.where(dropout, rng.uniform(0.5, 3.0, n), 0.0)[:, None] * np.sqrt(np.clip(progress, 0.0, 1.0))
    active = _active_days(rng, engagement, dropout, shift[course], join, stop, fade)
    counts = _counts(rng, active, engagement, intensity[course], course_mix[course], fade)
    course_ids = np.array([f"C{c + 1:03d}" for c in range(courses)], dtype=object)
    # Through the ordinal: a datetime start would otherwise put its time into every date.
    starts = [date.fromordinal(start.toordinal() + _COURSE_GAP_DAYS * c) for c in range(courses)]
    ids = np.arange(1, n + 1, dtype=np.int64)
    students = np.array([f"S{k + 1:05d}" for k in range(int(student.max()) + 1)], dtype=object)[student]
    events = _events(rng, counts, course, course_ids, starts)
    events["student_id"] = pd.Series(students[events["enrollment_id"].to_numpy() - 1], dtype="str")
    return SyntheticLogs(
        events=events,
        labels=pd.DataFrame({"enrollment_id": ids, "label": dropout.astype(np.int64)}),
        calendar=pd.DataFrame({"course_id": course_ids, "start": [d.isoformat() for d in starts]}),
        enrollments=pd.DataFrame(
            {"enrollment_id": ids, "course_id": course_ids[course], "student_id": pd.Series(students, dtype="str")}
        ),
        days=days,
    )


def _students(rng: np.random.Generator, courses: int, per_course: int) -> Ints:
    """Each enrollment's student: a course draws its students without replacement from one pool, so
    about 0.4 enrollments in 1.4 belong to a student who also takes another course."""
    pool = max(per_course, round(courses * per_course / 1.4))
    return np.concatenate([rng.choice(pool, per_course, replace=False) for _ in range(courses)]).astype(np.int64)


def _courses(rng: np.random.Generator, courses: int) -> tuple[Floats, Floats, Floats]:
    style = rng.normal(0.0, 0.7, courses)
    tilt = np.ones((courses, len(EVENT_TYPES)))
    tilt[:, _VIDEO], tilt[:, _PROBLEM] = np.exp(style), np.exp(-style)
    tilted = _BASE_MIX * tilt
    mix = _dirichlet(rng, 300.0 * tilted / tilted.sum(axis=1, keepdims=True))
    return rng.normal(0.0, 0.3, courses), rng.lognormal(0.0, 0.25, courses), mix


def _dirichlet(rng: np.random.Generator, alpha: Floats) -> Floats:
    """One Dirichlet draw per row of ``alpha`` (``Generator.dirichlet`` takes one vector per call)."""
    gamma = rng.standard_gamma(alpha)
    return np.asarray(gamma / gamma.sum(axis=1, keepdims=True), dtype=np.float64)


def _active_days(
    rng: np.random.Generator, engagement: Floats, dropout: Bools, shift: Floats, join: Ints, stop: Floats, fade: Floats
) -> Bools:
    n, days = int(fade.shape[0]), int(fade.shape[1])  # ints: the stubs type shape entries as Any
    t = np.arange(days)[None, :]
    logit = -1.5 + shift[:, None] + 1.2 * engagement[:, None] - 0.04 * t - fade
    logit += 0.5 * (t % 7 == 6) + 5.0 * (t == join[:, None])
    gap_start = rng.integers(0, days, n)[:, None]
    gap_length = np.where(rng.random(n) < 0.5, 2 + rng.poisson(3.0, n), 0)[:, None]
    logit -= 3.0 * ((t >= gap_start) & (t < gap_start + gap_length))
    logit = np.where(t >= stop[:, None], -3.0, logit)  # a dropout may still look in, rarely
    active = (t >= join[:, None]) & (rng.random((n, days)) < expit(logit))
    # Up to three bursts, starting within [join, stop) so that a dropout's bursts come before its stop.
    span = np.minimum(stop, days) - join
    burst_start = join[:, None] + np.floor(rng.random((n, 3)) * span[:, None]).astype(np.int64)
    burst_end = burst_start + rng.integers(1, 4, (n, 3))
    used = np.arange(3)[None, :] < rng.integers(1, 4, n)[:, None]
    inside = (t[..., None] >= burst_start[:, None, :]) & (t[..., None] < burst_end[:, None, :])
    in_burst = (inside & used[:, None, :]).any(axis=2)
    bursty = rng.random(n) < 0.12
    active = np.where(bursty[:, None], in_burst & (t < stop[:, None]) & (rng.random((n, days)) < 0.85), active)
    no_show = rng.random(n) < np.where(dropout, 0.08, 0.01)
    result: Bools = active & ~no_show[:, None]
    return result


def _counts(
    rng: np.random.Generator, active: Bools, engagement: Floats, intensity: Floats, course_mix: Floats, fade: Floats
) -> Ints:
    mix = course_mix.copy()
    mix[:, _PROBLEM] *= np.exp(0.3 * engagement)
    mix = _dirichlet(rng, 40.0 * mix / mix.sum(axis=1, keepdims=True))
    rows, days = np.nonzero(active)
    mean = 16.0 * intensity[rows] * np.exp(0.6 * engagement[rows] - 0.5 * fade[rows, days])
    totals = np.minimum(1 + rng.negative_binomial(0.8, 0.8 / (0.8 + np.maximum(mean - 1, 0.01))), _MAX_DAILY_EVENTS)
    counts = np.zeros((*active.shape, len(EVENT_TYPES)), dtype=np.int64)
    counts[rows, days] = rng.multinomial(totals, mix[rows])
    return counts


def _events(
    rng: np.random.Generator, counts: Ints, course: Ints, course_ids: NDArray[Any], starts: list[date]
) -> pd.DataFrame:
    n, days, kinds = counts.shape
    cells = np.repeat(np.arange(counts.size), counts.ravel())
    # Shuffle the types within each enrollment-day (cells come type by type), keeping the days in order.
    cells = cells[np.argsort(cells // kinds + rng.random(len(cells)))]
    enrollment, day, kind = cells // (days * kinds), cells // kinds % days, cells % kinds
    session_of = cells // kinds  # an enrollment's events of one day make one session
    first = np.flatnonzero(np.diff(session_of, prepend=-1) != 0)
    last = np.flatnonzero(np.diff(session_of, append=-1) != 0)
    size = counts.sum(axis=2)[enrollment, day]
    # Gaps of at least a second (no two events of an enrollment share a stamp), ~45 s on average,
    # shorter on days so busy that the session would not fit in the day.
    elapsed = np.cumsum(1 + np.floor(rng.exponential(1.0, len(cells)) * np.minimum(44.0, 60_000 / size - 1)))
    offset = elapsed - np.repeat(elapsed[first], last - first + 1)
    span = np.zeros((n, days))
    span[enrollment[last], day[last]] = offset[last]
    hour = np.clip(rng.normal(15.0, 4.0, n), 0.0, 23.0)
    session = np.clip(hour[:, None] * 3600 + rng.normal(0.0, 5400.0, (n, days)), 0, _DAY_SECONDS - 1 - span)
    second = np.minimum(session[enrollment, day] + offset, _DAY_SECONDS - 1).astype(np.int64)
    course_day = np.array([(s - starts[0]).days for s in starts])[course[enrollment]] + day
    # Stamps are a date string plus a time-of-day string from two small tables: formatting millions
    # of datetimes one by one (strftime) is several times slower.
    dates = np.array([(starts[0] + timedelta(days=k)).isoformat() for k in range(int(course_day.max(initial=0)) + 1)])
    clock = np.datetime_as_string(np.arange(_DAY_SECONDS).astype("datetime64[s]"), unit="s")
    times = np.char.add("T", np.char.partition(clock, "T")[:, 2]).astype(object)
    return pd.DataFrame(
        {
            "enrollment_id": (enrollment + 1).astype(np.int64),
            "course_id": pd.Series(course_ids[course[enrollment]], dtype="str"),
            "timestamp": pd.Series(dates.astype(object)[course_day] + times[second], dtype="str"),
            "event": pd.Series(np.array(EVENT_TYPES, dtype=object)[kind], dtype="str"),
        }
    )
