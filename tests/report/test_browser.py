"""The HTML report in a real headless browser (Debian's chromium): charts load, tables show,
no errors. A probe script is added to a copy of the page (the report itself has no scripts)
and writes what the browser saw into the DOM, which ``--dump-dom`` prints."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pbxgate.cdr.report.formats import render
from tests.report.helpers import week_report

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var what = e.message || (e.target && (e.target.alt || e.target.src)) || 'error';
  window.__errors.push(String(what));
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {
    errors: window.__errors,
    images: imgs.map(function (i) {
      return {alt: i.alt, width: i.naturalWidth, height: i.naturalHeight, shown: i.clientWidth};
    }),
    tables: document.querySelectorAll('table').length,
    rows: document.querySelectorAll('tr').length,
    headings: Array.prototype.slice.call(document.querySelectorAll('h2')).map(function (h) {
      return h.textContent;
    })
  };
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("PBXGATE_TEST_REQUIRE_ALL"):
            pytest.fail("chromium is not installed but CI requires it (apt-get install chromium)")
        pytest.skip("chromium not installed")
    return found


def browse(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=5000", *extra, page.as_uri()]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)


def probe(page_html: str, tmp: Path) -> dict[str, Any]:
    page = tmp / "probe.html"
    page.write_text(page_html.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    dom = browse(page, tmp, "--dump-dom").stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


@pytest.fixture(scope="module")
def week_html() -> str:
    return render(week_report("ru"), "html").decode()


def test_charts_load_and_tables_show(week_html: str, tmp_path: Path) -> None:
    seen = probe(week_html, tmp_path)
    assert seen["errors"] == []
    assert [i["alt"] for i in seen["images"]] == [
        "Входящие звонки по часам",
        "Входящие звонки по дням",
        "Входящие звонки: день недели × час",
    ]
    for image in seen["images"]:
        assert image["width"] == 800 and image["height"] >= 300, image
        assert image["shown"] > 0
    assert seen["tables"] == 5  # no recordings table: recordings_url is not set
    assert seen["rows"] > 50
    assert seen["headings"][0] == "Главное"


def test_the_probe_sees_a_broken_image(week_html: str, tmp_path: Path) -> None:
    """The check above can fail: a corrupt chart is reported as an error with zero size."""
    broken = re.sub(r'src="data:image/png;base64,[^"]+"', 'src="data:image/png;base64,AAAA"',
                    week_html, count=1)  # fmt: skip
    seen = probe(broken, tmp_path)
    assert seen["errors"] == ["Входящие звонки по часам"]
    assert seen["images"][0]["width"] == 0


def test_screenshot_is_not_blank(week_html: str, tmp_path: Path) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    page = tmp_path / "report.html"
    page.write_text(week_html, encoding="utf-8")
    shot = tmp_path / "shot.png"
    browse(page, tmp_path, "--window-size=900,1400", f"--screenshot={shot}")
    with image_mod.open(shot) as img:
        assert img.size == (900, 1400)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text, charts and tables, not an empty page
