"""A small client of Superset's REST API: what `yibao serve` and the tests need."""

from __future__ import annotations

from typing import Any

import requests


class SupersetError(Exception):
    pass


class SupersetClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        response = self.session.post(
            f"{self.base}/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": True},
            timeout=timeout,
        )
        if response.status_code != 200:
            raise SupersetError(f"Superset login as {username} failed: HTTP {response.status_code}")
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        csrf = self.session.get(f"{self.base}/api/v1/security/csrf_token/", timeout=timeout)
        csrf.raise_for_status()
        self.session.headers["X-CSRFToken"] = csrf.json()["result"]
        self.session.headers["Referer"] = self.base

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, f"{self.base}{path}", **kwargs)

    def json(self, method: str, path: str, ok: tuple[int, ...] = (200, 201), **kwargs: Any):
        response = self.request(method, path, **kwargs)
        if response.status_code not in ok:
            raise SupersetError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}"
            )
        return response.json()

    # -- bundles (imports go layer by layer: see bundle.py) ---------------------
    def export_dashboards(self, ids: list[int]) -> bytes:
        query = "!(" + ",".join(str(i) for i in ids) + ")"
        response = self.request("GET", f"/api/v1/dashboard/export/?q={query}")
        if response.status_code != 200:
            raise SupersetError(f"dashboard export failed: HTTP {response.status_code}")
        return response.content

    def list_ids(self, resource: str) -> list[dict]:
        result = self.json("GET", f"/api/v1/{resource}/?q=(page_size:100)")
        return result["result"]
