"""Text that leaves the zoo (messages, logs, configs written for others): credentials in URLs found and
redacted, control and bidi characters refused or replaced."""

from __future__ import annotations

import re

# scheme://USERINFO@ in free text: greedy up to the last "@" before the host (an unencoded "@" in a
# password is masked too), but not across a space: "alpha@10" further on in a message is no password
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\"'<>]*)@")


# a whole value that is one URL: its authority runs to the first "/", "?" or "#", as urlsplit reads it
_VALUE_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@")


_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


# a bare user name that is really a token (GitHub/GitLab tokens, access key ids, hex keys): long and
# mixing letters with digits; ordinary user names (git, alice, deploy-bot, ubuntu) are shorter or have no digit
_TOKEN_LIKE = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_.~+=%-]{20,}$")


def redact_urls(text: str) -> str:
    """``text`` with the user part of every URL in it (``scheme://USER:PASSWORD@``) replaced by ``***``:
    applied to everything printed that comes from a remote's config, so a hand-written secret never shows."""
    return _URL_USERINFO.sub(lambda m: m["scheme"] + "***@", text)


def redact_url(value: str) -> str:
    """``redact_urls`` of one config value, whose own URL (if it is one) is masked the way urlsplit reads
    it, spaces in the password included."""
    return redact_urls(_VALUE_USERINFO.sub(lambda m: m["scheme"] + "***@", value, count=1))


def url_userinfo(value: str) -> str | None:
    """The user part of a value that is one URL (``USER:PASSWORD`` of ``scheme://USER:PASSWORD@host``), or None."""
    m = _VALUE_USERINFO.match(value)
    return m["userinfo"] if m else None


def url_credentials(value: str) -> str | None:
    """What kind of credential a URL in ``value`` carries in its user part (``"user:password@"`` or
    ``"token@"``), or None. A bare user name (``ssh://git@host``) is not one, unless it looks like a token
    (20 or more characters mixing letters and digits)."""
    from urllib.parse import urlsplit

    for m in _URL_START.finditer(value):
        try:
            parts = urlsplit(value[m.start():])
            user, password = parts.username, parts.password
        except ValueError:  # a malformed URL: the caller says so
            continue
        if password:
            return "user:password@"
        if user and _TOKEN_LIKE.match(user):
            return "token@"
    return None


def control_character(text: str) -> str | None:
    """The first control, format or line-separator character in ``text`` (as ``U+000A``), or None: such
    characters turn one config value into several lines or hide what is printed."""
    import unicodedata

    for c in text:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(c):04X}"
    return None


# C0 controls but newline and tab, DEL, C1 controls (CSI, OSC ...), and the bidirectional overrides that
# reorder what a terminal shows
_UNPRINTABLE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every control character or direction override that came from
    input (a file name, a table cell, a hostile revision) is shown escaped (``\\x1b``), never sent raw."""
    return _UNPRINTABLE_RE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                               else f"\\u{ord(m.group()):04x}", text)
