"""An httpx client for the Flash control plane with `flash` 1.3.28's wire rules (flash/client/http.py).

Bearer auth, JSON bodies, redirects never followed, a 60 s default timeout, 2xx bodies checked to
be JSON objects with the keys the caller reads, and FastAPI `{"detail": …}` errors turned into
messages an agent can act on. The key never appears in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import UserError
from flash_mcp.planes.flash.credentials import GUARD_SOURCE, KEY_ENV, Credentials

DEFAULT_TIMEOUT = 60.0
NOT_CREATED = "not-created"
Shape = type | tuple[type, ...] | list


def guard_down() -> str:
    """The guard is installed but does not answer: nothing was sent, and how the human brings it back."""
    return (
        "the spend guard is installed but not answering, so nothing was sent to Flash (free local work goes on): the "
        f"human restarts it (`sudo systemctl restart flash-mcp-guard`; `{human_command('guard', 'status')}` says why)"
    )


class FlashError(UserError):
    """Something the Flash plane said (or failed to say), with what a caller branches on."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", not_created: bool = False,
                 ambiguous: bool = False):  # fmt: skip
        super().__init__(message)
        self.status = status
        self.code = code
        self.not_created = not_created
        self.ambiguous = ambiguous


class FlashClient:
    def __init__(self, credentials: Credentials, transport: httpx.BaseTransport | None = None):
        self.credentials = credentials
        self._http = httpx.Client(
            base_url=credentials.api_url,
            transport=transport,
            follow_redirects=False,
            timeout=DEFAULT_TIMEOUT,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {credentials.api_key}"} if credentials.api_key else {}),
        )

    @property
    def api_url(self) -> str:
        return self.credentials.api_url

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
        require: Mapping[str, Shape] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body, headers=headers, timeout=timeout or DEFAULT_TIMEOUT)
        except httpx.TimeoutException as exc:
            raise FlashError(
                f"request to the Flash service at {self.api_url} timed out; check your network and FLASH_API_URL",
                ambiguous=not isinstance(exc, httpx.ConnectTimeout),
            ) from None
        except httpx.ConnectError as exc:
            if self.credentials.key_source == GUARD_SOURCE:
                raise FlashError(guard_down()) from None
            raise FlashError(
                f"cannot reach the Flash service at {self.api_url} ({_reason(exc)}); "
                "check your network and FLASH_API_URL"
            ) from None
        except httpx.TransportError as exc:
            raise FlashError(
                f"the Flash service at {self.api_url} closed the connection without a response ({_reason(exc)}); "
                "the request may have been accepted: check its status before sending it again",
                ambiguous=True,
            ) from None
        return self._decode(response, path, require)

    def close(self) -> None:
        self._http.close()

    def _decode(self, response: httpx.Response, path: str, require: Mapping[str, Shape] | None) -> dict[str, Any]:
        if response.is_redirect:
            raise FlashError(
                f"{self.api_url}{path} redirected to {response.headers.get('location', '?')}; redirects are not "
                "followed: set FLASH_API_URL to the control plane's own address",
                status=response.status_code,
            )
        if not response.is_success:
            raise self._api_error(response)
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            raise self._unexpected(path, f"did not return JSON (Content-Type: {_content_type(response)})") from None
        if not isinstance(payload, dict):
            raise self._unexpected(path, f"returned JSON that is not an object ({type(payload).__name__})")
        bad = [key for key, shape in (require or {}).items() if key not in payload or not _fits(payload[key], shape)]
        if bad:
            listed = ", ".join(repr(key) for key in bad)
            raise self._unexpected(path, f"returned an unexpected response shape (missing or malformed {listed})")
        return payload

    def _api_error(self, response: httpx.Response) -> FlashError:
        detail = _detail(response)
        code = str(detail.get("code") or "") if isinstance(detail, dict) else ""
        message = _detail_text(detail)
        if response.status_code in (401, 403) and self.credentials.from_env and not isinstance(detail, dict):
            message += (
                f"; {KEY_ENV} is set and overrides the key saved by `flash login`. "
                f"Unset {KEY_ENV} or update it to a valid freesolo API key"
            )
        label = f"Flash answered HTTP {response.status_code}" + (f" [{code}]" if code else "")
        return FlashError(
            self._redact(f"{label}: {message}"),
            status=response.status_code,
            code=code,
            not_created=response.headers.get("x-flash-submission-outcome") == NOT_CREATED,
        )

    def _unexpected(self, path: str, problem: str) -> FlashError:
        return FlashError(
            f"{self.api_url}{path} {problem}. Check that FLASH_API_URL points at your Flash control plane "
            '(its /v1/health should report "service": "flash") rather than at a proxy or another service'
        )

    def _redact(self, text: str) -> str:
        key = self.credentials.api_key
        return text.replace(key, "[key]") if key else text


def _detail(response: httpx.Response) -> object:
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return detail if detail else (response.text.strip() or response.reason_phrase)


def _detail_text(detail: object) -> str:
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)
    if isinstance(detail, list):  # FastAPI 422: [{"loc": [...], "msg": ...}]
        return "; ".join(_validation_item(item) for item in detail)
    return str(detail)


def _validation_item(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    return f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}"


def _fits(value: object, shape: Shape) -> bool:
    """flash.client.shapes.matches_required_shape: `[dict]` is a list of dicts; bool is not an int."""
    if isinstance(shape, list):
        (element,) = shape
        return isinstance(value, list) and all(_fits(item, element) for item in value)
    wants_bool = shape is bool or (isinstance(shape, tuple) and bool in shape)
    return isinstance(value, shape) and (wants_bool or not isinstance(value, bool))


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type") or "unset"


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
