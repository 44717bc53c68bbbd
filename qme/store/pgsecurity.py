"""Row-level security on a PostgreSQL store: each database role sees and changes
only its own tasks, and sees those shared with a role it belongs to.

Every task row has an `owner` (type name, DEFAULT current_user: the server sets
it, not qme). `secure()`, run once by the tables' owner or a superuser (`qme admin
init-postgres`), turns on the policies, forces them on the tables' owner too, and
grants what a user of qme needs; it can be run again (after an upgrade of qme it
migrates, grants on new tables and protects them).

- qme_tasks: a role reads and writes the rows it owns; it also reads the rows
  shared with a role it is a member of (pg_has_role(current_user, …, 'member')).
- qme_shares (task, grp, owner): a share counts only when its owner owns the task.
- every other qme_ table with a `task` column (chunks, search, and tables later
  migrations add): a row is read when its task is, written when its task is owned.
- qme_meta: read by all; only the `changes` counter may be updated.
A table of the store that fits none of these is locked: RLS on, no policy.

No policy names a table that names it back, so that PostgreSQL never finds a
recursion; and a share names its group by name, looked up in pg_roles, so that
a dropped role makes its shares void instead of failing every query.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import text

from qme.errors import NoSuchTask, QmeError, Refused, StoreError

MEMBER_OF = "SELECT rolname FROM pg_roles WHERE pg_has_role(current_user, oid, 'member')"
OWN = "owner = current_user"
SHARED_TASK = f"(seq, owner) IN (SELECT task, owner FROM qme_shares WHERE grp IN ({MEMBER_OF}))"
VISIBLE_TASK = "EXISTS (SELECT 1 FROM qme_tasks t WHERE t.seq = {table}.task)"
OWN_TASK = (
    "EXISTS (SELECT 1 FROM qme_tasks t WHERE t.seq = {table}.task AND t.owner = current_user)"
)
ROW_WRITES = "SELECT, INSERT, UPDATE, DELETE"


def policies(table: str, columns: set[str]) -> dict[str, str] | None:
    """name -> the body of CREATE POLICY name ON table …, or None: lock it."""
    if table == "qme_tasks":
        return {
            "qme_own": f"USING ({OWN}) WITH CHECK ({OWN})",
            "qme_shared": f"FOR SELECT USING ({SHARED_TASK})",
        }
    if table == "qme_shares":
        return {
            "qme_own": f"USING ({OWN}) WITH CHECK ({OWN})",
            "qme_member": f"FOR SELECT USING (grp IN ({MEMBER_OF}))",
        }
    if table == "qme_meta":
        return {
            "qme_read": "FOR SELECT USING (true)",
            "qme_count": "FOR UPDATE USING (name = 'changes') WITH CHECK (name = 'changes')",
        }
    if "task" in columns:
        own = OWN_TASK.format(table=table)
        return {
            "qme_read": f"FOR SELECT USING ({VISIBLE_TASK.format(table=table)})",
            "qme_own": f"USING ({own}) WITH CHECK ({own})",
        }
    return None


def _tables(conn) -> dict[str, set[str]]:
    """The store's tables in the current schema, with their columns."""
    rows = conn.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name LIKE 'qme\\_%'"
        )
    )
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def is_secured(conn) -> bool:
    return bool(
        conn.execute(
            text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('qme_tasks')")
        ).scalar()
    )


@contextmanager
def owner_sees_all(conn):
    """Within conn's transaction, the tables' owner is not held by the policies (so
    that a migration or secure() sees every row); forced again at the end."""
    found = conn.execute(
        text(
            "SELECT relname, pg_get_userbyid(relowner), pg_has_role(relowner, 'USAGE') "
            "FROM pg_class WHERE relforcerowsecurity "
            "AND relnamespace = current_schema()::text::regnamespace AND relname LIKE 'qme\\_%'"
        )
    ).all()
    for _, owner, mine in found:
        if not mine:
            raise StoreError(
                f"only the owner of the store's tables ({owner}) or a superuser may migrate "
                "or secure them: ask them to run 'qme admin init-postgres' with this qme"
            )
    forced = [name for name, _, _ in found]
    for table in forced:
        conn.execute(text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
    yield
    for table in forced:
        conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))


def secure(conn, grant_to: str = "PUBLIC") -> list[str]:
    """Turn row-level security on for every table of the store and grant grant_to
    (a role, or PUBLIC) what qme needs. Returns what was done, one line each."""
    grantee = "PUBLIC" if grant_to.upper() == "PUBLIC" else _quote(conn, grant_to)
    if grantee != "PUBLIC":
        _require_role(conn, grant_to)
    done = []
    with owner_sees_all(conn):
        orphans = conn.execute(
            text(
                "UPDATE qme_tasks t SET owner = COALESCE("
                '(SELECT rolname FROM pg_roles r WHERE r.rolname = t."user"), current_user) '
                "WHERE owner IS NULL"
            )
        ).rowcount
        if orphans:
            done.append(
                f"{orphans} task(s) recorded before owners were kept given to the role "
                "named as their user, or else to you"
            )
        conn.execute(text("ALTER TABLE qme_tasks ALTER COLUMN owner SET NOT NULL"))
    for table, columns in sorted(_tables(conn).items()):
        conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        found = conn.execute(
            text(
                "SELECT policyname FROM pg_policies "
                "WHERE schemaname = current_schema() AND tablename = :t"
            ),
            {"t": table},
        )
        for (name,) in found.all():
            conn.execute(text(f"DROP POLICY {_quote(conn, name)} ON {table}"))
        rules = policies(table, columns)
        for name, body in (rules or {}).items():
            conn.execute(text(f"CREATE POLICY {name} ON {table} {body}"))
        if table != "qme_meta":  # its owner records the schema's version there
            conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
        rights = "SELECT, UPDATE" if table == "qme_meta" else ROW_WRITES
        conn.execute(text(f"GRANT {rights} ON {table} TO {grantee}"))
        if rules is None:
            done.append(f"{table}: locked (no rule for it: nobody but its owner reads it)")
        else:
            done.append(f"{table}: {', '.join(rules)}")
    sequences = conn.execute(
        text(
            "SELECT relname FROM pg_class WHERE relkind = 'S' "
            "AND relnamespace = current_schema()::text::regnamespace AND relname LIKE 'qme\\_%'"
        )
    )
    for (sequence,) in sequences.all():
        conn.execute(text(f"GRANT USAGE ON SEQUENCE {sequence} TO {grantee}"))
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    conn.execute(text(f"GRANT USAGE ON SCHEMA {_quote(conn, schema)} TO {grantee}"))
    done.append(f"granted to {grant_to}: rows of the qme_ tables, their sequences, schema {schema}")
    return done


# -- sharing ----------------------------------------------------------------------------------


def _owned_seq(conn, task_id: str) -> int:
    row = conn.execute(
        text("SELECT seq, owner = current_user FROM qme_tasks WHERE id = :id"), {"id": task_id}
    ).first()
    if row is None:
        raise NoSuchTask(task_id)
    if not row[1]:
        raise Refused(f"task {task_id} is not yours: only its owner shares it")
    return row[0]


def _require_role(conn, role: str) -> None:
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
        raise QmeError(f"the server has no role '{role}'")


def share(conn, task_id: str, group: str) -> bool:
    """Let the members of role group read the task; False when they already could."""
    seq = _owned_seq(conn, task_id)
    _require_role(conn, group)
    inserted = conn.execute(
        text("INSERT INTO qme_shares (task, grp) VALUES (:s, :g) ON CONFLICT DO NOTHING"),
        {"s": seq, "g": group},
    )
    return inserted.rowcount > 0


def unshare(conn, task_id: str, group: str) -> bool:
    """False when the task was not shared with group."""
    seq = _owned_seq(conn, task_id)
    deleted = conn.execute(
        text("DELETE FROM qme_shares WHERE task = :s AND grp = :g AND owner = current_user"),
        {"s": seq, "g": group},
    )
    return deleted.rowcount > 0


def shares(conn, task_id: str) -> list[str]:
    """The roles the task is shared with (as far as this role may know)."""
    rows = conn.execute(
        text(
            "SELECT s.grp FROM qme_shares s JOIN qme_tasks t "
            "ON t.seq = s.task AND t.owner = s.owner WHERE t.id = :id ORDER BY s.grp"
        ),
        {"id": task_id},
    )
    return [row[0] for row in rows]


def delete_shares(conn, seqs: list[int] | None) -> None:
    """The shares of deleted tasks (seqs; None: all) go with them. Under row-level
    security, only this role's shares: another's share of a task it does not own
    counts for nothing anyway."""
    if seqs is None:
        conn.execute(text("DELETE FROM qme_shares"))
    elif seqs:
        conn.execute(text("DELETE FROM qme_shares WHERE task = ANY(:seqs)"), {"seqs": list(seqs)})


def _quote(conn, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)
