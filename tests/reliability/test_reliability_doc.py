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


#: Each fault the issue lists (#6, "Faults the emulator must be able to inject"), and the rows
#: that inject it.
ISSUE_FAULTS = {
    "every error status the provider documents, with its real body shape": ["status-400", "status-500"],
    "Retry-After in seconds": ["retry-after-seconds"],
    "Retry-After as an HTTP date": ["retry-after-http-date"],
    "a long Retry-After (beyond the policy's cap)": ["retry-after-beyond-cap"],
    "connection refused": ["connection-refused"],
    "TCP reset mid-stream": ["reset-mid-stream", "reset-before-first-event"],
    "headers then silence": ["headers-then-silence"],
    "a slow drip": ["slow-drip"],
    # (a whole reply is one event: "before the first event" cuts it in the middle)
    "truncation mid-event and between events": [
        "truncated-mid-event",
        "truncated-between-events",
        "truncated-before-first-event",
    ],
    "a malformed JSON event": ["malformed-json"],
    "invalid UTF-8": ["invalid-utf8"],
    "a wrong Content-Type": ["wrong-content-type"],
    "an HTML error page from a proxy": ["proxy-502"],
    "a gzip-encoded body": ["gzip"],
    "a single 64 MiB event": ["huge-event"],
    "unknown enum values and unknown fields": ["unknown-finish-reason", "unknown-fields"],
    "an error object inside a 200 stream": [
        "error-in-200-stream",
        "error-in-200-before-first-event",  # (a whole reply: the error object is the body)
        "error-400-in-200",
    ],
    "an expired or revoked GigaChat token mid-run": ["token-expired", "token-revoked"],
    "a TLS certificate from the wrong CA": ["wrong-ca"],
}
#: The fault that applies to one provider only.
NOT_EVERY_PROVIDER = {"an expired or revoked GigaChat token mid-run": {"gigachat"}}


def test_every_fault_of_the_issue_runs_against_every_provider_it_applies_to() -> None:
    providers = {target.provider for target in TARGETS}
    for fault, row_ids in ISSUE_FAULTS.items():
        covered = {case.target.provider for case in CASES if case.row.id in row_ids}
        expected = NOT_EVERY_PROVIDER.get(fault) or providers
        assert expected <= covered, f"{fault}: no case for {sorted(expected - covered)}"
