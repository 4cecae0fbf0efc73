"""Schemathesis hooks of scripts/schemathesis.sh. They change only what a generated case
cannot know about the service's state, each for a value the schema admits as well, so that a
case generated valid stays valid and one generated invalid stays invalid:

- a product named by a license or purchase document is swapped for the product the script
  made (ST_SEED_PRODUCT): a random id is a legitimate 404;
- an `Idempotency-Key` is made unique per request: a key generated twice for two different
  requests is a legitimate 422 (`idempotency_key_reused`);
- a webhook's `url` the schema admits (a string of at most 2,048 characters) is swapped for
  a receiver's URL: whether a URL is taken depends on the service's network policy
  (`events.webhooks.*`), which no JSON Schema can say;
- in a valid license document, a `stop_date` not after the `start_date` (which defaults to
  now) is moved after it: `stop_before_start` compares two members, and one of them with the
  clock, which no JSON Schema can say (the schema's description does);
- in a case generated valid, a `Licenses-Consistency` header that does not match the schema's
  own pattern is set to a token that does (`0/0`): schemathesis' coverage phase sends `0` as
  a valid value of that header, whose pattern it does not apply to headers; the service
  refuses it (400 `invalid_consistency_token`), as the schema says. Cases generated invalid
  keep theirs.
"""

import itertools
import os
import re
import time

import schemathesis

PRODUCT = os.environ.get("ST_SEED_PRODUCT")
# The schema's id pattern (Rust's white space and control characters) and length, in
# characters.
VALID_ID = re.compile(
    "^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
)
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
VALID_TOKEN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
MAX_TIMESTAMP = 253402300799
_counter = itertools.count()


def _swap(relationship):
    if not isinstance(relationship, dict) or not isinstance(relationship.get("data"), dict):
        return
    data = relationship["data"]
    current = data.get("id")
    if (
        data.get("type") == "Product"
        and isinstance(current, str)
        and VALID_ID.match(current)
        and len(current) <= 64
    ):
        data["id"] = PRODUCT


def _items(body):
    if not isinstance(body, dict):
        return []
    data = body.get("data")
    return [i for i in (data if isinstance(data, list) else [data]) if isinstance(i, dict)]


def _receiver(item):
    attributes = item.get("attributes")
    if item.get("type") != "Webhook" or not isinstance(attributes, dict):
        return
    url = attributes.get("url")
    if isinstance(url, str) and len(url) <= 2048:
        attributes["url"] = "https://hooks.example.com/licenses"


@schemathesis.hook
def map_body(context, body):
    for item in _items(body):
        _receiver(item)
    if PRODUCT is None:
        return body
    for item in _items(body):
        if isinstance(item.get("relationships"), dict):
            _swap(item["relationships"].get("product"))
    return body


def _is_int(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()


def _order_dates(item):
    attributes = item.get("attributes")
    if item.get("type") != "License" or not isinstance(attributes, dict):
        return
    stop = attributes.get("stop_date")
    if not _is_int(stop):
        return
    start = attributes.get("start_date")
    start = int(start) if _is_int(start) else int(time.time()) + 60
    if int(stop) > start:
        return
    if start < MAX_TIMESTAMP:
        attributes["stop_date"] = start + 1
    else:
        attributes["start_date"] = MAX_TIMESTAMP - 1
        attributes["stop_date"] = MAX_TIMESTAMP


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers
    if headers:
        for name in list(headers):
            value = headers[name]
            if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
                suffix = "-%d" % next(_counter)
                headers[name] = value[: 255 - len(suffix)] + suffix
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive:
        for item in _items(case.body):
            _order_dates(item)
        for name in list(headers or {}):
            value = headers[name]
            if name.lower() == "licenses-consistency" and not (
                isinstance(value, str) and VALID_TOKEN.match(value)
            ):
                headers[name] = "0/0"
