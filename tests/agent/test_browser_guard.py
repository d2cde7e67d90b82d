"""The read-only guard every agent context gets: undeclared non-GET requests never leave the browser."""

from __future__ import annotations

import struct

from portals.base import RequestPattern


async def test_undeclared_writes_are_aborted_and_declared_ones_pass(sandbox, pool):
    allowed = (RequestPattern(method="POST", url_regex=r"/declared-search$"),)
    s = await pool.new_session(sandbox.url("medicaid"), allowed)
    try:
        page = await s.page()
        await page.goto("/")
        outcome = await page.evaluate("""async () => {
            const r = [];
            for (const [m, u] of [["POST", "/Claims/Void.aspx"], ["PUT", "/api/x"], ["DELETE", "/y"],
                                  ["POST", "/declared-search"]]) {
                try { const res = await fetch(u, {method: m}); r.push(res.status); }
                catch (e) { r.push("blocked"); }
            }
            return r;
        }""")
        assert outcome[:3] == ["blocked", "blocked", "blocked"]
        assert outcome[3] != "blocked"  # declared: reaches the portal (which answers as it likes)
        assert [(b["method"], b["path"]) for b in s.blocked] == [
            ("POST", "/Claims/Void.aspx"), ("PUT", "/api/x"), ("DELETE", "/y")]
        writes = sandbox.control.get("/control/writes").json()
        assert [w["path"] for w in writes] == ["/declared-search"]  # nothing undeclared arrived
    finally:
        await s.close()


async def test_a_lease_prefers_the_idle_page_last_used_for_the_same_affinity(sandbox, pool):
    s = await pool.new_session(sandbox.url("medicaid"), ())
    try:
        async with s.lease("payer-A") as a, s.lease("payer-B") as b:
            page_a, page_b = a.page, b.page
        assert page_a is not page_b
        async with s.lease("payer-A") as again:
            assert again.page is page_a  # set up for A: no reload needed
        async with s.lease("payer-B") as again:
            assert again.page is page_b
        async with s.lease("payer-C") as other:  # no page for C: any idle page, never a new one
            assert other.page in (page_a, page_b)
        assert len(s.context.pages) == 2
    finally:
        await s.close()


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header."""
    i = 2
    while i < len(data) - 9:
        if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF) and not 0xD0 <= data[i + 1] <= 0xD9:
            i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        else:
            i += 1
    raise AssertionError("no JPEG frame header")


async def test_evidence_screenshot_is_the_whole_page_as_playwright_draws_it(pool):
    s = await pool.new_session("http://127.0.0.1:9", ())
    try:
        page = await s.page()
        await page.set_content("<body style='margin:0'><div style='height:3000px'>claim</div><p>end</p></body>")
        cap = await s.capture(page, reason="test")
        assert cap is not None and _jpeg_size(cap.screenshot) == (1280, 3000 + 50)  # beyond the 900 px viewport
        assert page.viewport_size == {"width": 1280, "height": 900}  # never resized
        full = await page.screenshot(full_page=True, type="jpeg", quality=80)
        assert _jpeg_size(full) == _jpeg_size(cap.screenshot)
    finally:
        await s.close()


def test_headless_runs_the_headless_shell_and_headed_runs_the_full_chromium_beside_it():
    from core.config import BrowserSettings

    b = BrowserSettings(executable_path="/usr/bin/chromium-headless-shell", headless=True)
    assert b.launch_path() == "/usr/bin/chromium-headless-shell"
    assert b.model_copy(update={"headless": False}).launch_path() == "/usr/bin/chromium"
    assert BrowserSettings(executable_path="/opt/chrome/chrome", headless=False).launch_path() == "/opt/chrome/chrome"
    assert BrowserSettings(executable_path="", headless=True).launch_path() is None  # Playwright's own browser


class _Siblings:
    """A tiny portal whose page script asks for /cards/a, /cards/b, /cards/c one after another, each answered
    after a server delay; /cards/b answers 401 JSON, /cards/c redirects (303) to /cards/c-moved. Records how
    many card requests it held at once."""

    DELAY_S = 0.3

    def __init__(self) -> None:
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.served: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/":
                    body, status, ctype = PAGE.encode(), 200, "text/html"
                elif self.path.startswith("/cards/"):
                    with outer.lock:
                        outer.in_flight += 1
                        outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                        outer.served.append(f"{self.path} {self.headers.get('x-requested-with')}")
                    time.sleep(outer.DELAY_S)
                    with outer.lock:
                        outer.in_flight -= 1
                    if self.path == "/cards/c":
                        self.send_response(303)
                        self.send_header("Location", "/cards/c-moved")
                        self.end_headers()
                        return
                    status = 401 if self.path == "/cards/b" else 200
                    body, ctype = f'{{"card": "{self.path}"}}'.encode(), "application/json"
                else:
                    body, status, ctype = b"", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


PAGE = """<html><body><script>
window.read = async () => {
  const out = [];
  for (const name of ['a', 'b', 'c']) {  // in turn, as a portal's detail script loads its cards
    const r = await fetch('/cards/' + name, {headers: {'X-Requested-With': 'fetch'}});
    out.push([r.status, new URL(r.url).pathname, r.redirected, await r.text()]);
  }
  return out;
};
window.readOne = async (name) => (await fetch('/cards/' + name, {headers: {'X-Requested-With': 'fetch'}})).status;
</script></body></html>"""


async def test_read_ahead_sends_a_groups_requests_at_once_and_the_page_gets_each_answer_unchanged(pool):
    from agent.pacing import TokenBucket

    portal = _Siblings()
    group = [f"{portal.url}/cards/{n}" for n in "abc"]
    s = await pool.new_session(portal.url, (), pacer=TokenBucket(10**9),
                               counted=(RequestPattern.under("/cards/"),),
                               read_ahead=lambda url: group if url in group else [])
    try:
        page = await s.page()
        await page.goto("/")
        got = await page.evaluate("window.read()")
        assert got == [
            [200, "/cards/a", False, '{"card": "/cards/a"}'],
            [401, "/cards/b", False, '{"card": "/cards/b"}'],  # a status passes through as the portal sent it
            [200, "/cards/c-moved", True, '{"card": "/cards/c-moved"}'],  # a redirect: the browser follows it
        ]
        # the three cards were in the portal's hands at once (the page asked for them one after another),
        # each with the page's own headers; the redirect's next page was the browser's own request
        assert portal.most_in_flight == 3
        assert sorted(portal.served) == ["/cards/a fetch", "/cards/b fetch", "/cards/c fetch",
                                         "/cards/c-moved fetch"]
        assert s.read_ahead_served == 2
        assert s.counted == 4  # a, b, c (read) + c-moved (debited when the browser sent it)
        # a second read of the group: read ahead again, not answered from the first read's responses
        await page.evaluate("window.read()")
        assert len(portal.served) == 8 and s.read_ahead_served == 4
        # a group the page left half asked (its script changed course): the next group's first request is
        # read again with its siblings, never answered from the older reads
        assert await page.evaluate("window.readOne('a')") == 200
        assert await page.evaluate("window.readOne('a')") == 200
        assert len(portal.served) == 14 and s.read_ahead_served == 4
    finally:
        await s.close()
        portal.server.shutdown()
