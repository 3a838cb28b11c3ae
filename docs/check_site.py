"""The built site as a reader sees it: headless Chromium (Debian's ``chromium``) driven by
Playwright opens the pages a reader starts from, fails on any console error, failed request
or empty figure, and searches for ``sigmoid_grad``.

    python docs/check_site.py [docs/_build/html] [--chromium /usr/bin/chromium]

``ci/docs`` runs it after the build where Chromium is installed.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

PAGES = ["index.html", "install.html", "user_guide/index.html", "api/generated/xpit.sigmoid.html",
         "accuracy.html", "performance.html", "auto_examples/index.html",
         "auto_examples/logistic_regression.html"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(root: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check(root: Path, chromium: str) -> list[str]:
    """Problems found on the pages (an empty list when the site reads well)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    server = _serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.on("console", lambda m: problems.append(f"{page.url}: console {m.type}: "
                                                         f"{m.text}") if m.type == "error"
                    else None)
            page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"{page.url}: failed {r.url}"))
            for name in PAGES:
                response = page.goto(base + name, wait_until="networkidle")
                if response is None or response.status != 200:
                    problems.append(f"{name}: HTTP {response and response.status}")
                    continue
                for image in page.locator("article img").all():  # every figure drawn
                    width = image.evaluate("i => i.complete ? i.naturalWidth : 0")
                    if not width:
                        problems.append(f"{name}: an empty image {image.get_attribute('src')}")
            page.goto(base + "search.html?q=sigmoid_grad", wait_until="networkidle")
            page.wait_for_selector("#search-results li", timeout=10_000)
            found = page.locator("#search-results li a").all_inner_texts()
            if not any(text.strip() == "xpit.sigmoid_grad" for text in found):
                problems.append(f"search for sigmoid_grad: no xpit.sigmoid_grad in {found[:5]}")
            browser.close()
    finally:
        server.shutdown()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path("docs/_build/html"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    problems = check(args.root, args.chromium)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"check_site: {len(PAGES)} pages and the search, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
