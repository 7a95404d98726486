"""Stream URL helpers: which schemes are streams, and masking credentials for logs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp",
                            "srt", "tcp"})
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# The password runs to the *last* '@' of the URL, so passwords typed with '@' or '/' in them
# (unescaped, as people do) are masked whole; at worst a path with an '@' is masked too.
_CRED_RE = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s'\"<>]*):(?P<pw>[^\s'\"<>]*)@"
)
# Credentials passed as query parameters (many cameras: ?user=admin&password=...).
SECRET_PARAMS = ("password", "passwd", "pass", "pwd", "pw", "token", "access_token", "auth",
                 "authorization", "key", "apikey", "api_key", "secret", "sig", "signature",
                 "session", "sessionid")
_QUERY_RE = re.compile(
    r"(?P<lead>[?&;](?:" + "|".join(SECRET_PARAMS) + r")=)[^&#\s'\"<>]*", re.IGNORECASE)


def is_url(text: str) -> bool:
    return bool(_URL_RE.match(text))


def url_scheme(text: str) -> str:
    return urlsplit(text).scheme.lower()


def redact(text: str) -> str:
    """Mask credentials in ``text``: the password of any ``scheme://user:password@host`` and
    the values of secret query parameters (``?password=``, ``&token=``, ...) become ``***``."""
    text = _CRED_RE.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
    return _QUERY_RE.sub(lambda m: f"{m['lead']}***", text)
