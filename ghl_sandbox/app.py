"""FastAPI app factory of the sandbox: API routes behind the ``ApiGate``, admin routes beside them."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from . import admin, contacts_api, front_door, locations_api, oauth_api
from .config import SandboxConfig
from .errors import APIError, NotFound
from .gate import ApiGate, Operation
from .state import SandboxState

OPERATIONS: dict[str, Operation] = {**contacts_api.OPERATIONS, **locations_api.OPERATIONS, **oauth_api.OPERATIONS}
"""Every API operation by operationId (counters use these names)."""


def _trace(request: Request) -> str | None:
    return getattr(request.state, "trace_id", None)


def create_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> FastAPI:
    """A fresh sandbox app; its state is ``app.state.sandbox``."""
    state = state or SandboxState(config or SandboxConfig())
    # docs served offline by front_door (no CDN): Swagger UI / ReDoc assets from the sandbox itself
    app = FastAPI(title="HighLevel Contacts API sandbox", docs_url=None, redoc_url=None,
                  openapi_url=front_door.OPENAPI_URL)
    app.state.sandbox = state
    app.include_router(contacts_api.router)
    app.include_router(locations_api.router)
    app.include_router(oauth_api.router)
    app.include_router(admin.router)
    front_door.install(app)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        if (isinstance(exc, NotFound) and not state.config.strict_spec
                and not request.url.path.startswith(admin.ADMIN_PREFIX)):
            exc = exc.live()  # HighLevel: 400 {"statusCode": 400, "message": "Contact not found"}
        return JSONResponse(exc.body(_trace(request)), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"Cannot {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
        status = 404 if exc.status_code == 405 else exc.status_code
        return JSONResponse(APIError(status, message).body(_trace(request)), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(APIError(422, messages).body(_trace(request)), status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(APIError(500, f"Internal server error in the sandbox: {type(exc).__name__}: {exc}")
                            .body(_trace(request)), status_code=500)

    app.add_middleware(ApiGate, state=state, routes=app.router.routes, operations=OPERATIONS)
    return app
