"""Alembic migrations of the job store; a package so ``env.py`` ships in the wheel.

Run by ``clipmaker.jobs.db.migrate`` (no alembic.ini needed), or by hand with
``alembic -c clipmaker/migrations/alembic.ini upgrade head``.
"""
