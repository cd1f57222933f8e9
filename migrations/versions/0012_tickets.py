"""Call-based tickets (callcenter/tickets/models.py): tickets and their timelines

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tickets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('origin', sa.String(length=12), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('assignee_id', sa.Integer(), nullable=True),
        sa.Column('org_unit_id', sa.Integer(), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('grouping', sa.Boolean(), nullable=False),
        sa.Column('missed_calls', sa.Integer(), nullable=False),
        sa.Column('answered_back', sa.Boolean(), nullable=False),
        sa.Column('reopened', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_number_origin_grouping', ['number', 'origin', 'grouping'], unique=False)
        for column in ('status', 'number', 'customer_id', 'assignee_id', 'org_unit_id', 'created_at',
                       'closed_at'):
            batch_op.create_index(batch_op.f(f'ix_tickets_{column}'), [column], unique=False)
    op.create_table(
        'ticket_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('call_id', sa.String(length=32), nullable=True),
        sa.Column('leg_id', sa.String(length=48), nullable=True),
        sa.Column('in_progress', sa.Boolean(), nullable=False),
        sa.Column('old', sa.String(length=200), nullable=False),
        sa.Column('new', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('ticket_entries', schema=None) as batch_op:
        for column in ('ticket_id', 'at', 'author_id', 'call_id'):
            batch_op.create_index(batch_op.f(f'ix_ticket_entries_{column}'), [column], unique=False)


def downgrade() -> None:
    op.drop_table('ticket_entries')
    op.drop_table('tickets')
