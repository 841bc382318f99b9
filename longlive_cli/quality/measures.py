"""Weight-free per-frame measures of a video, on frames downscaled by ffmpeg to a fixed width.

Frames are decoded and scaled by the ffmpeg bundled with imageio-ffmpeg (``-vf scale=W:-2:flags=area``,
``W`` = :data:`ANALYSIS_WIDTH` pixels, the height keeps the aspect ratio, even), one at a time: only the
per-frame numbers and one thumbnail per second are kept, so memory does not grow with the frame size and a
240 s video costs a few MB. For frame ``i`` (``i >= 1``; frame 0 has no predecessor and gets NaN):

- ``mad``: mean absolute difference of frames ``i-1`` and ``i`` over pixels and RGB channels, in 8-bit
  levels (0-255): VBench's temporal-flickering measure (VBench, Huang et al. 2024, sec. 3.2 "Temporal
  Flickering": the mean absolute difference of consecutive frames; its score is ``(255 - mad) / 255``);
- ``ssim`` / ``psnr``: structural similarity and peak signal-to-noise ratio (dB, ``inf`` for identical
  frames) of the luminance of frames ``i-1`` and ``i`` (``skimage.metrics``, data range 255);
- ``lab`` / ``lab_std``: mean and standard deviation over pixels of CIELAB ``L*, a*, b*`` (D65,
  ``skimage.color.rgb2lab``) of frame ``i`` (this one for every frame, 0 included).

Cuts are found by PySceneDetect's ``ContentDetector`` fed the same frames (BGR order, as OpenCV wants).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GenerationError, InputError

__all__ = ["ANALYSIS_WIDTH", "CUT_THRESHOLD", "FrameMeasures", "compare_videos", "measure_video"]

#: Width in pixels of the frames every measure is computed on (height: same aspect ratio, even).
ANALYSIS_WIDTH = 160
#: PySceneDetect ContentDetector threshold (its default: weighted HSV change score, 0-255 scale).
CUT_THRESHOLD = 27.0
#: Shortest scene PySceneDetect may report, in seconds (a cut closer than this to the previous is merged).
CUT_MIN_SCENE_S = 0.5


@dataclass
class FrameMeasures:
    """Per-frame measures of one video (``N`` frames; arrays of length ``N``; see the module docstring).

    ``fps``: frames per second; ``size``: ``(width, height)`` of the source in pixels; ``analysis_size``:
    ``(width, height)`` the measures were computed at; ``declared_duration_s``: the length the container
    declares (seconds; more than the frames decoded in a truncated file); ``cuts``: frame indices where
    PySceneDetect found a cut (the first frame of the new scene); ``thumbnails``: ``(time_s, uint8 [h, w,
    3])`` one per second.
    """

    fps: float
    size: tuple[int, int]
    analysis_size: tuple[int, int]
    mad: np.ndarray
    ssim: np.ndarray
    psnr: np.ndarray
    lab: np.ndarray  # [N, 3]
    lab_std: np.ndarray  # [N, 3]
    declared_duration_s: float | None = None
    cuts: list[int] = field(default_factory=list)
    thumbnails: list[tuple[float, np.ndarray]] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.mad)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


@contextlib.contextmanager
def open_frames(path: str | Path) -> Iterator[tuple[dict, Iterator[np.ndarray]]]:
    """Open ``path`` and yield ``(meta, frames)``: imageio-ffmpeg's metadata (``fps``, ``source_size``,
    ``size`` the analysis size) and an iterator of uint8 ``[h, w, 3]`` RGB frames :data:`ANALYSIS_WIDTH`
    wide (ffmpeg ``scale=W:-2``: aspect ratio kept, even height). The ffmpeg process is stopped on leaving
    (no reader left blocked).

    Raises:
        InputError: ``path`` is missing or not a video ffmpeg can read (exit 2).
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Video '{path}' does not exist or is not a file; give an MP4 to report on.")
    reader = imageio_ffmpeg.read_frames(
        str(path), output_params=["-vf", f"scale={ANALYSIS_WIDTH}:-2:flags=area"]
    )
    logger = logging.getLogger("imageio_ffmpeg")
    level = logger.level
    try:
        logger.setLevel(logging.ERROR)  # its "frame size differs from the source" warning: we asked for it
        try:
            meta = next(reader)
        except (OSError, RuntimeError, StopIteration) as err:
            lines = str(err).strip().splitlines()
            why = lines[-1] if lines else type(err).__name__
            raise InputError(
                f"Cannot read '{path}' as a video ({why}); give an MP4 or another file ffmpeg can decode."
            ) from None
        finally:
            logger.setLevel(level)
        width, height = meta["size"]

        def frames() -> Iterator[np.ndarray]:
            try:
                for raw in reader:
                    yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
            except (OSError, RuntimeError) as err:
                raise InputError(f"Cannot read video '{path}': {err}") from None

        yield meta, frames()
    finally:
        reader.close()


def _luma(frame: np.ndarray) -> np.ndarray:
    return frame @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma, 0-255


def measure_video(path: str | Path) -> FrameMeasures:
    """Decode ``path`` once and compute every per-frame measure (module docstring) and the cuts.

    Raises:
        InputError: ``path`` is missing, not a video, or has no frames (exit 2).
        GenerationError: PySceneDetect / OpenCV cannot be imported (exit 1; the message says what to install).
    """
    try:
        from scenedetect import FrameTimecode
        from scenedetect.detectors import ContentDetector
    except ImportError as err:  # opencv-python without libGL.so.1 (a Linux server without a desktop)
        raise GenerationError(
            f"The report's cut detection needs PySceneDetect and OpenCV, which cannot be imported ({err}). "
            "Install libGL (e.g. apt-get install libgl1), or replace opencv-python by opencv-python-headless."
        ) from None
    from skimage.color import rgb2lab
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    with open_frames(path) as (meta, frames):
        fps = float(meta["fps"])
        detector = ContentDetector(
            threshold=CUT_THRESHOLD, min_scene_len=max(1, round(CUT_MIN_SCENE_S * fps))
        )
        mad: list[float] = []
        ssim: list[float] = []
        psnr: list[float] = []
        lab: list[np.ndarray] = []
        lab_std: list[np.ndarray] = []
        cuts: list[int] = []
        thumbs: list[tuple[float, np.ndarray]] = []
        previous: np.ndarray | None = None
        previous_luma: np.ndarray | None = None
        for i, frame in enumerate(frames):
            current = frame.astype(np.float32)
            luma = _luma(current)
            if previous is None or previous_luma is None:
                changes = (np.nan, np.nan, np.nan)
            else:
                with np.errstate(divide="ignore"):
                    changes = (
                        float(np.abs(current - previous).mean()),
                        float(structural_similarity(previous_luma, luma, data_range=255.0)),
                        float(peak_signal_noise_ratio(previous_luma, luma, data_range=255.0)),
                    )
            mad.append(changes[0])
            ssim.append(changes[1])
            psnr.append(changes[2])
            lab_frame = rgb2lab(frame).reshape(-1, 3)
            lab.append(lab_frame.mean(axis=0))
            lab_std.append(lab_frame.std(axis=0))
            cuts += [tc.frame_num for tc in detector.process_frame(FrameTimecode(i, fps), frame[..., ::-1])]
            if i % max(1, round(fps)) == 0:
                thumbs.append((i / fps, frame.copy()))
            previous, previous_luma = current, luma
    if not mad:
        raise InputError(f"Video '{path}' has no frames; nothing to report on.")
    cuts = sorted({c for c in cuts if 0 < c < len(mad)})
    return FrameMeasures(
        fps=fps,
        size=tuple(meta["source_size"]),
        analysis_size=tuple(meta["size"]),
        mad=np.asarray(mad),
        ssim=np.asarray(ssim),
        psnr=np.asarray(psnr),
        lab=np.asarray(lab),
        lab_std=np.asarray(lab_std),
        declared_duration_s=float(meta["duration"]) if meta.get("duration") else None,
        cuts=cuts,
        thumbnails=thumbs,
    )


def compare_videos(path: str | Path, other: str | Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per-frame PSNR (dB, ``inf`` where identical) and SSIM of the luminance of frame ``i`` of ``path``
    against frame ``i`` of ``other``, both at ``path``'s analysis size, over the frames both have.

    Returns:
        ``(psnr [M], ssim [M], frames of path, frames of other)``, ``M`` the smaller frame count.

    Raises:
        InputError: either file is missing or not a video (exit 2).
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnr, ssim = [], []
    counts = [0, 0]
    with open_frames(path) as (_, frames_a), open_frames(other) as (_, frames_b):
        for a in frames_a:
            counts[0] += 1
            b = next(frames_b, None)
            if b is None:
                continue
            counts[1] += 1
            if b.shape != a.shape:  # other aspect ratio: bring it to this one's analysis size
                b = _resize(b, a.shape[:2])
            la, lb = _luma(a.astype(np.float32)), _luma(b.astype(np.float32))
            with np.errstate(divide="ignore"):
                psnr.append(float(peak_signal_noise_ratio(la, lb, data_range=255.0)))
            ssim.append(float(structural_similarity(la, lb, data_range=255.0)))
        counts[1] += sum(1 for _ in frames_b)
    return np.asarray(psnr), np.asarray(ssim), counts[0], counts[1]


def _resize(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    return (resize(frame, shape, preserve_range=True, anti_aliasing=True)).astype(np.uint8)
