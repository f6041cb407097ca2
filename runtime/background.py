"""`Background`: one function on a thread of its own, its result (or its exception) taken later.

What `concurrent.futures` gives, for the few calls a cold start runs side by side (the folder's
hashing beside the imports, the graphs' sessions beside each other), without importing it:
`concurrent.futures` brings `logging` in, ~6 ms on the critical path of `runtime translate "hello"`
(docs/benchmarks.md, cold start).
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Starts fn(*args) on a new thread now; result() waits for it and returns its value or
    raises its exception."""

    def __init__(self, fn: Callable[..., T], *args):
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._value = fn(*args)
        except BaseException as e:  # handed to whoever takes the result, on their thread
            self._error = e

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None  # raised once; no reference cycle kept
            raise error
        return self._value
