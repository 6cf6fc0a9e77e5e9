"""Batch runs stop at once on what no retry can fix: a batch the API fails while validating (an
unknown model), or error lines that all say the same 404/400 (issue 10's fail-fast rule, which
online runs apply through their first lone request); neither is sent again round after round."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from batch_server import FakeBatchAPI
from fake_quirks import Quirks
from recllmsim_hf.generation.llm.executors import ExecutorSpec
from recllmsim_hf.generation.llm.guard import RunStopped
from recllmsim_hf.generation.llm.options import runner_from_options
from recllmsim_hf.generation.simulate.conversations import Settings, generate_conversations

from recllmsim_hf.corpus import write_jsonl
from recllmsim_hf.errors import ServiceError
from recllmsim_hf.schema import Profile

WRONG = "gpt-4o-minnie"
STAND_IN = Path(__file__).resolve().parents[2] / "fake_run_batch.py"


def corpus(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    profiles = [Profile(profile_id=str(i), text=f"1. Age: {30 + i}") for i in range(4)]
    write_jsonl(folder / "profiles.jsonl", profiles)
    return folder


def batch_spec() -> ExecutorSpec:
    return ExecutorSpec.parse("openai-batch", poll_interval=0.001, poll_max=0.01)


def factory(srv, model: str = WRONG):
    url = srv.base_url if srv is not None else None
    return lambda c: runner_from_options(c, base_url=url, api_key="sk-stop", model=model, backoff_base=0.001)


def run(folder, srv, executor, model: str = WRONG, lines: list | None = None):
    log = lines.append if lines is not None else None
    return generate_conversations(folder, 5, factory(srv, model), settings=Settings(seed=1), progress=False,
                                  executor=executor, log=log)  # fmt: skip


def test_a_batch_failed_at_validation_stops_naming_model_endpoint_and_message(tmp_path):
    folder = corpus(tmp_path, "c")
    with FakeBatchAPI(quirks=Quirks(known_models=("gpt-4o-mini",)), end_after=2) as srv:
        for attempt in (1, 2):
            with pytest.raises(ServiceError) as stop:
                run(folder, srv, batch_spec())
            message = str(stop.value)
            assert "\n" not in message
            assert re.match(
                rf"{WRONG} at http://127\.0\.0\.1:\d+/v1: batch round 0 part 0: batch batch_\w+ failed "
                rf"validation \(line 1: The provided model '{WRONG}' is not supported by the Batch API\. "
                r"\(model_not_found\)\); nothing of it was answered or billed",
                message,
            ), message
            # one batch per run, never retried in a next round; nothing was paid, so the run leaves no
            # round behind (a rerun starts afresh, as an online rerun sends its first request again)
            assert (srv.uploads, len(srv.batches), srv.batch_lines, srv.count) == (attempt,) * 2 + (0, 0)
            assert not (folder / ".batch").exists()


def test_identical_404_error_lines_stop_after_one_round(tmp_path):
    folder = corpus(tmp_path, "c")
    quirks = Quirks(known_models=("gpt-4o-mini",))
    lines: list[str] = []
    with FakeBatchAPI(quirks=quirks, unknown_model="lines", end_after=2) as srv:
        with pytest.raises(RunStopped) as stop:
            run(folder, srv, batch_spec(), lines=lines)
        assert (len(srv.batches), srv.batch_lines, srv.count) == (1, 5, 0)
    assert re.match(
        rf"{WRONG} at http://127\.0\.0\.1:\d+/v1 rejected 3 identical requests \(HTTP 404: The model "
        rf"`{WRONG}` does not exist or you do not have access to it\.\); stopped without sending the rest",
        str(stop.value),
    ), stop.value
    assert [x for x in lines if x.startswith("batch round ") and "request(s) in" in x] == [
        f"batch round 0: 5 request(s) in 1 batch(es) -> {folder}/.batch/conversations/round-0000"
    ]


def test_a_batch_program_serving_another_model_stops_after_one_round(tmp_path):
    # `vllm run-batch --model other` answers each line of another model with a 404 line
    folder = corpus(tmp_path, "c")
    lines: list[str] = []
    spec = ExecutorSpec.parse("command", f"{sys.executable} {STAND_IN} -i {{input}} -o {{output}} --model x")
    stop = r"gpt-4o-mini at .* rejected 3 identical requests \(HTTP 404: The model `gpt-4o-mini` does not"
    with pytest.raises(RunStopped, match=stop):
        run(folder, None, spec, model="gpt-4o-mini", lines=lines)
    assert sum(x.startswith("batch round ") and "request(s) in" in x for x in lines) == 1


def test_a_failed_batch_beside_one_the_server_runs_keeps_the_round_so_nothing_is_paid_twice(tmp_path):
    # the simulator over two endpoints; the second fails its batch at validation while the first's
    # runs: the round (with the first batch's id) is kept, and the rerun polls it instead of paying again
    folder = corpus(tmp_path, "c")
    refusing = Quirks(known_models=("other",))
    with FakeBatchAPI(end_after=2) as a, FakeBatchAPI(end_after=2, quirks=refusing, polls_per_state=3) as b:
        make = lambda c: runner_from_options(c, base_url=[a.base_url, b.base_url], api_key="sk-stop",  # noqa: E731
                                             model="gpt-4o-mini")  # fmt: skip
        for attempt in (1, 2):
            with pytest.raises(ServiceError) as stop:
                generate_conversations(folder, 4, make, settings=Settings(seed=1), progress=False,
                                       executor=batch_spec())  # fmt: skip
            assert str(stop.value).startswith(f"gpt-4o-mini at {b.base_url}: batch round 0 part ")
            # a's batch is made once and polled by the rerun; b's (refused, free) is sent again
            assert (len(a.batches), a.uploads, len(b.batches), b.uploads) == (1, 1, attempt, attempt)
            assert (folder / ".batch/conversations/round-0000/state.json").is_file()
        assert a.batch_lines == 2 and b.batch_lines == 0 and a.count == b.count == 0
