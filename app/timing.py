"""One timer for the project: wall and CPU time of a block.

    with timed() as spent:
        work()
    spent.wall, spent.cpu, spent.ms  # seconds, seconds, wall milliseconds

The CPU time is this process's (`time.process_time`); children's CPU time is the caller's to add.
The fields are filled when the block ends, also when it raises or a generator holding it is closed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Timing:
    wall: float = 0.0  # seconds
    cpu: float = 0.0  # seconds of this process's CPU

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall + other.wall, self.cpu + other.cpu)

    @property
    def ms(self) -> float:
        """The wall time in milliseconds."""
        return self.wall * 1000


@contextmanager
def timed() -> Iterator[Timing]:
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall, timing.cpu = time.perf_counter() - wall, time.process_time() - cpu
