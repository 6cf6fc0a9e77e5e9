"""Many endpoints per role: least-outstanding routing, per-endpoint limits, setting aside the sick.

A role may be served by several OpenAI-compatible servers (vLLM replicas, several machines):
``--base-url`` given several times (``--api-key`` once for all or once per URL, in order), or an
endpoints file (``--endpoints FILE``, YAML or JSON)::

    endpoints:
      - {base_url: http://gpu1:8000/v1, concurrency: 16}
      - {base_url: http://gpu2:8000/v1, concurrency: 16, api_key_env: GPU2_KEY}
      - {base_url: http://gpu3:8000/v1, roles: [assistant]}

:class:`PoolTransport` wraps the one-call transport: each request goes to the replica of its
role with the fewest outstanding requests among those under their own ``concurrency`` limit
(waiting when all are full). A replica that refuses connections is set aside at once and the
request goes to another; one that answers 5xx ``SICK_AFTER`` times in a row is set aside too
(the runner retries that request, on another replica). A set-aside replica is tried again after
``cooldown`` seconds, doubling while it keeps failing (up to ``cooldown_max``); when every
replica is set aside, the next request waits for the first to come back. The model, the cache
key and the cost stay those of the role: replicas serve the same model.

Example:
    >>> pools = parse_pools(["http://a:8000/v1", "http://b:8000/v1"], ["k"], per_endpoint=4, environ={})
    >>> [(r.base_url, r.limit) for r in pools["*"]]
    [('http://a:8000/v1', 4), ('http://b:8000/v1', 4)]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recllmsim_hf.errors import InputError, ServiceError, redact

from .endpoints import ROLES, Endpoint, check_base_url
from .transport import TransportFailure

SICK_AFTER = 3


class EndpointEntry(BaseModel):
    """One line of an endpoints file."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(pattern=r"^https?://")
    api_key: str | None = None
    api_key_env: str | None = None
    concurrency: int | None = Field(default=None, gt=0)
    roles: list[str] | None = None


class Replica:
    """One server of a pool and its live counters (``api_key`` None: the role's own key)."""

    def __init__(self, base_url: str, api_key: str | None, limit: int):
        self.base_url, self.api_key, self.limit = base_url, api_key, limit
        self.outstanding = self.sent = self.failures = self.set_asides = 0
        self.down_until = 0.0

    def __repr__(self) -> str:
        return f"Replica({self.base_url!r}, limit={self.limit})"


def parse_pools(
    base_urls: list[str],
    api_keys: list[str],
    *,
    per_endpoint: int,
    endpoints_file: str | os.PathLike | None = None,
    environ: dict | None = None,
) -> dict[str, list[Replica]]:
    """role (or ``"*"`` for every role) -> replicas, from the flags and the endpoints file."""
    env = os.environ if environ is None else environ
    pools: dict[str, list[Replica]] = {}
    if len(api_keys) > 1 and not base_urls:
        raise InputError(
            f"--api-key: several keys pair with several --base-url, but got {len(api_keys)} keys and no "
            "--base-url; give the key once, or one --base-url per key"
        )
    if len(api_keys) > 1 and len(api_keys) != len(base_urls):
        raise InputError(
            f"--api-key: give one key for all {len(base_urls)} --base-url or one per --base-url, "
            f"but got {len(api_keys)}"
        )
    for i, url in enumerate(base_urls):
        check_base_url(url, "--base-url")
        key = api_keys[i] if len(api_keys) > 1 else (api_keys[0] if api_keys else None)
        pools.setdefault("*", []).append(Replica(url, key or None, per_endpoint))
    if endpoints_file is not None:
        for role, replica in _read_file(Path(endpoints_file), per_endpoint, env):
            pools.setdefault(role, []).append(replica)
    return pools


def _read_file(path: Path, per_endpoint: int, env) -> list[tuple[str, Replica]]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"--endpoints {path}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise InputError(f"--endpoints {path}: not valid YAML/JSON ({str(e).splitlines()[0]})") from None
    rows = data.get("endpoints") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise InputError(
            f"{path}: endpoints: must be a non-empty list of {{base_url, ...}}, but got {rows!r}"
        )
    out = []
    for i, row in enumerate(rows):
        try:
            entry = EndpointEntry.model_validate(row)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise InputError(
                f"{path}: endpoints[{i}].{field}: {err['msg']}, but got {err.get('input')!r}"
            ) from None
        check_base_url(entry.base_url, f"{path}: endpoints[{i}].base_url")
        for role in entry.roles or ["*"]:
            if role != "*" and role not in ROLES:
                raise InputError(
                    f"{path}: endpoints[{i}].roles: unknown role {role!r}; choose from {list(ROLES)}"
                )
        key = entry.api_key
        if entry.api_key_env is not None:
            key = env.get(entry.api_key_env)
            if not key:
                raise InputError(f"{path}: endpoints[{i}].api_key_env: ${entry.api_key_env} is not set")
        for role in entry.roles or ["*"]:
            out.append(
                (role, Replica(entry.base_url, key or None, entry.concurrency or per_endpoint))
            )
    return out


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class PoolTransport:
    """Routes each call of a role to one of its replicas (see the module docstring).

    ``pool_of`` maps an endpoint's identity ``(base_url, api_key, model)`` to its pool's name (a
    role, or ``"*"`` for the flags' pool); an endpoint it does not name goes out unchanged (a role
    pointed elsewhere by ``RECLLMSIM_<ROLE>_BASE_URL``)."""

    def __init__(
        self,
        inner,
        pools: dict[str, list[Replica]],
        pool_of: dict[tuple, str],
        *,
        cooldown: float = 1.0,
        cooldown_max: float = 60.0,
    ):
        self.inner, self.pools, self.pool_of = inner, pools, pool_of
        self.cooldown, self.cooldown_max = cooldown, cooldown_max
        self.warn = _stderr
        self._free = asyncio.Condition()

    def replicas(self, endpoint: Endpoint) -> list[Replica] | None:
        """The pool of an endpoint (by its identity), or None: it is sent to as it is."""
        return self.pools.get(self.pool_of.get((endpoint.base_url, endpoint.api_key, endpoint.model)))

    async def complete(self, endpoint: Endpoint, body: bytes) -> dict:
        replicas = self.replicas(endpoint)
        if not replicas:
            return await self.inner.complete(endpoint, body)
        tried: set[int] = set()
        while True:
            replica, target = await self.pick(endpoint, replicas, tried)
            try:
                data = await self.inner.complete(target, body)
            except TransportFailure as e:
                if await self.failed(replica, e, replicas, tried):
                    continue  # another replica takes it at once
                raise
            except BaseException:
                await self.release(replica)
                raise
            await self.answered(replica)
            return data

    # -- the steps of one attempt, for a runner that shapes the body for the replica it goes to ---------
    async def pick(
        self, endpoint: Endpoint, replicas: list[Replica], tried: set[int]
    ) -> tuple[Replica, Endpoint]:
        """Hold the least busy replica (waiting while all are full) and the endpoint to send to."""
        replica = await self._acquire(replicas, tried)
        tried.add(id(replica))
        update = {"base_url": replica.base_url, "api_key": replica.api_key or endpoint.api_key}
        return replica, endpoint.model_copy(update=update)

    async def answered(self, replica: Replica) -> None:
        replica.failures, replica.set_asides = 0, 0
        await self._release(replica)

    async def release(self, replica: Replica) -> None:
        """Give the replica back after an attempt that neither answered nor failed (cancelled)."""
        await self._release(replica)

    async def failed(
        self, replica: Replica, e: TransportFailure, replicas: list[Replica], tried: set[int]
    ) -> bool:
        """Count a failure (setting the replica aside when it is sick); True: send it elsewhere at once."""
        text = str(e)
        refused = text.startswith(("connection failed", "cannot connect"))
        replica.failures += 1
        if refused or (text.startswith("HTTP 5") and replica.failures >= SICK_AFTER):
            self._set_aside(replica)
        await self._release(replica)
        return refused and len(tried) < len(replicas)

    async def _acquire(self, replicas: list[Replica], tried: set[int]) -> Replica:
        async with self._free:
            while True:
                now = time.monotonic()
                up = [r for r in replicas if r.down_until <= now and r.outstanding < r.limit]
                fresh = [r for r in up if id(r) not in tried] or up
                if fresh:
                    best = min(fresh, key=lambda r: r.outstanding)
                    best.outstanding += 1
                    best.sent += 1
                    return best
                back = min((r.down_until for r in replicas if r.down_until > now), default=None)
                try:
                    timeout = None if back is None else max(0.0, back - now)
                    await asyncio.wait_for(self._free.wait(), timeout)
                except TimeoutError:
                    pass

    async def _release(self, replica: Replica) -> None:
        async with self._free:
            replica.outstanding -= 1
            self._free.notify_all()

    def _set_aside(self, replica: Replica) -> None:
        wait = min(self.cooldown_max, self.cooldown * 2**replica.set_asides)
        replica.set_asides += 1
        replica.failures = 0
        replica.down_until = time.monotonic() + wait

    async def check(self, endpoint: Endpoint) -> None:
        """Set aside the replicas that cannot be reached; fail only when none can."""
        replicas = self.replicas(endpoint)
        check = getattr(self.inner, "check", None)
        if not replicas or check is None:
            if check is not None:
                await check(endpoint)
            return
        errors = []
        for replica in replicas:
            try:
                key = replica.api_key or endpoint.api_key
                await check(endpoint.model_copy(update={"base_url": replica.base_url, "api_key": key}))
            except TransportFailure as e:
                errors.append(f"{replica.base_url}: {e}")
                self._set_aside(replica)
        if len(errors) == len(replicas):
            raise ServiceError(f"no endpoint of the pool answers ({'; '.join(errors)}); check --base-url")
        for error in errors:  # the run goes on without them: say so, once, before anything is sent
            others = len(replicas) - len(errors)
            self.warn(
                redact(f"warning: {error}; going on with the other {others} endpoint(s) of the pool "
                       "(it is tried again later)")
            )  # fmt: skip

    def stats(self) -> list[dict]:
        seen, out = set(), []
        for replicas in self.pools.values():
            for r in replicas:
                if id(r) not in seen:
                    seen.add(id(r))
                    out.append({"base_url": r.base_url, "sent": r.sent, "set_asides": r.set_asides})
        return out

    async def close(self) -> None:
        await self.inner.close()
