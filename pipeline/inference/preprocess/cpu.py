"""JPEG decode (libjpeg-turbo) and letterboxing (Pillow) into the model's input tensor.

Both release the GIL, so a thread pool decodes a batch in parallel. The resize is
Pillow's antialiased bilinear: it reproduces the reference detections in MODELS.md
exactly, where OpenCV's INTER_LINEAR (no antialiasing when shrinking) moves boxes by
several pixels and changes scores by a few hundredths.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image

from pipeline.protocol.envelope import MAX_FRAME_PIXELS

PAD_VALUE = 114  # YOLOX's letterbox grey


class UndecodableImage(ValueError):
    """The bytes are not an image the decoder can read."""


def check_jpeg_size(data: bytes) -> None:
    """UndecodableImage unless the header is readable and within MAX_FRAME_PIXELS: the
    frames topic may be written by others than the gateway (a decompression bomb)."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise UndecodableImage(f"cannot read the JPEG header: {exc}") from None
    if width <= 0 or height <= 0 or width * height > MAX_FRAME_PIXELS:
        raise UndecodableImage(f"JPEG of {width}x{height} pixels refused (MAX_FRAME_PIXELS)")


def decode_jpeg_bgr(data: bytes) -> npt.NDArray[np.uint8]:
    """JPEG bytes to an HxWx3 BGR array (the colour order the model was trained on)."""
    check_jpeg_size(data)
    try:
        image = simplejpeg.decode_jpeg(data, colorspace="BGR")
    except ValueError as exc:
        raise UndecodableImage(f"cannot decode JPEG: {exc}") from None
    return np.asarray(image, dtype=np.uint8)


DCT_SCALES = (8, 4, 2)  # 1/8, 1/4, 1/2: libjpeg-turbo's fast reduced decodes


def dct_scale_for(height: int, width: int, size: tuple[int, int], margin: float = 1.0) -> int:
    """The largest k of 8, 4, 2 (1 if none) such that the frame decoded at 1/k is still at
    least ``margin`` times its letterbox into ``size`` (1: just covers it, the resize only
    ever shrinks); ``margin`` 0 means a full decode."""
    if margin <= 0:
        return 1
    ratio = letterbox_ratio(height, width, size)
    new_h, new_w = int(height * ratio) * margin, int(width * ratio) * margin
    for k in DCT_SCALES:
        if -(-height // k) >= new_h and -(-width // k) >= new_w:
            return k
    return 1


def decode_jpeg_bgr_for(
    data: bytes, size: tuple[int, int], margin: float = 1.0
) -> tuple[npt.NDArray[np.uint8], int, int]:
    """JPEG bytes to BGR at the smallest of 1/2, 1/4, 1/8 scale still ``margin`` times its
    letterbox into ``size`` (full size when none is), and the frame's full height and width
    (boxes are reported in those)."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise UndecodableImage(f"cannot decode JPEG: {exc}") from None
    k = dct_scale_for(height, width, size, margin)
    if k == 1:
        return decode_jpeg_bgr(data), height, width
    try:
        # simplejpeg picks the smallest n/8 scale meeting both minimums: exactly 1/k.
        scaled = simplejpeg.decode_jpeg(
            data, colorspace="BGR", min_height=-(-height // k), min_width=-(-width // k)
        )
    except ValueError as exc:
        raise UndecodableImage(f"cannot decode JPEG: {exc}") from None
    return np.asarray(scaled, dtype=np.uint8), height, width


def letterbox_ratio(height: int, width: int, size: tuple[int, int]) -> float:
    """Scale that fits an image into ``size`` (height, width) keeping its aspect ratio."""
    return min(size[0] / height, size[1] / width)


def resize_pillow(image: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """Antialiased bilinear (Pillow): the reference detections' resize, bit for bit."""
    # Pillow treats the 3 channels alike, so BGR data passes through as "RGB".
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def resize_torch(image: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """The same antialiased bilinear filter in torch's uint8 channels-last kernel (AVX2):
    about 3.4x less CPU than Pillow here, within one grey level of it (the GPU path's
    resize too). Needs the torch extra."""
    import torch
    from torch.nn import functional

    with torch.inference_mode():
        hwc = torch.from_numpy(image)
        nchw = hwc.permute(2, 0, 1).unsqueeze(0)  # a channels-last view: no copy
        out = functional.interpolate(
            nchw, size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )
        resized: npt.NDArray[np.uint8] = out[0].permute(1, 2, 0).numpy()
    return resized


RESIZERS = {"pillow": resize_pillow, "torch": resize_torch}


def letterbox(
    image: npt.NDArray[np.uint8], size: tuple[int, int], resize: str = "pillow"
) -> tuple[npt.NDArray[np.uint8], float]:
    """Resize into the top-left corner of a ``size`` canvas padded with 114; return the ratio.

    Boxes found on the canvas map back to the image by dividing by the ratio. ``resize``
    names the implementation of the antialiased bilinear resize (see RESIZERS).
    """
    height, width = image.shape[:2]
    ratio = letterbox_ratio(height, width, size)
    new_h, new_w = int(height * ratio), int(width * ratio)
    canvas = np.full((size[0], size[1], 3), PAD_VALUE, dtype=np.uint8)
    if (new_h, new_w) == (height, width):
        canvas[:height, :width] = image
    else:
        canvas[:new_h, :new_w] = RESIZERS[resize](image, new_w, new_h)
    return canvas, ratio


def to_chw_float(canvas: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> None:
    """Write an HxWx3 uint8 canvas into a 3xHxW float32 slot of a batch tensor (0..255)."""
    np.copyto(out, canvas.transpose(2, 0, 1), casting="unsafe")
