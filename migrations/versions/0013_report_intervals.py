"""Reports: the 15-minute interval tables per queue and per agent (callcenter/reports/models.py)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'report_queue_intervals',
        sa.Column('queue', sa.String(length=40), nullable=False),
        sa.Column('start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sl_threshold', sa.Integer(), nullable=False),
        sa.Column('offered', sa.Integer(), nullable=False),
        sa.Column('answered', sa.Integer(), nullable=False),
        sa.Column('answered_in_sl', sa.Integer(), nullable=False),
        sa.Column('abandoned', sa.Integer(), nullable=False),
        sa.Column('short_abandoned', sa.Integer(), nullable=False),
        sa.Column('overflowed', sa.Integer(), nullable=False),
        sa.Column('transfers', sa.Integer(), nullable=False),
        sa.Column('callbacks_requested', sa.Integer(), nullable=False),
        sa.Column('callbacks_completed', sa.Integer(), nullable=False),
        sa.Column('answered_wait_sum', sa.Float(), nullable=False),
        sa.Column('wait_sum', sa.Float(), nullable=False),
        sa.Column('waited', sa.Integer(), nullable=False),
        sa.Column('wait_max', sa.Float(), nullable=False),
        sa.Column('talk_sum', sa.Float(), nullable=False),
        sa.Column('talked', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('queue', 'start'),
    )
    with op.batch_alter_table('report_queue_intervals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_queue_intervals_start'), ['start'], unique=False)
    op.create_table(
        'report_agent_intervals',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=True),
        sa.Column('logged_in_seconds', sa.Float(), nullable=False),
        sa.Column('ready_seconds', sa.Float(), nullable=False),
        sa.Column('ringing_seconds', sa.Float(), nullable=False),
        sa.Column('on_call_seconds', sa.Float(), nullable=False),
        sa.Column('wrap_up_seconds', sa.Float(), nullable=False),
        sa.Column('paused_seconds', sa.Float(), nullable=False),
        sa.Column('pause_reasons', sa.Text(), nullable=False),
        sa.Column('handled', sa.Integer(), nullable=False),
        sa.Column('completed', sa.Integer(), nullable=False),
        sa.Column('unanswered', sa.Integer(), nullable=False),
        sa.Column('talked', sa.Integer(), nullable=False),
        sa.Column('talk_seconds', sa.Float(), nullable=False),
        sa.Column('hold_seconds', sa.Float(), nullable=False),
        sa.Column('first_response_sum', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('user_id', 'start'),
    )
    with op.batch_alter_table('report_agent_intervals', schema=None) as batch_op:
        for column in ('start', 'unit_id'):
            batch_op.create_index(batch_op.f(f'ix_report_agent_intervals_{column}'), [column], unique=False)


def downgrade() -> None:
    op.drop_table('report_agent_intervals')
    op.drop_table('report_queue_intervals')
