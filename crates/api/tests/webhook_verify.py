#!/usr/bin/env python3
"""Verifies captured webhook deliveries with the reference Python implementation of the
Standard Webhooks specification (PyPI package `standardwebhooks`), independently of the Rust
code that signed them.

Usage: webhook_verify.py FILE
FILE is a JSON list of {"secret": "whsec_…", "headers": {name: value}, "body": "…"}.
Exit 0 when every delivery verifies, 1 when one does not (each failure is printed), 2 on bad
usage, 3 when the package is missing.
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    print(
        "the Python package `standardwebhooks` is missing: install it with "
        "`python3 -m pip install standardwebhooks`",
        file=sys.stderr,
    )
    sys.exit(3)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        deliveries = json.load(f)
    if not deliveries:
        print("no deliveries to verify", file=sys.stderr)
        return 2
    failures = 0
    for n, delivery in enumerate(deliveries):
        try:
            Webhook(delivery["secret"]).verify(delivery["body"], delivery["headers"])
        except WebhookVerificationError as error:
            failures += 1
            print(f"delivery {n} ({delivery['headers'].get('webhook-id')}): {error}", file=sys.stderr)
    print(f"{len(deliveries) - failures} of {len(deliveries)} deliveries verified")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
