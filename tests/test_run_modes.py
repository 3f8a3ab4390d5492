"""The promise of conftest.py's ``run_mode``, checked: every plugin test (one that uses
``pytester``) runs serially and with two workers, or is listed here with the reason why not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKERS = "runs with -n itself: it compares or needs the workers"
REFUSED = (
    "bad input refused in pytest_configure on the controller, before xdist starts a worker: "
    "-n 2 runs the same check"
)
NO_INDEX = "runs no index: there is nothing for workers to do"
GOLDEN = "tests/test_golden_results.py runs every example suite serially and with -n 2"
EXITFIRST = (
    "-x under -n 2 stops the workers wherever their timing has them, so how many records "
    "ran is not fixed (and xdist exits with status 2); serially it is exact"
)

SHARED_ID_REFUSED = (
    "a hub id the hub cannot give is refused while the controller reads its arguments, "
    "before xdist starts a worker: -n 2 runs the same check"
)
BASELINE_REVISION = (
    "the revision refusal is a pytest_configure check on the controller (-n 2 runs the same "
    "check); running by id in both modes is test_publish_upload_run_by_id_then_offline"
)

# "file::test" (parameters left out) -> why it does not take run_mode
SINGLE_MODE: dict[str, str] = {
    "test_concurrency.py::test_four_workers_never_send_a_request_twice": WORKERS,
    "test_xdist_scheduling.py::"
    "test_a_worker_looks_ahead_into_its_next_unit_before_the_current_one_ends": (
        "about crossing xdist work units, which exist only with workers"
    ),
    "test_concurrency.py::test_worksteal_says_how_far_it_looks_ahead": (
        "about xdist's worksteal scheduling, which exists only with workers"
    ),
    "test_concurrency.py::test_rerun_is_answered_from_the_cache": WORKERS,
    "test_concurrency.py::test_scores_match_a_concurrency_one_run": WORKERS,
    "test_example_suites.py::test_every_example_suite_runs_offline": GOLDEN,
    "test_gates.py::test_pytest_reports_a_bad_gate_as_a_usage_error": REFUSED,
    "test_gates_plugin.py::test_compare_without_saved_runs_is_a_usage_error": REFUSED,
    "test_gates_plugin.py::test_degraded_model_fails_the_comparison_and_same_model_does_not": WORKERS,  # noqa: E501
    "test_gates_plugin.py::test_gate_expressions_decide_the_exit_status": WORKERS,
    "test_gates_plugin.py::test_judge_scorer_without_a_judge_is_a_usage_error": REFUSED,
    "test_gates_plugin.py::test_malformed_gate_is_a_usage_error_before_any_request": REFUSED,
    "test_gates_plugin.py::test_missing_gate_row_stops_before_any_request_naming_the_rows_that_exist": REFUSED,  # noqa: E501
    "test_gates_plugin.py::test_shards_merged_equal_one_run": WORKERS,
    "test_hookspec.py::test_hooks_are_registered_for_every_run": NO_INDEX,
    "test_other_plugins.py::test_a_worker_killed_by_timeout_leaves_an_error_sample": WORKERS,
    "test_partial.py::test_exitfirst_names_its_cause": EXITFIRST,
    "test_plugin.py::test_bad_spec_is_usage_error_without_traceback": REFUSED,
    "test_plugin.py::test_fail_under_bad_value_is_usage_error": REFUSED,
    "test_plugin.py::test_junitxml_with_xdist": WORKERS,
    "test_plugin.py::test_missing_index_file_is_usage_error": REFUSED,
    "test_plugin.py::test_plugin_is_inert_without_index": NO_INDEX,
    "test_plugin.py::test_serial_and_xdist_give_identical_results": WORKERS,
    "test_preflight.py::test_bad_ini_value_names_the_key_and_the_file": REFUSED,
    "test_preflight.py::test_compare_fail_rule_naming_a_missing_row_stops_before_any_request": REFUSED,  # noqa: E501
    "test_preflight.py::test_evalindex_folder_that_is_a_file_stops_before_any_request": REFUSED,
    "test_preflight.py::test_gate_naming_a_missing_row_stops_before_any_request": REFUSED,
    "test_preflight.py::test_help_lists_every_option": NO_INDEX,
    "test_preflight.py::test_help_works_in_a_project_that_configures_the_plugin": NO_INDEX,
    "test_preflight.py::test_hub_source_without_network_fails_fast_with_one_message": REFUSED,
    "test_preflight.py::test_judge_without_any_endpoint_stops_before_any_request": REFUSED,
    "test_preflight.py::test_unwritable_output_stops_before_any_request": REFUSED,
    "test_shared_index.py::test_a_different_revision_is_not_compared_unless_asked": BASELINE_REVISION,  # noqa: E501
    "test_shared_index.py::test_ids_the_hub_does_not_have": SHARED_ID_REFUSED,
    "test_shared_index.py::test_modelscope_corrupted_download_is_refused": SHARED_ID_REFUSED,
    "test_shared_index.py::test_modelscope_without_its_sdk_says_how_to_install_it": SHARED_ID_REFUSED,  # noqa: E501
    "test_shared_index.py::test_offline_before_any_download_is_one_clear_error": SHARED_ID_REFUSED,
}

# writes the plugin tests that do not take run_mode, as collected
PROBE = """
import json, os

def pytest_collection_modifyitems(items):
    single = sorted({
        item.nodeid.split("[")[0].removeprefix("tests/")
        for item in items
        if "pytester" in getattr(item, "fixturenames", ()) and "run_mode" not in item.fixturenames
    })
    with open(os.environ["RUN_MODES_OUT"], "w") as out:
        json.dump(single, out)
"""


def test_every_plugin_test_runs_in_both_modes_or_says_why(tmp_path: Path) -> None:
    (tmp_path / "run_modes_probe.py").write_text(PROBE, "utf-8")
    out = tmp_path / "single.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "RUN_MODES_OUT": str(out),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "run_modes_probe", "tests"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    single = json.loads(out.read_text("utf-8"))
    assert [t for t in single if t not in SINGLE_MODE] == [], "take run_mode or list it here"
    assert [t for t in SINGLE_MODE if t not in single] == [], "stale entries: remove them"
