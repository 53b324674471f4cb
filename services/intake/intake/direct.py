"""A shorter way through the app for intake's busiest endpoints.

FastAPI reaches an endpoint through its router (every route's pattern tried in turn), the route's
request handler (dependencies, body, response model) and two exit stacks. The ingestion endpoints
use none of that: they take the request alone, read their body by hand (``api._read_json``) and
return a finished response. On this machine that way cost about as much CPU as the endpoint's
own work, so POSTs to those endpoints' exact paths are sent straight to the endpoint, through
the same middlewares and the same exception handlers as every other request. Anything else
(other methods, paths with parameters, an app mounted under a root path) goes FastAPI's way.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class DirectApp(FastAPI):
    """FastAPI, with POSTs to ``direct_paths`` served by their endpoint directly.

    Those routes stay in the app, so they are documented, listed and served the same way when
    the short way does not apply. Their endpoints must take only the ``Request`` and return a
    ``Response``. The short way has its own instance of each of the app's middlewares, built
    from the same arguments (the per-request ones keep no state between requests).
    """

    def __init__(self, *, direct_paths: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._direct_paths = direct_paths
        self._direct: dict[str, APIRoute] | None = None
        self._direct_stack: ASGIApp | None = None

    def direct_routes(self) -> dict[str, APIRoute]:
        """The routes served the short way, by path; raises when one of ``direct_paths`` has no
        POST route without parameters (``bootstrap`` asks once its routes are in, so a wrong
        path stops the service at start rather than failing its first request)."""
        if self._direct is None:
            self._direct = self._find_direct_routes()
        return self._direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not self.root_path:
            route = self.direct_routes().get(scope["path"])
        if route is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"], scope["router"] = self, self.router  # what Starlette's way sets on it
        scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
        if self._direct_stack is None:
            if self.middleware_stack is None:  # built now too: no middleware is added after
                self.middleware_stack = self.build_middleware_stack()
            self._direct_stack = self._build_direct_stack()
        await self._direct_stack(scope, receive, send)

    def _find_direct_routes(self) -> dict[str, APIRoute]:
        found = {route.path: route for route in self.router.routes
                 if isinstance(route, APIRoute) and route.path in self._direct_paths
                 and route.methods == {"POST"} and not route.param_convertors}
        missing = set(self._direct_paths) - found.keys()
        if missing:
            raise RuntimeError(f"no POST route without parameters for {sorted(missing)}")
        return found

    def _build_direct_stack(self) -> ASGIApp:
        """The app's own stack around the endpoint: ``build_middleware_stack`` without the
        router and the exit stack (no dependencies here to close), and without FastAPI's
        OpenTelemetry observer of exceptions (leadrelay's telemetry is Prometheus and logs)."""
        error_handler, handlers = None, {}
        for key, handler in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = handler
            else:
                handlers[key] = handler
        app: ASGIApp = ExceptionMiddleware(_call_endpoint, handlers=handlers, debug=self.debug)
        for middleware in reversed(self.user_middleware):
            app = middleware.cls(app, *middleware.args, **middleware.kwargs)
        return ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)


async def _call_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    response: Response = await scope["endpoint"](Request(scope, receive, send))
    await response(scope, receive, send)
