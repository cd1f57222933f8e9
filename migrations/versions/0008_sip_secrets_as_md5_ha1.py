"""SIP secrets stored as their MD5 digest HA1, not in plain text

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:00:00
"""
import hashlib
import secrets

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Frozen here rather than imported: the HA1s written now are bound to this realm, whatever the code says
# later (callcenter.asterisk.render.REALM must stay equal to it).
REALM = 'callcenter'

_users = sa.table('users', sa.column('id', sa.Integer), sa.column('extension', sa.String),
                  sa.column('sip_secret', sa.String), sa.column('sip_ha1', sa.String))


def _ha1(username: str, password: str) -> str:
    return hashlib.md5(f'{username}:{REALM}:{password}'.encode(), usedforsecurity=False).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sip_ha1', sa.String(length=32), nullable=True))
    connection = op.get_bind()
    # In Python: SQLite has no md5().
    for user_id, extension, secret in connection.execute(
            sa.select(_users.c.id, _users.c.extension, _users.c.sip_secret)).all():
        ha1 = _ha1(extension, secret) if extension and secret else ''
        connection.execute(_users.update().where(_users.c.id == user_id).values(sip_ha1=ha1))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('sip_ha1', existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column('sip_secret')


def downgrade() -> None:
    # A hash gives no password back: every phone gets a new random one (`callcenter users list` of the
    # older version shows them), never an empty one.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sip_secret', sa.String(length=64), nullable=True))
    connection = op.get_bind()
    for user_id, extension in connection.execute(sa.select(_users.c.id, _users.c.extension)).all():
        secret = secrets.token_urlsafe(12) if extension else ''
        connection.execute(_users.update().where(_users.c.id == user_id).values(sip_secret=secret))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('sip_secret', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('sip_ha1')
