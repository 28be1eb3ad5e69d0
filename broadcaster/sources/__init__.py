"""Content sources: news feeds, weather, event calendars, holidays, new members.

Each source is one module (``news``, ``weather``, ``events``, ``holidays``,
``members``) that opens with what it declares (config it reads, state it keeps,
its limits), then a small class with ``fetch()`` returning plain data for
templates, then its content kind (``kinds``: its schedule options, ``feeds/``
section, template kinds with sample data, and ``run(ctx)``). ``festivals`` is the
one list of festivals and solar terms; ``template`` is the content of a job that
names its own template.

This package holds what they share:

- ``fetch_bytes``: one GET of a URL through the package's fetch client
  (``broadcaster.net``: URL and address policy, checked redirects, timeouts and
  a total deadline, a size cap), or of a ``file:`` URL or a path inside the
  root; conditional GET;
- ``Source``: the base of a source that reads URLs (its root, fetch client,
  timeouts and size cap), with ``get(url)`` calling ``fetch_bytes``;
- ``safe_text`` / ``safe_url``: untrusted text (feed titles, calendar entries,
  member names) turned into inert Markdown: no raw HTML, Markdown specials
  escaped, platform mentions (``@all``, ``<@user>``, ``<at …>``) neutralised.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from broadcaster.cleantext import clean_text
from broadcaster.net.urls import is_local

if TYPE_CHECKING:
    from broadcaster.net.client import HttpClient

TIMEOUT = (3.0, 20.0)            # seconds: connect, read (per chunk)
DEADLINE = 30.0                  # seconds for a whole fetch, redirects and body included
MAX_BYTES = 5 * 1024 * 1024      # a feed, calendar or forecast larger than this is refused


class SourceError(Exception):
    """A source could not be read: unreachable, refused, too large, malformed.

    The message is safe to log (no keys or tokens): it names the source, not the URL
    query string.
    """


@dataclass
class Fetched:
    """One answer: ``status`` 200 with a body, or 304 (not modified) without one."""

    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def local_path(url: str, root: Path) -> Path:
    """``file:///abs``, ``file:rel/dir`` or ``rel/path`` → a path (relative ones under root)."""
    if url.lower().startswith("file:"):
        rest = url[5:]
        if rest.startswith("//"):
            rest = urlsplit(url).path
        url = unquote(rest)
    path = Path(url)
    return path if path.is_absolute() else root / path


def shown_url(url: str) -> str:
    """A URL as it may appear in logs: scheme, host and path, never the query (keys live there)."""
    parts = urlsplit(url)
    if not parts.scheme or parts.scheme == "file":
        return url
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"


def fetch_bytes(
    url: str,
    *,
    root: Path,
    session: HttpClient | None = None,
    params: dict | None = None,
    headers: dict | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: tuple[float, float] = TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> Fetched:
    """GET ``url`` (or read the file it names, inside ``root``), refusing more than ``max_bytes``.

    ``session`` is a fetch client (``broadcaster.net.client.fetch_client``: its
    URL and address policy, redirects re-checked, a total deadline of
    ``DEADLINE``); None: a one-off client with the default policy. Raises
    SourceError for anything but 200 / 304. Conditional GET is used when
    ``etag`` or ``last_modified`` is given; a 304 comes back with an empty body.
    """
    if is_local(url):
        return _read_local(url, root, max_bytes)
    hdrs = {"Accept-Encoding": "gzip, deflate"}
    hdrs.update(headers or {})
    if etag:
        hdrs["If-None-Match"] = etag
    if last_modified:
        hdrs["If-Modified-Since"] = last_modified
    from broadcaster.net.client import HttpFailure, fetch_client  # in-function: start-up
    from broadcaster.net.urls import UrlRefused  # start-up time: loaded when first used

    where = shown_url(url)
    client = session or fetch_client()
    try:
        resp = client.get(url, params=params, headers=hdrs, timeout=timeout,
                          deadline=DEADLINE, max_bytes=max_bytes)
    except UrlRefused as exc:
        raise SourceError(f"{where}: URL refused: {exc}") from None
    except HttpFailure as exc:
        reason = "timed out" if exc.reason.endswith("timeout") else exc.reason
        raise SourceError(f"{where}: {reason}") from None
    finally:
        if session is None:
            client.close()
    if resp.status_code == 304:
        return Fetched(304, b"", etag, last_modified, dict(resp.headers))
    if resp.status_code != 200:
        raise HTTPStatusError(where, resp.status_code, resp.content)
    return Fetched(200, resp.content, resp.headers.get("ETag"), resp.headers.get("Last-Modified"),
                   dict(resp.headers))


def _read_local(url: str, root: Path, max_bytes: int) -> Fetched:
    """A ``file:`` URL or a path: only inside ``root`` (the shipped demo reads its own files)."""
    path = local_path(url, root)
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise SourceError(f"{path}: outside the project directory (file paths must be "
                          "inside it)") from None
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SourceError(f"{path}: larger than {max_bytes} bytes")
        return Fetched(200, path.read_bytes())
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from None


class Source:
    """What every source that reads URLs shares: the root that relative paths are
    under, one fetch client (None: a one-off client per request), timeouts, a size cap."""

    max_bytes = MAX_BYTES

    def __init__(
        self,
        root: Path,
        *,
        session: HttpClient | None = None,
        timeout: tuple[float, float] = TIMEOUT,
        max_bytes: int | None = None,
    ):
        self.root = root
        self.session = session
        self.timeout = timeout
        if max_bytes is not None:
            self.max_bytes = max_bytes

    def get(self, url: str, **kw) -> Fetched:
        """``fetch_bytes`` with this source's root, session, timeouts and size cap."""
        return fetch_bytes(url, root=self.root, session=self.session, timeout=self.timeout,
                           max_bytes=self.max_bytes, **kw)


class HTTPStatusError(SourceError):
    """A non-200 answer; ``body`` is kept so a source can read the platform's error JSON."""

    def __init__(self, where: str, status: int, body: bytes):
        self.status = status
        self.body = body
        super().__init__(f"{where}: HTTP {status}")


def content_hash(*parts: str | None) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update((part or "").encode("utf-8", "replace"))
        h.update(b"\0")
    return h.hexdigest()[:24]


# --- untrusted text → inert Markdown -------------------------------------------------

_DROP_CONTENT = {"script", "style", "noscript", "template", "iframe", "object", "svg", "head"}
_BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}


class _TextOnly(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _DROP_CONTENT:
            self.skip += 1
        elif tag in _BREAKS:
            self.out.append(" ")

    def handle_endtag(self, tag):
        if tag in _DROP_CONTENT and self.skip:
            self.skip -= 1
        elif tag in _BREAKS:
            self.out.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def strip_html(text: str) -> str:
    """Visible text of an HTML fragment; script/style bodies dropped; entities decoded."""
    parser = _TextOnly()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # HTMLParser is lenient; still, never let odd input escape raw
        return html.unescape(re.sub(r"<[^>]*>", " ", text))
    return "".join(parser.out)


# Characters with a Markdown meaning in any of the dialects the channels speak.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#&!])")
_SPACES = re.compile(r"\s+")
_INVISIBLE = re.compile(r"[\u200b\u200e\u200f\ufeff]")  # zero-width space, LRM/RLM, BOM
_LINE_MARKER = re.compile(r"^(\d*)([-+=.)])")


def safe_text(text: str | None, *, limit: int | None = None, html_input: bool = True) -> str:
    """Untrusted text as one line of inert Markdown: it parses back to exactly its characters.

    HTML is reduced to its visible text, control and bidi characters removed
    (``cleantext.clean_text``), whitespace collapsed, every ``@`` replaced by the
    full-width ``＠`` (no platform reads it as a mention, residents read it the
    same), Markdown specials escaped with a backslash (the parser takes the
    backslashes away; each dialect's writer then shows the characters as text),
    and the result cut to ``limit`` characters with an ellipsis.
    """
    if not text:
        return ""
    plain = strip_html(text) if html_input else text
    plain = _INVISIBLE.sub("", clean_text(plain))
    plain = _SPACES.sub(" ", plain).strip()
    if limit is not None and len(plain) > limit:
        plain = plain[: max(limit - 1, 0)].rstrip() + "…"
    plain = plain.replace("@", "＠")
    plain = _MD_SPECIAL.sub(r"\\\1", plain)
    # a leading list, heading or setext marker would change the line's meaning
    # ("- x", "1. x", "==="): "\\- x", "1\\. x"
    return _LINE_MARKER.sub(r"\1\\\2", plain, count=1)


def safe_url(url: str | None) -> str | None:
    """An http(s) link safe inside ``[text](url)``; anything else (javascript:, data:…) → None."""
    if not url:
        return None
    url = _INVISIBLE.sub("", clean_text(url)).strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe="/:?&=#%+,;~.-_!$'*@")
