"""Stream URL helpers: which schemes are streams, and masking credentials for logs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp",
                            "srt", "tcp"})
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# The password runs to the *last* '@' of the authority, so passwords may contain '@'.
_CRED_RE = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^/\s]*)@"
)


def is_url(text: str) -> bool:
    return bool(_URL_RE.match(text))


def url_scheme(text: str) -> str:
    return urlsplit(text).scheme.lower()


def redact(text: str) -> str:
    """Replace the password of any ``scheme://user:password@host`` in ``text`` with ``***``."""
    return _CRED_RE.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
