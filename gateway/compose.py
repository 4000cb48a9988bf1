"""The composition root for work that does not serve HTTP (the `paymux` commands): the database, the
books and the clock, built from the settings the same way the server's Gateway builds them. Each part
is made when first asked for, so a command that only reads rows needs no ledger configuration."""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, TypeVar

from sqlalchemy import Connection

from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.fees import fee_rules
from gateway.secretbox import SecretBox
from gateway.service import make_ledger
from ledger.booking import Booker
from ledger.core import Ledger

T = TypeVar("T")


@dataclass
class Backend:
    settings: Settings
    clock: Clock = field(default_factory=Clock)

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url, self.settings.database_threads)

    @cached_property
    def ledger(self) -> Ledger:
        """The ledger as configured; a chart that cannot book what the gateway does is a ConfigError."""
        return make_ledger(self.settings)

    @cached_property
    def booker(self) -> Booker:
        return Booker(self.ledger, fee_rules(self.settings, self.ledger.chart, self.db, self.clock.now))

    @cached_property
    def box(self) -> SecretBox:
        return SecretBox.from_settings(self.settings)

    def transaction(self) -> AbstractContextManager[Connection]:
        return self.db.transaction()

    def in_transaction(self, work: Callable[[Connection], T]) -> T:
        """work(conn) in one transaction."""
        with self.db.transaction() as conn:
            return work(conn)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
