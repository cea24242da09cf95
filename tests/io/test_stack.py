"""One check for every stack of subtomograms taken as an array."""

from __future__ import annotations

import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.io import as_subtomogram_stack


def test_float32_stacks_pass_through_and_other_types_follow_dtype() -> None:
    stack = np.zeros((3, 6, 6, 6), dtype=np.float32)
    assert as_subtomogram_stack(stack) is stack
    wide = stack.astype(np.float64)
    assert as_subtomogram_stack(wide).dtype == np.float32
    assert as_subtomogram_stack(wide, dtype=None) is wide


@pytest.mark.parametrize(
    ("values", "options", "message"),
    [
        (np.zeros((3, 6, 6, 5)), {}, r"particles: expected an \(N, S, S, S\) stack of cubic boxes"),
        (np.zeros((6, 6, 6)), {}, "got shape \\(6, 6, 6\\)"),
        (np.zeros((3, 3, 3, 3)), {"min_box": 4}, "with S >= 4"),
        (np.zeros((1, 6, 6, 6)), {"minimum": 2}, "1 given, expected at least 2"),
        (np.full((2, 6, 6, 6), np.nan), {}, "particles: contain NaN or Inf"),
    ],
)
def test_bad_stacks_are_refused_with_their_name(values, options, message) -> None:
    with pytest.raises(InputError, match=message):
        as_subtomogram_stack(values, name="particles", **options)
