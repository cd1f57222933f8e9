"""explicit all-units grant, disabled users, session epochs, units stored on records at call time

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Records made before this revision take the unit their user is in now: the best that is known.
_BACKFILL = (
    "UPDATE cdr_users SET unit_id = (SELECT org_unit_id FROM users WHERE users.id = cdr_users.user_id)",
    "UPDATE acd_calls SET agent_unit_id = (SELECT org_unit_id FROM users WHERE users.id = acd_calls.agent_id)",
    "UPDATE acd_attempts SET unit_id = (SELECT org_unit_id FROM users WHERE users.id = acd_attempts.user_id)",
    "UPDATE monitor_sessions SET supervisor_unit_id = "
    "(SELECT org_unit_id FROM users WHERE users.id = monitor_sessions.supervisor_id)",
    "UPDATE monitor_sessions SET agent_unit_id = "
    "(SELECT org_unit_id FROM users WHERE users.id = monitor_sessions.agent_id)",
    "UPDATE recordings SET unit_id = (SELECT org_unit_id FROM users WHERE users.id = recordings.user_id) "
    "WHERE unit_id IS NULL",
)


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('all_units', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('cdr_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_cdr_users_unit_id'), ['unit_id'], unique=False)
        batch_op.create_foreign_key('fk_cdr_users_unit_id_org_units', 'org_units', ['unit_id'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('acd_calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_unit_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_acd_calls_agent_unit_id_org_units', 'org_units', ['agent_unit_id'],
                                    ['id'], ondelete='SET NULL')
    with op.batch_alter_table('acd_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_acd_attempts_unit_id_org_units', 'org_units', ['unit_id'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('monitor_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('supervisor_unit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('agent_unit_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_monitor_sessions_supervisor_unit_id_org_units', 'org_units',
                                    ['supervisor_unit_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key('fk_monitor_sessions_agent_unit_id_org_units', 'org_units',
                                    ['agent_unit_id'], ['id'], ondelete='SET NULL')
    for statement in _BACKFILL:
        op.execute(statement)
    # Until now an admin who administered no unit saw everything: keep that as the explicit grant.
    op.execute("UPDATE users SET all_units = true WHERE (',' || roles || ',') LIKE '%,admin,%' "
               "AND id NOT IN (SELECT user_id FROM org_unit_admins)")


def downgrade() -> None:
    with op.batch_alter_table('monitor_sessions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_monitor_sessions_agent_unit_id_org_units', type_='foreignkey')
        batch_op.drop_constraint('fk_monitor_sessions_supervisor_unit_id_org_units', type_='foreignkey')
        batch_op.drop_column('agent_unit_id')
        batch_op.drop_column('supervisor_unit_id')
    with op.batch_alter_table('acd_attempts', schema=None) as batch_op:
        batch_op.drop_constraint('fk_acd_attempts_unit_id_org_units', type_='foreignkey')
        batch_op.drop_column('unit_id')
    with op.batch_alter_table('acd_calls', schema=None) as batch_op:
        batch_op.drop_constraint('fk_acd_calls_agent_unit_id_org_units', type_='foreignkey')
        batch_op.drop_column('agent_unit_id')
    with op.batch_alter_table('cdr_users', schema=None) as batch_op:
        batch_op.drop_constraint('fk_cdr_users_unit_id_org_units', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_cdr_users_unit_id'))
        batch_op.drop_column('unit_id')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
        batch_op.drop_column('disabled')
        batch_op.drop_column('all_units')
