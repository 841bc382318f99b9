"""Image input for image-to-video (LongLive 2.0): read a PNG/JPEG safely, prepare it as the official loader
does,
and encode it to the one latent frame that starts the video.

Sources: NVlabs/LongLive ``main`` 7860ad9 ``utils/dataset.py`` ``ImagePromptDataset._load_image`` (RGB uint8
->
``/255`` -> ``Resize((H, W), antialias=True)`` when the size differs -> ``Normalize(0.5, 0.5)`` -> float16),
``inference.py:611-617`` (``vae.encode_to_latent``) and ``utils/wan_5b_wrapper.py`` ``encode_to_latent`` (the
VAE's mean, normalized ``(mu - mean) / std`` per channel). The official rule is a plain resize to the video's
size (bilinear with antialiasing, the aspect ratio is not kept; no crop): reproduced here with
``torch.nn.functional.interpolate``, which torchvision's ``Resize`` calls on tensors. Float16 rounding as the
official loader does, then float32.

An image file is hostile input: its size, format and pixel count are checked before it is decoded, and every
failure is an :class:`~longlive_cli.errors.InputError` naming the file and what to do (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import InputError

__all__ = ["IMAGE_FORMATS", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "encode_image", "load_image"]

#: Image formats accepted (Pillow's names): PNG and JPEG.
IMAGE_FORMATS = ("PNG", "JPEG")
#: The largest image file read, in bytes (64 MiB).
MAX_IMAGE_BYTES = 64 * 1024 * 1024
#: The most pixels an image may have (64 megapixels, e.g. 8192 x 8192): a bound on decoding memory.
MAX_IMAGE_PIXELS = 8192 * 8192


def load_image(path: str | Path, width: int, height: int) -> torch.Tensor:
    """The image at ``path`` as the official I2V loader prepares it, for a ``width`` x ``height`` video.

    Returns:
        float32 ``[1, 3, 1, height, width]`` (batch, RGB, one video frame, pixels) in [-1, 1], rounded
        through float16.

    Raises:
        InputError: missing or unreadable file, over :data:`MAX_IMAGE_BYTES` or :data:`MAX_IMAGE_PIXELS`, not
            PNG/JPEG, or not decodable (a truncated file).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise InputError(
            f"image {path}: cannot read it ({err.strerror or err}); give a PNG or JPEG file"
        ) from None
    if not path.is_file():
        raise InputError(f"image {path}: not a file; give a PNG or JPEG file")
    if size > MAX_IMAGE_BYTES:
        raise InputError(
            f"image {path}: {size} bytes is over the {MAX_IMAGE_BYTES // 2**20} MiB limit; shrink it"
        )
    try:
        with Image.open(path) as img:
            if img.format not in IMAGE_FORMATS:
                raise InputError(f"image {path}: {img.format or 'unknown'} format; give a PNG or JPEG file")
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS or w < 1 or h < 1:
                raise InputError(
                    f"image {path}: {w}x{h} pixels is outside 1 .. {MAX_IMAGE_PIXELS} pixels; resize it"
                )
            rgb = img.convert("RGB")
            rgb.load()
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise InputError(
            f"image {path}: not a readable PNG or JPEG ({err}); give a PNG or JPEG file"
        ) from None
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(h, w, 3)
    x = pixels.permute(2, 0, 1).float().div(255.0).unsqueeze(0)  # [1, 3, h, w] in [0, 1]
    if (h, w) != (height, width):
        x = torch.nn.functional.interpolate(
            x, size=(height, width), mode="bilinear", align_corners=False, antialias=True
        )
    x = ((x - 0.5) / 0.5).to(torch.float16).to(torch.float32)
    return x.unsqueeze(2)


@torch.inference_mode()
def encode_image(vae, image: torch.Tensor) -> torch.Tensor:
    """The normalized latent of ``image`` (from :func:`load_image`): the VAE encoder's mean, then
    ``(mu - latents_mean) / latents_std`` per channel (official ``encode_to_latent``).

    Args:
        vae: a diffusers ``AutoencoderKLWan`` (its encoder; the Wan2.2 VAE for LongLive 2.0).
        image: ``[1, 3, 1, H, W]`` in [-1, 1].

    Returns:
        float32 ``[1, 1, C, H/16, W/16]`` (batch, one latent frame, channels, latent pixels) on the CPU.

    Raises:
        InputError: ``vae`` has no encoder (a decoder-only fast decoder was chosen).
    """
    if not hasattr(vae, "encode") or getattr(vae, "encoder", None) is None:
        raise InputError("image-to-video needs the model's own VAE to encode the image: use --decoder wan")
    x = image.to(device=vae.device, dtype=vae.dtype)
    mu = vae.encode(x).latent_dist.mode().float().cpu()  # [1, C, 1, h, w]
    mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
    return ((mu - mean) * inv_std).permute(0, 2, 1, 3, 4).contiguous()
