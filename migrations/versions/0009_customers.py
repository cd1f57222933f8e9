"""Customers (CRM-1): e-mail, company, unit and update time on the customer; its numbers in
customer_phones (the old customers.phone moves there); admin-defined custom fields and their values

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_customers = sa.table('customers', sa.column('id', sa.Integer), sa.column('phone', sa.String),
                      sa.column('created_at', sa.DateTime(timezone=True)),
                      sa.column('updated_at', sa.DateTime(timezone=True)))
_phones = sa.table('customer_phones', sa.column('id', sa.Integer), sa.column('customer_id', sa.Integer),
                   sa.column('number', sa.String))


def upgrade() -> None:
    connection = op.get_bind()
    # Read before the customers table is rebuilt (SQLite's batch mode copies it), and written after:
    # a child table created earlier would lose its rows to ON DELETE CASCADE during the copy.
    numbers = [(customer_id, phone) for customer_id, phone in connection.execute(
        sa.select(_customers.c.id, _customers.c.phone)).all() if phone]
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('company', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('org_unit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    connection.execute(_customers.update().values(updated_at=_customers.c.created_at))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column('email', existing_type=sa.String(length=254), server_default=None)
        batch_op.alter_column('company', existing_type=sa.String(length=200), server_default=None)
        batch_op.create_foreign_key('fk_customers_org_unit_id', 'org_units', ['org_unit_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_customers_org_unit_id'), ['org_unit_id'], unique=False)
        batch_op.drop_column('phone')
    op.create_table('customer_phones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('customer_phones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_phones_customer_id'), ['customer_id'], unique=False)
    op.create_table('customer_fields',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('choices', sa.Text(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('on_card', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('customer_field_values',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('field_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['field_id'], ['customer_fields.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'field_id')
    )
    with op.batch_alter_table('customer_field_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_field_values_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_field_values_field_id'), ['field_id'], unique=False)

    if numbers:
        op.bulk_insert(_phones, [{'customer_id': c, 'number': n} for c, n in numbers])


def downgrade() -> None:
    # customers.phone comes back with each customer's first number (lowest id); a customer without a
    # number gets a placeholder, as the old column was required and unique.
    connection = op.get_bind()
    first: dict[int, str] = {}
    for customer_id, number in connection.execute(
            sa.select(_phones.c.customer_id, _phones.c.number).order_by(_phones.c.id)).all():
        first.setdefault(customer_id, number)
    op.drop_table('customer_field_values')
    op.drop_table('customer_fields')
    op.drop_table('customer_phones')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=80), nullable=True))
    for (customer_id,) in connection.execute(sa.select(_customers.c.id)).all():
        connection.execute(_customers.update().where(_customers.c.id == customer_id)
                           .values(phone=first.get(customer_id, f'customer-{customer_id}')))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=80), nullable=False)
        batch_op.create_unique_constraint('uq_customers_phone', ['phone'])
        batch_op.drop_index(batch_op.f('ix_customers_org_unit_id'))
        batch_op.drop_constraint('fk_customers_org_unit_id', type_='foreignkey')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('org_unit_id')
        batch_op.drop_column('company')
        batch_op.drop_column('email')
