"""`audit verify`'s progress bar: its line, its throttled redraws on a stream, and that it clears."""

from __future__ import annotations

import io

from flexledger.audit.progress import ProgressBar, render


def test_render_fills_the_bar_by_the_share_read() -> None:
    line = render("audit verify", 50_000, 200_000, 10.0, width=20)
    assert line == "audit verify [#####...............]  25% 50,000/200,000 events  5,000 events/s  0:10"


def test_render_caps_at_the_total_an_estimate_can_fall_short_of() -> None:
    line = render("audit verify", 210, 200, 61.0, width=10)
    assert "[##########] 100% 200/200 events" in line
    assert line.endswith("1:01")


def test_render_without_a_total_shows_the_counts() -> None:
    assert render("audit verify", 1234, None, 0.0) == "audit verify: 1,234 events  - events/s  0:00"


def test_the_bar_redraws_in_place_and_clears() -> None:
    out = io.StringIO()
    bar = ProgressBar("audit verify", 100, out)
    bar.update(100)
    bar.update(20)
    drawn = out.getvalue().split("\r")
    assert drawn[0] == "" and drawn[1].startswith("audit verify [") and " 100/100 events" in drawn[1]
    assert " 20/100 events" in drawn[2] and len(drawn[2]) == len(drawn[1])  # the longer line overwritten
    bar.close()
    assert out.getvalue().endswith("\r" + " " * bar._length + "\r")
    assert "\n" not in out.getvalue()
