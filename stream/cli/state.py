"""``moodstream state USER``: a user's mood, taste summary and recent items, from the worker.

Asks the worker's local web port (``/users/<id>``); with several workers, ask the one that owns
the user's partition (the others answer that they hold no state for the user).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import click

from stream.cli.options import pop_settings, settings_options
from stream.errors import ConfigError, MoodstreamError


def fetch_user(host: str, port: int, user_id: str, timeout: float) -> dict[str, Any] | None:
    """The worker's view of the user, or None when it holds no state for them."""
    url = f"http://{host}:{port}/users/{urllib.parse.quote(user_id, safe='')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise MoodstreamError(f"the worker at {host}:{port} answered {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise MoodstreamError(
            f"cannot reach the worker's web port at {host}:{port} ({exc}); is `moodstream "
            "worker` running with this --web-port / --web-host?"
        ) from None


def format_user(view: dict[str, Any]) -> list[str]:
    emo, taste = view["emotion"], view["taste"]
    ekman = ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(emo["ekman"].items(), key=lambda kv: -kv[1]) if v > 0
    )
    nearest = ", ".join(f"{i['item_id']} ({i['relevance']:.2f})" for i in taste["nearest_items"])
    return [
        f"user {view['user_id']}",
        f"  mood    valence {emo['valence']:+.2f}  arousal {emo['arousal']:.2f}  "
        f"dominant {emo['dominant']}  evidence {emo['weight']:.2f}",
        f"  ekman   {ekman or '-'}",
        f"  taste   {'cold (no direction yet)' if taste['cold'] else 'warm'}  "
        f"weight {taste['weight']:.2f} (positive {taste['positive_weight']:.2f})",
        f"  nearest {nearest or '-'}",
        f"  recent  {', '.join(view['recent_items']) or '-'}",
        f"  events remembered for dedup {view['recent_event_ids']}",
    ]


@click.command("state")
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="print the worker's JSON view")
@settings_options
def state(user_id: str, as_json: bool, **kwargs: Any) -> None:
    """Show USER_ID's emotion state, taste summary and recent items (asks the worker)."""
    settings = pop_settings(kwargs)
    if settings.web_port <= 0:
        raise ConfigError("the worker's web port is off (--web-port 0): nothing to ask")
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "", "::") else settings.web_host
    view = fetch_user(host, settings.web_port, user_id, settings.connect_timeout_s)
    if view is None:
        raise MoodstreamError(
            f"the worker at {host}:{settings.web_port} holds no state for user {user_id!r} "
            "(unknown, erased, or on a partition another worker owns)"
        )
    click.echo(json.dumps(view, ensure_ascii=False) if as_json else "\n".join(format_user(view)))
