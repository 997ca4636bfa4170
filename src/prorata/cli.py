"""The ``prorata`` command: Django's management commands with the project's settings.

``prorata migrate``, ``prorata demo``, ``prorata clock show``, ``prorata runserver`` ...

With ``PRORATA_MIGRATE_DATABASE_URL`` set (PostgreSQL), the commands that change the schema or
empty tables (``OWNER_COMMANDS``) connect with it, as the tables' owner; every other command, and
the web server and the jobs, as DATABASE_URL's role, which owns nothing. ``prorata migrate`` then
grants that role its privileges on the tables it just made (``grant_app_role``).
"""

import os
import sys

#: Commands run as the owner when PRORATA_MIGRATE_DATABASE_URL is set.
OWNER_COMMANDS = frozenset({"migrate", "grant_app_role", "flush", "createcachetable",
                            "sqlsequencereset"})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    as_owner = command in OWNER_COMMANDS and bool(os.environ.get("PRORATA_MIGRATE_DATABASE_URL"))
    if as_owner:
        os.environ["PRORATA_AS_OWNER"] = "1"
    from django.core.management import CommandError, call_command, execute_from_command_line

    execute_from_command_line(sys.argv)
    if as_owner and command == "migrate":
        try:
            call_command("grant_app_role")
        except CommandError as error:  # the message, as for a command run on its own
            sys.exit(f"CommandError: {error}")


if __name__ == "__main__":
    main()
