"""Transports: how one chat completion body reaches a model and its JSON reply comes back.

A transport makes one attempt and has no retry logic: it reports every failure as a
:class:`TransportFailure` saying whether a retry may help and how long the server asked
to wait. :class:`~recllmsim_hf.generation.llm.LLMRunner` owns retries, concurrency, cost
and the cache, so an OpenAI Batch API transport (queue bodies into a batch file, resolve
each call when its batch finishes) can be added beside :class:`OpenAITransport` without
touching the runner or the conversation code.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, Protocol

from .endpoints import Endpoint


def user_agent() -> str:
    """``recllmsim/<version>``: servers' logs show who is calling."""
    from recllmsim_hf import __version__

    return f"recllmsim/{__version__}"


class TransportFailure(Exception):
    """One failed attempt, as a transport reports it to the runner.

    ``status`` is the HTTP status (None: no reply), ``code`` the error body's ``code`` when it
    is a string (OpenAI's ``model_not_found``, ``context_length_exceeded`` ...), ``server_message``
    the error body's message as the server wrote it.
    """

    mode: str | None

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        fatal: bool = False,
        status: int | None = None,
        code: str | None = None,
        server_message: str = "",
    ):
        super().__init__(message)
        self.retryable, self.retry_after, self.fatal = retryable, retry_after, fatal
        self.status, self.code, self.server_message = status, code, server_message
        self.mode: str | None = None  # the structured-output mode of the attempt (set by the runner)


class Transport(Protocol):
    """Sends one chat completion body (canonical JSON bytes) and returns the decoded JSON reply.

    Raises :class:`TransportFailure` for anything but a decoded 2xx body. A Batch API
    transport would queue the body and resolve when its batch finishes.
    """

    async def complete(self, endpoint: Endpoint, body: bytes) -> dict: ...

    async def close(self) -> None: ...


# Connections per AsyncOpenAI client. The HTTP connection pool under the openai client
# scans all of its connections on every request and every release; several small pools
# (requests go to the least busy one) keep that scan short at high concurrency.
CONNECTIONS_PER_CLIENT = 8


class OpenAITransport:
    """Transport through ``openai.AsyncOpenAI``'s low-level path (no typed response objects).

    Per (base URL, key): ``ceil(max_connections / 8)`` clients of 8 connections each, the
    least busy one taking the next request. The clients' own retries are off (the runner
    retries) and every attempt is bounded by ``timeout`` as a whole.
    """

    def __init__(self, *, timeout: float = 60.0, max_connections: int = 64):
        import httpx2
        import openai

        self._openai, self._httpx = openai, httpx2
        self.timeout = timeout
        self._shards = max(1, -(-max_connections // CONNECTIONS_PER_CLIENT))
        per = -(-max_connections // self._shards)
        # Headroom over `per`: a connection being released still counts against its pool.
        self._limits = httpx2.Limits(max_connections=2 * per, max_keepalive_connections=2 * per)
        self._pools: dict[tuple, tuple[list, list[int]]] = {}
        self._ssl = None

    def _pool(self, endpoint: Endpoint) -> tuple[list, list[int]]:
        ident = (endpoint.base_url, endpoint.api_key)
        pool = self._pools.get(ident)
        if pool is None:
            if self._ssl is None:  # one CA bundle load for all clients, not one per client
                self._ssl = self._httpx.create_ssl_context()
            clients = []
            for _ in range(self._shards):
                http = self._openai.DefaultAsyncHttpxClient(
                    limits=self._limits, timeout=self.timeout, verify=self._ssl
                )
                clients.append(
                    self._openai.AsyncOpenAI(
                        base_url=endpoint.base_url,
                        api_key=endpoint.api_key,
                        max_retries=0,
                        timeout=self.timeout,
                        http_client=http,
                        default_headers={"User-Agent": user_agent()},
                    )
                )
            pool = self._pools[ident] = (clients, [0] * self._shards)
        return pool

    async def complete(self, endpoint: Endpoint, body: bytes) -> dict:
        openai = self._openai
        clients, busy = self._pool(endpoint)
        shard = busy.index(min(busy))
        busy[shard] += 1
        try:
            async with asyncio.timeout(self.timeout):
                response = await clients[shard].post(
                    "/chat/completions", content=body, cast_to=self._httpx.Response
                )
            return json.loads(response.content)
        except openai.APIStatusError as e:
            raise status_failure(e.status_code, e.response.headers, *_message(e)) from None
        except (TimeoutError, openai.APITimeoutError):
            raise TransportFailure(f"no reply within {self.timeout:g} s", retryable=True) from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise TransportFailure(f"connection failed ({type(cause).__name__})", retryable=True) from None
        except ValueError:  # the body of a 200 is not JSON (json.JSONDecodeError, UnicodeDecodeError)
            raise TransportFailure("the reply body is not JSON", retryable=True) from None
        finally:
            busy[shard] -= 1

    async def check(self, endpoint: Endpoint) -> None:
        """Fail fast when the endpoint is unreachable or refuses the key (``GET /models``)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                await self._pool(endpoint)[0][0].get("/models", cast_to=self._httpx.Response)
        except self._openai.APIStatusError as e:
            if e.status_code in (401, 403):
                raise status_failure(e.status_code, e.response.headers, *_message(e)) from None
        except (TimeoutError, self._openai.APIConnectionError) as e:
            elapsed = time.monotonic() - started
            raise TransportFailure(
                f"cannot connect ({_connect_cause(e, self.timeout)}, after {elapsed:.2f} s)", retryable=False
            ) from None

    async def close(self) -> None:
        for clients, _ in self._pools.values():
            for client in clients:
                await client.close()
        self._pools.clear()


def _connect_cause(error: BaseException, timeout: float) -> str:
    """What really happened under a connection error: "connection refused", a DNS failure, a timeout."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    for e in reversed(seen):  # the deepest cause first
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return f"no reply within {timeout:g} s"
        if isinstance(e, OSError) and (e.errno or e.strerror):
            text = os.strerror(e.errno) if isinstance(e.errno, int) and e.errno > 0 else e.strerror
            return text[0].lower() + text[1:]
    text = str(seen[-1]).strip() or type(seen[-1]).__name__
    return text[0].lower() + text[1:]


def _message(error: Any) -> tuple[str, str | None]:
    """The server's message and string ``code``: OpenAI and Ollama nest them in ``error`` (the
    client hands that object over), vLLM puts them at the top level (``code`` is the status)."""
    body = getattr(error, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    code = body.get("code") if isinstance(body, dict) else None
    code = code if isinstance(code, str) else None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"], code
    return str(getattr(error, "message", "") or ""), code


def status_failure(status: int, headers: Any, message: str, code: str | None = None) -> TransportFailure:
    retry_after = None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            retry_after = float(headers.get(name)) * scale
            break
        except (TypeError, ValueError):
            continue
    server = message.splitlines()[0][:300] if message else ""
    text = f"HTTP {status}: {server or 'no message'}"
    retryable = status in (408, 409, 429) or status >= 500
    return TransportFailure(
        text, retryable=retryable, retry_after=retry_after, fatal=status in (401, 403), status=status,
        code=code, server_message=server,
    )  # fmt: skip
