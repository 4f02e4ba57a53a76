"""Connection settings, parsed from a URL and checked before any request is sent.

Accepted forms: ``couchdb://user:pass@host:5984/db`` (``couchdb+httpx``, ``couchdb+async``,
``couchdb+httpx_async``, ``couchdb+hybrid`` too), and plain ``http(s)://…`` server URLs.
Query options: ``use_ssl=true``; ``timeout`` (read/write seconds), ``connect_timeout``;
``max_connections``, ``max_keepalive_connections``; ``retries`` (attempts after the first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .exceptions import InvalidConfiguration

__all__ = ["ConnectionSettings", "validate_database_name"]

_SCHEMES = {
    "couchdb": False,
    "couchdb+httpx": False,
    "couchdb+async": False,
    "couchdb+httpx_async": False,
    "couchdb+hybrid": False,
    "http": False,
    "https": True,
}
_DB_NAME_FIRST = re.compile(r"[a-z]")
_DB_NAME_CHAR = re.compile(r"[a-z0-9_$()+/-]")
# CouchDB's own databases break the naming rule on purpose (they start with "_").
_SYSTEM_DATABASES = frozenset({"_users", "_replicator", "_global_changes"})
_DB_NAME_MAX = 238
_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_RULE = (
    "CouchDB database names start with a lowercase letter (a-z) and contain only "
    "lowercase letters, digits and _ $ ( ) + - /"
)


def validate_database_name(name: str) -> str:
    """Check CouchDB's database name rule, so a bad name fails before any request.

    The message says which part of the rule is broken: a missing name, the length
    limit (238 characters), the first character, or the characters allowed.
    """
    if not isinstance(name, str) or not name:
        raise InvalidConfiguration(
            "no database name: the URL must end in /<database>, "
            "e.g. couchdb://user:pass@localhost:5984/mydb"
        )
    if name in _SYSTEM_DATABASES:
        return name
    if len(name) > _DB_NAME_MAX:
        raise InvalidConfiguration(
            f"database name is {len(name)} characters long; CouchDB allows at most {_DB_NAME_MAX}"
        )
    if not _DB_NAME_FIRST.fullmatch(name[0]):
        what = (
            "an uppercase letter"
            if name[0].isupper()
            else "a digit"
            if name[0].isdigit()
            else repr(name[0])
        )
        raise InvalidConfiguration(
            f"invalid database name {name!r}: it starts with {what}; {_RULE}"
        )
    bad = sorted({c for c in name if not _DB_NAME_CHAR.fullmatch(c)})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        upper = " (uppercase letters are not allowed)" if any(c.isupper() for c in bad) else ""
        raise InvalidConfiguration(
            f"invalid database name {name!r}: it contains {shown}{upper}; {_RULE}"
        )
    return name


def _flag(options: dict[str, str], key: str) -> bool | None:
    raw = options.get(key)
    if raw is None:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InvalidConfiguration(f"option {key}={raw!r} must be true or false")


def _integer(options: dict[str, str], key: str, default: int, *, minimum: int) -> int:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidConfiguration(f"option {key}={raw!r} must be a whole number") from None
    if value < minimum:
        raise InvalidConfiguration(f"option {key}={raw!r} must be at least {minimum}")
    return value


def _number(options: dict[str, str], key: str, default: float, *, minimum: float) -> float:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidConfiguration(f"option {key}={raw!r} must be a number") from None
    if value < minimum:
        raise InvalidConfiguration(f"option {key}={raw!r} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to reach one CouchDB server (and optionally one of its databases).

    The password is kept out of ``repr`` and out of every URL this object renders.
    """

    host: str
    port: int
    database: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_ssl: bool = False
    timeout: float = 30.0
    connect_timeout: float = 5.0
    max_connections: int = 20
    max_keepalive_connections: int = 10
    retries: int = 3
    backoff_base: float = 0.1
    backoff_cap: float = 2.0

    KNOWN_OPTIONS = frozenset(
        {
            "use_ssl",
            "timeout",
            "connect_timeout",
            "max_connections",
            "max_keepalive_connections",
            "retries",
            "secondary_db",
        }
    )

    @classmethod
    def from_url(cls, url: str, *, require_database: bool = True) -> ConnectionSettings:
        """Parse a ``couchdb://`` or ``http(s)://`` URL; raise before any request if bad."""
        if not isinstance(url, str) or "://" not in url:
            raise InvalidConfiguration("a CouchDB URL looks like couchdb://user:pass@host:5984/db")
        # Split the scheme off by hand: urlsplit() rejects "_" in a scheme, so it would
        # not see one in couchdb+httpx_async://.
        raw_scheme, _, rest = url.partition("://")
        scheme = raw_scheme.lower()
        parts = urlsplit(f"//{rest}")
        if scheme not in _SCHEMES:
            known = ", ".join(f"{s}://" for s in _SCHEMES)
            raise InvalidConfiguration(f"unknown URL scheme {scheme!r}; use one of {known}")
        if "@" in parts.path or "@" in parts.fragment:
            # A password holding "/" or "#" splits the URL early: what follows the "@"
            # would be read as the database name. Say so without echoing any of it.
            raise InvalidConfiguration(
                "the URL has an '@' after the host: percent-encode special characters in "
                "the user name and password (e.g. / as %2F, # as %23, @ as %40)"
            )
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise InvalidConfiguration("bad port in URL: the port must be a number from 1 to 65535")
        host = parts.hostname
        if not host:
            raise InvalidConfiguration("the URL has no host name")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(options) - cls.KNOWN_OPTIONS
        if unknown:
            # Only echo names that look like option names: anything else may be a piece
            # of a password whose "?" was not percent-encoded.
            shown = [name for name in sorted(unknown) if _OPTION_NAME.match(name)]
            listed = ", ".join(shown) if len(shown) == len(unknown) else "not shown"
            raise InvalidConfiguration(
                f"unknown URL option(s) ({listed}); known: {', '.join(sorted(cls.KNOWN_OPTIONS))}"
            )
        use_ssl = _flag(options, "use_ssl")
        if use_ssl is None:
            use_ssl = _SCHEMES[scheme]
        path = unquote(parts.path.lstrip("/"))
        database = path.rstrip("/") or None
        if database is not None or require_database:
            validate_database_name(database or "")
        defaults = cls(host="", port=0)
        return cls(
            host=host,
            port=port if port is not None else (443 if use_ssl and scheme == "https" else 5984),
            database=database,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            use_ssl=use_ssl,
            timeout=_number(options, "timeout", defaults.timeout, minimum=0.001),
            connect_timeout=_number(
                options, "connect_timeout", defaults.connect_timeout, minimum=0.001
            ),
            max_connections=_integer(
                options, "max_connections", defaults.max_connections, minimum=1
            ),
            max_keepalive_connections=_integer(
                options, "max_keepalive_connections", defaults.max_keepalive_connections, minimum=0
            ),
            retries=_integer(options, "retries", defaults.retries, minimum=0),
        )

    def with_database(self, database: str) -> ConnectionSettings:
        return replace(self, database=validate_database_name(database))

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def base_url(self) -> str:
        """The server's root URL, without credentials."""
        scheme = "https" if self.use_ssl else "http"
        return f"{scheme}://{self._url_host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, for messages."""
        return f"{self._url_host}:{self.port}"

    def redacted_url(self) -> str:
        """The URL with the password masked, for logs and messages."""
        user = f"{quote(self.username, safe='')}:***@" if self.username else ""
        scheme = "https" if self.use_ssl else "http"
        db = f"/{self.database}" if self.database else ""
        return f"{scheme}://{user}{self._url_host}:{self.port}{db}"

    def httpx_options(self) -> dict[str, Any]:
        """Keyword arguments shared by ``httpx.Client`` and ``httpx.AsyncClient``."""
        import httpx

        auth = (
            httpx.BasicAuth(self.username, self.password or "")
            if self.username is not None
            else None
        )
        return {
            "base_url": self.base_url,
            "auth": auth,
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
            "limits": httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_keepalive_connections,
            ),
            "headers": {"Accept": "application/json"},
        }
