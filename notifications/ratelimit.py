"""A per-channel Slack limiter shared by every worker on every machine (Redis).

GCRA-style reservations: each caller gets the next free slot for the channel ("post now" or "post
in N seconds"), so N queued messages are spread at the channel's rate instead of all waking up
together and fighting for one token. `burst` messages may go back to back. A 429 pushes the
channel's next slot past Retry-After for everyone.

Without Redis (the file-cache dev mode) or when Redis is down the limiter lets everything through:
Slack's own 429 + Retry-After handling is the safety net then.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

_KEY = "leadsite:notif:slot:{channel}"

# KEYS[1]: the channel's theoretical arrival time (TAT). ARGV: interval, burst, reserve(1)/push(0), push_until.
# Redis' own clock is used so machines with skewed clocks agree.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ttl = math.ceil((tat - now) + interval * burst + 60) * 1000
if ARGV[3] == '0' then
  local until_ts = now + tonumber(ARGV[4])
  if until_ts > tat then tat = until_ts end
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) + 60) * 1000)
  return '0'
end
local allowed_at = tat - interval * (burst - 1)
local wait = allowed_at - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'PX', ttl + math.ceil(interval * 1000))
return string.format('%.6f', wait)
"""


def _redis():  # noqa: ANN202 - a redis.Redis, typed loosely to keep django_redis optional
    if not getattr(settings, "REDIS_URL", None):
        return None
    try:
        from django_redis import get_redis_connection

        return get_redis_connection("default")
    except Exception:  # noqa: BLE001 - not a django-redis cache: no shared limiter
        return None


def _interval() -> float:
    return 60.0 / settings.SLACK_CHANNEL_RATE_PER_MINUTE


def reserve(channel: str) -> float:
    """Reserve the channel's next slot; returns how many seconds from now it starts (0 = post now)."""
    client = _redis()
    if client is None:
        return 0.0
    try:
        wait = client.eval(_LUA, 1, _KEY.format(channel=channel), _interval(), settings.SLACK_CHANNEL_BURST, "1", 0)
    except Exception as exc:  # noqa: BLE001 - a Redis outage must not stop notifications
        logger.warning("slack limiter unavailable (%s); posting without it", exc)
        return 0.0
    return float(wait)


def push_back(channel: str, seconds: float) -> None:
    """Slack said 429: nobody posts to this channel for `seconds`."""
    client = _redis()
    if client is None:
        return
    try:
        client.eval(_LUA, 1, _KEY.format(channel=channel), _interval(), settings.SLACK_CHANNEL_BURST, "0", seconds)
    except Exception as exc:  # noqa: BLE001
        logger.warning("slack limiter unavailable (%s)", exc)


def now() -> float:
    return time.time()
