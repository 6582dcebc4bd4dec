from __future__ import annotations

from harness.redact import MASK, redact_args


def test_tokens_and_secret_looking_set_values_are_masked() -> None:
    argv = [
        "helm", "install", "web", "chart",
        "--set", "image.tag=1.2,db.password=hunter2",
        "--set-string", "apiToken=abc123",
        "--kube-token", "s3cr3t",
        "--kube-token=inline",
    ]  # fmt: skip
    shown = " ".join(redact_args(argv))
    for secret in ("hunter2", "abc123", "s3cr3t", "inline"):
        assert secret not in shown
    assert "image.tag=1.2" in shown
    assert f"db.password={MASK}" in shown


def test_multi_line_arguments_are_not_logged() -> None:
    assert redact_args(["helm", "a\nb"]) == ["helm", "<multi-line>"]


def test_url_credentials_and_pwd_names_are_masked_in_command_lines() -> None:
    argv = [
        "helm", "install", "x", "c", "--repo", "https://ci:hunter2@charts.example.invalid",
        "--set", "db.pwd=s3cret,db.host=h", "--set", "DB_PWD=abc",
    ]  # fmt: skip
    shown = " ".join(redact_args(argv))
    assert "hunter2" not in shown and "https://ci:******@charts.example.invalid" in shown
    assert "s3cret" not in shown and "db.host=h" in shown and "abc" not in shown


def test_one_redactor_for_helm_and_records() -> None:
    """Helm's logged lines and the cluster records use the same rules: ``--set=`` forms, a
    secret flag's separate value, and anything else left as it was."""
    argv = ["helm", "--set=auth.token=t0ken,replicas=2", "--password", "pw12", "--debug", "x"]
    assert redact_args(argv) == [
        "helm",
        f"--set=auth.token={MASK},replicas=2",
        "--password",
        MASK,
        "--debug",
        "x",
    ]
