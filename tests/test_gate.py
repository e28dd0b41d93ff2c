"""labelaudit gate: every rule passing and failing, exit codes, config, JUnit, annotations."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest

from labelaudit.pipelines.gate_rules import RULES
from labelaudit.report.ci import escape_data, escape_property

from .conftest import FIXTURES, CliRun

SYNTH = FIXTURES / "synthetic-multiclass"
MALFORMED = FIXTURES / "malformed"
V2 = ["--preds", str(SYNTH / "preds_v2.parquet"), "--baseline", str(SYNTH / "labels.csv")]


def run_gate(cli: CliRun, tmp_path: Path, config: str, *args: str,
             labels: Path = SYNTH / "labels_v2.csv",
             env: dict[str, str] | None = None):  # fmt: skip
    (tmp_path / "labelaudit.toml").write_text(config)
    return cli("gate", str(labels), "--format", "json", *args, cwd=tmp_path, env=env)


# rule: (passing value, failing value, labels file, extra arguments)
CASES = {
    "min_support": (40, 50, SYNTH / "labels_v2.csv", []),
    "max_imbalance_ratio": (25, 15, SYNTH / "labels_v2.csv", []),
    "max_null_labels": (2, 1, MALFORMED / "null_labels.csv", []),
    "max_duplicate_ids": (2, 1, MALFORMED / "duplicate_ids.csv", []),
    "max_conflicting_duplicates": (1, 0, MALFORMED / "duplicate_ids.csv", []),
    "allowed_classes": (
        ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"],
        ["ant", "bee"],
        SYNTH / "labels_v2.csv",
        [],
    ),
    "max_suspect_rate": (0.15, 0.1, SYNTH / "labels_v2.csv", V2),
    "max_class_noise_rate": (0.7, 0.1, SYNTH / "labels_v2.csv", V2),
    "min_accuracy": (0.8, 0.9, SYNTH / "labels_v2.csv", V2),
    "min_macro_f1": (0.7, 0.9, SYNTH / "labels_v2.csv", V2),
    "max_relabel_rate": (0.06, 0.05, SYNTH / "labels_v2.csv", V2),
    "max_removed_rate": (0.02, 0.01, SYNTH / "labels_v2.csv", V2),
    "max_added_rate": (0.02, 0.01, SYNTH / "labels_v2.csv", V2),
    "max_shift_tvd": (0.05, 0.01, SYNTH / "labels_v2.csv", V2),
    "max_class_share_change": (0.05, 0.01, SYNTH / "labels_v2.csv", V2),
}


# The embeddings' and the groups' rules pass and fail in tests/test_embeddings.py and
# tests/test_groups.py (they need --embeddings or --group-col).
EMBEDDING_RULES = {
    "max_group_suspect_rate",
    "min_group_macro_f1",
    "max_flagged_groups",
    "max_duplicate_sets",
    "max_conflicting_duplicate_sets",
    "max_leaking_duplicate_sets",
    "max_outlier_share",
}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) | {"forbid_new_classes"} | EMBEDDING_RULES == set(RULES)


def _toml(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


@pytest.mark.parametrize("rule", list(CASES))
def test_rule_passes_and_fails(cli: CliRun, rule: str, tmp_path: Path) -> None:
    passing, failing_value, labels, extra = CASES[rule]
    ok = run_gate(cli, tmp_path, f"[gate]\n{rule} = {_toml(passing)}\n", *extra, labels=labels)
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["findings"][0]["status"] == "pass"
    bad = run_gate(
        cli, tmp_path, f"[gate]\n{rule} = {_toml(failing_value)}\n", *extra, labels=labels
    )
    assert bad.exit_code == 1, bad.stderr
    finding = json.loads(bad.stdout)["findings"][0]
    assert finding["status"] == "fail"
    assert f"{rule} fails" in bad.stderr
    assert "measured" in finding["message"] and "limit" in finding["message"]


def test_forbid_new_classes(cli: CliRun, tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    pl.DataFrame({"id": [1, 2], "label": ["a", "b"]}).write_csv(old)
    new = tmp_path / "new.csv"
    pl.DataFrame({"id": [1, 2], "label": ["a", "z"]}).write_csv(new)
    bad = run_gate(cli, tmp_path, "[gate]\nforbid_new_classes = true\n", "--baseline",
                   str(old), labels=new)  # fmt: skip
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["findings"][0]["value"] == ["z"]
    ok = run_gate(cli, tmp_path, "[gate]\nforbid_new_classes = true\n", "--baseline",
                  str(old), labels=old)  # fmt: skip
    assert ok.exit_code == 0


def test_default_rules_need_neither_predictions_nor_baseline(cli: CliRun, tmp_path: Path) -> None:
    result = cli("gate", str(SYNTH / "labels_v2.csv"), "--format", "json")
    assert result.exit_code == 0
    names = [f["rule"] for f in json.loads(result.stdout)["findings"]]
    assert names == ["max_conflicting_duplicates", "max_null_labels", "max_duplicate_ids",
                     "min_support"]  # fmt: skip
    conflicting = cli("gate", str(MALFORMED / "duplicate_ids.csv"))
    assert conflicting.exit_code == 1


def test_uncomputable_is_an_error_unless_optional(cli: CliRun, tmp_path: Path) -> None:
    bad = run_gate(
        cli, tmp_path, "[gate]\nmax_suspect_rate = { value = 0.1, severity = 'warning' }\n"
    )
    assert bad.exit_code == 1
    finding = json.loads(bad.stdout)["findings"][0]
    assert (finding["status"], finding["severity"]) == ("error", "error")
    assert "needs predictions (pass --preds)" in finding["message"]
    ok = run_gate(cli, tmp_path, "[gate]\nmax_suspect_rate = { value = 0.1, optional = true }\n")
    assert ok.exit_code == 0
    assert json.loads(ok.stdout)["findings"][0]["status"] == "skipped"


def test_fail_on_and_exit_zero(cli: CliRun, tmp_path: Path) -> None:
    config = "[gate]\nmin_support = { value = 50, severity = 'warning' }\n"
    assert run_gate(cli, tmp_path, config).exit_code == 0
    assert run_gate(cli, tmp_path, config, "--fail-on", "warning").exit_code == 1
    hard = "[gate]\nmin_support = 50\n"
    assert run_gate(cli, tmp_path, hard).exit_code == 1
    assert run_gate(cli, tmp_path, hard, "--exit-zero").exit_code == 0


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_exit_code_does_not_depend_on_the_format(cli: CliRun, fmt: str, tmp_path: Path) -> None:
    (tmp_path / "labelaudit.toml").write_text("[gate]\nmin_support = 50\n")
    config = str(tmp_path / "labelaudit.toml")
    result = cli("gate", str(SYNTH / "labels_v2.csv"), "--config", config, "--format", fmt)
    assert result.exit_code == 1
    assert "labelaudit gate: FAIL" in result.stderr


def test_config_errors_exit_2(cli: CliRun, tmp_path: Path) -> None:
    typo = run_gate(cli, tmp_path, "[gate]\nmax_suspect_rat = 0.1\n")
    assert typo.exit_code == 2
    assert "Did you mean 'max_suspect_rate'?" in typo.stderr
    severity = run_gate(cli, tmp_path, "[gate]\nmin_support = { value = 3, severity = 'fatal' }\n")
    assert severity.exit_code == 2 and "use warning or error" in severity.stderr
    kind = run_gate(cli, tmp_path, "[gate]\nmin_support = 'ten'\n")
    assert kind.exit_code == 2 and "must be a number" in kind.stderr
    keys = run_gate(cli, tmp_path, "[gate]\nmin_support = { value = 3, level = 'error' }\n")
    assert keys.exit_code == 2 and "unknown keys ['level']" in keys.stderr


def test_config_discovery_and_precedence(cli: CliRun, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        "[tool.labelaudit]\nmin_support = 5\n[tool.labelaudit.gate]\nmin_support = 50\n"
    )
    sub = project / "sub"  # found from the working folder upward
    found = cli("gate", str(SYNTH / "labels_v2.csv"), "--format", "json", cwd=sub)
    other = tmp_path / "other.toml"
    other.write_text("[gate]\nmin_support = 10\n")
    explicit = cli(
        "gate", str(SYNTH / "labels_v2.csv"), "--format", "json", "--config", str(other), cwd=sub
    )
    flag = cli(
        "gate", str(SYNTH / "labels_v2.csv"), "--format", "json", "--min-support", "7", cwd=sub
    )
    assert found.exit_code == 1
    report = json.loads(found.stdout)
    assert report["rules"] == [
        {"name": "min_support", "value": 50, "severity": "error", "optional": False}
    ]
    assert report["config"]["min_support"] == 5
    assert explicit.exit_code == 0
    assert json.loads(flag.stdout)["config"]["min_support"] == 7


def test_junit_has_one_testcase_per_rule(cli: CliRun, tmp_path: Path) -> None:
    junit = tmp_path / "gate.xml"
    config = (
        "[gate]\nmax_suspect_rate = 0.05\nmin_support = 1\n"
        "max_relabel_rate = { value = 0.01, severity = 'warning' }\n"
        "max_shift_tvd = { value = 0.1, optional = true }\nmin_accuracy = 0.5\n"
    )
    result = run_gate(cli, tmp_path, config, "--preds", str(SYNTH / "preds_v2.parquet"),
                      "--junit", str(junit))  # fmt: skip
    assert result.exit_code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"max_suspect_rate", "min_support", "max_relabel_rate", "max_shift_tvd",
                          "min_accuracy"}  # fmt: skip
    assert suite.get("tests") == "5" and suite.get("failures") == "1"
    failure = cases["max_suspect_rate"].find("failure")
    assert "limit 0.05" in failure.get("message") and "measured 0.12" in failure.get("message")
    assert cases["max_relabel_rate"].find("error") is not None  # needs a baseline: uncomputable
    assert cases["max_shift_tvd"].find("skipped") is not None
    assert list(cases["min_support"]) == []


def test_annotation_escaping() -> None:
    assert escape_data("50% of a\r\nb") == "50%25 of a%0D%0Ab"
    assert escape_property("gate: a, b") == "gate%3A a%2C b"


def test_github_annotations_and_step_summary(cli: CliRun, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = run_gate(cli, tmp_path, "[gate]\nmin_support = 50\n", env=env)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert lines == [
        "::error title=labelaudit gate%3A min_support::min_support fails: every class has at "
        "least this many samples: measured 46, limit 50"
    ]
    assert "labelaudit gate: FAIL" in summary.read_text()


def test_baseline_of_known_suspects_round_trip(cli: CliRun, tmp_path: Path) -> None:
    known = tmp_path / "known.csv"
    preds = ["--preds", str(SYNTH / "preds_v2.parquet")]
    config = "[gate]\nmax_suspect_rate = 0.0\n"
    first = run_gate(cli, tmp_path, config, *preds, "--write-baseline", str(known))
    assert first.exit_code == 1  # every suspect is new
    recorded = pl.read_csv(known)
    assert recorded.columns[:2] == ["id", "given_label"]
    assert recorded.height == json.loads(first.stdout)["scan"]["label_issues"]["n_suspects"]
    second = run_gate(cli, tmp_path, config, *preds, "--accept", str(known))
    assert second.exit_code == 0
    accepted = json.loads(second.stdout)["accepted"]
    assert accepted["new_suspects"] == 0 and accepted["no_longer_apply"] == 0
    # Fix one known suspect's label: its entry no longer applies, and it is reported.
    labels = pl.read_csv(SYNTH / "labels_v2.csv")
    target = recorded.row(0, named=True)
    fixed = labels.with_columns(
        pl.when(pl.col("id") == target["id"])
        .then(pl.lit(target["suggested_label"]))
        .otherwise(pl.col("label"))
        .alias("label")
    )
    fixed.write_csv(tmp_path / "fixed.csv")
    third = run_gate(
        cli, tmp_path, config, *preds, "--accept", str(known), labels=tmp_path / "fixed.csv"
    )
    report = json.loads(third.stdout)
    assert report["accepted"]["no_longer_apply"] >= 1
    assert target["id"] in report["accepted"]["no_longer_apply_examples"]
    assert any("no longer apply" in w for w in report["warnings"])


def test_gate_json_contract(cli: CliRun, tmp_path: Path) -> None:
    result = run_gate(cli, tmp_path, "[gate]\nmin_support = 1\n", *V2)
    report = json.loads(result.stdout)
    assert report["command"] == "gate" and report["schema_version"] == "1.0"
    assert set(report) >= {"summary", "rules", "findings", "scan", "diff", "config", "warnings"}
    assert report["summary"]["verdict"] == "pass"
    assert report["scan"]["command"] == "scan" and report["diff"]["command"] == "diff"


def test_documented_configuration_is_valid() -> None:
    import re
    import tomllib

    from labelaudit.pipelines.gate_rules import parse_rules

    from .conftest import ROOT

    text = (ROOT / "docs" / "ci.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    rules = parse_rules(tomllib.loads(block)["tool"]["labelaudit"]["gate"], "docs/ci.md")
    assert [r.name for r in rules][:2] == ["max_conflicting_duplicates", "max_null_labels"]
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "id: labelaudit-gate" in hooks and "entry: labelaudit gate" in hooks


def test_real_process_exit_codes(tmp_path: Path) -> None:
    import subprocess
    import sys

    entry = str(Path(sys.executable).parent / "labelaudit")
    (tmp_path / "labelaudit.toml").write_text("[gate]\nmin_support = 50\n")
    labels = str(SYNTH / "labels_v2.csv")
    fail = subprocess.run([entry, "gate", labels], cwd=tmp_path, capture_output=True, text=True)
    assert fail.returncode == 1
    assert fail.stderr.startswith("labelaudit gate: FAIL")
    zero = subprocess.run(
        [entry, "gate", labels, "--exit-zero"], cwd=tmp_path, capture_output=True, text=True
    )
    assert zero.returncode == 0
    (tmp_path / "labelaudit.toml").write_text("[gate]\nmin_suport = 50\n")
    bad = subprocess.run([entry, "gate", labels], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2
    assert "Did you mean 'min_support'?" in bad.stderr


# ---------------------------------------------------------------- a gate that cannot run


def _error_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("Error: "))[7:]


@pytest.mark.parametrize(
    ("case", "args", "config"),
    [
        ("missing labels", ["missing.csv"], "[gate]\nmin_support = 1\n"),
        ("bad preds", [str(SYNTH / "labels_v2.csv"), "--preds", "nope.parquet"], ""),
        ("bad config", [str(SYNTH / "labels_v2.csv")], "[gate]\nmin_suport = 1\n"),
        ("bad option", [str(SYNTH / "labels_v2.csv"), "--fail-on", "fatal"], ""),
    ],
)
def test_a_gate_that_cannot_run_writes_a_junit_error(
    cli: CliRun, tmp_path: Path, case: str, args: list[str], config: str
) -> None:
    (tmp_path / "labelaudit.toml").write_text(config)
    (tmp_path / "gate.xml").write_text("an earlier run's results")
    result = cli("gate", *args, "--junit", "gate.xml", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    suite = ET.parse(tmp_path / "gate.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")
    (case_node,) = suite.findall("testcase")
    error = case_node.find("error")
    assert error.get("type") == "bad_input"
    assert error.get("message") == _error_line(result.stderr)  # the message stderr shows
    assert "exit 2" in error.text
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate.xml", "labelaudit.toml"]


def test_a_bug_in_the_gate_writes_a_junit_error_and_exits_3(
    cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("labelaudit.pipelines.gate.run_gate", broken)
    result = run_gate(cli, tmp_path, "[gate]\nmin_support = 1\n", "--junit", "gate.xml")
    assert result.exit_code == 3, result.output
    error = ET.parse(tmp_path / "gate.xml").getroot().find("testsuite/testcase/error")
    assert error.get("type") == "internal_error"
    assert error.get("message").startswith("Internal error: RuntimeError: a bug.")
    assert error.get("message") in result.stderr


def test_a_junit_path_the_gate_may_not_write_stays_untouched(cli: CliRun, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n1,a\n")
    result = cli("gate", "labels.csv", "--junit", "labels.csv", cwd=tmp_path)
    assert result.exit_code == 2
    assert labels.read_text() == "id,label\n1,a\n"
    assert "is one of this run's inputs" in result.stderr
    assert "no JUnit file" not in result.stderr  # the refusal is the error: said once
    # The settings file is an input too, even when it is the file that is broken.
    (tmp_path / "labelaudit.toml").write_text("[gate]\nmin_suport = 1\n")
    broken = cli("gate", "labels.csv", "--junit", "labelaudit.toml", cwd=tmp_path)
    assert broken.exit_code == 2
    assert (tmp_path / "labelaudit.toml").read_text() == "[gate]\nmin_suport = 1\n"
    assert "no JUnit file was written" in broken.stderr
    # Another output's path: refused, not shared.
    (tmp_path / "labelaudit.toml").unlink()
    both = cli("gate", "labels.csv", "--junit", "out.xml", "-o", "out.xml", cwd=tmp_path)
    assert both.exit_code == 2 and not (tmp_path / "out.xml").exists()
    missing = cli("gate", "labels.csv", "--junit", "no/such/folder.xml", cwd=tmp_path)
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_a_gate_that_cannot_run_is_an_error_annotation_on_github(
    cli: CliRun, tmp_path: Path
) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": ""}
    result = run_gate(cli, tmp_path, "[gate]\nmin_suport = 1\n", env=env)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert lines == [
        "::error title=labelaudit gate could not run::" + escape_data(_error_line(result.stderr))
    ]
    assert not (tmp_path / "gate.xml").exists()
