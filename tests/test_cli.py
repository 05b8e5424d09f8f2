"""The command line as a user meets it: exit codes, one-sentence errors, what is written.

One run goes through a real `ibtui` process (the entry point, the progress display on a real
stderr); the rest call the same `main()` in this process, which proves the same exit codes and
messages without paying an interpreter and torch start-up each (tests/test_limits.py and
test_own_model.py refuse bad input in real processes too).
"""

import json
from dataclasses import dataclass

import pytest

from helpers import call_main, main_exit_code, run_cli, tiny_config

TINY = ["--epochs", "4", "--hidden", "4,3", "--estimator", "binning", "--device", "cpu"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def ibtui(capsys):
    """`ibtui ARGS` in this process, as a CompletedProcess-like (returncode, stdout, stderr)."""
    def call(*args: str) -> Result:
        code = main_exit_code(*args)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def assert_one_clear_sentence(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    text = " ".join(result.stderr.split())
    for word in words:
        assert word in text, text


@pytest.mark.slow
def test_run_writes_a_complete_run_directory(tmp_path):
    out = tmp_path / "r"
    result = run_cli("run", "--preset", "tanh", *TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert {"config.toml", "snapshots.jsonl", "summary.json", "info_plane.png", "loss.png"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epoch"] == 4
    assert "epoch" in result.stderr and "I(X;T)" in result.stderr  # the progress display


def test_presets_table_lists_every_preset(ibtui):
    result = ibtui("presets")
    assert result.returncode == 0
    for name in ("tanh", "relu", "tishby", "pokemon-relu-l2", "pokemon-tanh"):
        assert name in result.stdout
    assert "kde_upper" in result.stdout and "25,000" in result.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "--preset", "tahn"], ["unknown preset 'tahn'", "did you mean 'tanh'"]),
        (["run", "--activation", "sigmoud"], ["unknown activation", "'sigmoid'"]),
        (["run", "--estimator", "kde"], ["unknown estimator 'kde'"]),
        (["run", "--noise-variance", "0"], ["noise variance must be positive"]),
        (["run", "--noise-variance", "-1e-3"], ["noise variance must be positive"]),
        (["run", "--epochs", "0"], ["train.epochs must be at least 1"]),
        (["run", "--hidden", "10,0,3"], ["positive integers"]),
        (["run", "--hidden", "10,x"], ["comma-separated list"]),
        (["run", "--dataset", "csv", "--data-csv", "/nonexistent/file.csv", "--label", "y"], ["/nonexistent/file.csv"]),
        (["run", "--device", "cuda", "--epochs", "1"], ["CUDA"]),
        (["resume", "/nonexistent/run"], ["not a run directory"]),
        (["export", "/nonexistent/run"], ["not a run directory"]),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(args, words, tmp_path, ibtui):
    if args[:2] == ["run", "--device"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    result = ibtui(*args, "--out", str(tmp_path / "never")) if args[0] == "run" else ibtui(*args)
    assert_one_clear_sentence(result, *words)
    assert not (tmp_path / "never").exists()  # nothing written for bad input


def test_malformed_preset_file_names_file_and_line(tmp_path, ibtui):
    bad = tmp_path / "mine.toml"
    bad.write_text("[train]\nepochs = 10\nlr = \n")
    result = ibtui("run", "--preset", str(bad))
    assert_one_clear_sentence(result, "mine.toml", "line 3")


def test_csv_missing_a_column(tmp_path, ibtui):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(40)))
    result = ibtui("run", "--dataset", "csv", "--data-csv", str(csv), "--features", "a,c", "--label", "label", *TINY, "--out", str(tmp_path / "r"))
    assert_one_clear_sentence(result, "d.csv", "'c'")
    ok = ibtui("run", "--dataset", "csv", "--data-csv", str(csv), "--features", "a,b", "--label", "label", *TINY, "--out", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stderr


def test_out_directory_with_another_run_is_refused_and_untouched(tmp_path, ibtui):
    out = tmp_path / "r"
    assert ibtui("run", *TINY, "--out", str(out)).returncode == 0
    before = (out / "snapshots.jsonl").read_bytes()
    result = ibtui("run", *TINY, "--seed", "5", "--out", str(out))
    assert_one_clear_sentence(result, "already holds a run")
    assert (out / "snapshots.jsonl").read_bytes() == before


def test_tui_without_a_terminal_points_to_run(ibtui):
    result = ibtui()  # stdout is captured here, so not a terminal
    assert_one_clear_sentence(result, "ibtui run")


def test_messages_print_user_text_literally(tmp_path, ibtui):
    csv = tmp_path / "[odd].csv"
    csv.write_text("a:x:b,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    result = ibtui("run", "--dataset", "csv", "--data-csv", str(csv), "--label", "nope", "--out", str(tmp_path / "r"))
    assert_one_clear_sentence(result, "a:x:b", "[odd].csv")


def test_tui_with_an_out_that_holds_a_run_is_refused_as_run_does(tmp_path, capsys):
    from ibtui.runs.runner import execute, prepare_run

    out = tmp_path / "r"
    execute(*prepare_run(tiny_config(**{"train.epochs": 2}), out))
    code, text = call_main("tui", "--out", str(out), capsys=capsys)
    assert code == 2 and "already holds a run" in text and "needs a terminal" not in text, text
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, text = call_main("tui", "--out", str(tmp_path / "other"), capsys=capsys)
    assert code == 2 and "not empty" in text, text


def test_hidden_with_an_empty_entry_is_refused(tmp_path, capsys):
    code, text = call_main("run", "--hidden", "10,,3", "--out", str(tmp_path / "r"), capsys=capsys)
    assert code == 2 and "'10,,3' has an empty entry" in text, text
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["export", "report"])
def test_export_and_report_of_a_run_without_snapshots_are_refused(tmp_path, capsys, command):
    from ibtui.runs.store import RunStore

    RunStore.create(tmp_path / "r", tiny_config()).close()  # an early stop: config and summary only
    code, text = call_main(command, str(tmp_path / "r"), capsys=capsys)
    assert code == 2 and "has no snapshots yet" in text, text
    assert not list((tmp_path / "r").glob("*.png"))


def test_the_headless_progress_counts_each_snapshot_once():
    """A new run of 3 scheduled snapshots ends at 3/3, a resumed one counts the logged ones too."""
    import io

    from rich.console import Console

    from ibtui.cli.progress import ConsoleProgress
    from ibtui.engine.events import RunStarted, Snapshot, Stopping

    config = tiny_config(**{"train.epochs": 4})
    console = Console(file=io.StringIO(), width=200)

    def snapshot(epoch):
        return Snapshot("id", epoch, 0.0, [1.0], [1.0], [0.5], [0.5], {"binning": [[[1.0, 0.5]] * 4]})

    for start, epochs in ((0, (0, 2, 4)), (2, (4,))):
        progress = ConsoleProgress(console)
        with progress:
            progress.handle(RunStarted("id", config, ("a",) * 4, (6, 4, 3, 2), (0,), 10, 1.0, (0, 2, 4), start, "cpu", "d", True))
            for epoch in epochs:
                progress.handle(snapshot(epoch))
        assert (progress.snapshots, progress.n_snapshots) == (3, 3)
    progress = ConsoleProgress(console)
    with progress:
        progress.handle(RunStarted("id", config, ("a",) * 4, (6, 4, 3, 2), (0,), 10, 1.0, (0, 2, 4), 0, "cpu", "d", True))
        progress.handle(Stopping("r", 2))
    assert "finishing 2 estimates, Ctrl-C again to skip" in console.file.getvalue()


def test_the_headless_progress_says_it_compiles_and_measures_speed_from_the_first_epoch(monkeypatch):
    """Before the first epoch a CPU run says it may be compiling; the bar's speed (and so the time
    left) is measured from the first epoch, not across the compile."""
    import io

    from rich.console import Console

    from ibtui.cli.progress import ConsoleProgress
    from ibtui.engine import kernel_cache
    from ibtui.engine.events import Progress, RunStarted

    config = tiny_config(**{"train.epochs": 4})
    started = RunStarted("id", config, ("a",) * 4, (6, 4, 3, 2), (0,), 10, 1.0, (0, 2, 4), 0, "cpu", "d", True)
    for cached, words in ((True, "loading the compiled kernels"), (False, "compiling kernels on a first run")):
        monkeypatch.setattr(kernel_cache, "kernels_cached", lambda cached=cached: cached)
        console = Console(file=io.StringIO(), width=200)
        with ConsoleProgress(console) as progress:
            progress.handle(started)
        assert words in console.file.getvalue()
    console = Console(file=io.StringIO(), width=200)
    progress = ConsoleProgress(console)
    with progress:
        progress.handle(started)
        task = progress.bar.tasks[0]
        task._progress.append(type("Sample", (), {"timestamp": task.start_time - 30.0, "completed": 0})())  # the compile's 30 s
        progress.handle(Progress("id", 1, 4, 0.5, 0.0))
        assert progress.trained and len(progress.bar.tasks[0]._progress) == 0  # samples before the first epoch dropped
        assert progress.bar.tasks[0].fields["info"] == ""
