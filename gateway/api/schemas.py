"""Request bodies of the merchant API, validated strictly: unknown fields and wrong types are errors."""
from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from babel.numbers import list_currencies
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from gateway.errors import PaymuxError, invalid_request

MAX_AMOUNT = 10**12


@functools.cache
def iso_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


iso_currencies()  # load the table at import, not inside the first request


def _currency(value: str) -> str:
    if value not in iso_currencies():
        raise ValueError("currency_unknown")
    return value


def _metadata(value: dict[str, str]) -> dict[str, str]:
    """The merchant's own notes, returned as given: nothing in them moves money (see the README's
    "Security": discounts come only from the channel's verified answer)."""
    if len(value) > 20 or any(len(k) > 40 or len(v) > 500 for k, v in value.items()):
        raise ValueError("metadata_too_large")
    return value


REFERENCE_LENGTH = 64   # merchant_order_no, merchant_refund_no, … columns
Reference = Annotated[str, StringConstraints(min_length=1, max_length=REFERENCE_LENGTH,
                                             pattern=r"^[A-Za-z0-9_\-.:]+$")]
Url = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://\S+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]


class SplitSpec(_Body):
    """A split declared with the payment: passed on to the receiver once the payment succeeds."""

    receiver: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    amount: Annotated[int, Field(gt=0, le=MAX_AMOUNT)]
    merchant_split_no: Reference | None = None
    description: Annotated[str, StringConstraints(max_length=80)] = ""


class CreatePaymentBody(_Body):
    merchant_order_no: Reference
    amount: Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="minor units, e.g. fen")]
    currency: Annotated[str, AfterValidator(_currency)] = "CNY"
    subject: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "payment"
    channel: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    method: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    notify_url: Url | None = None
    expires_in: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] | None = None
    metadata: Annotated[dict[str, str], AfterValidator(_metadata)] = Field(default_factory=dict)
    splits: Annotated[list[SplitSpec], Field(max_length=10)] = Field(
        default_factory=list, description="Passed on to receivers once the payment succeeds")
    splittable: bool = Field(default=False, description="It will be split later (POST /v1/payments/{id}/splits); "
                                                        "implied by splits")


class CreateSplitBody(_Body):
    merchant_split_no: Reference
    receiver: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    amount: Annotated[int, Field(gt=0, le=MAX_AMOUNT)]
    description: Annotated[str, StringConstraints(max_length=80)] = ""


class FinishSplitsBody(_Body):
    """No fields: the request itself says the payment will be split no more."""


class CreateReceiverBody(_Body):
    type: Literal["merchant", "personal"]
    name: Name
    account: Reference
    bindings: Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Reference],
                        Field(max_length=20)] = Field(default_factory=dict,
                                                      description="channel account id -> the receiver there")
    # "paymux": no channel pays this receiver; paymux holds its money, settles it on its own T+n working
    # days and pays it out (gateway/split_settlement.py)
    held_by: Literal["channel", "paymux"] = "channel"
    settlement_days: Annotated[int, Field(ge=0, le=30)] = 1


class BankAccount(_Body):
    name: Name
    number: Annotated[str, StringConstraints(min_length=8, max_length=32, pattern=r"^[0-9]+$")]
    bank_code: Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")] | None = None


class CreatePayoutBody(_Body):
    merchant_payout_no: Reference
    amount: Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="minor units, e.g. fen")]
    currency: Annotated[str, AfterValidator(_currency)] = "CNY"
    bank_account: BankAccount
    remark: Annotated[str, StringConstraints(max_length=100)] | None = None
    channel: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    notify_url: Url | None = None


class NewAttemptBody(_Body):
    channel: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    method: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None


class CreateRefundBody(_Body):
    merchant_refund_no: Reference
    amount: Annotated[int, Field(gt=0, le=MAX_AMOUNT)]
    reason: Annotated[str, StringConstraints(max_length=256)] | None = None


def parse_body(model: type[_Body], data: Any) -> Any:
    """Validate and turn the first problem into a PaymuxError with a code and the parameter's name."""
    if not isinstance(data, dict):
        raise invalid_request("invalid_body", "The request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_error(exc.errors()[0]) from None


def _to_error(err: dict) -> PaymuxError:
    param = ".".join(str(p) for p in err.get("loc", ())) or None
    kind = err.get("type", "")
    top = param.split(".")[-1] if param else None   # the field itself, also inside a list (splits.0.amount)
    if kind == "missing":
        return invalid_request("parameter_missing", f"{param} is required", param)
    if kind == "extra_forbidden":
        return invalid_request("parameter_unknown", f"{param} is not a known parameter", param)
    if top == "amount" and kind in ("greater_than", "greater_than_equal"):
        return invalid_request("amount_too_small", "amount must be a positive integer in minor units", param)
    if top == "amount" and kind in ("less_than", "less_than_equal"):
        return invalid_request("amount_too_large", f"amount must be at most {MAX_AMOUNT}", param)
    if kind == "value_error" and "currency_unknown" in str(err.get("msg")):
        return invalid_request("currency_unknown", "currency must be an ISO 4217 code such as CNY", param)
    if kind == "value_error" and "metadata_too_large" in str(err.get("msg")):
        return invalid_request("metadata_too_large", "metadata holds at most 20 keys of 40 characters, values of 500",
                               param)
    if kind.endswith("_type") or kind in ("int_from_float", "dict_type", "model_type"):
        return invalid_request("parameter_invalid_type", f"{param}: {err.get('msg')}", param)
    return invalid_request("parameter_invalid", f"{param}: {err.get('msg')}", param)
