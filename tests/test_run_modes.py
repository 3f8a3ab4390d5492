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
SERIAL = "serial only so far: not yet checked under -n 2"

# "file::test" (parameters left out) -> why it does not take run_mode
SINGLE_MODE: dict[str, str] = {
    "test_ci_outputs.py::test_cli_report_writes_the_same_markdown": SERIAL,
    "test_code_scorer.py::test_node_ids_keep_the_slashes_of_humaneval_task_ids": SERIAL,
    "test_code_scorer.py::test_the_basic_sandbox_lets_the_same_answer_read_the_token": SERIAL,
    "test_concurrency.py::test_errors_are_never_cached": SERIAL,
    "test_concurrency.py::test_four_workers_never_send_a_request_twice": WORKERS,
    "test_concurrency.py::test_killed_run_resumes_without_paying_twice": SERIAL,
    "test_concurrency.py::test_rejected_key_stops_the_run_with_one_message": SERIAL,
    "test_concurrency.py::test_requests_in_flight_beyond_processes": SERIAL,
    "test_concurrency.py::test_rerun_is_answered_from_the_cache": WORKERS,
    "test_concurrency.py::test_scores_match_a_concurrency_one_run": WORKERS,
    "test_evalscope_format.py::test_a_folder_holding_a_collection_runs_as_an_index": SERIAL,
    "test_example_suites.py::test_code_index_scores_correct_programs_as_passed": SERIAL,
    "test_example_suites.py::test_every_example_suite_runs_offline": GOLDEN,
    "test_gates.py::test_pytest_reports_a_bad_gate_as_a_usage_error": REFUSED,
    "test_gates_plugin.py::test_compare_without_saved_runs_is_a_usage_error": REFUSED,
    "test_gates_plugin.py::test_degraded_model_fails_the_comparison_and_same_model_does_not": WORKERS,  # noqa: E501
    "test_gates_plugin.py::test_different_test_sets_are_refused_unless_intersection": SERIAL,
    "test_gates_plugin.py::test_gate_expressions_decide_the_exit_status": WORKERS,
    "test_gates_plugin.py::test_judge_scored_dataset_uses_the_judge_and_its_cache": SERIAL,
    "test_gates_plugin.py::test_judge_scorer_without_a_judge_is_a_usage_error": REFUSED,
    "test_gates_plugin.py::test_malformed_gate_is_a_usage_error_before_any_request": REFUSED,
    "test_gates_plugin.py::test_missing_gate_row_stops_before_any_request_naming_the_rows_that_exist": REFUSED,  # noqa: E501
    "test_gates_plugin.py::test_repeats_reduce_and_report_flaky_samples": SERIAL,
    "test_gates_plugin.py::test_shards_merged_equal_one_run": WORKERS,
    "test_hookspec.py::test_hooks_are_registered_for_every_run": NO_INDEX,
    "test_ifeval.py::test_plugin_runs_an_ifeval_index": SERIAL,
    "test_local_model.py::test_no_endpoint_and_no_extra_is_one_clear_message": SERIAL,
    "test_local_model.py::test_quickstart_runs_end_to_end_on_the_embedded_model": SERIAL,
    "test_other_plugins.py::test_a_worker_killed_by_timeout_leaves_an_error_sample": WORKERS,
    "test_partial.py::test_a_partial_run_is_compared_on_its_records_and_cannot_pass_compare_fail": SERIAL,  # noqa: E501
    "test_partial.py::test_a_whole_run_replaces_the_partial_file_and_saves": SERIAL,
    "test_partial.py::test_keyword_selection_and_save_are_refused_as_a_baseline": SERIAL,
    "test_partial.py::test_marker_and_deselect_are_causes": SERIAL,
    "test_partial.py::test_node_ids_and_exitfirst_name_their_causes": SERIAL,
    "test_partial.py::test_shards_are_partial_and_merge_into_a_whole_run": SERIAL,
    "test_plugin.py::test_bad_spec_is_usage_error_without_traceback": REFUSED,
    "test_plugin.py::test_fail_under_bad_value_is_usage_error": REFUSED,
    "test_plugin.py::test_junitxml_with_xdist": WORKERS,
    "test_plugin.py::test_last_failed_reruns_only_errors": SERIAL,
    "test_plugin.py::test_missing_index_file_is_usage_error": REFUSED,
    "test_plugin.py::test_node_ids_markers_and_collect_only": SERIAL,
    "test_plugin.py::test_plugin_is_inert_without_index": NO_INDEX,
    "test_plugin.py::test_serial_and_xdist_give_identical_results": WORKERS,
    "test_preflight.py::test_bad_ini_value_names_the_key_and_the_file": REFUSED,
    "test_preflight.py::test_compare_fail_rule_naming_a_missing_row_stops_before_any_request": REFUSED,  # noqa: E501
    "test_preflight.py::test_each_failed_gate_and_rule_is_printed_once": SERIAL,
    "test_preflight.py::test_evalindex_folder_that_is_a_file_stops_before_any_request": REFUSED,
    "test_preflight.py::test_gate_naming_a_missing_row_stops_before_any_request": REFUSED,
    "test_preflight.py::test_help_lists_every_option": NO_INDEX,
    "test_preflight.py::test_help_works_in_a_project_that_configures_the_plugin": NO_INDEX,
    "test_preflight.py::test_hub_source_without_network_fails_fast_with_one_message": REFUSED,
    "test_preflight.py::test_judge_without_any_endpoint_stops_before_any_request": REFUSED,
    "test_preflight.py::test_unwritable_output_stops_before_any_request": REFUSED,
    "test_scoring_paths.py::test_behind_a_users_model_wrapper_answers_are_scored_in_the_call": SERIAL,  # noqa: E501
    "test_scoring_paths.py::test_math_is_scored_beside_the_requests_with_the_same_results": SERIAL,
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
