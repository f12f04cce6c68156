"""Getting a VK token: the authorization URL, and the token out of the URL the user pastes.

Why a community token is the recommended choice today (reference/vk.md §5): VK no longer grants
the ``messages`` right to new Standalone apps (since February 2019), user tokens from the
current VK ID flow last an hour, and a user token is limited to 3 requests/s. A community token
(Community management -> Working with API -> Create key, right "messages") does not expire,
allows 20 requests/s and sends to anyone who allowed messages from the community.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from pbxgate.errors import InputError
from pbxgate.notify.settings import VK_API_VERSION

OAUTH_BASE = "https://oauth.vk.ru"

COMMUNITY_ADVICE = """\
A community token is the recommended choice:
  * VK stopped granting the "messages" right to new Standalone apps in February 2019,
    so a user token from your own app usually cannot call messages.send (error 15);
  * a community token never expires; a user token from VK ID lasts about an hour;
  * a community token may send 20 requests/s, a user token only 3.
Create it in VK: your community -> Management -> Working with API -> Create key, tick
"Allow access to community messages", then run: pbxgate notify vk-token --community
Recipients must allow messages from the community first (else VK error 901)."""


def authorize_url(
    app_id: int,
    scope: str = "messages,offline",
    group_id: int | None = None,
    oauth_base: str = OAUTH_BASE,
    api_version: str = VK_API_VERSION,
) -> str:
    """The Implicit Flow URL (https://dev.vk.com/ru/api/access-token/implicit-flow-user)."""
    base = oauth_base.rstrip("/")
    params = {
        "client_id": str(app_id),
        "display": "page",
        "redirect_uri": f"{base}/blank.html",
        "scope": scope,
        "response_type": "token",
        "v": api_version,
    }
    if group_id is not None:
        params["group_ids"] = str(group_id)
    return f"{base}/authorize?{urlencode(params, safe=',:/')}"


def token_from_redirect(url: str) -> str:
    """The access token in the fragment of the blank.html URL (OAuth 2.0 implicit grant)."""
    parts = urlsplit(url.strip())
    fields = parse_qs(parts.fragment or parts.query)
    if "error" in fields:
        desc = fields.get("error_description", [""])[0]
        raise InputError(f"VK refused the authorization: {fields['error'][0]} {desc}".strip())
    for name, values in fields.items():
        # A community token comes back as access_token_<group id>.
        if name == "access_token" or name.startswith("access_token_"):
            return values[0]
    raise InputError(
        "no access_token in that address",
        hint="paste the whole address of the blank page VK showed after you allowed access",
    )


__all__ = ["COMMUNITY_ADVICE", "OAUTH_BASE", "authorize_url", "token_from_redirect"]
