"""The benchmark's table: the before column read back from an earlier table, and the summary."""

from __future__ import annotations

from benchmarks.run import Row, earlier, summary, table

COUNTED = "callgrind: instructions per warm invocation (mean of 200)"
TIMED = "wall clock: median of 41 alternating process pairs"

ROWS = [
    Row(
        "GET v1 vs hand-written", "122.2k instr", "33.0k instr", "3.70×", "≤ 3.5×", "FAIL", COUNTED
    ),
    Row("SQS vs Powertools", "1,164.7k instr", "576.9k instr", "2.02×", "—", "reported", COUNTED),
    Row("first request", "+31.1 ms", "bare interpreter: 17.3 ms", "—", "≤ +25 ms", "FAIL", TIMED),
    Row(
        "first request",
        "+122.4M instr",
        "bare interpreter: 59.7M instr",
        "—",
        "—",
        "reported",
        "callgrind: the whole process",
    ),
    Row("middleware", "—", "—", "—", "≤ 1.15×", "SKIPPED: no handler", "—"),
]


def test_an_earlier_table_fills_the_before_column_case_by_case() -> None:
    before = earlier(table(ROWS))

    assert before[("GET v1 vs hand-written", "callgrind")] == "122.2k instr (3.70×)"
    # The same case measured two ways keeps both.
    assert before[("first request", "wall clock")] == "+31.1 ms"
    assert before[("first request", "callgrind")] == "+122.4M instr"
    # A skipped row has nothing to compare with.
    assert not any(case == "middleware" for case, _ in before)

    after = [Row("GET v1 vs hand-written", "114.9k instr", "33.0k instr", "3.48×", "≤ 3.5×",
                 "PASS", COUNTED)]  # fmt: skip
    line = table(after, before).splitlines()[2]
    assert line.split(" | ")[4] == "122.2k instr (3.70×)"


def test_a_table_without_a_before_column_is_read_too() -> None:
    old = (
        "| case | polyserve | baseline | ratio | budget | result | method |\n"
        "|---|---:|---:|---:|---:|:---:|---|\n"
        f"| GET v1 vs hand-written | 122.2k instr | 33.0k instr | 3.70× | ≤ 3.5× | FAIL | {COUNTED} |\n"
    )
    assert earlier(old) == {("GET v1 vs hand-written", "callgrind"): "122.2k instr (3.70×)"}


def test_rows_without_an_earlier_value_show_a_dash() -> None:
    assert table(ROWS[:1], {}).splitlines()[2].split(" | ")[4] == "—"


def test_the_summary_counts_budgets_and_names_the_cases_over() -> None:
    assert summary(ROWS) == (
        "Budgets met: 0 of 2. Over budget: GET v1 vs hand-written (3.70×); first request (+31.1 ms)."
    )
    assert summary(ROWS[1:2]) == "Budgets met: 0 of 0."
