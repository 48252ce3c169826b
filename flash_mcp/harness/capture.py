"""What the environment's code printed, bounded: the first and last CAPTURE_BYTES, and how much in all."""

from __future__ import annotations

from dataclasses import dataclass, field

CAPTURE_BYTES = 2048


@dataclass
class Capture:
    """The first and last bytes of everything user code printed."""

    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = CAPTURE_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail = (self.tail + data)[-CAPTURE_BYTES:]

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        if not self.tail:
            return head
        skipped = self.total - len(self.head) - len(self.tail)
        gap = f"\n… {skipped} bytes not shown …\n" if skipped > 0 else ""
        return head + gap + self.tail.decode("utf-8", "replace")
