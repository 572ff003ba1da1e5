"""Metabase over HTTP: metabase-api (`Metabase_API`) for the session or API-key authentication, and every call
made here so that an HTTP error raises with Metabase's own message (its `post` returns False and drops the body,
its `put` returns the status code alone). A fresh instance is set up first: the setup token of
`/api/session/properties`, the first admin from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import requests

TIMEOUT = 30  # seconds per call


class MetabaseError(Exception):
    """A call Metabase refused, or a setting it rejected; the message is one line."""


@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str | None = None
    user: str | None = None
    password: str | None = None


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0][:300] if response.text.strip() else response.reason
    if isinstance(body, dict):
        for key in ("message", "errors", "error"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


class Metabase:
    def __init__(self, credentials: Credentials, session: requests.Session | None = None):
        from metabase_api import Metabase_API

        self.url = credentials.url.rstrip("/")
        self.calls: list[tuple[str, str]] = []  # (method, endpoint) of every call made, for the sync's summary
        _setup_if_fresh(self.url, credentials)
        try:
            if credentials.api_key:
                self.api = Metabase_API(self.url, api_key=credentials.api_key)
            else:
                self.api = Metabase_API(self.url, email=credentials.user, password=credentials.password)
        except ValueError:
            raise MetabaseError(f"METABASE_API_KEY is not accepted by {self.url}") from None
        except requests.RequestException as err:
            raise MetabaseError(f"METABASE_URL {self.url} cannot be reached: {type(err).__name__}") from None
        except Exception as err:  # metabase-api raises Exception(<Response>) when the login fails
            response = err.args[0] if err.args and isinstance(err.args[0], requests.Response) else None
            why = _message(response) if response is not None else str(err)
            raise MetabaseError(f"METABASE_USER / METABASE_PASSWORD are not accepted by {self.url}: {why}") from None

    def call(self, method: str, endpoint: str, body: dict | list | None = None, params: dict | None = None):
        """One call with the client's authentication; its JSON, or MetabaseError with Metabase's message."""
        self.api.validate_session()  # email mode: a session that expired is renewed
        self.calls.append((method.upper(), endpoint))
        response = requests.request(
            method,
            self.url + endpoint,
            headers=self.api.header,
            auth=self.api.auth,
            json=body,
            params=params,
            timeout=TIMEOUT,
        )
        if not response.ok:
            raise MetabaseError(f"{method.upper()} {endpoint}: {response.status_code} {_message(response)}")
        return response.json() if response.content else None

    def get(self, endpoint: str, **params):
        return self.call("get", endpoint, params=params or None)

    def post(self, endpoint: str, body: dict | None = None):
        return self.call("post", endpoint, body or {})

    def put(self, endpoint: str, body: dict):
        return self.call("put", endpoint, body)

    def writes(self) -> int:
        return sum(1 for method, _ in self.calls if method in ("POST", "PUT", "DELETE"))


def _setup_if_fresh(url: str, credentials: Credentials) -> None:
    """A Metabase with no user yet gets its first admin from METABASE_USER / METABASE_PASSWORD."""
    try:
        properties = requests.get(url + "/api/session/properties", timeout=TIMEOUT)
    except requests.RequestException as err:
        raise MetabaseError(f"METABASE_URL {url} cannot be reached: {type(err).__name__}") from None
    if not properties.ok:
        raise MetabaseError(f"METABASE_URL {url} does not answer as Metabase: {properties.status_code}")
    state = properties.json()
    if state.get("has-user-setup", True) or not state.get("setup-token"):
        return
    if not (credentials.user and credentials.password):
        raise MetabaseError("Metabase is not set up yet: set METABASE_USER and METABASE_PASSWORD for its first admin")
    body = {
        "token": state["setup-token"],
        "user": {
            "first_name": "Boxoffice",
            "last_name": "Admin",
            "email": credentials.user,
            "password": credentials.password,
        },
        "prefs": {"site_name": "Boxoffice", "site_locale": "en", "allow_tracking": False},
    }
    response = requests.post(url + "/api/setup", json=body, timeout=TIMEOUT)
    if response.status_code != 403 and not response.ok:  # 403: set up meanwhile
        raise MetabaseError(f"Metabase's setup failed: {response.status_code} {_message(response)}")
