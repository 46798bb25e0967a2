"""The self-contained HTML page: escaping of every string from records, and a real headless browser that
sorts, filters and must not run anything from a hostile string."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile

import pandas as pd
import pytest

from benchmark.leaderboards.page import SCRIPT, Section, render_page, write_page

PWN_IMG = '"><img src=x onerror="window.__pwned=1;document.title=\'pwned\'">'
PWN_SCRIPT = "<script>window.__pwned=2;document.title='pwned'</script>"
PWN_SVG = "<svg onload=\"window.__pwned=3\"></svg>"
HOSTILE = [PWN_IMG, PWN_SCRIPT, PWN_SVG, "</script><script>window.__pwned=4</script>", "' onmouseover='x"]

SVG = ('<?xml version="1.0" encoding="utf-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
       '<rect width="120" height="40" fill="#4c78a8"/></svg>')


def sections() -> list[Section]:
    knn = pd.DataFrame({"digits": ["85.6 ± 0.7", "9.1 ± 1.0", "error", "100.0 ± 0.0"],
                        "mnist5k": ["–", "50.0", "60.0", PWN_SCRIPT]},
                       index=pd.Index(["pixels", "timm/resnet18", PWN_IMG, "b-encoder"], name="encoder"))
    errors = pd.DataFrame({"encoder": [PWN_SVG, "pixels"], "protocol": ["knn", "linear"],
                           "modality": ["image", "text"],
                           "error": ["</script><script>window.__pwned=4</script>", "' onmouseover='x"]})
    published = pd.DataFrame({"encoder": ["sentence-transformers/all-MiniLM-L6-v2"], "Banking77": ["80.0"],
                              "source": ["https://github.com/embeddings-benchmark/results"]})
    return [
        Section("kNN, image", knn, caption=f"Legend: digits = digits[test]\n\nhostile info: {PWN_IMG}",
                plots=[SVG], modality="image", protocol="knn"),
        Section(f"Errors {PWN_SCRIPT}", errors, caption="one row per failed cell"),
        Section("Published MTEB", published, modality="text", protocol="mteb", published=True),
    ]


def test_every_record_string_is_escaped():
    page = render_page(f"Leaderboard {PWN_SCRIPT}", sections(), intro=PWN_IMG)
    # the only script element is the page's own; no attribute was injected
    assert page.count("<script") == 1 and page.count("</script>") == 1
    assert "<img src=x" not in page and "onerror=\"window" not in page and "<svg onload" not in page
    assert "onmouseover='x" not in page
    assert "&lt;script&gt;window.__pwned=2" in page and "&quot;&gt;&lt;img src=x onerror=" in page
    # what the CSP lets run is exactly that script
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "default-src 'none'" in page
    # nothing is fetched: no http(s) URL in src/href, plots are data: images
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert page.count('src="data:image/svg+xml;base64,') == 1


def test_filters_cover_sections_and_rows():
    page = render_page("t", sections())
    assert '<select id="f-modality" data-filter="modality"><option value="">all</option>' \
           '<option value="image">image</option><option value="text">text</option></select>' in page
    assert '<option value="mteb">mteb</option>' in page and '<option value="linear">linear</option>' in page
    assert '<section id="s0" data-modality="image" data-protocol="knn">' in page
    assert '<tr data-protocol="linear" data-modality="text">' in page or \
           '<tr data-modality="text" data-protocol="linear">' in page
    assert "published, not measured here" in page
    # captions: escaped first, then `code` spans (so a backtick cannot open a tag)
    cap = render_page("t", [Section("s", None, caption="`mean` of <b>`x`</b>")])
    assert "<p><code>mean</code> of &lt;b&gt;<code>x</code>&lt;/b&gt;</p>" in cap
    # a README's hard-wrapped paragraph flows, as Markdown renders it: a single line break is a space, so a code
    # span wrapped across lines is one span (it was left open, and the next backtick opened a wrong one)
    wrapped = render_page("t", [Section("s", None, caption="images (`--probe-every 50 --probe-size\n30000`). The"
                                                           "\nrecords in `records/` hold\n\nnext")])
    assert "<p>images (<code>--probe-every 50 --probe-size 30000</code>). The records in <code>records/</code> " \
           "hold</p><p>next</p>" in wrapped


def test_multiindex_headers_and_numeric_alignment():
    df = pd.DataFrame([["85.6 ± 0.7", "timm/resnet18"], ["error", "pixels"]],
                      columns=pd.MultiIndex.from_tuples([("digits", "knn"), ("<b>", "x")]),
                      index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["encoder", "seed"]))
    page = render_page("t", [Section("s", df)])
    assert '<th scope="col" title="sort by encoder / seed">encoder / seed</th>' in page
    assert '<th scope="col" class="num" title="sort by digits / knn">digits / knn</th>' in page
    assert '<th scope="col" title="sort by &lt;b&gt; / x">&lt;b&gt; / x</th>' in page  # text: left-aligned
    assert '<th scope="row">a / 1</th><td class="num">85.6 ± 0.7</td><td>timm/resnet18</td>' in page


def test_write_page_is_atomic_and_complete(tmp_path):
    path = write_page(tmp_path / "sub" / "index.html", "t", sections())
    assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")


# --- the real browser ----------------------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="repbench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as exc:  # a browser that cannot start here (no display libraries, ...): say why
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium could not start: {str(exc).splitlines()[0]}")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _column(driver, table: int, col: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('table.lb')[arguments[0]].tBodies[0].rows)"
        ".map(r => r.cells[arguments[1]].textContent);", table, col)


@pytest.mark.slow
def test_page_in_headless_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    title = f"Leaderboard {PWN_SCRIPT}"
    path = write_page(tmp_path / "index.html", title, sections(), intro=PWN_IMG)
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return window.__pwned") is None
    assert browser.title == title  # the hostile title shows as text and nothing changed it
    assert browser.find_element(By.TAG_NAME, "h1").text == title
    # hostile strings are visible as text, and no element was made from them
    assert browser.execute_script("return document.querySelectorAll('img[src=x], svg[onload], script').length") == 1
    assert PWN_IMG in browser.find_element(By.CSS_SELECTOR, "#s0 tbody").text

    first = _column(browser, 0, 0)
    assert first == ["pixels", "timm/resnet18", PWN_IMG, "b-encoder"]
    digits = browser.find_elements(By.CSS_SELECTOR, "#s0 thead th")[1]
    digits.click()  # numeric column: descending first, by the leading number; "error" last
    assert _column(browser, 0, 1) == ["100.0 ± 0.0", "85.6 ± 0.7", "9.1 ± 1.0", "error"]
    assert digits.get_attribute("aria-sort") == "descending"
    digits.click()
    assert _column(browser, 0, 1) == ["9.1 ± 1.0", "85.6 ± 0.7", "100.0 ± 0.0", "error"]
    assert digits.get_attribute("aria-sort") == "ascending"
    name = browser.find_elements(By.CSS_SELECTOR, "#s0 thead th")[0]
    name.click()  # text column (names have digits but do not lead with them): ascending first
    assert _column(browser, 0, 0) == sorted(first)

    Select(browser.find_element(By.ID, "f-modality")).select_by_value("text")
    visible = browser.execute_script(
        "return Array.from(document.querySelectorAll('section')).filter(s => !s.hidden).map(s => s.id);")
    assert visible == ["s1", "s2"]  # the image section hides; the errors section has no modality of its own
    rows = browser.execute_script("return Array.from(document.querySelectorAll('#s1 tbody tr'))"
                                  ".filter(r => !r.hidden).length;")
    assert rows == 1  # its image row hides, its text row stays
    Select(browser.find_element(By.ID, "f-modality")).select_by_value("")
    assert browser.execute_script("return window.__pwned") is None and browser.title == title

    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
