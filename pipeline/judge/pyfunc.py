"""The judge as an MLflow pyfunc model: ``mlflow.pyfunc.load_model("models:/zhufu-judge@…")``.

:class:`JudgeModel` wraps a saved judge state (``judge.json``, logged as the model's
``judge`` artifact). ``predict`` takes rows with the columns ``query`` and ``response`` (a
pandas DataFrame, or a list of such dicts) and returns one row per greeting: ``score`` (the
overall 1–5 score), ``label`` (1 good, 0 bad) and the five dimension scores. A judge whose
backend is an LLM endpoint calls that endpoint; the offline judge needs nothing but Zhufu.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from zhufu.pipeline import aio
from zhufu.pipeline.judge.principles import DIMENSION_KEYS

INPUT_COLUMNS = ("query", "response")
OUTPUT_COLUMNS = ("score", "label", *DIMENSION_KEYS)
#: The key of the judge state folder in the pyfunc model's artifacts.
ARTIFACT_KEY = "judge"


def signature() -> Any:
    """The model signature: two string columns in, score / label / five dimensions out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec("string", c) for c in INPUT_COLUMNS])
    outputs = Schema([ColSpec("double", "score"), ColSpec("long", "label"),
                      *(ColSpec("double", k) for k in DIMENSION_KEYS)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_rows(model_input: Any) -> list[tuple[str, str]]:
    """(query, response) pairs from a DataFrame or a list of dicts; a missing column or a
    non-text cell is a :class:`ValueError` naming it."""
    import pandas as pd

    frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"judge input lacks column(s) {missing}: each row needs 'query' and "
                         f"'response' (got columns {list(frame.columns)})")
    rows = []
    for i, (query, response) in enumerate(zip(frame["query"], frame["response"], strict=True)):
        for column, value in (("query", query), ("response", response)):
            if not isinstance(value, str):
                raise ValueError(f"judge input row {i}: {column!r} must be text, "
                                 f"got {type(value).__name__}")
        rows.append((query, response))
    return rows


class JudgeModel(mlflow.pyfunc.PythonModel):
    """A Zhufu judge behind MLflow's pyfunc interface (see the module docstring)."""

    def load_context(self, context: Any) -> None:
        from zhufu.pipeline.judge.judge import Judge, JudgeState, _backend_for

        state = JudgeState.load(context.artifacts[ARTIFACT_KEY])
        self.judge = Judge(_backend_for(state.backend), state)

    # No type hints on predict: MLflow would read them as a (wrong) input schema; the
    # signature is given when the model is logged.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        import pandas as pd

        results = aio.run(self.judge.score_many(input_rows(model_input)))
        return pd.DataFrame([{"score": float(r.score), "label": int(r.label),
                              **{k: float(r.scores[k]) for k in DIMENSION_KEYS}}
                             for r in results], columns=list(OUTPUT_COLUMNS))
