"""Rendered customer pages, kept in each process and keyed by everything they show.

A bill page is the same HTML for every view of the same invoice in the same language on
the same day, until something it shows changes. Rendering it (translations, Babel
formatting of every amount, the line table) costs several times what serving it costs,
so each process keeps the HTML it rendered, bounded and least-recently-used first out.

The caller builds the key from what the page shows, read in one statement on every
request (see `access.services.bill_access`), so a payment, a status change, a new event
or a new brand is on the page at the next request, whichever process serves it.

Per-request values never enter the cache: the page is rendered with random stand-ins
for the CSP nonce and the CSRF token, and each response gets its own values in their
place (a page that uses neither gets neither, and its CSP allows no inline code at all).
The stand-ins are random per process, so no text on a bill can imitate them.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping

from flask import current_app, g

from app.security import csp_nonce, csrf_token

EXTENSION = "portal_page_cache"
#: HTML, and the origins per CSP directive it needs beyond ours (None: none)
Page = tuple[str, Mapping[str, tuple[str, ...]] | None]


class PageCache:
    """A bounded LRU map from a key to a rendered page (HTML, and the CSP origins it needs beyond
    our own: a payment provider's hosted page the pay form leads to), safe to share between threads."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self.nonce_stand_in = "n" + secrets.token_hex(16)
        self.csrf_stand_in = "c" + secrets.token_hex(16)
        self._pages: OrderedDict[Hashable, Page] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Page | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: Hashable, page: Page) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()

    def __len__(self) -> int:
        return len(self._pages)


def get_page_cache() -> PageCache:
    """The app's page cache, made on first use from PAGE_CACHE_ENTRIES."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy read once
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        cache = app.extensions[EXTENSION] = PageCache(app.config["PAGE_CACHE_ENTRIES"])
    return cache


def cached_page(key: Hashable, render: Callable[[], str]) -> str:
    """The page for `key`, rendered by `render()` on a miss, with this request's nonce and CSRF token.
    What `render()` put in `g.csp_extra` (see app.security) is kept with it and restored on a hit."""
    cache = get_page_cache()
    page = cache.get(key)
    if page is None:
        page = _render_with_stand_ins(cache, render)
        cache.put(key, page)
    html, csp_extra = page
    if csp_extra:
        g.csp_extra = csp_extra
    if cache.nonce_stand_in in html:
        html = html.replace(cache.nonce_stand_in, csp_nonce())
    if cache.csrf_stand_in in html:
        html = html.replace(cache.csrf_stand_in, csrf_token())
    return html


def _render_with_stand_ins(cache: PageCache, render: Callable[[], str]) -> Page:
    """Render with the stand-ins where the nonce and the CSRF token go.

    `csp_nonce()` and `csrf_token()` (like Flask-WTF's `generate_csrf()`) return what this
    request's `g` already holds, so the stand-ins are put there for the render and taken away after.
    """
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    saved = {name: g.pop(name, None) for name in ("csp_nonce", field)}
    g.csp_nonce = cache.nonce_stand_in
    setattr(g, field, cache.csrf_stand_in)
    try:
        return render(), g.get("csp_extra")
    finally:
        for name, value in saved.items():
            g.pop(name, None)
            if value is not None:
                setattr(g, name, value)
