"""Image input for image-to-video (LongLive 2.0): read a PNG/JPEG safely, prepare it as the official loader
does, and encode it to the one latent frame that starts the video.

Sources (NVlabs/LongLive ``main`` 7860ad9): ``utils/dataset.py:368-374`` ``ImagePromptDataset._load_image``
(RGB uint8 -> ``/255`` -> when the size differs, ``transforms.Resize((H, W), antialias=True)`` built at line
316: bilinear with antialiasing to exactly the video's size -> ``Normalize(0.5, 0.5)`` -> float16),
``inference.py:612-617`` (the image moved to the GPU in bf16, then ``vae.encode_to_latent``) and
``utils/wan_5b_wrapper.py`` ``encode_to_latent`` (the VAE's mean, normalized ``(mu - mean) / std`` per
channel). The resize is reproduced with ``torch.nn.functional.interpolate``, which torchvision's ``Resize``
calls on tensors; the float16 rounding as the loader does, then float32 (the encoder casts to the VAE's dtype,
bf16 on a GPU as the official code does).

The official loader only resizes: an image of another aspect ratio than the video is stretched. Here (issue
22: "resized and centre-cropped") such an image is first centre-cropped to the video's aspect ratio, with the
offset rounded down as Wan2.2's own TI2V preprocessing does (``wan_5b/textimage2video.py:461-473``), and
then resized by the official rule above; an image of the video's aspect ratio is not cropped, so it gives
exactly the official tensor.

An image file is hostile input: its size, format and pixel count are checked before it is decoded, and every
failure is an :class:`~longlive_cli.errors.InputError` naming the file and what to do (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import InputError

__all__ = [
    "IMAGE_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "centre_crop_box",
    "encode_image",
    "load_image",
]

#: Image formats accepted (Pillow's names): PNG and JPEG.
IMAGE_FORMATS = ("PNG", "JPEG")
#: The largest image file read, in bytes (64 MiB).
MAX_IMAGE_BYTES = 64 * 1024 * 1024
#: The most pixels an image may have (64 megapixels, e.g. 8192 x 8192): a bound on decoding memory.
MAX_IMAGE_PIXELS = 8192 * 8192


def centre_crop_box(
    image_width: int, image_height: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """The centred region ``(left, top, crop_width, crop_height)`` of an ``image_width`` x ``image_height``
    image (pixels) with the aspect ratio of a ``width`` x ``height`` video: the whole image when the ratios
    are equal (or within a rounding pixel), else the full height of a wider image or the full width of a
    taller one, the offset rounded down (``(image - crop) // 2``, as
    ``wan_5b/textimage2video.py:471-473``)."""
    if image_width * height > image_height * width:  # wider than the video: keep the full height
        crop_w = min(image_width, max(1, round(image_height * width / height)))
        return (image_width - crop_w) // 2, 0, crop_w, image_height
    crop_h = min(image_height, max(1, round(image_width * height / width)))  # taller (or equal)
    return 0, (image_height - crop_h) // 2, image_width, crop_h


def load_image(path: str | Path, width: int, height: int) -> torch.Tensor:
    """The image at ``path`` prepared for a ``width`` x ``height`` video: centre-cropped to the video's aspect
    ratio (:func:`centre_crop_box`; no crop at the same ratio), then resized and normalized as the official
    I2V loader does (see the module docs).

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
    left, top, crop_w, crop_h = centre_crop_box(w, h, width, height)
    pixels = pixels[top : top + crop_h, left : left + crop_w]
    x = pixels.permute(2, 0, 1).float().div(255.0).unsqueeze(0)  # [1, 3, h, w] in [0, 1]
    if (crop_h, crop_w) != (height, width):
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
