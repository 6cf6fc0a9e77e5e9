"""Per-role endpoints from the command line: `--simulator-base-url A --simulator-base-url B
--assistant-base-url C` routes the simulator over A and B and the assistant to C, with keys per
role (once or once per URL); bad combinations are one-line errors naming the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from fake_quirks import Quirks
from test_generate_cli import one_line_error, run

from recllmsim_hf.corpus import write_jsonl
from recllmsim_hf.schema import Profile

PROFILES = [Profile(profile_id=str(i), text=f"1. Gender: Male\n2. Age: {40 + i}") for i in range(5)]


def corpus(tmp_path: Path) -> Path:
    out = tmp_path / "corpus"
    out.mkdir()
    write_jsonl(out / "profiles.jsonl", PROFILES)
    return out


def test_the_simulator_over_two_servers_and_the_assistant_on_a_third(tmp_path):
    # each server takes only its own key (another is a 401, which would stop the run)
    with FakeOpenAI(end_after=2, quirks=Quirks(api_keys=("sk-sim-a",))) as a, \
            FakeOpenAI(end_after=2, quirks=Quirks(api_keys=("sk-sim-b",))) as b, \
            FakeOpenAI(end_after=2, quirks=Quirks(api_keys=("sk-assist",))) as c:  # fmt: skip
        flags = ["--simulator-base-url", a.base_url, "--simulator-api-key", "sk-sim-a",
                 "--simulator-base-url", b.base_url, "--simulator-api-key", "sk-sim-b",
                 "--assistant-base-url", c.base_url, "--assistant-api-key", "sk-assist",
                 "--endpoint-concurrency", 2, "--concurrency", 4]  # fmt: skip
        out = corpus(tmp_path)
        result = run("generate", "conversations", "-n", 6, "--out", out, *flags, "--json", "-q")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["generated"] == 6
        # end_after=2: 3 simulator turns (the last one ends) and 2 assistant turns per conversation
        assert a.count and b.count and a.count + b.count == 6 * 3 and c.count == 6 * 2
        assert a.max_in_flight <= 2 and b.max_in_flight <= 2
    for key in ("sk-sim-a", "sk-sim-b", "sk-assist"):
        for path in out.rglob("*"):
            assert not path.is_file() or key.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--simulator-base-url", "http://127.0.0.1:9/v1"] * 3 + ["--simulator-api-key", "k1"] * 2,
         "--simulator-api-key: give one key for all 3 --simulator-base-url or one per --simulator-base-url, "
         "but got 2"),
        # keys of a role without its own URLs (it shares --base-url): never "one key for all 0 ..."
        (["--base-url", "http://127.0.0.1:9/v1", "--base-url", "http://127.0.0.1:8/v1",
          "--simulator-api-key", "k1", "--simulator-api-key", "k2"],
         "--simulator-api-key: several keys pair with several --simulator-base-url, but got 2 keys and no "
         "--simulator-base-url; give the key once, or one --simulator-base-url per key"),
        (["--simulator-base-url", "http://127.0.0.1:9/v1", "--api-key", "k1", "--api-key", "k2"],
         "--api-key: several keys pair with several --base-url, but got 2 keys and no --base-url; "
         "give the key once, or one --base-url per key"),
        (["--assistant-base-url", "127.0.0.1:9/v1"], "--assistant-base-url: must start with http:// or https://"),
        (["--assistant-base-url", "http://127.0.0.1:9/v1", "--assistant-base-url", "ftp://x"],
         "--assistant-base-url: must start with http:// or https://, but got 'ftp://x'"),
        # URLs no request can go to were a traceback once the role was first called
        (["--base-url", "http://127.0.0.1:9/v1", "--assistant-base-url", "http://[::1"],
         "--assistant-base-url: not a valid URL (Invalid IPv6 URL), but got 'http://[::1'"),
        (["--base-url", "http://127.0.0.1:9/v1", "--assistant-base-url", "http://127.0.0.1:99999/v1"],
         "--assistant-base-url: not a valid URL (Port out of range 0-65535), "
         "but got 'http://127.0.0.1:99999/v1'"),
        (["--simulator-base-url", "http://127.0.0.1:9/v1", "--simulator-base-url", "http://x:sk-SECRET123456@"],
         "--simulator-base-url: the URL names no host, but got 'http://***@'"),
        (["--base-url", "http://127.0.0.1:9/v1", "--base-url", "http://127.0.0.1:port/v1"],
         "--base-url: not a valid URL (Port could not be cast to integer value as 'port')"),
        # an empty value (an unset "$VAR") would send the role to the shared URL with the shared key
        (["--api-key", "sk-main", "--simulator-base-url", "http://127.0.0.1:9/v1", "--simulator-api-key", ""],
         "--simulator-api-key: an empty value (an unset shell variable?), but got ''"),
        (["--base-url", "http://127.0.0.1:9/v1", "--assistant-base-url", ""],
         "--assistant-base-url: an empty value (an unset shell variable?), but got ''"),
    ],
)  # fmt: skip
def test_bad_role_endpoint_flags_are_one_line(tmp_path, flags, message):
    out = corpus(tmp_path)
    result = run("generate", "conversations", "-n", 2, "--out", out, *flags)
    assert message in one_line_error(result, 2)
    assert not (out / "conversations.jsonl").exists()
