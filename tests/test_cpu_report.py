"""The suite's CPU report (tests/cpu_report.py) adds up per test file and orders by CPU."""

from cpu_report import by_file


def test_records_add_up_per_file_costliest_first():
    records = [
        {"test": "tests/test_a.py::test_one", "own": 1.0, "children": 0.0, "wall": 1.5},
        {"test": "tests/test_b.py::test_one", "own": 0.5, "children": 4.0, "wall": 6.0},
        {"test": "tests/test_a.py::test_two[x]", "own": 2.0, "children": 0.5, "wall": 2.5},
    ]
    assert by_file(records) == [("tests/test_b.py", 0.5, 4.0, 6.0, 1), ("tests/test_a.py", 3.0, 0.5, 4.0, 2)]
    assert by_file([]) == []
