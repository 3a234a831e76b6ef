"""A real Strapi 5 (tests/strapi/app) in a child process, and a REST client for it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port

APP_DIR = Path(__file__).resolve().parents[1] / "strapi" / "app"
INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-strapi"
WEBHOOK_SECRET = "test-strapi-webhook-" + "h" * 32
PASSWORD = "Test-password-1"


@dataclass(frozen=True)
class StrapiUser:
    """A users-permissions user with the JWT Strapi gave it."""

    id: int
    document_id: str
    username: str
    jwt: str


class StrapiServer:
    """`strapi start` on a free port with its own SQLite file; restartable in place."""

    def __init__(self, workdir: Path, webhook_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook_port = webhook_port
        self.webhook_url = f"http://127.0.0.1:{webhook_port}/api/bookings/webhook"
        self._workdir = workdir
        self._token_file = workdir / "api-token"
        self.log_path = workdir / "strapi.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._env = {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "NODE_ENV": "production",
            "APP_KEYS": ",".join(secrets.token_hex(16) for _ in range(2)),
            "ADMIN_JWT_SECRET": secrets.token_hex(16),
            "API_TOKEN_SALT": secrets.token_hex(16),
            "TRANSFER_TOKEN_SALT": secrets.token_hex(16),
            "ENCRYPTION_KEY": secrets.token_hex(16),
            "JWT_SECRET": secrets.token_hex(16),
            "DATABASE_FILENAME": str(workdir / "strapi.db"),
            "SESSIONCLOCK_TEST_TOKEN_FILE": str(self._token_file),
            "SESSIONCLOCK_TEST_WEBHOOK_URL": self.webhook_url,
            "SESSIONCLOCK_TEST_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRAPI_TELEMETRY_DISABLED": "true",
            "STRAPI_DISABLE_UPDATE_NOTIFICATION": "true",
            "BROWSER": "none",
        }
        self.start_s: float | None = None

    @property
    def token(self) -> str:
        return self._token_file.read_text().strip()

    def start(self, timeout_s: float = 90) -> None:
        started = time.monotonic()
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(APP_DIR / "node_modules" / ".bin" / "strapi"), "start"],
            cwd=APP_DIR,
            env={**os.environ, **self._env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        while time.monotonic() - started < timeout_s:
            if self._process.poll() is not None:
                raise RuntimeError(f"Strapi exited early:\n{self.log()[-4000:]}")
            try:
                health = httpx.get(f"{self.url}/_health", timeout=1)
                if health.status_code == 204 and self._token_file.exists():
                    self.start_s = time.monotonic() - started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Strapi did not come up:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call to the REST API with the full-access token."""
        return httpx.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
            **kwargs,
        )

    def create_booking(self, **fields: Any) -> dict[str, Any]:
        response = self.rest("POST", "/api/bookings", json={"data": fields})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def update_booking(self, document_id: str, **fields: Any) -> dict[str, Any]:
        response = self.rest(
            "PUT", f"/api/bookings/{document_id}", json={"data": fields}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def booking(self, document_id: str) -> dict[str, Any]:
        response = self.rest("GET", f"/api/bookings/{document_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def delete_booking(self, document_id: str) -> None:
        response = self.rest("DELETE", f"/api/bookings/{document_id}")
        assert response.status_code in (200, 204, 404), response.text

    def register(self, username: str) -> StrapiUser:
        """A new users-permissions user, registered the way a front end does it."""
        response = httpx.post(
            f"{self.url}/api/auth/local/register",
            json={
                "username": username,
                "email": f"{username}@example.com",
                "password": PASSWORD,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return StrapiUser(
            id=body["user"]["id"],
            document_id=body["user"]["documentId"],
            username=username,
            jwt=body["jwt"],
        )
