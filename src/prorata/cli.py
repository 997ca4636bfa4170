"""The ``prorata`` command: Django's management commands with the project's settings.

``prorata migrate``, ``prorata demo``, ``prorata clock show``, ``prorata runserver`` ...
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
