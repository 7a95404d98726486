"""Image files: reading luma (8 or 16 bit) and RGB, writing RGB atomically, and refusing images
too large to colourise before they are decoded.

An image's size is read from its header first (PNG, JPEG, BMP, WebP, TIFF), so a tiny file
that claims 30000x30000 pixels is refused in a millisecond with one line instead of taking
tens of gigabytes.  The limit is :data:`MAX_IMAGE_PIXELS` (``STREAMCOLOR_MAX_PIXELS``
overrides it).  Colour-to-luma conversion runs in bands, so only the decoded image and its
luma are ever held at full size.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from streamcolor.color import KB, KG, KR, rgb_to_luma_u8
from streamcolor.errors import InputNotFoundError, InvalidInputError, OutputError, ResourceError
from streamcolor.io.atomic import write_bytes_atomic

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
MAX_IMAGE_PIXELS = 1 << 28  # 268 megapixels (16384 x 16384): ~3 GB of work at 16 bit
SIXTEEN_BIT_SUFFIXES = frozenset({".png", ".tif", ".tiff"})
_BAND = 1 << 20  # pixels per band of float work


def max_image_pixels() -> int:
    """:data:`MAX_IMAGE_PIXELS`, or ``$STREAMCOLOR_MAX_PIXELS`` when set (read per call)."""
    text = os.environ.get("STREAMCOLOR_MAX_PIXELS")
    if not text:
        return MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        raise InvalidInputError(f"STREAMCOLOR_MAX_PIXELS={text!r} is not a whole number"
                                ) from None
    if value < 1:
        raise InvalidInputError(f"STREAMCOLOR_MAX_PIXELS={text!r} must be positive")
    return value


# --- image size from the header --------------------------------------------------------------

def _png_size(h: bytes) -> tuple[int, int] | None:
    if h[:8] == b"\x89PNG\r\n\x1a\n" and h[12:16] == b"IHDR":
        return struct.unpack(">II", h[16:24])
    return None


def _bmp_size(h: bytes) -> tuple[int, int] | None:
    if h[:2] == b"BM" and len(h) >= 26:
        w, hh = struct.unpack("<ii", h[18:26])
        return abs(w), abs(hh)
    return None


def _webp_size(h: bytes) -> tuple[int, int] | None:
    if h[:4] != b"RIFF" or h[8:12] != b"WEBP" or len(h) < 30:
        return None
    kind = h[12:16]
    if kind == b"VP8X":
        return (int.from_bytes(h[24:27], "little") + 1, int.from_bytes(h[27:30], "little") + 1)
    if kind == b"VP8L":
        bits = int.from_bytes(h[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":
        w, hh = struct.unpack("<HH", h[26:30])
        return w & 0x3FFF, hh & 0x3FFF
    return None


def _jpeg_size(f) -> tuple[int, int] | None:
    if f.read(2) != b"\xff\xd8":
        return None
    sof = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
    for _ in range(10_000):
        b = f.read(1)
        while b and b != b"\xff":
            b = f.read(1)
        while b == b"\xff":
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        seg = f.read(2)
        if len(seg) < 2:
            return None
        length = struct.unpack(">H", seg)[0]
        if marker in sof:
            data = f.read(5)
            if len(data) < 5:
                return None
            hh, w = struct.unpack(">HH", data[1:5])
            return w, hh
        f.seek(length - 2, os.SEEK_CUR)
    return None


def _tiff_size(f) -> tuple[int, int] | None:
    head = f.read(16)
    if head[:2] not in (b"II", b"MM"):
        return None
    e = "<" if head[:2] == b"II" else ">"
    magic = struct.unpack(e + "H", head[2:4])[0]
    if magic == 42:
        offset, count_fmt, entry, off_fmt = struct.unpack(e + "I", head[4:8])[0], "H", 12, "I"
    elif magic == 43:
        offset, count_fmt, entry, off_fmt = struct.unpack(e + "Q", head[8:16])[0], "Q", 20, "Q"
    else:
        return None
    f.seek(offset)
    raw = f.read(struct.calcsize(count_fmt))
    if len(raw) < struct.calcsize(count_fmt):
        return None
    count = struct.unpack(e + count_fmt, raw)[0]
    size: dict[int, int] = {}
    for _ in range(min(count, 4096)):
        ent = f.read(entry)
        if len(ent) < entry:
            break
        tag, typ = struct.unpack(e + "HH", ent[:4])
        if tag in (256, 257):
            value = ent[4 + struct.calcsize(off_fmt):]
            size[tag] = struct.unpack(e + ("H" if typ == 3 else "I"),
                                      value[:2] if typ == 3 else value[:4])[0]
    if 256 in size and 257 in size:
        return size[256], size[257]
    return None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header, None when the format is not recognised."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            for probe in (_png_size, _bmp_size, _webp_size):
                size = probe(head)
                if size:
                    return size
            f.seek(0)
            size = _jpeg_size(f)
            if size:
                return size
            f.seek(0)
            return _tiff_size(f)
    except (OSError, struct.error):
        return None


def check_pixels(path: Path, width: int, height: int, limit: int | None = None) -> None:
    limit = max_image_pixels() if limit is None else limit
    if width * height > limit:
        raise InvalidInputError(
            f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the limit "
            f"of {limit / 1e6:.0f} (set STREAMCOLOR_MAX_PIXELS to allow more)")


# --- reading ---------------------------------------------------------------------------------

def decode_image_file(path: Path, flags: int, limit: int | None = None) -> np.ndarray:
    """``cv2.imdecode`` of a file, with our errors for a missing, unreadable, oversized one or
    one that does not fit in memory."""
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such file")
    size = image_size(path)
    if size:
        check_pixels(path, *size, limit)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        img = cv2.imdecode(data, flags) if data.size else None
    except PermissionError:
        raise InvalidInputError(f"{path}: permission denied") from None
    except MemoryError:
        raise ResourceError(_no_memory(path, size)) from None
    except cv2.error as e:
        if "memory" in str(e).lower() or "allocate" in str(e).lower():
            raise ResourceError(_no_memory(path, size)) from None
        img = None
    if img is None:
        raise InvalidInputError(f"{path}: not a readable image")
    if size is None:
        check_pixels(path, img.shape[1], img.shape[0], limit)
    return img


def _no_memory(path: Path, size: tuple[int, int] | None) -> str:
    what = f"a {size[0]}x{size[1]} image" if size else "this image"
    return f"{path}: not enough memory to decode {what}"


def _bands(height: int, width: int) -> range:
    return range(0, height, max(1, _BAND // max(width, 1)))


def bgr_to_luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of a decoded OpenCV image (gray, BGR or BGRA; uint8 or uint16), in bands.
    A colour image whose three channels are equal gives that channel, untouched."""
    if img.ndim == 2:
        return img
    bgr = img[..., :3]
    h, w = bgr.shape[:2]
    if all(np.array_equal(bgr[y:y + 256, :, 0], bgr[y:y + 256, :, 1]) and
           np.array_equal(bgr[y:y + 256, :, 1], bgr[y:y + 256, :, 2]) for y in range(0, h, 256)):
        return np.ascontiguousarray(bgr[..., 0])
    out = np.empty((h, w), bgr.dtype)
    coeffs = np.array([KR, KG, KB], dtype=np.float32)
    step = _bands(h, w).step
    for y in range(0, h, step):
        band = bgr[y:y + step, :, ::-1]  # RGB order
        if bgr.dtype == np.uint8:
            out[y:y + step] = rgb_to_luma_u8(band)
        else:
            out[y:y + step] = np.clip(np.rint(band.astype(np.float32) @ coeffs), 0, 65535)
    return out


def read_image_luma(path: Path, limit: int | None = None) -> np.ndarray:
    """Luma of an image file (uint8, or uint16 for 16-bit files); BT.601 for colour images.
    EXIF orientation is applied, alpha is ignored."""
    img = decode_image_file(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR, limit)
    if img.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(f"{path}: unsupported image sample type {img.dtype}")
    try:
        return bgr_to_luma(img)
    except MemoryError:
        raise ResourceError(_no_memory(path, (img.shape[1], img.shape[0]))) from None


def read_image_rgb(path: Path) -> np.ndarray:
    """uint8 RGB of an image file (gray is replicated, 16 bit is scaled, alpha dropped)."""
    img = decode_image_file(path, cv2.IMREAD_UNCHANGED)
    if img.dtype == np.uint16:
        img = np.clip(np.rint(img.astype(np.float32) / 257.0), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InvalidInputError(f"{path}: unsupported image sample type {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 2:  # gray + alpha
        return np.repeat(img[..., :1], 3, axis=2)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)


# --- writing ---------------------------------------------------------------------------------

def write_image_atomic(path: Path, bgr: np.ndarray) -> None:
    """Encode a BGR image (uint8 or uint16) by ``path``'s suffix and write it atomically;
    16-bit images go to 8-bit formats (JPEG, WebP, BMP) as their high bytes."""
    if bgr.dtype == np.uint16 and path.suffix.lower() not in SIXTEEN_BIT_SUFFIXES:
        bgr = (bgr >> 8).astype(np.uint8)
    try:
        ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(bgr))
    except MemoryError:
        raise ResourceError(f"{path}: not enough memory to encode the image") from None
    except cv2.error:
        ok, buf = False, None
    if not ok or buf is None:
        raise OutputError(f"{path}: cannot encode an image of this type")
    write_bytes_atomic(path, buf)  # the encoded buffer itself, not a copy of it
