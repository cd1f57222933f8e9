"""The customer tables: the customer, its numbers (E.164), the admin-defined custom fields and their
values. A customer keeps the organisational unit it was created in (``org_unit_id``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime


class Customer(Base):
    """A customer: name, e-mail, company, notes; numbers and custom values in their own tables."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"),
                                                    nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CustomerPhone(Base):
    """One of a customer's numbers, in E.164; a number belongs to one customer only."""

    __tablename__ = "customer_phones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)


class CustomerField(Base):
    """An admin-defined custom field: its kind (text, number, date, choice), the choices of a choice
    field (one per line), whether it is required and whether it shows on the incoming-call card."""

    __tablename__ = "customer_fields"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16), default="text")
    choices: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    on_card: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class CustomerFieldValue(Base):
    """A customer's value of a custom field, as text (numbers and ISO dates checked on the way in)."""

    __tablename__ = "customer_field_values"
    __table_args__ = (UniqueConstraint("customer_id", "field_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("customer_fields.id", ondelete="CASCADE"), index=True)
    value: Mapped[str] = mapped_column(Text, default="")
