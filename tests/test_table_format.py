"""The one terminal table formatter: alignment, rules, footers, indentation."""

from __future__ import annotations

from pytest_evalindex.table_format import format_table


def test_names_left_numbers_right_under_a_rule_as_wide_as_the_header() -> None:
    lines = format_table(["name", "score"], [["a", "0.5"], ["long name", "1"]])
    assert lines == [
        "name       score",
        "----------------",
        "a            0.5",
        "long name      1",
    ]


def test_several_left_columns_and_no_trailing_spaces() -> None:
    lines = format_table(["table", "name", "n"], [["index", "x", "10"], ["tag", "", "2"]], left=2)
    assert lines == ["table  name   n", "---------------", "index  x     10", "tag           2"]
    assert all(line == line.rstrip() for line in lines)


def test_column_rules_and_a_footer_after_a_second_rule() -> None:
    lines = format_table(
        ["dataset", "weight"], [["qa", "0.2500"]], footer=[["TOTAL", "1.0000"]], rule="columns"
    )
    assert lines == [
        "dataset  weight",
        "-------  ------",
        "qa       0.2500",
        "-------  ------",
        "TOTAL    1.0000",
    ]


def test_without_a_header_rows_are_aligned_and_indented() -> None:
    rows = [["a/1", "passed 2, missed 1"], ["b/10", "error 3"]]
    lines = format_table(None, rows, left=2, indent="  ")
    assert lines == ["  a/1   passed 2, missed 1", "  b/10  error 3"]


def test_an_empty_table_has_no_lines() -> None:
    assert format_table(None, []) == []
    assert format_table(["a", "b"], []) == ["a  b", "----"]
