"""Debian's headless Chromium driven by Selenium: no browser download, no outside connections."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium calls out to Google at start (env notes).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1100",
    "--lang=en-US",
]


def available() -> bool:
    return bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER))


@contextmanager
def chrome() -> Iterator[webdriver.Chrome]:
    """A headless browser with a profile of its own, quit and its profile removed after
    (each profile is ~12 MB under /tmp: a run of the suite left eighteen behind)."""
    profile = tempfile.mkdtemp(prefix="yibao-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        # An explicit driver path: Selenium Manager never runs (it would download).
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def login(driver: webdriver.Chrome, base: str, username: str, password: str) -> None:
    """Superset's login form, filled once React has drawn it; tried again if the first
    submission raced the page's scripts."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    for attempt in range(3):
        driver.get(f"{base}/login/")
        user = WebDriverWait(driver, 60).until(ec.element_to_be_clickable((By.ID, "username")))
        user.clear()
        user.send_keys(username)
        field = driver.find_element(By.ID, "password")
        field.clear()
        field.send_keys(password)
        field.send_keys(Keys.ENTER)
        try:
            WebDriverWait(driver, 30).until(lambda d: "/login" not in d.current_url)
            return
        except TimeoutException:
            if attempt == 2:
                raise
