"""What every channel simulator does with its callbacks: send them now or in the background, and
retry until the gateway acknowledges: on the channel's own schedule (scaled for tests) where the
simulator gives one, else a few quick tries."""
from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential


class SystemClock:
    """The wall clock, for a simulator run on its own (a gateway hands its channels the core's clock)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> int:
        return int(self.now().timestamp())


class CallbackRefused(Exception):
    pass


class CallbackSender:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, url: str, body: bytes, headers: Callable[[], dict[str, str]],
                      accepted: Callable[[httpx.Response], bool], delay: float = 0.0,
                      schedule: Sequence[float] | None = None) -> None:
        """POST body to url until accepted(response); headers() is called per try (fresh signatures).
        schedule: the channel's own waits between tries, in seconds (a simulator scales them down for
        tests); without one, a few quick tries."""
        if delay:
            await asyncio.sleep(delay)
        if schedule is not None:
            await self._deliver_on(url, body, headers, accepted, schedule)
            return
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(5), wait=wait_exponential(0.2, max=2),
                                               retry=retry_if_exception_type((httpx.HTTPError, CallbackRefused)),
                                               reraise=True):
                with attempt:
                    async with httpx.AsyncClient(timeout=10) as client:
                        response = await client.post(url, content=body, headers=headers())
                    if not accepted(response):
                        raise CallbackRefused(response.status_code)
        except (httpx.HTTPError, CallbackRefused):
            pass  # a real channel keeps trying for a day; the gateway's query finds the truth meanwhile

    @staticmethod
    async def _deliver_on(url: str, body: bytes, headers: Callable[[], dict[str, str]],
                          accepted: Callable[[httpx.Response], bool], schedule: Sequence[float]) -> None:
        for wait in (0.0, *schedule):
            if wait:
                await asyncio.sleep(wait)
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    if accepted(await client.post(url, content=body, headers=headers())):
                        return
            except httpx.HTTPError:
                pass


def private_folder(path: Path) -> Path:
    """The folder a standalone simulator keeps its keys and certificates in: 0700, and every file in
    it readable by its owner only (one left wider by an earlier version is tightened)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for each in (path, *path.iterdir()):
        mode = stat.S_IMODE(each.stat().st_mode)
        if mode & 0o077:
            each.chmod(mode & 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a key or certificate file that is 0600 from the moment it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
