"""A stream's time base as integers (capture/sources/pyav.py ``Tick``): the same seconds as the
``Fraction`` arithmetic it replaces, to the last bit."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from motiond.capture.sources.pyav import Tick

# RTP's 90 kHz, MP4 and Matroska time bases, NTSC's 1001/30000, and odd ones.
TIME_BASES = [Fraction(1, 90000), Fraction(1, 15360), Fraction(1, 1000), Fraction(1001, 30000),
              Fraction(1, 48000), Fraction(1, 25), Fraction(3, 7)]  # fmt: skip


@given(
    st.sampled_from(TIME_BASES) | st.fractions(min_value=Fraction(1, 10**9), max_value=10),
    st.integers(min_value=-(2**62), max_value=2**62),
)
def test_seconds_are_the_fraction_arithmetics_float_bit_for_bit(time_base, stamp) -> None:
    assert Tick.of(time_base).seconds(stamp) == float(stamp * time_base)


def test_no_timestamp_or_no_time_base_gives_none() -> None:
    assert Tick.of(Fraction(1, 90000)).seconds(None) is None
    assert Tick.of(None).seconds(90000) is None
    assert Tick.of(Fraction(1, 90000)).seconds(90000) == 1.0
