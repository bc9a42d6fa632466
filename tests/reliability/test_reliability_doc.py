"""docs/reliability.md shows the fault matrix the tests run, not a copy that could drift."""

from __future__ import annotations

from fault_matrix import CASES, DOC, ROWS, TARGETS, NotApplicable, render_tables, tables_in_doc


def test_the_page_shows_the_matrix_the_tests_run() -> None:
    shown = tables_in_doc(DOC.read_text(encoding="utf-8"))
    assert shown == render_tables(), "run `python tests/reliability/fault_matrix.py` to rewrite the page's tables"


def test_every_row_and_every_target_appear_on_the_page() -> None:
    shown = tables_in_doc(DOC.read_text(encoding="utf-8"))
    for row in ROWS:
        assert f"| {row.title.replace('|', chr(92) + '|')} |" in shown
    for target in TARGETS:
        assert f" {target.label} |" in shown


def test_every_cell_that_is_not_n_a_is_a_test_case() -> None:
    cells = {
        (row.id, target.id) for row in ROWS for target in TARGETS if not isinstance(row.outcome(target), NotApplicable)
    }
    assert cells == {(case.row.id, case.target.id) for case in CASES}
