"""Open every page of the built book in headless Chromium and check what a reader would see.

Checks, page by page:
- math is rendered by MathJax served from the built site itself (no CDN, so the book reads
  offline): every math element of the page became an ``mjx-container``;
- every image (figures, GIFs) loaded (``naturalWidth > 0``);
- on a chapter built from a notebook, the Colab button opens that chapter's notebook in the
  repository named in ``_config.yml``;
- every internal link points at a page that exists, and its ``#anchor`` at an id on that page;
- no code cell scrolls sideways: at window widths 1100 and 1280 px, every visible line of code
  fits its block (``_static/rlbook.css`` scales the code font for that).

Saves a full-page screenshot per page to ``_build/screenshots``. Uses Debian's ``chromium`` and
``chromium-driver`` (``apt-get install chromium chromium-driver``).

Usage: ``python tools/check_site.py [--html _build/html]`` after ``jupyter-book build .``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def colab_url(page: Path, html_root: Path) -> str:
    """The Colab URL the button of a notebook page must carry, from ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = urlparse(config["repository"]["url"]).path.strip("/")
    branch = config["repository"]["branch"]
    notebook = page.relative_to(html_root).with_suffix(".ipynb").as_posix()
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{notebook}"


def broken_links(page: Path, html_root: Path) -> list[str]:
    problems = []
    for href in _parse(page).hrefs:
        parsed = urlparse(href)
        if parsed.scheme or href.startswith("mailto:"):
            continue
        target = (
            page if not parsed.path else (page.parent / unquote(parsed.path)).resolve()
        )
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"{href}: no such file")
        elif parsed.fragment and target.suffix == ".html":
            if parsed.fragment not in _parse(target).ids:
                problems.append(f"{href}: no id {parsed.fragment!r} in {target.name}")
    return problems


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve the built site on a free loopback port, as a web host would."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1100,1400",
    ):
        options.add_argument(flag)
    # the explicit driver path keeps Selenium from trying to download one
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


PAGE_STATE = """
const maths = document.querySelectorAll('.math, span.math, div.math').length;
const rendered = document.querySelectorAll('mjx-container').length;
const mathjaxSrc = [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s));
const images = [...document.images].map(i => [i.currentSrc || i.src, i.complete && i.naturalWidth > 0]);
const colab = [...document.querySelectorAll('a')].map(a => a.href).filter(h => h.includes('colab.research'));
return {maths, rendered, mathjaxSrc, images, colab, title: document.title,
        height: document.documentElement.scrollHeight};
"""


WIDE_CODE = """
return [...document.querySelectorAll('div.cell_input pre')]
  .filter(p => p.offsetParent && p.innerText.trim() && p.scrollWidth > p.clientWidth + 1)
  .map(p => {
    const lines = p.innerText.split('\\n');
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    return `${p.scrollWidth} px in ${p.clientWidth} px: ${longest.trim().slice(0, 60)}`;
  });
"""


def check_page(
    driver, base: str, page: Path, html_root: Path, shots: Path
) -> tuple[list[str], dict]:
    """Load one page, check it, save its screenshot; return the problems and what was seen."""
    url = urljoin(base, page.relative_to(html_root).as_posix())
    driver.get(url)
    # wait until MathJax has typeset the page (or there is nothing to typeset)
    driver.set_script_timeout(30)
    driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        const t0 = Date.now();
        (function poll() {
          const ready = window.MathJax && MathJax.startup && MathJax.startup.promise;
          if (ready) { MathJax.startup.promise.then(() => done(true)); }
          else if (Date.now() - t0 > 20000 || !document.querySelector('.math')) { done(false); }
          else { setTimeout(poll, 100); }
        })();"""
    )
    state = driver.execute_script(PAGE_STATE)
    problems = []
    if state["maths"]:
        if not state["mathjaxSrc"] or not all(
            s.startswith(base) for s in state["mathjaxSrc"]
        ):
            problems.append(f"MathJax not served from the site: {state['mathjaxSrc']}")
        if state["rendered"] < state["maths"]:
            problems.append(
                f"math not rendered: {state['rendered']} of {state['maths']}"
            )
    for src, ok in state["images"]:
        if not ok:
            problems.append(f"image did not load: {src}")
    if (ROOT / page.relative_to(html_root)).with_suffix(".ipynb").exists():
        expected = colab_url(page, html_root)
        if expected not in state["colab"]:
            problems.append(f"Colab button {state['colab']} != {expected}")
    problems += broken_links(page, html_root)
    for width in (1280, 1100):
        driver.set_window_size(width, 1400)
        for wide in driver.execute_script(WIDE_CODE):
            problems.append(f"code scrolls sideways at {width} px: {wide}")
    driver.set_window_size(1100, min(int(state["height"]), 16000))
    shot = shots / (page.relative_to(html_root).as_posix().replace("/", "__") + ".png")
    driver.save_screenshot(str(shot))
    driver.set_window_size(1100, 1400)
    return problems, state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", default=str(ROOT / "_build" / "html"), type=Path)
    parser.add_argument(
        "--shots", default=str(ROOT / "_build" / "screenshots"), type=Path
    )
    args = parser.parse_args()
    html_root = args.html.resolve()
    pages = sorted(html_root.glob("book/*.html"))
    if not pages:
        print(f"no pages under {html_root}/book: build the book first", file=sys.stderr)
        return 2
    args.shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(html_root)
    driver = browser()
    failures = 0
    try:
        for page in pages:
            problems, state = check_page(driver, base, page, html_root, args.shots)
            status = "ok" if not problems else "FAIL"
            print(
                f"{status:4} {page.relative_to(html_root)}: {state['rendered']} formulas, "
                f"{len(state['images'])} images, colab={'yes' if state['colab'] else 'no'}"
            )
            for problem in problems:
                print(f"     - {problem}")
            failures += bool(problems)
    finally:
        driver.quit()
        server.shutdown()
    print(
        f"{len(pages)} pages checked, {failures} with problems; screenshots in {args.shots}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
