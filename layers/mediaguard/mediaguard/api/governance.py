"""Admin routes of issue 13 on the review API's resolver (``mediaguard.api.review.app``):

=======  ==============================  =======  ================================================
method   path                            role     answer
=======  ==============================  =======  ================================================
GET      /admin/report?from=&to=         admin    the transparency report (``mediaguard report --json``)
GET      /admin/legal                    admin    {items: [order]}, each with its compliance
POST     /admin/legal                    admin    order (201), recorded and, unless enforce=false, enforced
GET      /admin/legal/{order_id}         admin    order; 404
POST     /admin/erasure                  admin    {deleted, kept, history_rows_deleted} (ids only)
=======  ==============================  =======  ================================================

Importing this module adds the routes; the handler plugs in the provider with :func:`use`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from mediaguard.api.errors import InvalidRequestError, NotFoundError
from mediaguard.api.review import _admin, app
from mediaguard.decisions import legal
from mediaguard.decisions.erasure import erase_uploader
from mediaguard.decisions.geofence import GeofenceRuleError

ORDER_ID = r"^lo-[0-9a-f]{12}$"
_provider: Callable[[], Any] | None = None


def use(governance: Callable[[], Any]) -> None:
    """The ``adapters.governance.Governance`` provider (cached by whoever passes it)."""
    global _provider
    _provider = governance


def _gov() -> Any:
    if _provider is None:
        raise RuntimeError("mediaguard.api.governance.use() was not called")
    return _provider()


def _when(text: str | None, default: datetime) -> datetime:
    if not text:
        return default
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequestError("from and to are ISO 8601 dates or date-times", reason="invalid_period") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.get("/admin/report", summary="The transparency report (same JSON as mediaguard report --json)")
def get_report(start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
               end: Annotated[str | None, Query(alias="to", max_length=40)] = None) -> dict[str, Any]:
    _admin()
    until = _when(end, datetime.now(UTC))
    since = _when(start, until - timedelta(days=30))
    if since >= until:
        raise InvalidRequestError("from must be before to", reason="invalid_period")
    return _gov().report(since, until)


class OrderIn(legal.OrderRequest):
    enforce: bool = True


class OrderPage(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]]


@app.get("/admin/legal", summary="Legal and government orders with their deadline compliance")
def list_orders() -> OrderPage:
    _admin()
    return OrderPage(items=[o.view() for o in _gov().legal_ports().orders.list()])


@app.post("/admin/legal", summary="Record a legal order and enforce it (geofence or removal)")
def add_order(request: Annotated[OrderIn, Body()]) -> Response[dict[str, Any]]:
    who = _admin()
    ports = _gov().legal_ports()
    try:
        order = legal.record(legal.OrderRequest(**request.model_dump(exclude={"enforce"})), f"admin:{who.sub}",
                             ports)
        if request.enforce:
            order = legal.enforce(order.order_id, f"admin:{who.sub}", ports)
    except (legal.LegalOrderError, GeofenceRuleError) as error:  # typed 400s, never a 500
        raise InvalidRequestError(str(error), reason=error.reason) from None
    return Response(201, content_types.APPLICATION_JSON, order.view())


@app.get("/admin/legal/<order_id>", summary="One legal order")
def get_order(order_id: Annotated[str, Path(pattern=ORDER_ID)]) -> dict[str, Any]:
    _admin()
    order = _gov().legal_ports().orders.get(order_id)
    if order is None:
        raise NotFoundError("no such order")
    return order.view()


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    uploader: str = Field(min_length=1, max_length=256)


@app.post("/admin/erasure", summary="An uploader's erasure request; legal holds are kept (audited)")
def erase(request: Annotated[ErasureIn, Body()]) -> dict[str, Any]:
    who = _admin()
    return erase_uploader(request.uploader, f"admin:{who.sub}", _gov().erasure_ports())
