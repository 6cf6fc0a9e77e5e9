"""The local Batch API server is as strict as the real one: object shapes through the real openai
client, the state sequence, error-file lines, expiry, cancel, and the documented refusals."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest
from batch_server import FakeBatchAPI
from openai import OpenAI

URL = "/v1/chat/completions"


def line(custom_id: str, model: str = "gpt-4o-mini", url: str = URL, **extra) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": f"Hi {custom_id}"}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body, **extra}


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def client(srv, key="sk-batch") -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)


def submit(c: OpenAI, rows: list[dict]):
    f = c.files.create(file=("in.jsonl", jsonl(rows)), purpose="batch")
    return c.batches.create(input_file_id=f.id, endpoint=URL, completion_window="24h")


def run_to_end(c: OpenAI, batch, limit: int = 50) -> list[str]:
    seen = [batch.status]
    for _ in range(limit):
        batch = c.batches.retrieve(batch.id)
        if batch.status != seen[-1]:
            seen.append(batch.status)
        if batch.status in ("completed", "expired", "cancelled", "failed"):
            return seen
    raise AssertionError(seen)


def lines_of(c: OpenAI, file_id: str | None) -> list[dict]:
    return [json.loads(x) for x in c.files.content(file_id).text.splitlines()] if file_id else []


def test_states_outputs_and_error_lines_have_the_real_shapes():
    outcome = {"b": "500", "c": "400"}
    with FakeBatchAPI(
        polls_per_state=2, lines_per_poll=1, line_outcome=lambda cid, body, nth: outcome.get(cid, "ok")
    ) as srv:
        c = client(srv)
        f = c.files.create(file=("in.jsonl", jsonl([line("a"), line("b"), line("c")])), purpose="batch")
        assert (f.object, f.purpose, f.filename, f.bytes) == ("file", "batch", "in.jsonl", f.bytes)
        batch = c.batches.create(input_file_id=f.id, endpoint=URL, completion_window="24h")
        assert (batch.object, batch.status, batch.endpoint, batch.completion_window) == (
            "batch", "validating", URL, "24h")  # fmt: skip
        assert batch.expires_at - batch.created_at == 86400
        assert run_to_end(c, batch) == ["validating", "in_progress", "finalizing", "completed"]
        done = c.batches.retrieve(batch.id)
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
            3,
            1,
            2,
        )
        assert done.completed_at and done.in_progress_at and done.finalizing_at
        out, err = lines_of(c, done.output_file_id), lines_of(c, done.error_file_id)
        assert [x["custom_id"] for x in out] == ["a"] and out[0]["error"] is None
        assert out[0]["response"]["status_code"] == 200
        assert out[0]["response"]["body"]["object"] == "chat.completion"
        assert out[0]["id"].startswith("batch_req_") and out[0]["response"]["request_id"].startswith("req_")
        assert {x["custom_id"]: x["response"]["status_code"] for x in err} == {"b": 500, "c": 400}
        assert err[0]["response"]["body"]["error"]["message"] == "injected 500"
        assert srv.count == 0 and srv.batch_lines == 3  # no online request
        assert [b.id for b in c.batches.list().data] == [batch.id]


def test_an_expiring_batch_keeps_its_finished_lines():
    with FakeBatchAPI(expire=1) as srv:
        c = client(srv)
        batch = submit(c, [line(str(i)) for i in range(6)])
        assert run_to_end(c, batch)[-1] == "expired"
        done = c.batches.retrieve(batch.id)
        assert done.expired_at is not None
        out, err = lines_of(c, done.output_file_id), lines_of(c, done.error_file_id)
        assert len(out) == 3 and len(err) == 3
        assert {x["error"]["code"] for x in err} == {"batch_expired"} and all(
            x["response"] is None for x in err
        )
        assert not {x["custom_id"] for x in out} & {x["custom_id"] for x in err}


def test_cancel_goes_through_cancelling_to_cancelled_keeping_finished_lines():
    with FakeBatchAPI(polls_per_state=3, lines_per_poll=1) as srv:
        c = client(srv)
        batch = submit(c, [line("a"), line("b"), line("c")])
        for _ in range(4):  # 3 polls validating, then one line answered
            c.batches.retrieve(batch.id)
        assert c.batches.cancel(batch.id).status == "cancelling"
        done = c.batches.retrieve(batch.id)
        assert done.status == "cancelled" and done.cancelled_at and done.cancelling_at
        assert [x["custom_id"] for x in lines_of(c, done.output_file_id)] == ["a"]
        assert [x["error"]["code"] for x in lines_of(c, done.error_file_id)] == ["batch_cancelled"] * 2
        with pytest.raises(openai.ConflictError):
            c.batches.cancel(batch.id)


@pytest.mark.parametrize(
    "rows, code",
    [
        ([line("a"), line("a")], "duplicate_custom_id"),
        ([line("a"), line("b", model="gpt-4o")], "mixed_models"),
        ([line("a", url="/v1/embeddings")], "invalid_url"),
        ([{**line("a"), "method": "GET"}], "invalid_method"),
        ([{"method": "POST", "url": URL, "body": {"model": "m"}}], "missing_required_parameter"),
    ],
)
def test_a_bad_input_file_fails_the_batch_naming_the_line(rows, code):
    with FakeBatchAPI() as srv:
        c = client(srv)
        batch = submit(c, rows)
        assert run_to_end(c, batch)[-1] == "failed"
        errors = c.batches.retrieve(batch.id).errors.data
        assert errors[0].code == code and errors[0].message


def test_refusals_are_the_real_status_codes():
    with FakeBatchAPI(max_requests=2, max_bytes=600) as srv:
        c = client(srv)
        with pytest.raises(openai.BadRequestError, match="purpose must be 'batch'"):
            c.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="fine-tune")
        with pytest.raises(openai.BadRequestError, match="Must be .jsonl"):
            c.files.create(file=("in.json", jsonl([line("a")])), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="too large"):
            c.files.create(file=("in.jsonl", jsonl([line(str(i)) for i in range(9)])), purpose="batch")
        f = c.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="completion_window"):
            c.batches.create(input_file_id=f.id, endpoint=URL, completion_window="1h")
        with pytest.raises(openai.NotFoundError):
            c.batches.retrieve("batch_nope")
        with pytest.raises(openai.NotFoundError):
            c.batches.create(input_file_id="file-nope", endpoint=URL, completion_window="24h")
        batch = submit(c, [line("a"), line("b"), line("c")])
        assert run_to_end(c, batch)[-1] == "failed"
        assert c.batches.retrieve(batch.id).errors.data[0].code == "too_many_requests"
        request = urllib.request.Request(f"{srv.base_url}/batches", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        assert json.loads(refused.value.read())["error"]["type"] == "invalid_request_error"


def test_an_unknown_model_fails_validation_or_every_line_as_the_real_api_does():
    from fake_quirks import Quirks

    with FakeBatchAPI(quirks=Quirks(known_models=("gpt-4o-mini",))) as srv:
        c = client(srv)
        batch = submit(c, [line("a", model="gpt-4o-minnie"), line("b", model="gpt-4o-minnie")])
        assert run_to_end(c, batch)[-1] == "failed"
        done = c.batches.retrieve(batch.id)
        error = done.errors.data[0]
        assert (error.code, error.param, error.line) == ("model_not_found", "body.model", 1)
        assert error.message == "The provided model 'gpt-4o-minnie' is not supported by the Batch API."
        assert srv.batch_lines == 0 and done.output_file_id is None and done.error_file_id is None
    with FakeBatchAPI(quirks=Quirks(known_models=("gpt-4o-mini",)), unknown_model="lines") as srv:
        c = client(srv)
        batch = submit(c, [line("a", model="gpt-4o-minnie")])
        assert run_to_end(c, batch)[-1] == "completed"
        done = c.batches.retrieve(batch.id)
        assert done.output_file_id is None and done.request_counts.failed == 1
        [failed] = lines_of(c, done.error_file_id)
        assert failed["response"]["status_code"] == 404
        assert failed["response"]["body"]["error"]["code"] == "model_not_found"


def test_a_key_the_server_does_not_take_is_refused_at_upload_as_online():
    from fake_quirks import Quirks

    with FakeBatchAPI(quirks=Quirks(api_keys=("sk-the-right-key",))) as srv:
        with pytest.raises(openai.AuthenticationError) as refused:
            submit(client(srv, key="sk-a-wrong-key"), [line("a")])
        assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
        assert "sk-*-key" in refused.value.message and srv.uploads == 0
        batch = submit(client(srv, key="sk-the-right-key"), [line("a")])
        assert run_to_end(client(srv, key="sk-the-right-key"), batch)[-1] == "completed"
