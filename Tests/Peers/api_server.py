#!/usr/bin/env python3
"""A fixture HTTP server that answers as GitHub's REST API and Google's OAuth2 token endpoint and
Admin SDK Directory API do, for the tests' live integrations. It serves a world described in a JSON
file, in the APIs' wire formats (bodies shaped as their published examples, GitHub's rate-limit
headers, Link pagination, Google's pageToken), checks credentials as the real services do (a
GitHub App's JWT and a Google service account's assertion verified with the matching public key),
and plays faults on request: 500s, 403/429 rate limits with retry-after, slow answers, truncated
JSON. Conditional requests with a matching ETag answer 304 and cost no rate limit.

    python3 Tests/Peers/api_server.py --world WORLD.json [--port 0]

prints "listening on PORT" once ready. GET /_stats returns what it served (for assertions).

World (every part optional):
{
  "github": {
    "tokens": ["ghp_..."],                      personal tokens accepted
    "app": {"id": "4242", "installation_id": "99", "public_key": "PEM"},
    "enterprises": {"SLUG": {"streams": [["Splunk", true]]}},
    "orgs": {"LOGIN": {"name": "...", "two_factor": true, "members_without_2fa": ["login"],
             "owners": ["login"], "outside_collaborators": ["login"], "outside_without_2fa": ["login"],
             "per_page_max": 100,
             "repos": [{"name": "api", "branch": "main", "archived": false,
                        "protection": {"reviews": 1, "enforce_admins": true, "force_pushes": false,
                                       "deletions": false} | null (not protected) | "hidden" (403),
                        "rules": ["pull_request", "non_fast_forward", "deletion"],
                        "secret_scanning": true, "push_protection": true,
                        "alerts": true}]}},
    "delay_ms": 0                                added to every answer
  },
  "google": {"client_email": "...", "public_key": "PEM", "subject": "admin@x", "access_token": "ya29...",
             "customer": "C0...", "page_size": 2, "users": [...], "roles": [...], "role_assignments": [...],
             "revoked": false (true: tokens are issued, then refused)},
  "saas": {"tenant": "acme", "auth": {"type": "bearer"|"basic"|"header", "secret": "...", "username": "u",
           "header": "X-Api-Key", "prefix": "SSWS"}, "page_size": 2, "users": [{"id": ...}], "devices": [...],
           "groups": [...]},
  "faults": [{"path": "/orgs/x/repos", "status": 500 | "rate_limit": "primary"|"secondary",
              "retry_after": 1 | "delay_ms": 200 | "truncate": true, "times": 1}]
}
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "tools"))
import make_github_recordings as gh  # noqa: E402  (the same body shapes the demo recordings use)

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

LOCK = threading.Lock()
STATS = {"requests": 0, "charged": 0, "not_modified": 0, "etagged": 0, "by_path": {}, "tokens_issued": 0,
         "authorization_schemes": [], "max_in_flight": 0}
IN_FLIGHT = [0]
INSTALLATION_TOKENS = {}
GOOGLE_TOKENS = {}


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jwt(token, public_pem):
    """The claims of an RS256 JWT whose signature the public key verifies, or None."""
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        if header.get("alg") != "RS256":
            return None
        key = serialization.load_pem_public_key(public_pem.encode())
        key.verify(b64url_decode(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return json.loads(b64url_decode(claims_b64))
    except (ValueError, InvalidSignature, KeyError):
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    world = {}
    faults = []

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm holds the
        # body back until the client's delayed ACK (40 ms), which no real API server does.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing -------------------------------------------------------------------------
    def base(self):
        return f"http://{self.headers.get('Host')}"

    def send(self, status, body=None, headers=(), charged=True, raw=None):
        github = self.world.get("github", {})
        delay = github.get("delay_ms", 0) if not self.path.startswith(("/token", "/admin")) else 0
        if delay:
            time.sleep(delay / 1000)
        data = raw if raw is not None else (b"" if body is None else (json.dumps(body, indent=2) + "\n").encode())
        etag = 'W/"%s"' % hashlib.sha256(data).hexdigest()[:40]
        if status == 200 and self.headers.get("If-None-Match") == etag:
            status, data, charged = 304, b"", False
            with LOCK:
                STATS["not_modified"] += 1
        with LOCK:
            if charged:
                STATS["charged"] += 1
            if status == 200 and charged:
                STATS["etagged"] += 1
            used = STATS["charged"]
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status in (200, 304):
            self.send_header("ETag", etag)
        if not self.path.startswith(("/token", "/admin")):
            self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
            self.send_header("X-RateLimit-Limit", "5000")
            self.send_header("X-RateLimit-Remaining", str(max(0, 5000 - used)))
            self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
            self.send_header("X-RateLimit-Used", str(used))
            self.send_header("X-RateLimit-Resource", "core")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.fault_truncates:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def fault(self):
        """The first fault that matches this request and has times left, used up once."""
        with LOCK:
            for fault in self.faults:
                if self.path.split("?")[0] == fault["path"].split("?")[0] and fault.get("times", 1) != 0:
                    if fault.get("times", 1) > 0:
                        fault["times"] = fault.get("times", 1) - 1
                    return fault
        return None

    def handle_one(self, method):
        self.fault_truncates = False
        with LOCK:
            STATS["requests"] += 1
            key = f"{method} {self.path}"
            STATS["by_path"][key] = STATS["by_path"].get(key, 0) + 1
            IN_FLIGHT[0] += 1
            STATS["max_in_flight"] = max(STATS["max_in_flight"], IN_FLIGHT[0])
        try:
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            if self.path == "/_stats":
                with LOCK:
                    snapshot = json.loads(json.dumps(STATS))
                return self.send(200, snapshot, charged=False)
            fault = self.fault()
            if fault:
                if "delay_ms" in fault:
                    time.sleep(fault["delay_ms"] / 1000)
                if "status" in fault:
                    return self.send(fault["status"], {"message": "Server Error"} if fault["status"] >= 500 else {"message": "fault"})
                if fault.get("rate_limit") == "secondary":
                    return self.send(403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                                           "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"},
                                     [("Retry-After", str(fault.get("retry_after", 1)))])
                if fault.get("rate_limit") == "primary":
                    return self.send(429, {"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
                                     [("Retry-After", str(fault.get("retry_after", 1)))])
                if fault.get("truncate"):
                    self.fault_truncates = True
            if self.path.startswith("/token"):
                return self.google_token()
            if self.path.startswith("/admin/directory/v1/"):
                return self.google_directory()
            if self.path.startswith("/saas/"):
                return self.saas()
            return self.github(method)
        finally:
            with LOCK:
                IN_FLIGHT[0] -= 1

    def do_GET(self):
        self.handle_one("GET")

    def do_POST(self):
        self.handle_one("POST")

    # -- GitHub ---------------------------------------------------------------------------
    def github_authorized(self):
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        with LOCK:
            STATS["authorization_schemes"].append(scheme)
        if scheme.lower() not in ("bearer", "token"):
            return False
        if token in self.world.get("github", {}).get("tokens", []):
            return True
        expires = INSTALLATION_TOKENS.get(token)
        return expires is not None and expires > time.time()

    def github(self, method):
        world = self.world.get("github", {})
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        query = dict(urllib.parse.parse_qsl(url.query))
        bad = {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}
        not_found = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}

        if method == "POST" and len(parts) == 4 and parts[:2] == ["app", "installations"] and parts[3] == "access_tokens":
            app = world.get("app") or {}
            bearer = (self.headers.get("Authorization") or "").partition(" ")[2]
            claims = verify_jwt(bearer, app.get("public_key", "")) if app else None
            now = time.time()
            if (not claims or str(claims.get("iss")) != str(app["id"]) or claims.get("exp", 0) < now
                    or claims.get("exp", 0) - claims.get("iat", 0) > 600 or claims.get("iat", 0) > now + 60):
                return self.send(401, {"message": "A JSON web token could not be decoded",
                                       "documentation_url": "https://docs.github.com/rest"}, charged=False)
            if parts[2] != str(app["installation_id"]):
                return self.send(404, not_found, charged=False)
            token = "ghs_" + hashlib.sha256(os.urandom(16)).hexdigest()[:36]
            expires = int(now) + app.get("token_ttl", 3600)
            INSTALLATION_TOKENS[token] = expires
            with LOCK:
                STATS["tokens_issued"] += 1
            return self.send(201, {"token": token, "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
                                   "permissions": {"administration": "read", "members": "read", "metadata": "read"},
                                   "repository_selection": "all"}, charged=False)

        if not self.github_authorized():
            return self.send(401, bad, charged=False)
        orgs = world.get("orgs", {})
        if len(parts) >= 2 and parts[0] == "orgs" and parts[1] in orgs:
            login, org = parts[1], orgs[parts[1]]
            oid = 40000 + sum(map(ord, login))
            if len(parts) == 2:
                return self.send(200, gh.organization(login, oid, org.get("name", login), org.get("two_factor", True)))
            if parts[2:] == ["members"]:
                if query.get("filter") == "2fa_disabled":
                    people = org.get("members_without_2fa", [])
                elif query.get("role") == "admin":
                    people = org.get("owners", ["owner"])
                else:
                    people = org.get("members", [])
                return self.paginate([gh.user(p, 90000 + i) for i, p in enumerate(people)], query, org)
            if parts[2:] == ["outside_collaborators"]:
                people = org.get("outside_collaborators", [])
                if query.get("filter") == "2fa_disabled":
                    people = [p for p in people if p in org.get("outside_without_2fa", [])]
                return self.paginate([gh.user(p, 95000 + i) for i, p in enumerate(people)], query, org)
            if parts[2:] == ["repos"]:
                repos = [gh.repository(login, oid, r["name"], 70000 + i, branch=r.get("branch", "main"),
                                       archived=r.get("archived", False), secret_scanning=r.get("secret_scanning", True),
                                       push_protection=r.get("push_protection", True))
                         for i, r in enumerate(org.get("repos", []))]
                return self.paginate(repos, query, org)
        enterprises = world.get("enterprises", {})
        if parts[:1] == ["enterprises"] and parts[2:] == ["audit-log", "streams"]:
            if len(parts) < 2 or parts[1] not in enterprises:
                return self.send(404, not_found)
            return self.send(200, [gh.audit_log_stream(i + 1, kind, enabled)
                                   for i, (kind, enabled) in enumerate(enterprises[parts[1]].get("streams", []))])
        if len(parts) >= 3 and parts[0] == "repos" and parts[1] in orgs:
            login, repo_name = parts[1], parts[2]
            repo = next((r for r in orgs[login].get("repos", []) if r["name"] == repo_name), None)
            if repo is None:
                return self.send(404, not_found)
            if parts[3:5] == ["branches", repo.get("branch", "main")] and parts[5:] == ["protection"]:
                p = repo.get("protection")
                if p == "hidden":
                    return self.send(403, {"message": "Resource not accessible by integration",
                                           "documentation_url": "https://docs.github.com/rest/branches/branch-protection#get-branch-protection",
                                           "status": "403"})
                if p is None:
                    return self.send(404, gh.NOT_PROTECTED)
                return self.send(200, gh.protection(login, repo_name, repo.get("branch", "main"), reviews=p.get("reviews", 1),
                                                    enforce_admins=p.get("enforce_admins", True),
                                                    force_pushes=p.get("force_pushes", False), deletions=p.get("deletions", False)))
            if parts[3:5] == ["rules", "branches"] and parts[5:] == [repo.get("branch", "main")]:
                return self.send(200, gh.branch_rules(repo.get("rules", [])))
            if parts[3:] == ["vulnerability-alerts"]:
                return self.send(204) if repo.get("alerts", True) else self.send(404, gh.NOT_FOUND)
        return self.send(404, not_found)

    def paginate(self, items, query, org):
        per_page = min(int(query.get("per_page", 30)), org.get("per_page_max", 100))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        pages = max(1, -(-len(items) // per_page))
        links = []
        path = urllib.parse.urlsplit(self.path).path
        def link(n):
            q = dict(query, per_page=str(per_page), page=str(n))
            return f"{self.base()}{path}?{urllib.parse.urlencode(q)}"
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
            links.append(f'<{link(pages)}>; rel="last"')
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
            links.append(f'<{link(1)}>; rel="first"')
        return self.send(200, chunk, [("Link", ", ".join(links))] if links else [])

    # -- A SaaS API, for sources declared in definitions -------------------------------------
    def saas(self):
        """Three listings paged three ways, as SaaS APIs do: users by Link with a cursor (as Okta),
        devices by a next-page token in the body, groups by page number until an empty page."""
        world = self.world.get("saas", {})
        auth = world.get("auth", {})
        header = self.headers.get(auth.get("header", "Authorization")) or ""
        kind = auth.get("type", "bearer")
        if kind == "bearer":
            expected = "Bearer " + auth.get("secret", "")
        elif kind == "basic":
            expected = "Basic " + base64.b64encode(f"{auth.get('username', '')}:{auth.get('secret', '')}".encode()).decode()
        else:
            expected = (auth.get("prefix", "") + " " + auth.get("secret", "")).strip()
        if header != expected:
            return self.send(401, {"errorCode": "E0000011", "errorSummary": "Invalid token provided"})
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        size = world.get("page_size", 2)
        tenant = world.get("tenant", "acme")
        if url.path == f"/saas/{tenant}/api/v1/users":
            users = world.get("users", [])
            limit = min(int(query.get("limit", size)), size)
            start = next((i + 1 for i, u in enumerate(users) if u["id"] == query.get("after")), 0)
            chunk = users[start:start + limit]
            links = [f'<{self.base()}{url.path}?limit={limit}>; rel="self"']
            if start + limit < len(users):
                links.append(f'<{self.base()}{url.path}?after={chunk[-1]["id"]}&limit={limit}>; rel="next"')
            return self.send(200, chunk, [("Link", ", ".join(links))])
        if url.path == f"/saas/{tenant}/v2/devices":
            devices = world.get("devices", [])
            start = int(base64.urlsafe_b64decode(query["page_token"]).decode()) if "page_token" in query else 0
            body = {"devices": devices[start:start + size]}
            if start + size < len(devices):
                body["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            return self.send(200, body)
        if url.path == f"/saas/{tenant}/v3/groups":
            groups = world.get("groups", [])
            page = int(query.get("page", 1))
            return self.send(200, {"groups": groups[(page - 1) * size: page * size], "page": page})
        return self.send(404, {"errorCode": "E0000007", "errorSummary": "Not found: Resource not found"})

    # -- Google ---------------------------------------------------------------------------
    def google_token(self):
        world = self.world.get("google", {})
        form = dict(urllib.parse.parse_qsl(self.body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or "assertion" not in form:
            return self.send(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}, charged=False)
        claims = verify_jwt(form["assertion"], world.get("public_key", ""))
        now = time.time()
        if not claims:
            return self.send(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, charged=False)
        if claims.get("exp", 0) - claims.get("iat", 0) > 3600 or claims.get("exp", 0) < now:
            return self.send(400, {"error": "invalid_grant",
                                   "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."}, charged=False)
        if claims.get("iss") != world.get("client_email") or claims.get("aud") != self.base() + "/token":
            return self.send(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, charged=False)
        if claims.get("sub") != world.get("subject"):
            return self.send(401, {"error": "unauthorized_client",
                                   "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}, charged=False)
        token = world.get("access_token", "ya29.fixture") + "." + hashlib.sha256(os.urandom(8)).hexdigest()[:12]
        GOOGLE_TOKENS[token] = now + 3599
        with LOCK:
            STATS["tokens_issued"] += 1
        return self.send(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, charged=False)

    def google_directory(self):
        world = self.world.get("google", {})
        token = (self.headers.get("Authorization") or "").partition(" ")[2]
        if world.get("revoked") or GOOGLE_TOKENS.get(token, 0) < time.time():
            return self.send(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                                             "status": "UNAUTHENTICATED"}})
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")[3:]
        customer = world.get("customer", "my_customer")
        if parts == ["users"]:
            if query.get("customer") not in (customer, "my_customer"):
                return self.send(400, {"error": {"code": 400, "message": "Bad Request", "status": "INVALID_ARGUMENT"}})
            size = min(int(query.get("maxResults", 100)), world.get("page_size", 500))
            start = int(query["pageToken"].split("-")[1]) if "pageToken" in query else 0
            users = world.get("users", [])
            body = {"kind": "admin#directory#users", "etag": '"%s"' % hashlib.sha1(str(start).encode()).hexdigest(),
                    "users": users[start:start + size]}
            if start + size < len(users):
                body["nextPageToken"] = f"page-{start + size}-" + base64.b64encode(os.urandom(6)).decode()
            return self.send(200, body)
        if len(parts) == 3 and parts[0] == "customer" and parts[2] in ("roles", "roleassignments"):
            items = world.get("roles" if parts[2] == "roles" else "role_assignments", [])
            kind = "admin#directory#roles" if parts[2] == "roles" else "admin#directory#roleAssignments"
            return self.send(200, {"kind": kind, "etag": '"x"', "items": items})
        return self.send(404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}})


class Server(ThreadingHTTPServer):
    # The listen backlog is taken when the socket is bound, in the constructor: a class attribute.
    # Python's default of 5 drops the SYNs of a burst of new connections, and clients wait
    # seconds to retry them.
    request_queue_size = 256
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.world) as f:
        world = json.load(f)
    Handler.world = world
    Handler.faults = world.get("faults", [])
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
