"""Schemathesis hooks of scripts/schemathesis.sh: a product named by a generated document is
swapped for the product the script made (ST_SEED_PRODUCT), so that purchases and license
grants can succeed and their answers be checked, rather than all ending in "no such product".

Only a product id the schema accepts is swapped (for another the schema accepts), so a case
generated to be invalid stays invalid.
"""

import os
import re

import schemathesis

PRODUCT = os.environ.get("ST_SEED_PRODUCT")
# The schema's id pattern (ECMA `\s` includes U+FEFF, Python's does not) and length, in bytes.
VALID_ID = re.compile(r"^[^\s\ufeff\x00-\x1f\x7f-\x9f]+$")


def _swap(relationship):
    if not isinstance(relationship, dict) or not isinstance(relationship.get("data"), dict):
        return
    data = relationship["data"]
    current = data.get("id")
    if (
        data.get("type") == "Product"
        and isinstance(current, str)
        and VALID_ID.match(current)
        and len(current.encode()) <= 64
    ):
        data["id"] = PRODUCT


@schemathesis.hook
def map_body(context, body):
    if PRODUCT is None or not isinstance(body, dict):
        return body
    data = body.get("data")
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict) and isinstance(item.get("relationships"), dict):
            _swap(item["relationships"].get("product"))
    return body
