"""Hypothesis strategies the fuzz tests share: any YAML-like value, nested a little."""

from __future__ import annotations

from hypothesis import strategies as st

BIG_INT = 10**6  # far outside every config key's range

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-BIG_INT, BIG_INT),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
