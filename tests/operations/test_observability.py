"""GET /metrics (Prometheus text, scraped here as Prometheus would) and request ids that follow one
payment from the merchant's request through the channel call to the event delivered."""
from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.client import Client
from gateway.models import MerchantEvent
from tests.conftest import checkout, free_port, make_settings, wait_for


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_count_requests_channel_calls_refused_callbacks_and_read_the_books(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port(), callback_mode="drop"))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="m-1", amount=500)
    checkout(payment)
    assert client.get_payment(payment["id"], sync=True)["status"] == "succeeded"       # a channel query
    forged = httpx.post(f"{gw.url}/v1/notify/sandbox", content=b'{"event":"payment"}',
                        headers={"Sandbox-Signature": "nope", "Sandbox-Timestamp": "1", "Sandbox-Nonce": "n"})
    assert forged.status_code == 400
    metrics = scrape(gw.url)
    assert metrics[("paymux_http_requests_total", (("method", "POST"), ("route", "/v1/payments"),
                                                   ("status", "201")))] == 1
    assert metrics[("paymux_http_requests_total", (("method", "GET"), ("route", "/v1/payments/{payment_id}"),
                                                   ("status", "200")))] == 1
    assert metrics[("paymux_channel_calls_total", (("account", "sandbox"), ("operation", "query"),
                                                   ("outcome", "succeeded")))] == 1
    assert metrics[("paymux_channel_call_seconds_count", (("account", "sandbox"), ("operation", "query")))] == 1
    rejected = [v for (name, labels), v in metrics.items() if name == "paymux_callback_rejections_total"
                and dict(labels)["account"] == "sandbox"]
    assert sum(rejected) == 1
    assert metrics[("paymux_janitor_open", (("kind", "attempt"),))] == 0
    assert metrics[("paymux_merchant_events_undelivered", (("state", "dead"),))] == 0
    assert metrics[("paymux_ledger_check_problems", ())] == 0 and metrics[("paymux_ledger_check_timestamp_seconds", ())] > 0
    open_payment = client.create_payment(merchant_order_no="m-2", amount=700)
    assert open_payment["status"] == "processing"
    assert scrape(gw.url)[("paymux_janitor_open", (("kind", "attempt"),))] == 1


def test_metrics_can_require_a_token(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(metrics_token="scrape-secret"))
    assert httpx.get(f"{gw.url}/metrics").status_code == 401
    assert httpx.get(f"{gw.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ("paymux_ledger_check_problems", ()) in scrape(gw.url, Authorization="Bearer scrape-secret")


def test_a_method_no_route_takes_is_counted_under_one_label(gateway_factory, db_url) -> None:
    """Methods no route takes must not each make a new series: they are all "other". Real ones (WebDAV's,
    caches') reach the app and are answered 405; made-up ones may be refused by the HTTP parser before
    the app sees them (400: httptools knows the registered methods only), else they are counted too."""
    import random
    import string

    gw = gateway_factory(make_settings(db_url, free_port()))
    spelled = ["PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT", "PURGE",
               "LINK", "UNLINK", "MKCALENDAR", "SUBSCRIBE", "UNSUBSCRIBE", "NOTIFY"]
    made_up = {"".join(random.choices(string.ascii_uppercase, k=12)) for _ in range(20)}
    reached = 0
    with httpx.Client(base_url=gw.url) as http:
        for method in spelled:
            assert http.request(method, "/v1/payments").status_code == 405
            assert http.request(method, "/healthz").status_code == 405
            assert http.request(method, f"/v1/{method.lower()}").status_code == 404
        for method in made_up:
            for path, answer in (("/v1/payments", 405), ("/healthz", 405), (f"/v1/{method.lower()}", 404)):
                status = http.request(method, path).status_code
                assert status in (400, answer)
                reached += status == answer
    requests = {labels: value for (name, labels), value in scrape(gw.url).items()
                if name == "paymux_http_requests_total"}
    assert {dict(labels)["method"] for labels in requests} == {"other"}
    assert {dict(labels)["route"] for labels in requests} == {"/v1/payments", "/healthz", "unmatched"}
    assert sum(requests.values()) == 3 * len(spelled) + reached


def test_one_request_id_follows_a_payment_into_its_event_and_delivery(gateway_factory, db_url) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    received: list[dict] = []

    async def hook(request):  # noqa: ANN001, ANN202  the merchant's endpoint
        received.append({"headers": dict(request.headers), "body": json.loads(await request.body())})
        return PlainTextResponse("ok")

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    from tests.conftest import ServerThread

    port = free_port()
    with ServerThread(receiver, port):
        gw = gateway_factory(make_settings(db_url, free_port(), callback_mode="drop").with_changes(
            notify_poll_seconds=0.1))
        creds = gw.merchant()
        client = Client(gw.url, creds.merchant_id, creds.secret)
        payment = client.create_payment(merchant_order_no="trace", amount=900,
                                        notify_url=f"http://127.0.0.1:{port}/hook")
        checkout(payment)
        # The merchant asks with its own request id; the query finds the payment paid.
        url = httpx.URL(f"{gw.url}/v1/payments/{payment['id']}?sync=true")
        from gateway.client import signed_headers

        headers = {**signed_headers(creds.merchant_id, creds.secret, "GET", url, b""), "X-Request-Id": "trace-42"}
        answer = httpx.get(url, headers=headers)
        assert answer.json()["status"] == "succeeded" and answer.headers["x-request-id"] == "trace-42"
        with gw.gateway.db.transaction() as conn:
            [event] = conn.execute(MerchantEvent.__table__.select()).all()
        assert (event.type, event.request_id) == ("payment.succeeded", "trace-42")
        assert wait_for(lambda: received)
        assert received[0]["headers"]["paymux-request-id"] == "trace-42"
        listed = client.request("GET", "/v1/events").json()["data"][0]
        assert listed["request_id"] == "trace-42"
