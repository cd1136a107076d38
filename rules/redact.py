"""Showing secrets without revealing them.

Config messages end up in CI logs (``gateway validate``) and in the serve log, so a value that
may be a secret is never quoted whole::

    redact("sk-ant-api03-...wxyz")          -> 'sk-...wxyz'  (explain: which of my keys is it?)
    secret_prefix("sk-ant-api03-AbC...")    -> 'sk-ant-'     (config messages: what kind of key)
    looks_secret("a3f9c2d17b8e4f60a1b2")    -> True          (a token where a name belongs)
    safe_url("https://u:p@h/x?key=s#t")     -> 'https://h/x?key=...#...'
"""

from __future__ import annotations

import re
from typing import Any

# A place in the document, as rules.locate spells it (that module shows paths through this one,
# so the alias is written out here rather than imported in a circle).
_Path = tuple[str | int, ...]

__all__ = ["concealed", "looks_secret", "may_be_secret", "pasted_key", "redact", "safe_url", "secret_prefix"]

# Vendor prefixes that say what kind of credential a value is without saying which one:
# Anthropic (sk-ant-), OpenRouter (sk-or-), most OpenAI-style keys (sk-), JWTs (eyJ, MiniMax
# keys are JWTs), GitHub tokens, AWS access key ids, and an Authorization value pasted whole.
_PREFIXES = re.compile(r"(?:sk-ant-|sk-or-|sk-|eyJ|gh[pousr]_|xai-|AKIA|Bearer\s+)", re.IGNORECASE)
# A run of 16+ letters and digits that mixes both: how random tokens look (Z.AI keys are 32
# hex digits, a dot and 16 more; DeepSeek and DashScope keys are sk- and 32 hex digits) and
# how names do not (ZAI_API_KEY, claude-sonnet-4-5-20250929, glm-4.7: short or unmixed runs).
_RUN = re.compile(r"[A-Za-z0-9]{16,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HIDDEN = "..."
# What may be quoted where a secret could be: an UPPER_SNAKE name (key = "ZAI_API_KEY" meant
# { env = "ZAI_API_KEY" }), and a short word for `auth` (auth = "Bearer" meant "bearer").
_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_WORD = re.compile(r"[A-Za-z][A-Za-z_-]{0,15}")


def redact(secret: str) -> str:
    """``sk-ant-api03-...wxyz`` -> ``sk-...wxyz``: a short prefix and the last four characters at most.

    Secrets too short to hide anything by trimming are shown as ``***``.
    """
    if len(secret) < 16:
        return "***"
    prefix = secret[:3] if secret[:3].isascii() and secret[:3].replace("-", "").isalnum() else ""
    return f"{prefix}...{secret[-4:]}"


def secret_prefix(value: str) -> str:
    """The vendor prefix of a key (``sk-ant-``, ``sk-or-``, ``sk-``, ``eyJ``, ...), or ""."""
    m = _PREFIXES.match(value)
    return m.group() if m else ""


def looks_secret(text: str) -> bool:
    """Whether ``text`` looks like a credential rather than a name, a path or a URL.

    True for a known key prefix followed by 8 or more characters, a UUID, or a run of 16+
    letters and digits that mixes both. Names people write in routes.toml (variable names,
    model names, header names) have none of these.
    """
    prefix = secret_prefix(text)
    if prefix and len(text) - len(prefix) >= 8:
        return True
    if _UUID.search(text):
        return True
    for m in _RUN.finditer(text):
        run = m.group()
        if not run.isalpha() and not run.isdigit():
            return True
    return False


def safe_url(url: str) -> str:
    """``url`` as it may be shown: no user name or password, no query or fragment values.

    Query parameter names stay (``?key=...``: they say what was wrong), unless a name looks
    like a secret itself; a path segment that looks like a secret becomes ``...``. Never raises,
    whatever the text: it is used to show values that are not valid URLs too.
    """
    m = _SCHEME.match(url)
    scheme = m.group() if m else ""
    rest = url[len(scheme):]
    if scheme:
        # The authority runs to the first / ? or #; a user name and password end at its last @.
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        rest = rest[:end].rpartition("@")[2] + rest[end:]
    rest, hash_mark, _ = rest.partition("#")
    rest, question_mark, query = rest.partition("?")
    path = "/".join(_HIDDEN if looks_secret(segment) else segment for segment in rest.split("/"))
    out = scheme + path
    if question_mark:
        names = []
        for pair in query.split("&"):
            name, equals, _ = pair.partition("=")
            names.append((_HIDDEN if looks_secret(name) else name) + (f"={_HIDDEN}" if equals else ""))
        out += "?" + "&".join(names)
    if hash_mark:
        out += "#" + _HIDDEN
    return out


def concealed(value: str) -> str:
    """A value that may be a secret, quoted as far as it is safe: ``'sk-ant-...'`` or ``'...'``."""
    return f"'{secret_prefix(value)}{_HIDDEN}'"


def _key_source_place(path: _Path) -> bool:
    """Anywhere under a provider's ``key`` or under ``server.client_keys``."""
    return (len(path) >= 3 and path[0] == "providers" and path[2] == "key") or path[:2] == (
        "server",
        "client_keys",
    )


def may_be_secret(path: _Path, value: Any) -> bool:
    """Whether the value at ``path`` of a routes.toml must not be quoted in a message.

    Secret-looking strings anywhere; under ``key`` and ``client_keys`` everything but
    variable names and file paths (``value``, ``client``, a bare string that is not an
    UPPER_SNAKE name); every ``headers`` value; an ``auth`` that is not a short word. Base URLs
    are shown through ``safe_url`` instead.
    """
    if isinstance(value, bool) or value == "":
        return False  # true, false and "" hold no secret; saying them helps
    if isinstance(value, str) and looks_secret(value):
        return True
    if _key_source_place(path):
        if path[-1] in ("env", "oauth_file"):
            return False
        if path[-1] in ("value", "client"):
            return True
        return not (isinstance(value, str) and _VARIABLE_NAME.fullmatch(value))
    if len(path) == 4 and path[0] == "providers" and path[2] == "headers":
        return True
    if len(path) == 3 and path[0] == "providers" and path[2] == "auth":
        return not (isinstance(value, str) and _WORD.fullmatch(value))
    return False


def pasted_key(path: _Path, value: Any) -> str | None:
    """The message for a key pasted where a key source's name or path belongs, else None.

    ``key = "sk-..."``, ``{ env = "sk-..." }``, ``{ oauth_file = "sk-ant-oat01-..." }``: says
    what kind of mistake it is and the fix, and never the value.
    """
    if not (isinstance(value, str) and looks_secret(value) and _key_source_place(path)):
        return None
    it = concealed(value) if secret_prefix(value) else "this value"
    if path[-1] == "env":
        return (
            f"{it} looks like a key, not the name of an environment variable (the value is not shown): "
            "put the key in a variable (in the environment or ./.env) and write that variable's name here"
        )
    if path[-1] == "oauth_file":
        return (
            f"{it} looks like a token, not the path of a credentials file (the value is not shown): "
            "write the path of Claude Code's .credentials.json, or true for its default location"
        )
    if path[-1] in ("value", "client"):
        return None  # a value where a value belongs, or a wrong type: the usual message, concealed
    return (
        f"{it} looks like a key written as a bare string (the value is not shown): a key does not "
        'belong in this file; put it in an environment variable and write { env = "NAME" }'
    )
