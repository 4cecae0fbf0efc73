"""Data for scripts/schemathesis.sh: a product (seed 003's, on channel 42) and a license of it
for a user, and a spare product for UpdateProduct, made through the management API; prints
their ids.

    python3 scripts/schemathesis_seed.py MANAGEMENT_BASE_URL API_KEY USER_ID
"""

import json
import sys
import urllib.request


def post(base, key, path, doc):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(doc).encode(),
        method="POST",
        headers={"Authorization": "Apikey " + key, "Content-Type": "application/vnd.api+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]["id"]


def main():
    base, key, user = sys.argv[1:]
    channels = {"data": [{"type": "Channel", "id": "42"}]}
    product = post(base, key, "/products", {"data": {
        "type": "Product",
        "attributes": {
            "title": "Sport channels megapack",
            "description": "Complete collection for all sports channels",
            "type": "CHANNEL_GROUP",
            "is_premium": True,
            "price_record": {"amount": 999, "currency": "EUR"},
        },
        "relationships": {s: channels for s in ("live", "npvr", "catchup", "startover")},
    }})
    license = post(base, key, "/licenses", {"data": {
        "type": "License",
        "relationships": {
            "user": {"data": {"type": "User", "id": user}},
            "product": {"data": {"type": "Product", "id": product}},
        },
    }})
    # A second product, for UpdateProduct to change at will: the first one stays buyable and
    # of the same channels for the licenses and purchases that name it.
    spare = post(base, key, "/products", {"data": {
        "type": "Product",
        "attributes": {"title": "Spare", "type": "CHANNEL_GROUP"},
        "relationships": {s: channels for s in ("live", "npvr", "catchup", "startover")},
    }})
    print(product, license, spare)


if __name__ == "__main__":
    main()
