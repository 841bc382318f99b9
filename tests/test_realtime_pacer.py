"""``RealtimePacer`` (``--realtime``): underruns are reported while the stream lives, never after it died."""

from __future__ import annotations

import time

import numpy as np

from longlive_cli.stream import RealtimePacer


class DyingStream:
    """A stream that ends (as ``StreamSink`` does when its consumer goes away) on its ``dies_at``-th frame."""

    def __init__(self, dies_at: int) -> None:
        self.alive, self.frames, self.dies_at = True, 0, dies_at

    def write(self, frames) -> None:
        if self.alive:
            self.frames += len(frames)
            self.alive = self.frames < self.dies_at

    def close(self) -> None:
        self.alive = False


def test_no_stream_behind_after_the_stream_has_died():
    stream, behind = DyingStream(dies_at=2), []
    pacer = RealtimePacer(stream, fps=100.0, on_behind=behind.append)  # a frame due every 10 ms
    frame = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    pacer.write(frame)
    time.sleep(0.2)  # the next frame is late: one underrun, reported (the stream lives)
    assert behind == [0.01]
    pacer.write(frame)  # the stream dies on this frame
    time.sleep(0.2)  # late again, but the stream is gone: nothing to report
    pacer.write(frame)
    time.sleep(0.2)
    pacer.close()
    assert not stream.alive and stream.frames == 2
    assert behind == [0.01] and pacer.frames_sent == 3
