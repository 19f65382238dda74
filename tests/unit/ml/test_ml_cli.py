"""The CLI's conventions: results on stdout, progress on stderr, errors on one line."""

from pathlib import Path

import pytest

from ml.cli import main


def test_generate_prints_the_path_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "league.csv"
    args = ["generate", "--out", str(out), "--first-season", "2010", "--last-season", "2011"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{out}\n"
    assert captured.err == "wrote 760 matches, seasons 2010-2011, seed 0\n"
    assert len(out.read_text(encoding="utf-8").splitlines()) == 761


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--data", "x.csv", "--test-from", "2022-13-01"], "not a YYYY-MM-DD date"),
        (["train"], "the following arguments are required: --data"),
        (["forecast"], "invalid choice: 'forecast'"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_mistakes_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("error: python -m ml")
    assert message in err


@pytest.mark.parametrize("command", ["generate", "process"])
def test_missing_output_directory(
    command: str, league_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "absent" / "out.file"
    argv = [command, "--out", str(target)]
    if command == "process":
        argv += ["--data", str(league_csv)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: output directory does not exist: {target.parent}"
    assert not target.parent.exists()
