"""The broker's error shape: an HTTP status plus ``{"errorCode": "error...."}``.

Every refusal in the simulator is raised as :class:`ApiError` and turned into that JSON by the
app's middleware, so no code path can leak a Python traceback or a 500 for bad input.
"""

from __future__ import annotations


class ApiError(Exception):
    """A refusal the way Capital.com words it: ``status`` and an ``errorCode`` string."""

    def __init__(self, status: int, code: str, *, tokens: bool = True) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        #: False for refusals of the request's declared constraints (a field's size, a parameter's
        #: minimum): the broker answers them before the session is looked at, without its tokens.
        self.tokens = tokens

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code}


def bad_request(code: str) -> ApiError:
    return ApiError(400, code)


def invalid_constraint(code: str) -> ApiError:
    """A 400 for a request that breaks a declared constraint (answered without session tokens)."""
    return ApiError(400, code, tokens=False)


def not_found(code: str) -> ApiError:
    return ApiError(404, code)


def unauthorized(code: str) -> ApiError:
    return ApiError(401, code)


TOO_MANY_REQUESTS = "error.too-many.requests"
