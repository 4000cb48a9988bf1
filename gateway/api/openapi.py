"""The OpenAPI 3.1 document of the merchant API, errors included."""
from __future__ import annotations

import functools
from typing import Any

from gateway.api import statements
from gateway.api.schemas import (CreatePaymentBody, CreatePayoutBody, CreateReceiverBody, CreateRefundBody,
                                 CreateSplitBody, FinishSplitsBody, NewAttemptBody)

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_DESCRIBED = {400: "Invalid request: a parameter, or text in the path, query or body with a NUL character, a lone "
                  "surrogate or bytes that are not UTF-8 (invalid_string)",
              401: "Authentication failed", 404: "Not found",
              403: "Denied or held for review by a risk rule (payment_denied, payment_review)",
              409: "Conflict (duplicate order, idempotency)", 413: "Body larger than 64 KiB",
              415: "A multipart body: no route takes one",
              502: "The channel gave no usable answer",
              503: "No channel account can take the payment now (open circuits, daily limits): channel_unavailable"}
# Any route can answer these, before it is reached: the path or query, the size or kind of the body.
_EVERY_ROUTE = (400, 413, 415)


def _errors(*statuses: int) -> dict:
    return {str(s): {"description": _DESCRIBED[s], "content": {"application/json": {"schema": _ref("Error")}}}
            for s in statuses}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ID_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
           "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$"},
           "description": "Same key and body replay the first answer for at least 24 h."}
_SYNC = {"name": "sync", "in": "query", "required": False, "schema": {"type": "boolean"},
         "description": "Ask the channel first while the payment is processing."}


def _channel_answer(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {}},
                                                     "text/plain": {"schema": {"type": "string"}}}}


def _path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (CreatePaymentBody, CreateRefundBody, NewAttemptBody, CreatePayoutBody, CreateReceiverBody,
                  CreateSplitBody, FinishSplitsBody):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    nullable_str = {"type": ["string", "null"]}
    schemas["Error"] = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["type", "code", "message"], "properties": {
            "type": {"type": "string", "enum": ["invalid_request_error", "authentication_error", "idempotency_error",
                                                "channel_error", "api_error"]},
            "code": {"type": "string"}, "message": {"type": "string"}, "param": nullable_str}}}}
    failure = {"type": ["object", "null"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
    schemas["Payment"] = {"type": "object", "required": ["id", "status", "amount", "currency"], "properties": {
        "id": {"type": "string", "pattern": "^pay_"}, "object": {"const": "payment"},
        "merchant_order_no": {"type": "string"},
        "status": {"type": "string", "enum": ["processing", "succeeded", "failed", "closed"]},
        "amount": {"type": "integer"}, "currency": {"type": "string"}, "amount_refunded": {"type": "integer"},
        "amount_refund_pending": {"type": "integer"}, "amount_split": {"type": "integer"},
        "amount_frozen": {"type": "integer", "description": "what the channel holds frozen of it for splitting, "
                                                            "until its splitting is finished"},
        "splittable": {"type": "boolean"}, "fee": {"type": ["integer", "null"]}, "subject": {"type": "string"}, "channel": {"type": "string"},
        "method": {"type": "string"},
        "action": {"type": ["object", "null"], "description": "What to show the customer next",
                   "properties": {"type": {"type": "string", "examples": ["redirect", "qr", "app", "jsapi", "form"]},
                                  "url": {"type": "string"}, "code": {"type": "string"},
                                  "method": {"type": "string", "description": "form: how the browser submits it"},
                                  "fields": {"type": "object", "additionalProperties": {"type": "string"},
                                             "description": "form: the signed fields to post to url"},
                                  "params": {"type": "object", "description": "jsapi/app: signed parameters"}}},
        "channel_transaction_id": nullable_str, "out_trade_no": nullable_str, "notify_url": nullable_str,
        "metadata": {"type": "object", "additionalProperties": {"type": "string"},
                     "description": "The merchant's own notes, returned as given; nothing in them moves money"},
        "discount": {"type": ["object", "null"], "description": "Coupons the payer used, as the channel's verified "
                                                                "answer reported them (null: none)",
                     "required": ["amount", "kept_by_channel", "paid_back_by_platform", "lines"], "properties": {
                         "amount": {"type": "integer", "description": "what the payer did not pay"},
                         "kept_by_channel": {"type": "integer", "description": "what the channel keeps out of what "
                                                                               "it pays for the order"},
                         "paid_back_by_platform": {"type": "integer", "description": "what campaigns of the "
                                                                                     "platform paid back"},
                         "lines": {"type": "array", "items": {"type": "object", "properties": {
                             "amount": {"type": "integer"}, "name": {"type": "string"}, "campaign": nullable_str,
                             "kept_by_channel": {"type": "integer"},
                             "funded_by": {"type": "object", "properties": {
                                 "merchant": {"type": "integer"}, "channel": {"type": "integer"},
                                 "other": {"type": "integer"}}}}}}}},
        "failure": failure, "expires_at": nullable_str, "paid_at": nullable_str, "created_at": {"type": "string"},
        "updated_at": {"type": "string"}}}
    schemas["PaymentList"] = {"type": "object", "properties": {"object": {"const": "list"},
                                                               "data": {"type": "array", "items": _ref("Payment")}}}
    schemas["Attempt"] = {"type": "object", "required": ["id", "status", "channel"], "properties": {
        "id": {"type": "string", "pattern": "^att_"}, "object": {"const": "attempt"}, "payment_id": {"type": "string"},
        "channel": {"type": "string"}, "method": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "pending", "unknown", "succeeded", "failed", "closed"]},
        "out_trade_no": {"type": "string"}, "channel_transaction_id": nullable_str, "error": failure,
        "routing": {"type": ["object", "null"], "description": "chose, why, candidates, skipped {account: reason}, "
                                                               "failover_from {attempt, channel_account, error_code}"},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"}}}
    schemas["AttemptList"] = {"type": "object", "properties": {"object": {"const": "list"},
                                                               "data": {"type": "array", "items": _ref("Attempt")}}}
    schemas["Refund"] = {"type": "object", "required": ["id", "status", "amount"], "properties": {
        "id": {"type": "string", "pattern": "^re_"}, "object": {"const": "refund"}, "payment_id": {"type": "string"},
        "merchant_refund_no": {"type": "string"},
        "status": {"type": "string", "enum": ["processing", "succeeded", "failed"]},
        "amount": {"type": "integer"}, "currency": {"type": "string"}, "fee_refund": {"type": "integer"},
        "discount_refund": {"type": "integer", "description": "its share of what the channel kept of the payment's "
                                                              "coupons: not taken back from the merchant"},
        "kind": {"type": "string", "enum": ["merchant", "duplicate"]}, "reason": nullable_str,
        "channel_refund_id": nullable_str, "failure": failure,
        "attention": {"type": ["object", "null"], "description": "processing, and the channel says a person must "
                      "act before it ends (WeChat Pay ABNORMAL: the payer's bank refused it; resolve it at the "
                      "merchant platform); the money stays reserved",
                      "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                     "since": nullable_str}},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"}}}

    schemas["Balance"] = {"type": "object", "properties": {"object": {"const": "balance"}, "balances": {
        "type": "array", "items": {"type": "object", "required": ["currency", "available", "in_transit", "frozen"],
                                   "properties": {"currency": {"type": "string"}, "available": {"type": "integer"},
                                                  "in_transit": {"type": "integer"}, "frozen": {"type": "integer"},
                                                  "refund_pending": {"type": "integer"},
                                                  "payout_pending": {"type": "integer"},
                                                  "split_pending": {"type": "integer"},
                                                  "split_frozen": {"type": "integer", "description": "held frozen "
                                                                   "by the channel for splitting, until the "
                                                                   "payment's splitting is finished"}}}}}}
    schemas["Payout"] = {"type": "object", "required": ["id", "status", "amount"], "properties": {
        "id": {"type": "string", "pattern": "^po_"}, "object": {"const": "payout"},
        "merchant_payout_no": {"type": "string"},
        "status": {"type": "string", "enum": ["processing", "succeeded", "failed", "returned"],
                   "description": "returned: paid, then sent back by the receiving bank (退票); the money is "
                                  "the merchant's again (docs/payouts.md)"},
        "amount": {"type": "integer"}, "fee": {"type": "integer"}, "currency": {"type": "string"},
        "bank_account": {"type": "object", "properties": {
            "name": {"type": "string"}, "number": {"type": "string", "description": "masked: first and last 4"},
            "bank_code": nullable_str}},
        "remark": nullable_str, "channel": {"type": "string"}, "out_payout_no": {"type": "string"},
        "channel_payout_id": nullable_str, "routing": {"type": ["object", "null"]}, "failure": failure,
        "receiver": {"type": ["string", "null"], "description": "the receiver paid out (its money held by paymux); "
                                                                "null: the merchant"},
        "notify_url": nullable_str, "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        "finished_at": nullable_str, "returned_at": nullable_str}}
    schemas["PayoutList"] = {"type": "object", "properties": {"object": {"const": "list"},
                                                              "data": {"type": "array", "items": _ref("Payout")}}}
    schemas["Receiver"] = {"type": "object", "required": ["id", "type", "account"], "properties": {
        "id": {"type": "string", "pattern": "^rcv_"}, "object": {"const": "receiver"},
        "type": {"type": "string", "enum": ["merchant", "personal"]}, "name": {"type": "string"},
        "account": {"type": "string"}, "bindings": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "string"}, "created_at": {"type": "string"},
        "held_by": {"type": "string", "enum": ["channel", "paymux"],
                    "description": "who pays the receiver its splits: the payment's channel itself, or paymux "
                                   "(which holds its money, settles it on its own T+settlement_days working days and "
                                   "pays it out)"},
        "settlement_days": {"type": "integer", "minimum": 0, "maximum": 30},
        "money": {"type": "array", "description": "per currency (on GET): split to the receiver, returned, settled "
                  "(by the channel itself, as its statement of splits says, by statement day; or by paymux on the "
                  "receiver's T+n), paid out, and still owed (in transit, available, in payouts under way)",
                  "items": {"type": "object", "properties": {
                      "currency": {"type": "string"}, "split": {"type": "integer"}, "returned": {"type": "integer"},
                      "settled": {"type": "integer"}, "owed": {"type": ["integer", "null"]},
                      "in_transit": {"type": "integer"}, "available": {"type": "integer"},
                      "paid_out": {"type": "integer"},
                      "payouts": {"type": "array", "items": {"type": "object", "properties": {
                          "id": {"type": "string"}, "amount": {"type": "integer"}, "status": {"type": "string"},
                          "finished_at": nullable_str}}},
                      "settlements": {"type": "array", "items": {"type": "object", "properties": {
                          "by": {"type": "string", "enum": ["channel", "paymux"]},
                          "business_date": {"type": "string"}, "settle_date": {"type": "string"},
                          "channel": {"type": "string"}, "amount": {"type": "integer"}}}}}}}}}
    schemas["Split"] = {"type": "object", "required": ["id", "status", "amount"], "properties": {
        "id": {"type": "string", "pattern": "^spl_"}, "object": {"const": "split"}, "payment_id": {"type": "string"},
        "merchant_split_no": {"type": "string"}, "receiver": {"type": "string"},
        "status": {"type": "string", "enum": ["scheduled", "processing", "succeeded", "failed", "cancelled"]},
        "amount": {"type": "integer"}, "amount_returned": {"type": "integer"}, "currency": {"type": "string"},
        "description": {"type": "string"}, "channel": {"type": "string"}, "out_split_no": {"type": "string"},
        "channel_split_id": nullable_str, "failure": failure, "created_at": {"type": "string"},
        "updated_at": {"type": "string"}}}
    schemas["SplitRelease"] = {"type": "object", "required": ["id", "status", "amount"], "properties": {
        "id": {"type": "string", "pattern": "^srl_"}, "object": {"const": "split_release"},
        "payment_id": {"type": "string"},
        "status": {"type": "string", "enum": ["waiting", "processing", "succeeded", "failed"],
                   "description": "waiting: splits or returns of the payment are still in flight"},
        "amount": {"type": "integer", "description": "released to the merchant (known once succeeded)"},
        "currency": {"type": "string"}, "channel": {"type": "string"}, "out_release_no": {"type": "string"},
        "channel_release_id": nullable_str, "failure": failure, "created_at": {"type": "string"},
        "updated_at": {"type": "string"}}}
    schemas["SplitList"] = {"type": "object", "properties": {"object": {"const": "list"},
                                                             "data": {"type": "array", "items": _ref("Split")}}}
    schemas["LedgerEntryList"] = {"type": "object", "properties": {
        "object": {"const": "list"}, "has_more": {"type": "boolean"}, "next_cursor": {"type": ["integer", "null"]},
        "data": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "event_type": {"type": "string"}, "reference": nullable_str,
            "business_date": {"type": "string", "format": "date"}, "memo": nullable_str,
            "reverses": {"type": ["integer", "null"]}, "created_at": {"type": "string"},
            "postings": {"type": "array", "items": {"type": "object", "properties": {
                "account": {"type": "string"}, "currency": {"type": "string"}, "amount": {"type": "integer"},
                "balance_after": {"type": "integer"}}}}}}}}}

    schemas["EventList"] = {"type": "object", "properties": {
        "object": {"const": "list"}, "has_more": {"type": "boolean"}, "next_cursor": {"type": ["integer", "null"]},
        "data": {"type": "array", "items": {"type": "object", "required": ["id", "type", "data"], "properties": {
            "id": {"type": "string", "pattern": "^evt_"}, "object": {"const": "event"}, "type": {"type": "string"},
            "created_at": {"type": "string"}, "data": {"type": "object", "properties": {"object": {"type": "object"}}},
            "delivery": {"type": "object", "properties": {"status": {"type": "string"},
                                                          "attempts": {"type": "integer"}}},
            "request_id": nullable_str}}}}}
    schemas["Health"] = {"type": "object", "required": ["status", "database"], "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]}, "database": {"type": "string"},
        "channel_accounts": {"type": "integer"}}}
    # The resources say every field they carry: an answer with one the document does not name fails
    # the schema check (tests/test_schemathesis.py), so the document cannot fall behind the code.
    for name in ("Payment", "Attempt", "Refund", "Payout", "Receiver", "Split", "SplitRelease"):
        schemas[name]["additionalProperties"] = False

    def body(name: str) -> dict:
        return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}

    paths = {
        "/v1/payments": {
            "post": {"operationId": "createPayment", "summary": "Create a payment", "parameters": [_ID_KEY],
                     "requestBody": body("CreatePaymentBody"),
                     "responses": {"201": _json(_ref("Payment"), "Created"), **_errors(400, 401, 403, 409, 413, 502, 503)}},
            "get": {"operationId": "findPayment", "summary": "Find a payment by merchant_order_no",
                    "parameters": [{"name": "merchant_order_no", "in": "query", "required": True,
                                    "schema": {"type": "string"}}, _SYNC],
                    "responses": {"200": _json(_ref("PaymentList"), "Found"), **_errors(400, 401, 404)}}},
        "/v1/payments/{payment_id}": {
            "get": {"operationId": "getPayment", "summary": "Retrieve a payment",
                    "parameters": [_path_param("payment_id"), _SYNC],
                    "responses": {"200": _json(_ref("Payment"), "The payment"), **_errors(400, 401, 404)}}},
        "/v1/payments/{payment_id}/close": {
            "post": {"operationId": "closePayment", "summary": "Close an unpaid payment at the channel",
                     "parameters": [_path_param("payment_id")],
                     "responses": {"200": _json(_ref("Payment"), "Closed (or paid meanwhile)"),
                                   **_errors(400, 401, 404, 409, 502)}}},
        "/v1/payments/{payment_id}/attempts": {
            "post": {"operationId": "newAttempt",
                     "summary": "Pay the same order another way: the attempt in flight is closed at its channel first",
                     "parameters": [_path_param("payment_id")],
                     "requestBody": {"required": False,
                                     "content": {"application/json": {"schema": _ref("NewAttemptBody")}}},
                     "responses": {"200": _json(_ref("Payment"), "The payment with its new attempt (or paid meanwhile)"),
                                   **_errors(400, 401, 404, 409, 503)}},
            "get": {"operationId": "listAttempts",
                    "summary": "The payment's attempts, oldest first, with the router's reasons and each channel answer",
                    "parameters": [_path_param("payment_id")],
                    "responses": {"200": _json(_ref("AttemptList"), "The attempts"), **_errors(401, 404)}}},
        "/v1/payments/{payment_id}/refunds": {
            "post": {"operationId": "createRefund", "summary": "Refund all or part of a payment",
                     "parameters": [_path_param("payment_id"), _ID_KEY], "requestBody": body("CreateRefundBody"),
                     "responses": {"201": _json(_ref("Refund"), "Created"), **_errors(400, 401, 404, 409, 413)}}},
        "/v1/refunds/{refund_id}": {
            "get": {"operationId": "getRefund", "summary": "Retrieve a refund",
                    "parameters": [_path_param("refund_id"), _SYNC],
                    "responses": {"200": _json(_ref("Refund"), "The refund"), **_errors(401, 404)}}},
        "/v1/payments/{payment_id}/splits": {
            "post": {"operationId": "createSplit",
                     "summary": "Pass part of a succeeded payment to a receiver (idempotent by merchant_split_no)",
                     "parameters": [_path_param("payment_id")], "requestBody": body("CreateSplitBody"),
                     "responses": {"201": _json(_ref("Split"), "Created"),
                                   "200": _json(_ref("Split"), "The same split asked for again"),
                                   **_errors(400, 401, 404, 409, 413)}},
            "get": {"operationId": "listSplits", "summary": "The payment's splits, oldest first",
                    "parameters": [_path_param("payment_id")],
                    "responses": {"200": _json(_ref("SplitList"), "The splits"), **_errors(401, 404)}}},
        "/v1/payments/{payment_id}/splits/finish": {
            "post": {"operationId": "finishSplits",
                     "summary": "Split this payment no more: once no split of it is in flight, the channel releases "
                                "what it still holds frozen of it to the merchant (idempotent)",
                     "parameters": [_path_param("payment_id")],
                     "requestBody": {"required": False,
                                     "content": {"application/json": {"schema": _ref("FinishSplitsBody")}}},
                     "responses": {"201": _json(_ref("SplitRelease"), "Asked for"),
                                   "200": _json(_ref("SplitRelease"), "Asked for before"),
                                   **_errors(400, 401, 404, 409, 413)}}},
        "/v1/splits/{split_id}": {
            "get": {"operationId": "getSplit", "summary": "Retrieve a split",
                    "parameters": [_path_param("split_id"), _SYNC],
                    "responses": {"200": _json(_ref("Split"), "The split"), **_errors(400, 401, 404)}}},
        "/v1/receivers": {
            "post": {"operationId": "createReceiver", "summary": "Register someone payments may be split to",
                     "requestBody": body("CreateReceiverBody"),
                     "responses": {"201": _json(_ref("Receiver"), "Created"), **_errors(400, 401, 409, 413)}}},
        "/v1/receivers/{receiver_id}": {
            "get": {"operationId": "getReceiver", "summary": "Retrieve a receiver",
                    "parameters": [_path_param("receiver_id")],
                    "responses": {"200": _json(_ref("Receiver"), "The receiver"), **_errors(401, 404)}}},
        "/v1/receivers/{receiver_id}/payouts": {
            "post": {"operationId": "createReceiverPayout",
                     "summary": "Pay a receiver whose money paymux holds, from its available balance, to a bank "
                                "account (idempotent by merchant_payout_no)",
                     "parameters": [_path_param("receiver_id")], "requestBody": body("CreatePayoutBody"),
                     "responses": {"201": _json(_ref("Payout"), "Created"),
                                   "200": _json(_ref("Payout"), "The same payout asked for again"),
                                   **_errors(400, 401, 404, 409, 413, 503)}}},
        "/v1/payouts": {
            "post": {"operationId": "createPayout",
                     "summary": "Pay from the available balance to a bank account (idempotent by merchant_payout_no)",
                     "requestBody": body("CreatePayoutBody"),
                     "responses": {"201": _json(_ref("Payout"), "Created"),
                                   "200": _json(_ref("Payout"), "The same payout asked for again"),
                                   **_errors(400, 401, 409, 413, 503)}},
            "get": {"operationId": "findPayout", "summary": "Find a payout by merchant_payout_no",
                    "parameters": [{"name": "merchant_payout_no", "in": "query", "required": True,
                                    "schema": {"type": "string"}}, _SYNC],
                    "responses": {"200": _json(_ref("PayoutList"), "Found"), **_errors(400, 401, 404)}}},
        "/v1/payouts/{payout_id}": {
            "get": {"operationId": "getPayout", "summary": "Retrieve a payout",
                    "parameters": [_path_param("payout_id"), _SYNC],
                    "responses": {"200": _json(_ref("Payout"), "The payout"), **_errors(400, 401, 404)}}},
        "/v1/balance": {
            "get": {"operationId": "getBalance", "summary": "The merchant's balances per currency (minor units)",
                    "responses": {"200": _json(_ref("Balance"), "Balances"), **_errors(401)}}},
        "/v1/ledger/entries": {
            "get": {"operationId": "listLedgerEntries", "summary": "The merchant's ledger entries, newest first",
                    "parameters": [{"name": "limit", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                                   {"name": "cursor", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 1},
                                    "description": "next_cursor of the previous page"}],
                    "responses": {"200": _json(_ref("LedgerEntryList"), "A page of entries"), **_errors(400, 401)}}},
        "/v1/events": {
            "get": {"operationId": "listEvents", "summary": "The merchant's events, newest first",
                    "parameters": [{"name": "limit", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                                   {"name": "cursor", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 1}}],
                    "responses": {"200": _json(_ref("EventList"), "A page of events"), **_errors(400, 401)}}},
        "/v1/notify/{channel_account}": {method: {
            "operationId": f"channelCallback{method.capitalize()}", "security": [],
            "summary": "A channel's callback, verified by its plugin on the raw body and answered in the channel's "
                       "own format",
            "parameters": [_path_param("channel_account")],
            **({"requestBody": {"required": False, "content": {
                "application/json": {"schema": {}}, "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "additionalProperties": {"type": "string"}}}}}} if method == "post" else {}),
            "responses": {"200": _channel_answer("Accepted: the channel stops sending it"),
                          "204": {"description": "Accepted (channels that expect no body)"},
                          "400": _channel_answer("Refused (unverified, malformed, for another merchant, amount "
                                                 "mismatch): the channel sends it again; or an Error"),
                          **_errors(404)}} for method in ("post", "get")},
        "/healthz": {"get": {"operationId": "health", "summary": "Liveness and database check", "security": [],
                             "responses": {"200": _json(_ref("Health"), "OK"),
                                           "503": _json(_ref("Health"), "Degraded: the database does not answer")}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus text format",
                             "security": [{}, {"metricsToken": []}],
                             "responses": {"200": {"description": "The metrics", "content": {
                                 "text/plain": {"schema": {"type": "string"}}}},
                                 "401": {"description": "metrics_token is set and was not sent (metrics_token_required)",
                                         "content": {"application/json": {"schema": _ref("Error")}}}}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "security": [],
                                  "responses": {"200": _json({"type": "object"}, "The OpenAPI document")}}},
    }
    paths.update(statements.openapi_paths(_path_param, _json, _errors, _ref))   # gateway/api/statements.py
    schemas.update(statements.openapi_schemas())
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"].update({k: v for k, v in _errors(*_EVERY_ROUTE).items()
                                           if k not in operation["responses"]})
    return {
        "openapi": "3.1.0",
        "info": {"title": "paymux merchant API", "version": "1",
                 "description": "Every /v1 request is signed: Authorization: PAYMUX-HMAC-SHA256 merchant_id=\"…\","
                                "timestamp=\"…\",nonce=\"…\",signature=\"…\" where signature is hex HMAC-SHA256 "
                                "of METHOD\\nPATH_AND_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n with the merchant secret."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "paymuxHmac": {"type": "apiKey", "in": "header", "name": "Authorization"},
            "metricsToken": {"type": "http", "scheme": "bearer", "description": "metrics_token, when it is set"}}},
        "security": [{"paymuxHmac": []}],
    }
