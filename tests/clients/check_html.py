"""Opens report.html in headless Chromium the way a reader would, and checks
what they would see.

    python3 tests/clients/check_html.py OUT_DIR [SCREENSHOT.png]

- the page loads from a file with the network closed, and the browser
  reports no blocked fetch (the report must need nothing outside itself);
- one incident card per entry of incidents.json, and the five charts;
- the screenshot shows the charts drawn: pixels in the series colors and in
  the severity colors of the incident timeline.

Needs Debian's `chromium` (/usr/bin/chromium) and Pillow. Exits non-zero with
the reason on any failure.
"""

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]

CHARTS = ["chart-incidents", "chart-requests", "chart-errors", "chart-classes", "chart-latency"]

# First series color and the critical/high severity colors (html.rs).
SERIES_BLUE = (0x4E, 0x79, 0xA7)
CRITICAL = (0xB3, 0x26, 0x1E)
HIGH = (0xE8, 0x71, 0x0A)


def fail(message):
    print(f"check_html: {message}", file=sys.stderr)
    sys.exit(1)


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    fail("no Chromium found (Debian: apt-get install chromium)")


def run(chromium, profile, args):
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def near(pixel, color, tolerance=12):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], color))


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "faultline-out").resolve()
    html = out / "report.html"
    if not html.is_file():
        fail(f"{html}: missing")
    incidents = json.loads((out / "incidents.json").read_text())
    chromium = browser()
    url = html.as_uri()

    with tempfile.TemporaryDirectory() as profile:
        dom = run(chromium, profile, ["--dump-dom", url])
    if dom.returncode != 0:
        fail(f"chromium --dump-dom exited {dom.returncode}: {dom.stderr[-2000:]}")
    blocked = [line for line in dom.stderr.splitlines() if "Refused to" in line or "ERR_" in line]
    if blocked:
        fail("the page tried to fetch something:\n" + "\n".join(blocked[:10]))
    page = dom.stdout
    if "<h1>faultline report</h1>" not in page:
        fail("no report heading in the rendered page")
    cards = page.count('<article class="incident ')
    if cards != len(incidents):
        fail(f"{cards} incident cards rendered, incidents.json has {len(incidents)}")
    for chart in CHARTS:
        if f'id="{chart}"' not in page:
            fail(f"chart {chart} missing")
    if "<script" in page:
        fail("the report holds a script element")
    # Requests after retries: the rendered numbers are summary.json's.
    ops = json.loads((out / "summary.json").read_text())["operations"]
    if 'id="requests"' not in page:
        fail("the requests-after-retries section is missing")
    sentence = f"{ops['attempts']} calls were {ops['operations']} requests"
    if sentence not in page:
        fail(f"the requests section does not say '{sentence}'")
    if 'id="client-behaviour"' not in page:
        fail("the client-behaviour section is missing")
    for kind in ops["client_behaviour"]:
        if kind["clients"] not in page:
            fail(f"the client-behaviour table lacks '{kind['clients']}'")
    for provider in ops["by_provider"]:
        row = f"<td>{provider['provider']}</td><td class=\"n\">{provider['attempts']}</td>"
        if row not in page:
            fail(f"no row for {provider['provider']} in the requests table")

    shot = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else out / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        result = run(chromium, profile, [f"--screenshot={shot}", "--window-size=1100,2400", url])
    if result.returncode != 0 or not shot.is_file():
        fail(f"chromium --screenshot failed: {result.stderr[-2000:]}")
    image = Image.open(shot).convert("RGB")
    pixels = list(image.get_flattened_data() if hasattr(image, "get_flattened_data") else image.getdata())
    counts = {
        "series": sum(near(p, SERIES_BLUE) for p in pixels),
        "critical": sum(near(p, CRITICAL) for p in pixels),
        "high": sum(near(p, HIGH) for p in pixels),
    }
    for name, n in counts.items():
        if n < 50:
            fail(f"the screenshot shows almost no {name} color ({n} pixels): charts not drawn?")
    print(
        f"report.html: {len(page)} bytes rendered, {cards} incident cards, {len(CHARTS)} charts; "
        f"screenshot {image.width}x{image.height} ({shot.name}), "
        f"{counts['series']} series / {counts['critical']} critical / {counts['high']} high pixels"
    )


main()
