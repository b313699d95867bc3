"""HTTP from inside a network namespace (``ip netns exec NS python netns_client.py ...``); prints JSON.

up URL                       whether GET URL/health answers (any status)
fill URL COUNT TOKEN         COUNT keys PUT, then POST /admin/flush: {"written": n}
check URL COUNT              the keys not served with their value: {"missing": [...], "codes": {...}}
health URL                   the /health body and status
"""

from __future__ import annotations

import json
import sys

import httpx


def value_of(index: int) -> bytes:
    return (b"value-%06d-" % index) * 20


def main(argv: list[str]) -> int:
    command, url = argv[0], argv[1].rstrip("/")
    with httpx.Client(base_url=url, timeout=10.0) as http:
        if command == "up":
            try:
                http.get("/health")
            except httpx.HTTPError as exc:
                print(json.dumps({"up": False, "error": str(exc)}))
                return 0
            print(json.dumps({"up": True}))
        elif command == "fill":
            count, token = int(argv[2]), argv[3]
            for index in range(count):
                response = http.put(f"/kv/key{index:06d}", content=value_of(index))
                response.raise_for_status()
            http.post("/admin/flush", headers={"Authorization": f"Bearer {token}"}, json={}).raise_for_status()
            print(json.dumps({"written": count}))
        elif command == "check":
            missing, codes = [], {}
            for index in range(int(argv[2])):
                response = http.get(f"/kv/key{index:06d}")
                codes[str(response.status_code)] = codes.get(str(response.status_code), 0) + 1
                if response.status_code != 200 or response.content != value_of(index):
                    missing.append(f"key{index:06d}")
            print(json.dumps({"missing": missing, "codes": codes}))
        elif command == "health":
            response = http.get("/health")
            print(json.dumps({"status_code": response.status_code, "body": response.json()}))
        else:
            print(f"unknown command {command}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
