"""The response cache (SQLite, numbered migrations, key contract) and the price table."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from recllmsim_hf.generation.llm.cache import MIGRATIONS, ResponseCache, canonical_json, key_for_body
from recllmsim_hf.generation.llm.pricing import PriceTable

from recllmsim_hf.errors import InputError

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Héllo"}], "seed": 1}


def put(cache: ResponseCache, key: str, text: str = "Hi!", structured_mode: str | None = None) -> None:
    cache.put(key, model="gpt-4o-mini", prompt_version="v1", text=text, finish_reason="stop",
              prompt_tokens=10, completion_tokens=3, cost_usd=3.3e-06,
              structured_mode=structured_mode)  # fmt: skip


# -- key contract -------------------------------------------------------------------------------------


def test_key_is_sha256_of_the_documented_canonical_json():
    text = '{"endpoint":"https://api.openai.com/v1","prompt_version":"v1","request":{"messages":[{"content":"Héllo","role":"user"}],"model":"gpt-4o-mini","seed":1},"v":2}'  # noqa: E501
    payload = {"v": 2, "endpoint": "https://api.openai.com/v1", "prompt_version": "v1", "request": BODY}
    assert canonical_json(payload) == text
    assert key_for_body(BODY, "v1") == hashlib.sha256(text.encode("utf-8")).hexdigest()
    # Pinned: a change here invalidates every cache users have; bump KEY_VERSION on purpose.
    assert key_for_body(BODY, "v1") == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert key_for_body(BODY, "v1") == "a6f5e7c366f6684a6fa136eecdd1d74636a090a5ab5337df8ecece64c70a93f3"


def test_key_names_the_endpoint():
    local = key_for_body(BODY, "v1", "http://127.0.0.1:8000/v1")
    assert local == key_for_body(
        BODY, "v1", "http://127.0.0.1:8000/v1/"
    )  # a trailing slash is the same server
    assert local != key_for_body(BODY, "v1", "http://127.0.0.1:8001/v1") != key_for_body(BODY, "v1")
    assert key_for_body(BODY, "v1", None) == key_for_body(BODY, "v1", "https://api.openai.com/v1")


def test_key_does_not_depend_on_dict_order_but_on_every_value():
    reordered = {"seed": 1, "messages": [{"content": "Héllo", "role": "user"}], "model": "gpt-4o-mini"}
    assert key_for_body(reordered, "v1") == key_for_body(BODY, "v1")
    for changed in ({**BODY, "seed": 2}, {**BODY, "model": "gpt-4o"}, {**BODY, "temperature": 0.7},
                    {**BODY, "messages": [{"role": "user", "content": "Hello"}]}):  # fmt: skip
        assert key_for_body(changed, "v1") != key_for_body(BODY, "v1")
    assert key_for_body(BODY, "v2") != key_for_body(BODY, "v1")


# -- storage -------------------------------------------------------------------------------------------


def test_put_get_and_reopen(tmp_path):
    key = key_for_body(BODY, "v1")
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        assert cache.get(key) is None
        put(cache, key)
        put(cache, key, text="a later answer")  # the first stored answer wins
        assert len(cache) == 1
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        hit = cache.get(key)
    assert hit.text == "Hi!" and hit.prompt_tokens == 10 and hit.completion_tokens == 3
    assert hit.finish_reason == "stop" and hit.cost_usd == pytest.approx(3.3e-06)


def test_for_corpus_puts_the_file_in_the_corpus_cache_folder(tmp_path):
    with ResponseCache.for_corpus(tmp_path / "corpus") as cache:
        assert cache.path == tmp_path / "corpus" / ".cache" / "llm.sqlite"
    assert cache.path.is_file()


def test_migrations_set_the_schema_version(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        assert cache.schema_version == len(MIGRATIONS) == 2
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    columns = [row[1] for row in conn.execute("PRAGMA table_info(responses)")]
    conn.close()
    assert columns[:4] == ["key", "model", "prompt_version", "text"]
    assert not any("key" in c and c != "key" for c in columns)  # no api_key column, ever
    assert columns[-1] == "structured_mode"


def test_a_version_1_cache_is_migrated_in_place(tmp_path):
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    conn.execute(MIGRATIONS[0])
    conn.execute("INSERT INTO responses VALUES ('k', 'm', 'v1', 'old', 'stop', 1, 2, 0.5, 'then')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        assert cache.schema_version == 2
        assert cache.get("k") == ("old", "stop", 1, 2, 0.5, None)
        put(cache, "k2", structured_mode="json_object")
        assert cache.get("k2").structured_mode == "json_object"


def test_a_newer_cache_schema_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(InputError, match=r"c.sqlite: cache schema version 99 is newer .* pass --no-cache"):
        ResponseCache(tmp_path / "c.sqlite")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    (tmp_path / "c.sqlite").write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(
        InputError, match=r"c.sqlite: not a usable response cache .* delete the file or pass --no-cache"
    ):
        ResponseCache(tmp_path / "c.sqlite")


def test_a_killed_writer_leaves_whole_rows(tmp_path):
    """Each put is its own transaction: a reader in another connection sees it at once."""
    cache = ResponseCache(tmp_path / "c.sqlite")
    put(cache, "k1")
    other = ResponseCache(tmp_path / "c.sqlite")  # as a rerun would open it, without closing the first
    assert other.get("k1").text == "Hi!"
    other.close()
    cache.close()


# -- prices --------------------------------------------------------------------------------------------


def test_default_prices_match_snapshots_to_their_family():
    table = PriceTable.load()
    assert table.as_of == "2026-06"
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert table.cost("gpt-4o-mini-2024-07-18", 0, 1_000_000) == pytest.approx(0.60)
    assert table.cost("gpt-4o-2024-08-06", 1_000_000, 0) == pytest.approx(2.50)
    assert table.cost("gpt-4-turbo-2024-04-09", 1_000_000, 0) == pytest.approx(10.0)
    assert table.lookup("gpt-4o-minimal") is None and table.cost("llama-3-8b", 5, 5) is None


def test_user_prices_replace_and_add(tmp_path):
    path = tmp_path / "prices.yaml"
    lines = [
        "as_of: '2030-01'",
        "models:",
        "  gpt-4o-mini: {input: 1, output: 2}",
        "  llama-3-8b: {input: 0, output: 0}",
    ]
    path.write_text("\n".join(lines) + "\n")
    table = PriceTable.load(path)
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert table.cost("llama-3-8b", 100, 100) == 0.0 and table.cost("gpt-4o", 1_000_000, 0) == pytest.approx(
        2.5
    )
    assert table.as_of == "2030-01"


def test_user_prices_may_be_a_bare_json_mapping(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"my-model": {"input": 0.5, "output": 1.5}}')
    assert PriceTable.load(path).cost("my-model", 2_000_000, 0) == pytest.approx(1.0)


def test_negative_price_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  m: {input: -1, output: 2}\n")
    with pytest.raises(
        InputError, match=r"p.yaml: models.m.input: Input should be greater than or equal to 0, but got -1"
    ):
        PriceTable.load(path)


def test_missing_output_price_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  m: {input: 1}\n")
    with pytest.raises(InputError, match=r"p.yaml: models.m.output: Field required"):
        PriceTable.load(path)


def test_price_table_must_be_a_mapping(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("- gpt-4o\n")
    with pytest.raises(InputError, match=r"p.yaml: a price table must be a mapping, but got list"):
        PriceTable.load(path)


def test_price_table_must_parse(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("models: {m: [1, 2\n")
    with pytest.raises(InputError, match=r"p.yaml: not valid YAML/JSON"):
        PriceTable.load(path)


def test_missing_price_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"nope.yaml: cannot read the price table .* check --prices"):
        PriceTable.load(tmp_path / "nope.yaml")
