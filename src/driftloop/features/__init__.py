"""Features: declared in the project, computed identically in training, batch scoring and serving.

``definitions`` holds the two kinds a project declares (an expression over a row's columns, and
calendar parts of a date or datetime), ``compile`` turns them into Narwhals or Polars
expressions, ``featureset`` checks them against the contract and applies them. The features
table itself is kept by the ``feature_table`` stage (:func:`~driftloop.feature_table.materialize`).
"""

from driftloop.features.compile import compile_expression, referenced_columns
from driftloop.features.definitions import DatetimeFeature, ExpressionFeature, FeatureDef, parse_definitions
from driftloop.features.featureset import FeatureSet

__all__ = [
    "DatetimeFeature",
    "ExpressionFeature",
    "FeatureDef",
    "FeatureSet",
    "compile_expression",
    "parse_definitions",
    "referenced_columns",
]
