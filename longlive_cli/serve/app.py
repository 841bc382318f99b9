"""The HTTP and WebSocket API of ``longlive serve`` (FastAPI): :func:`create_app` over a
:class:`~longlive_cli.serve.studio.Studio`.

Every request goes through :class:`Guard` first: the token (``Authorization: Bearer T`` or the
``longlive_token`` cookie that ``GET /?token=T`` sets; compared with :func:`hmac.compare_digest`), the
``Host`` (without a token only loopback names and the bound host are served: no DNS rebinding), the
``Origin`` of a WebSocket or of a request that changes something (the server's own only), and the body's
size (at most :data:`MAX_BODY`, :data:`MAX_SESSION_BODY` for ``POST /api/session`` with an image: 413 as
soon as it is known, without reading further). Errors are JSON ``{"error": <for people>, "field": <name or
null>}``; an unexpected one is logged in one line (never a traceback) and answered 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Iterable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from .studio import ApiError, Studio

__all__ = ["MAX_BODY", "MAX_SESSION_BODY", "Guard", "create_app"]

log = logging.getLogger(__name__)

MAX_BODY = 2**20
MAX_SESSION_BODY = 16 * 2**20
COOKIE = "longlive_token"
STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# --------------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionBody(_Body):
    prompt: StrictStr = Field(description="The first prompt.")
    seed: StrictInt | None = Field(None, description="Noise seed (random when not given).")
    resolution: StrictStr | None = Field(None, description='"WxH" in pixels, e.g. "832x480".')
    duration: StrictStr | StrictFloat | StrictInt | None = Field(None, description='Planned length, "30s".')
    image: StrictStr | None = Field(None, description="data:image/png;base64,... (image-to-video models).")


class PromptBody(_Body):
    text: StrictStr
    transition: StrictStr | StrictFloat | StrictInt | None = Field(None, description='"2s" or 2.0')
    blend: StrictStr | None = Field(None, description="linear or slerp")
    cut: StrictBool | None = Field(None, description="a new shot (LongLive 2.0 models)")


class StoryboardBody(_Body):
    storyboard: StrictStr = Field(description="The storyboard's YAML text.")


class RenderBody(StoryboardBody):
    seed: StrictInt | None = None


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


# --------------------------------------------------------------------------- the guard (pure ASGI)
class Guard:
    """Token, host, origin and body-size checks, and the last word on errors (see the module docs)."""

    def __init__(self, app: Any, *, token: str | None, hosts: Iterable[str]) -> None:
        self.app, self.token = app, token
        self.hosts = {h.lower().strip("[]") for h in (*LOOPBACK, *hosts)}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await self._refuse(scope, receive, send, *refusal)
            return
        if scope["type"] == "websocket":
            await self._guarded(scope, receive, send)
            return
        limit = MAX_SESSION_BODY if scope["path"] == "/api/session" else MAX_BODY
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_json(send, 413, f"the body is over the limit of {limit // 2**20} MiB")
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _send_json(send, 413, f"the body is over the limit of {limit // 2**20} MiB")
                return
        scope["longlive.body_bytes"] = len(body)
        await self._guarded(scope, _replay(body), self._with_cookie(scope, send))

    def _refusal(self, scope: dict, headers: dict[str, str]) -> tuple[int, str] | None:
        host = urlsplit("//" + headers.get("host", "")).hostname or ""
        if self.token is None and host.lower() not in self.hosts:
            return 421, f"this server does not answer for the host {host[:100]!r}; open it by its address"
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method", "GET") not in ("GET", "HEAD")
        if origin is not None and changes:
            own = urlsplit(origin)
            if own.scheme not in ("http", "https") or own.netloc.lower() != headers.get("host", "").lower():
                return 401, "a request from another site (Origin) is refused"
        if self.token is not None and not self._authorized(scope, headers):
            return 401, "a token is needed: Authorization: Bearer TOKEN, or open the printed URL with ?token="
        return None

    def _authorized(self, scope: dict, headers: dict[str, str]) -> bool:
        assert self.token is not None
        want = self.token.encode()
        given = headers.get("authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), want):
            return True
        cookie = SimpleCookie()
        with contextlib.suppress(Exception):
            cookie.load(headers.get("cookie", ""))
        if COOKIE in cookie and hmac.compare_digest(cookie[COOKIE].value.encode(), want):
            return True
        return self._query_token(scope) is not None

    def _query_token(self, scope: dict) -> str | None:
        """``GET /?token=T`` with the right token (then the response sets the cookie)."""
        if self.token is None or scope["type"] != "http" or scope["path"] != "/":
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        return given if hmac.compare_digest(given.encode(), self.token.encode()) else None

    def _with_cookie(self, scope: dict, send: Any) -> Any:
        token = self._query_token(scope)
        if token is None:
            return send

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        return send_with_cookie

    async def _refuse(self, scope: dict, receive: Any, send: Any, status: int, message: str) -> None:
        if scope["type"] == "http":
            await _send_json(send, status, message)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            body = json.dumps({"error": message, "field": None}).encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(body)),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})

    async def _guarded(self, scope: dict, receive: Any, send: Any) -> None:
        started = False

        async def tracking(message: dict) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept"):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as err:  # one line in the log, a JSON error for the client; never a traceback
            log.error(
                "%s %s failed: %s: %s", scope.get("method", "WS"), scope["path"], type(err).__name__, err
            )
            if scope["type"] == "http" and not started:
                await _send_json(send, 500, f"the server failed: {type(err).__name__}: {err}")


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more comes (a disconnect is not reported)
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Any, status: int, message: str, field: str | None = None) -> None:
    body = json.dumps({"error": message, "field": field}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- the app
def create_app(studio: Studio, *, token: str | None = None, hosts: Iterable[str] = ()) -> FastAPI:
    """The FastAPI app over ``studio`` with every route of the contract (``docs/serve.md``), wrapped in
    :class:`Guard` (``token``: every request needs it; ``hosts``: host names served besides loopback)."""
    app = FastAPI(
        title="longlive serve",
        summary="Steer a live LongLive video and render storyboards.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.studio = studio
    _handlers(app)
    _routes(app, studio)
    _session_routes(app, studio)
    _files_routes(app, studio)
    _render_routes(app, studio)
    _socket_routes(app, studio)
    _page_routes(app)
    app.add_middleware(Guard, token=token, hosts=hosts)
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return _error(err.status, err.message, err.field)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
        first = (err.errors() or [{}])[0]
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        field = loc[0] if loc else None
        if first.get("type") == "json_invalid":
            return _error(400, "the body is not valid JSON; send a JSON object")
        if field is None:
            return _error(400, "the body must be a JSON object with the fields of this request")
        message = str(first.get("msg", "invalid")).replace("Extra inputs are not permitted", "unknown field")
        return _error(400, f"{'.'.join(loc)}: {message}", field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))


def _routes(app: FastAPI, studio: Studio) -> None:
    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        """The model and what it can do."""
        return studio.health()

    @app.post("/api/validate")
    async def validate(body: StoryboardBody) -> dict[str, Any]:
        """The plan ``longlive validate`` prints, or the error with line and column."""
        return await asyncio.to_thread(studio.validate, body.storyboard)


def _session_routes(app: FastAPI, studio: Studio) -> None:
    @app.post("/api/session", status_code=201)
    async def start(body: SessionBody, request: Request) -> dict[str, Any]:
        """Start a live session (409 while a session or render runs)."""
        if body.image is None and request.scope.get("longlive.body_bytes", 0) > MAX_BODY:
            raise ApiError(413, f"the body is over the limit of {MAX_BODY // 2**20} MiB (without an image)")
        fields = body.model_dump(exclude={"prompt"})
        return await asyncio.to_thread(lambda: studio.start_session(body.prompt, **fields))

    @app.get("/api/session")
    async def session() -> dict[str, Any]:
        """The current (or last) session."""
        return studio.current(running=False).describe()

    @app.post("/api/session/prompt", status_code=202)
    async def prompt(body: PromptBody) -> dict[str, Any]:
        """The next prompt; it takes effect at the next block."""
        text = studio.submit_prompt(body.text, transition=body.transition, blend=body.blend, cut=body.cut)
        return {"queued": text}

    @app.post("/api/session/pause")
    async def pause() -> dict[str, Any]:
        return studio.pause(True)

    @app.post("/api/session/resume")
    async def resume() -> dict[str, Any]:
        return studio.pause(False)

    @app.post("/api/session/stop")
    async def stop() -> dict[str, Any]:
        return studio.stop()


def _files_routes(app: FastAPI, studio: Studio) -> None:
    @app.get("/api/session/recording", response_class=Response)
    async def recording() -> Response:
        """The session's MP4 (while it runs, the part streamed so far)."""
        found = studio.current(running=False).recording_file()
        return _mp4(found, studio.current(running=False).id)

    @app.get("/api/session/storyboard", response_class=Response)
    async def storyboard() -> Response:
        return _yaml(studio.current(running=False).folder)

    @app.get("/api/session/thumbnails/{name}", response_class=Response)
    async def thumbnail(name: str) -> Response:
        job = studio.current(running=False)
        block = name.removesuffix(".jpg")
        if not (block.isdigit() and block.isascii() and len(block) < 9 and name.endswith(".jpg")):
            raise ApiError(404, "no such thumbnail")
        path = job.thumbnail_path(int(block))
        if not path.is_file():
            raise ApiError(404, f"no thumbnail for block {int(block)}")
        return FileResponse(path, media_type="image/jpeg")

    @app.get("/api/sessions/{job_id}/recording", response_class=Response)
    async def old_recording(job_id: str) -> Response:
        folder = studio.session_folder(job_id)
        current = studio.session
        if current is not None and current.id == job_id:
            return _mp4(current.recording_file(), job_id)
        from .studio import recording_in

        return _mp4(recording_in(folder), job_id)

    @app.get("/api/sessions/{job_id}/storyboard", response_class=Response)
    async def old_storyboard(job_id: str) -> Response:
        return _yaml(studio.session_folder(job_id))


def _mp4(found: tuple[Path, int | None] | None, name: str) -> Response:
    if found is None:
        raise ApiError(404, "no recording yet")
    path, size = found
    headers = {"content-disposition": f'attachment; filename="longlive-{name}.mp4"'}
    if size is None:
        return FileResponse(path, media_type="video/mp4", headers=headers)

    def chunks() -> Iterator[bytes]:  # a file that grows: exactly the whole boxes written so far
        left = size
        with open(path, "rb") as f:
            while left > 0 and (data := f.read(min(left, 2**20))):
                left -= len(data)
                yield data

    headers["content-length"] = str(size)
    return StreamingResponse(chunks(), media_type="video/mp4", headers=headers)


def _yaml(folder: Path) -> Response:
    path = folder / "session.yaml"
    if not path.is_file():
        raise ApiError(404, "no session storyboard yet")
    return Response(path.read_bytes(), media_type="text/yaml; charset=utf-8")


def _render_routes(app: FastAPI, studio: Studio) -> None:
    @app.post("/api/render", status_code=202)
    async def render(body: RenderBody) -> dict[str, Any]:
        """Render a storyboard (409 while a session or render runs)."""
        return await asyncio.to_thread(studio.render, body.storyboard, body.seed)

    @app.get("/api/render/{job_id}")
    async def render_state(job_id: str) -> dict[str, Any]:
        return studio.render_job(job_id).describe()

    @app.get("/api/render/{job_id}/video", response_class=Response)
    async def render_video(job_id: str) -> Response:
        job = studio.render_job(job_id)
        path = job.folder / "video.mp4"
        if job.state != "finished" or not path.is_file():
            raise ApiError(404, f"the render {job_id} is {job.state}: no video yet")
        return FileResponse(path, media_type="video/mp4", filename=f"longlive-{job_id}.mp4")


def _socket_routes(app: FastAPI, studio: Studio) -> None:
    @app.websocket("/api/events")
    async def events(ws: WebSocket) -> None:
        await ws.accept()
        box = studio.events.join(asyncio.get_running_loop())
        if studio.session is not None:
            box.put(json.dumps({"event": "session", **studio.session.describe()}))
        try:
            await _pump(ws, box)
        finally:
            studio.events.leave(box)

    @app.websocket("/api/video")
    async def video(ws: WebSocket) -> None:
        await ws.accept()
        viewer = studio.video.join(asyncio.get_running_loop())
        try:
            await _pump(ws, viewer)
        finally:
            studio.video.leave(viewer)


async def _pump(ws: WebSocket, box: Any) -> None:
    """Send ``box``'s messages until the client goes away (watched on its own task, so a client that
    neither reads nor writes is noticed)."""

    async def watch() -> None:
        try:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        except Exception:  # the connection is gone either way
            pass
        finally:
            box.close()

    watcher = asyncio.create_task(watch())
    try:
        while (message := await box.get()) is not None:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_text(message if isinstance(message, str) else json.dumps(message))
    except Exception:  # the client went away mid-send
        pass
    finally:
        watcher.cancel()
        with contextlib.suppress(Exception):
            await ws.close()


class _Static(StaticFiles):
    """The page's assets; 404 (not an error) while the folder is not there."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()


def _page_routes(app: FastAPI) -> None:
    import swagger_ui_bundle

    app.mount("/static", _Static(directory=STATIC, check_dir=False), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            return HTMLResponse("<!doctype html><title>longlive studio</title><p>The page is not installed.")
        return FileResponse(index, media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="longlive serve API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
