"""Open a report in headless Chromium (Debian's chromium + chromium-driver) and save a screenshot.

Why in the package: the tests and the README screenshot use the same locked-down
browser set-up (no network services, fresh profile). Selenium is a dev extra, so
it is imported only when this module is used.

    python -m prism_eval.report.screenshot REPORT.html OUT.png [--width 1280] [--height 1500]

Widths under 500 px (Chromium's smallest window) are emulated as a phone screen.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["CHROMIUM", "CHROMEDRIVER", "chromium_available", "chromium", "screenshot", "emulate_phone"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--force-device-scale-factor=1")


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@contextmanager
def chromium(width: int = 1280, height: int = 1000, *, performance_log: bool = False) -> Iterator["object"]:
    """A selenium Chrome driver on a fresh profile, with browser console logs (and optionally network logs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not chromium_available():
        raise RuntimeError(f"{CHROMIUM} or {CHROMEDRIVER} is missing; run `make setup-browser`")
    profile = tempfile.mkdtemp(prefix="prism-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    prefs = {"browser": "ALL"}
    if performance_log:
        prefs["performance"] = "ALL"
    opts.set_capability("goog:loggingPrefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def emulate_phone(driver: "object", width: int = 390, height: int = 844) -> None:
    """Make the page see a phone's viewport (a headless window cannot be narrower than 500 px)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # type: ignore[attr-defined]
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})


def screenshot(report: Path, png: Path, *, width: int = 1280, height: int = 1500, scale: float = 1.0,
               colors: int | None = None) -> Path:
    """Save the top `height` px of `report` as PNG, optionally downscaled and palette-quantised (smaller file)."""
    import io

    from PIL import Image

    with chromium(max(width, 500), height) as driver:
        if width < 500:
            emulate_phone(driver, width, height)
        driver.get(Path(report).resolve().as_uri())
        data = driver.get_screenshot_as_png()
    im = Image.open(io.BytesIO(data)).convert("RGB")
    if scale != 1.0:
        im = im.resize((int(im.width * scale), int(im.height * scale)), Image.Resampling.LANCZOS)
    if colors:
        im = im.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    im.save(png, optimize=True)
    return png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--colors", type=int, default=None, help="quantise to this many colours (smaller PNG)")
    a = ap.parse_args()
    out = screenshot(a.report, a.png, width=a.width, height=a.height, scale=a.scale, colors=a.colors)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
