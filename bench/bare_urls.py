import json

from django.core.cache import cache
from django.db import connection
from django.urls import path
from ninja import NinjaAPI, Schema

api = NinjaAPI(urls_namespace="bare", docs_url=None)


class RowIn(Schema):
    name: str
    phone: str | None = None
    email: str | None = None
    address: str | None = None


@api.post("/insert", response={201: dict})
def insert(request, row: RowIn):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_bare_row (payload, created_at) VALUES (%s, now()) RETURNING id",
            [json.dumps(row.dict())],
        )
        (row_id,) = cursor.fetchone()
    return 201, {"id": row_id}


@api.get("/redis")
def redis_read(request):
    return {"value": cache.get("bare:key")}


urlpatterns = [path("bare/", api.urls)]
