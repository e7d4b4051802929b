"""The HTTP API on localhost: the template's routes as API Gateway serves them (payload format 2.0, the SigV4
check of the IAM-authorised routes) and the runtime's own `/_local/...` routes, each answered by its part."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra import sigv4
from infra.local.outbox import outbox_page
from infra.local.state import ACCOUNT, State

TEXT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/", "application/xml")


class ApiServer(State):
    def _serve(self) -> None:
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests may carry personal data in query strings: not logged

            def do_GET(self) -> None:
                runtime._http_request(self, "GET")

            def do_POST(self) -> None:
                runtime._http_request(self, "POST")

        self._http = ThreadingHTTPServer((self.host, self.port), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="parcours-http", daemon=True).start()

    def _http_request(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if method == "GET" and url.path == "/_local/outbox":
            self._reply(request, 200, {"content-type": "application/json"}, json.dumps(self.outbox()).encode())
            return
        if method == "GET" and url.path == "/_local/clock":
            now = {
                "now": self.clock.now().isoformat(),
                "time_scale": None if self.skipped else self.time_scale,
                "skipped": self.skipped is not None,
            }
            self._reply(request, 200, {"content-type": "application/json"}, json.dumps(now).encode())
            return
        if method == "POST" and url.path in ("/_local/advance", "/_local/run-until-idle"):
            status, answer = self.move_time(url.path.rpartition("/")[2], body)
            self._reply(request, status, {"content-type": "application/json"}, json.dumps(answer).encode())
            return
        with contextlib.nullcontext() if self.skipped is None else self.skipped.running():  # time stands still
            self._http_request_counted(request, method, url, body)

    def _http_request_counted(self, request: BaseHTTPRequestHandler, method: str, url: Any, body: bytes) -> None:
        if method == "POST" and url.path == "/_local/ses-event":
            status, answer = self.ses_event(body)
            self._reply(request, status, {"content-type": "application/json"}, json.dumps(answer).encode())
            return
        if url.path == "/_local/faults" and method in ("GET", "POST"):
            status, answer = self.inject_fault(body) if method == "POST" else (200, self.armed_faults())
            self._reply(request, status, {"content-type": "application/json"}, json.dumps(answer).encode())
            return
        if method == "POST" and url.path == "/_local/schedule":
            reports = [self.run_daily_now()]
            self._reply(request, 200, {"content-type": "application/json"}, json.dumps(reports).encode())
            return
        if method == "GET" and url.path == "/_local/outbox.html":
            self._reply(request, 200, {"content-type": "text/html; charset=utf-8"}, outbox_page(self.outbox()))
            return
        if method == "GET" and url.path == "/_local/report.html":  # the report's page (infra/reporting.py)
            from infra import reporting

            status, page = reporting.local_page(url.query, self.clock.now().date())
            self._reply(request, status, {"content-type": "text/html; charset=utf-8"}, page)
            return
        match = self._route(method, url.path)
        if match is None:
            self._reply(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        function, route_key, parameters = match
        if route_key in self.iam_routes:
            signed_url = f"http://{request.headers.get('Host', '')}{request.path}"
            refusal = sigv4.refusal(method, signed_url, dict(request.headers.items()), body)
            if refusal is not None:  # what API Gateway answers, before any function runs
                denied = json.dumps({"message": refusal}).encode()
                self._reply(request, 403, {"content-type": "application/json"}, denied)
                return
        status, headers, payload = self._call_route(
            function, request, method, url.path, url.query, body, route_key, parameters
        )
        self._reply(request, status, headers, payload)

    def _route(self, method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
        """The function, route key and path parameters of a request, as API Gateway matches `/a/{id}/b`."""
        for (route_method, route_path), function in self.routes.items():
            if route_method != method:
                continue
            pattern = "^" + re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(route_path)) + "$"
            found = re.match(pattern, path)
            if found:
                return function, f"{method} {route_path}", found.groupdict()
        return None

    def _call_route(
        self,
        function: str,
        request: BaseHTTPRequestHandler,
        method: str,
        path: str,
        query: str,
        body: bytes,
        route_key: str,
        parameters: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        """API Gateway HTTP API, payload format 2.0: the event it builds and the answer it makes of the result."""

        headers = {name.lower(): value for name, value in request.headers.items()}
        content_type = headers.get("content-type", "")
        textual = content_type.startswith(TEXT_TYPES)
        try:
            text_body = body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            text_body = None
        event = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "pathParameters": parameters or None,
            "rawQueryString": query,
            "headers": headers,
            "queryStringParameters": dict(parse_qsl(query)) or None,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "local",
                "domainName": f"{self.host}:{self.port}",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route_key,
                "stage": "$default",
                "time": self.clock.now().strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(self.clock.timestamp() * 1000),
            },
            "body": text_body if text_body is not None else base64.b64encode(body).decode(),
            "isBase64Encoded": text_body is None,
        }
        if route_key in self.iam_routes:  # what API Gateway's AWS_IAM authoriser tells the function: who signed
            context: dict[str, Any] = event["requestContext"]  # type: ignore[assignment]
            context["authorizer"] = {"iam": _signer(headers.get("authorization", ""))}
        answer = self.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
        result = json.loads(payload) if payload else None
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, {"content-type": "application/json"}, json.dumps(result).encode()
        out_body = result.get("body") or ""
        raw = base64.b64decode(out_body) if result.get("isBase64Encoded") else str(out_body).encode()
        return (
            int(result["statusCode"]),
            {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()},
            raw,
        )

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name != "content-length":
                request.send_header(name, value)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def _signer(authorization: str) -> dict[str, str]:
    """The IAM identity of a checked signature, as API Gateway names it (locally, a user of the local account)."""
    found = sigv4.AUTHORIZATION.match(authorization)
    key = found.group("key") if found else "unknown"
    return {"accessKey": key, "accountId": ACCOUNT, "userArn": f"arn:aws:iam::{ACCOUNT}:user/{key}", "userId": key}
